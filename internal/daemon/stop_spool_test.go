package daemon_test

import (
	"strings"
	"testing"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestStopWithSpoolSaysSo: on SIGTERM with PostgreSQL away and a spool,
// the log says how many rows went to the spool, not that everything
// received was written.
func TestStopWithSpoolSaysSo(t *testing.T) {
	_, schema := pgtest.Schema(t)
	const n = 500
	p := daemontest.Config{ConnString: daemontest.Unreachable}.Start(t, schema, "--spool-dir", t.TempDir(), "--shutdown-timeout", "5s")
	base, logs := p.Base, p.Log
	daemontest.Send(t, p.UDP, distinctLines("spooled", n, 10)...)
	daemontest.WaitMetric(t, base, "pginflux_sink_spooled_rows_total", nil, n)
	p.Stop(t)
	line := logs.WaitFor(t, `level=\w+ msg="stopped;.*`)
	if !strings.HasPrefix(line, "level=WARN") || !strings.Contains(line, "spooled_rows=500") || strings.Contains(line, "everything received was written") {
		t.Errorf("got %q, want a warning with spooled_rows=500", line)
	}
}
