package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/sink"
)

// limitSetter changes the limits of sinks a reloader does not hold itself.
type limitSetter interface {
	setLimits(batchSize int, flushInterval time.Duration, maxPendingRows int)
}

// errAuthNotReread: a reload found --auth-file that does not parse; the
// rest of the configuration was applied.
var errAuthNotReread = errors.New("--auth-file not reread; the credentials stay as they were")

// reloader applies a configuration read again to the running pginflux.
// What can change without a restart is the log level, and the sink's
// batch size, flush interval and pending-row limit; any other change is
// logged as needing a restart. Safe for concurrent use.
type reloader struct {
	level  *slog.LevelVar
	sink   *sink.Sink
	others limitSetter                // the sinks of other schemas (--schema-from-db), or nil
	auth   *atomic.Pointer[auth.File] // --auth-file, reread at each reload; nil without
	log    *slog.Logger

	mu  sync.Mutex
	cfg config.Config // what runs now; guarded by mu
}

// reload applies next, the configuration read again.
func (r *reloader) reload(next config.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.cfg

	// The settings that take effect at once, logged old → new. The log
	// level goes first when it lowers, last when it rises, so that these
	// lines show at whichever of the two levels is more verbose.
	type change struct {
		name     string
		old, new any
	}
	var applied []change
	if next.LogLevel != cur.LogLevel {
		applied = append(applied, change{"log-level", cur.LogLevel, next.LogLevel})
		r.level.Set(min(cur.LogLevel, next.LogLevel))
	}
	if next.BatchSize != cur.BatchSize {
		applied = append(applied, change{"batch-size", cur.BatchSize, next.BatchSize})
	}
	if next.FlushInterval != cur.FlushInterval {
		applied = append(applied, change{"flush-interval", cur.FlushInterval, next.FlushInterval})
	}
	if next.MaxPendingRows != cur.MaxPendingRows {
		applied = append(applied, change{"max-pending-rows", cur.MaxPendingRows, next.MaxPendingRows})
	}
	r.sink.SetLimits(next.BatchSize, next.FlushInterval, next.MaxPendingRows)
	if r.others != nil {
		r.others.setLimits(next.BatchSize, next.FlushInterval, next.MaxPendingRows)
	}
	var authErr error
	if r.auth != nil && next.AuthFile != "" {
		// Reread, whether or not it changed: that is what a reload is
		// for. A file that does not parse leaves the credentials as they
		// were.
		if f, err := auth.Load(next.AuthFile); err != nil {
			authErr = fmt.Errorf("%w: %w", errAuthNotReread, err)
			r.log.Error("cannot reread --auth-file; the credentials stay as they were, the other settings are applied", "err", err)
		} else {
			r.auth.Store(f)
			r.log.Info("credentials reread", "auth_file", next.AuthFile, "credentials", len(f.Credentials()))
			cur.AuthFile = next.AuthFile
		}
	}
	for _, c := range applied {
		r.log.Info("setting changed", "setting", c.name, "old", fmt.Sprint(c.old), "new", fmt.Sprint(c.new))
	}
	r.level.Set(next.LogLevel)
	cur.LogLevel, cur.BatchSize, cur.FlushInterval, cur.MaxPendingRows = next.LogLevel, next.BatchSize, next.FlushInterval, next.MaxPendingRows

	// The rest is kept as it runs, so that the next reload warns again.
	restart := config.Changed(cur, next)
	if len(restart) > 0 {
		// Names only: values such as --database-url may hold secrets.
		r.log.Warn("changed settings need a restart to take effect; running on with their old values",
			"settings", strings.Join(restart, ", "))
	}
	r.cfg = cur
	r.log.Info("configuration reloaded", "applied", len(applied), "need_restart", len(restart))
	return authErr
}
