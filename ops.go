package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/ingest/httpapi"
	"github.com/pginflux/pginflux/ingest/udp"
	"github.com/pginflux/pginflux/internal/poolstats"
	"github.com/pginflux/pginflux/sink"
)

// Readiness is checked with a short ping, and its answer is kept for a
// second so that probes and scrapes do not each cost a round trip.
const (
	readyPingTimeout = 800 * time.Millisecond
	readyCacheTTL    = time.Second
)

// readiness is what /readyz and /ready report: pginflux is ready while
// its UDP sockets are bound and PostgreSQL answers a ping and takes rows;
// /health reports the second half (database). Safe for concurrent use.
type readiness struct {
	listening atomic.Bool
	pool      atomic.Pointer[pgxpool.Pool]
	sink      atomic.Pointer[sink.Sink] // its writes must not be held
}

func (r *readiness) check(ctx context.Context) error {
	if err := r.listeningErr(); err != nil {
		return err
	}
	return r.database(ctx)
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

// startHTTP binds the HTTP address and serves /metrics, /healthz, /readyz,
// /ping, /health and /ready from reg and ready, and the write endpoints
// into writes and /query from them, over TLS with --tls-cert. stop ends
// serving and waits until it has; it is a no-op when cfg.HTTPAddress is
// empty (HTTP disabled).
func startHTTP(cfg config.Config, reg *prometheus.Registry, ready *readiness, writes *httpWrites, log *slog.Logger) (stop func(), err error) {
	if cfg.HTTPAddress == "" {
		return func() {}, nil
	}
	tlsCfg, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	hc := httpapi.Config{
		Address:  cfg.HTTPAddress,
		Registry: reg,
		Version:  version,
		Commit:   commit(),
		PProf:    cfg.PProf,
		Token:    cfg.HTTPToken,
		MaxBody:  cfg.HTTPMaxBody,
		TLS:      tlsCfg,

		MaxConnections: cfg.HTTPMaxConnections,
		MaxWrites:      cfg.HTTPMaxWrites,
	}
	hc.Ready, hc.Checks = probes(ready)
	if writes != nil {
		hc.Writer, hc.Catalog = writes, writes
	}
	srv, err := httpapi.Listen(hc, log)
	if err != nil {
		return nil, err
	}
	if testHookHTTPListening != nil {
		testHookHTTPListening(srv.Addr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Run(ctx); err != nil {
			log.Error("http server stopped", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// probes returns what /readyz and /ready check (listening, then the
// database) and what /health does (the database), sharing one cached
// database check: probes and scrapes cost at most a ping a second.
func probes(ready *readiness) (func(context.Context) error, []httpapi.Check) {
	db := httpapi.Cache(readyCacheTTL, ready.database)
	return func(ctx context.Context) error {
		if err := ready.listeningErr(); err != nil {
			return err
		}
		return db(ctx)
	}, []httpapi.Check{{Name: "postgresql", Check: db}}
}

// commit returns the VCS revision the binary was built from, when the
// build recorded it.
func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// registerPool exposes the pool's statistics and lets readiness ping it.
func registerPool(reg prometheus.Registerer, pool *pgxpool.Pool, ready *readiness) {
	reg.MustRegister(poolstats.New(pool))
	ready.pool.Store(pool)
}

// registerUDP exposes the kernel's drops for the listener's sockets, when
// the kernel tells them, and marks pginflux as listening.
func registerUDP(reg prometheus.Registerer, ul *udp.Listener, ready *readiness, log *slog.Logger) {
	if kd, err := ul.KernelDrops(); err != nil {
		log.Warn("cannot count the datagrams the kernel drops; pginflux_udp_kernel_dropped_datagrams_total is left out", "err", err)
	} else {
		reg.MustRegister(kd)
	}
	ready.listening.Store(true)
}
