package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/poolstats"
	"github.com/pginflux/pginflux/sink/schema"
)

// pingTimeout bounds the first ping and preflight check at start.
const pingTimeout = 5 * time.Second

// OpenPool makes the connection pool of cfg, whose connections call
// themselves appName, and pings the database: it returns the pool, and
// the ping's error for the caller to judge (a database that is down is
// no reason not to start; one that refuses the configuration is).
func OpenPool(ctx context.Context, cfg config.Config, appName string) (pool *pgxpool.Pool, pingErr, err error) {
	pc, err := cfg.Pool(appName)
	if err != nil {
		return nil, nil, err
	}
	pool, err = pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, nil, fmt.Errorf("set up the connection pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return pool, pool.Ping(pingCtx), nil
}

// openPool makes the daemon's pool. A database that cannot be reached yet
// is no reason not to start: the writers keep retrying, and the first
// attempt here tells the user early. One that refuses pginflux's
// configuration (schema.Refusal) stops the start: waiting does not help.
func openPool(ctx context.Context, cfg config.Config, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, pingErr, err := OpenPool(ctx, cfg, "pginflux")
	if err != nil {
		return nil, err
	}
	if pingErr == nil {
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		pingErr = schema.Preflight(pctx, pool, cfg.Schema)
		cancel()
	}
	if err := schema.Refusal(pingErr); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s: %w", cfg.Database, err)
	}
	if pingErr != nil {
		log.Warn("database not reachable yet; receiving anyway and retrying", "database", cfg.Database, "err", pingErr)
	} else {
		log.Info("database reachable", "database", cfg.Database)
	}
	return pool, nil
}

// registerPool exposes the pool's statistics and lets readiness ping it.
func (d *Daemon) registerPool() {
	d.reg.MustRegister(poolstats.New(d.pool))
	d.ready.pool.Store(d.pool)
}
