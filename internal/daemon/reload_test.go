package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/sink"
)

// TestReloadApplies calls the reloader directly: what changed is applied
// and logged, the rest named for a restart, and a broken file changes
// nothing.
func TestReloadApplies(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "env")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("PGINFLUX_LOG_LEVEL=error\n")
	env := map[string]string{config.FileEnv: path, "PGINFLUX_DATABASE_URL": "host=/nonexistent"}
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	level := new(slog.LevelVar)
	log := cfg.Logger(&logs, level)
	s := newTestSink(t)
	r := &reloader{cfg: cfg, level: level, sink: s, log: log}
	reload := func() error {
		next, err := config.Load(nil, getenv, io.Discard)
		if err != nil {
			return err
		}
		return r.reload(next)
	}

	write("PGINFLUX_LOG_LEVEL=info\nPGINFLUX_FLUSH_INTERVAL=250ms\nPGINFLUX_MAX_PENDING_ROWS=1234\nPGINFLUX_SCHEMA=other\nPGINFLUX_HTTP_TOKEN=s3cr3t\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if level.Level() != slog.LevelInfo {
		t.Errorf("log level: got %v, want INFO", level.Level())
	}
	out := logs.String()
	for _, want := range []string{
		`setting=log-level old=ERROR new=INFO`,
		`setting=flush-interval old=1s new=250ms`,
		`setting=max-pending-rows old=200000 new=1234`,
		`settings="schema, http-token"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("the log shows the token:\n%s", out)
	}
	if r.cfg.FlushInterval != 250*time.Millisecond || r.cfg.Schema == "other" {
		t.Errorf("running config: flush interval %v, schema %q; want 250ms and the old schema", r.cfg.FlushInterval, r.cfg.Schema)
	}

	logs.Reset()
	write("PGINFLUX_LOG_LEVEL=loud\n")
	if err := reload(); err == nil || !strings.Contains(err.Error(), "PGINFLUX_LOG_LEVEL") {
		t.Errorf("a bad level: got %v, want an error naming PGINFLUX_LOG_LEVEL", err)
	}
	if level.Level() != slog.LevelInfo || r.cfg.FlushInterval != 250*time.Millisecond {
		t.Errorf("after a failed reload: level %v, flush interval %v; want them kept", level.Level(), r.cfg.FlushInterval)
	}
	if logs.Len() != 0 {
		t.Errorf("a failed reload logged changes:\n%s", logs.String())
	}
}

// newTestSink returns a sink on a pool that never connects: enough for
// SetLimits.
func newTestSink(t *testing.T) *sink.Sink {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), "host=/nonexistent-pginflux-reload-test")
	if err != nil {
		t.Fatal(err)
	}
	s := sink.New(pool, sink.Config{Schema: "unused"}, sink.NewMetrics(nil), slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
		pool.Close()
	})
	return s
}
