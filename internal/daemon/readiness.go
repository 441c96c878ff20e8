package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/ingest/httpapi"
	"github.com/pginflux/pginflux/sink"
)

// Readiness is checked with a short ping, and its answer is kept for a
// second so that probes and scrapes do not each cost a round trip.
const (
	readyPingTimeout = 800 * time.Millisecond
	readyCacheTTL    = time.Second
)

// readiness is what /readyz and /ready report: pginflux is ready while
// it listens and PostgreSQL answers a ping and takes rows; /health
// reports the second half (database). Safe for concurrent use.
type readiness struct {
	listening atomic.Bool
	pool      atomic.Pointer[pgxpool.Pool]
	sink      atomic.Pointer[sink.Sink] // its writes must not be held
}

// listeningErr says whether pginflux takes line protocol.
func (r *readiness) listeningErr() error {
	if r.pool.Load() == nil || !r.listening.Load() {
		return errors.New("not listening for line protocol (starting or stopping)")
	}
	return nil
}

// database says whether PostgreSQL answers a ping and takes rows.
func (r *readiness) database(ctx context.Context) error {
	pool := r.pool.Load()
	if pool == nil {
		return errors.New("not connected to PostgreSQL yet (starting)")
	}
	ctx, cancel := context.WithTimeout(ctx, readyPingTimeout)
	defer cancel()
	// pgx's errors name the host, user and database, never the password.
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	if s := r.sink.Load(); s != nil {
		if err := s.Blocked(); err != nil {
			return fmt.Errorf("rows are held, PostgreSQL does not take them (retrying): %w", err)
		}
	}
	return nil
}

// probes returns what /readyz and /ready check (listening, then the
// database) and what /health does (the database), sharing one cached
// database check: probes and scrapes cost at most a ping a second.
func (r *readiness) probes() (func(context.Context) error, []httpapi.Check) {
	db := httpapi.Cache(readyCacheTTL, r.database)
	return func(ctx context.Context) error {
		if err := r.listeningErr(); err != nil {
			return err
		}
		return db(ctx)
	}, []httpapi.Check{{Name: "postgresql", Check: db}}
}
