package daemon_test

import (
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestOutageHoldsMaxPendingRows: while PostgreSQL is down, pginflux holds
// up to --max-pending-rows rows — the parsers do not stop at the first
// batches the writers cannot write — and drops nothing below that; once
// the server is back, every row lands once.
func TestOutageHoldsMaxPendingRows(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	cluster := pgtest.Cluster(t)
	p := daemontest.Start(t, schema, "--batch-size", "500", "--max-pending-rows", "30000")
	base := p.Base
	keepRunning(t, cluster)
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n, perDatagram = 25_000, 10
	conn, err := net.Dial("udp", p.UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 2,500 datagrams, 50 every 10 ms: well within what the kernel and
	// the queue take, so that a drop would be pginflux's holding.
	datagrams := distinctLines("outage", n, perDatagram)
	tick := time.NewTicker(10 * time.Millisecond)
	for i := 0; i < len(datagrams); i++ {
		if i%50 == 0 {
			<-tick.C
		}
		if _, err := conn.Write([]byte(datagrams[i])); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	daemontest.WaitMetric(t, base, "pginflux_sink_pending_rows", nil, n)
	if v := daemontest.Metric(t, base, "pginflux_ingest_dropped_datagrams_total", nil); v != 0 {
		t.Errorf("dropped %v datagrams below --max-pending-rows", v)
	}
	if err := cluster.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{schema, "outage"}.Sanitize()
	daemontest.WaitRows(t, pool, table, n)
	if rows, distinct := countRows(t, pool, table); rows != n || distinct != n {
		t.Errorf("got %d rows (%d distinct), want %d", rows, distinct, n)
	}
	p.Stop(t)
}
