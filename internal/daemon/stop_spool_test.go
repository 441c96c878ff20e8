package main

import (
	"strings"
	"testing"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestStopWithSpoolSaysSo: on SIGTERM with PostgreSQL away and a spool,
// the log says how many rows went to the spool, not that everything
// received was written.
func TestStopWithSpoolSaysSo(t *testing.T) {
	_, schema := pgtest.Schema(t)
	const n = 500
	p, base, logs := startLoggedAs(t, "host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=1", schema, nil,
		"--spool-dir", t.TempDir(), "--flush-interval", "20ms", "--shutdown-timeout", "5s")
	send(t, p.addr, distinctLines("spooled", n, 10)...)
	waitMetric(t, base, "pginflux_sink_spooled_rows_total", nil, n)
	p.stop(t)
	line := logs.waitFor(t, `level=\w+ msg="stopped;.*`)
	if !strings.HasPrefix(line, "level=WARN") || !strings.Contains(line, "spooled_rows=500") || strings.Contains(line, "everything received was written") {
		t.Errorf("got %q, want a warning with spooled_rows=500", line)
	}
}
