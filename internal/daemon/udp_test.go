package daemon_test

import (
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// Line protocol over UDP: draining at shutdown, --udp-allow, and replicas
// sharing one port.

// TestShutdownWritesEverything sends rows that would wait in open batches
// (the flush interval is an hour), stops pginflux as SIGTERM would right
// after sending, and finds every row written.
func TestShutdownWritesEverything(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--flush-interval", "1h", "--batch-size", "100000")
	const n = 2000
	daemontest.Send(t, p.UDP, distinctLines("shutdown", n, 10)...)
	// On loopback a sent datagram is in the socket's buffer when send
	// returns; stopping at once proves that the readers drain what the
	// kernel holds, and that open batches are written, before run returns.
	p.Stop(t)
	if got, distinct := countRows(t, pool, pgx.Identifier{schema, "shutdown"}.Sanitize()); got != n || distinct != n {
		t.Fatalf("got %d rows (%d distinct), want %d", got, distinct, n)
	}
}

// TestUDPAllowEndToEnd: with --udp-allow, a datagram from another source
// is dropped and counted, and one from an allowed source is written.
func TestUDPAllowEndToEnd(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--udp-allow", "127.0.0.2/32, 10.0.0.0/8")
	base := p.Base

	daemontest.Send(t, p.UDP, "allowed v=1i 1000000000") // from 127.0.0.1
	c, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer c.Close()
	if _, err := c.WriteTo([]byte("allowed v=2i 2000000000"), p.UDP); err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{schema, "allowed"}.Sanitize()
	daemontest.WaitRows(t, pool, table, 1)
	daemontest.WaitMetric(t, base, "pginflux_udp_denied_datagrams_total", nil, 1)
	p.Stop(t)

	var v int64
	if err := pool.QueryRow(t.Context(), "SELECT v FROM "+table).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != 2 {
		t.Errorf("got the row with v=%d, want the one from 127.0.0.2 (v=2)", v)
	}
	if n := count(t, pool, schema, "pginflux_rejected", ""); n != 0 {
		t.Errorf("the rejected table has %d rows, want none: a denied datagram is not parsed", n)
	}
}

// TestReplicasShareUDPPort is docs/scaling.md's first two recipes, with
// two pginflux processes (children of the test binary):
//
//   - both bind one UDP port (SO_REUSEPORT), and the kernel spreads
//     datagrams from many source ports over the two: each gets some, and
//     every line is stored once;
//   - a rolling restart: one gets SIGTERM, and what is sent afterwards all
//     goes to the other;
//   - behind an HTTP balancer, a request retried on the other replica
//     (the same body to each) is one row per point, in merge mode.
func TestReplicasShareUDPPort(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	start := func(udpAddr string) *daemontest.Child {
		return daemontest.StartChild(t, "--database-url", pgtest.ConnString(t), "--schema", schema,
			"--udp-address", udpAddr, "--udp-readers", "1", "--http-address", "127.0.0.1:0",
			"--flush-interval", "20ms", "--log-level", "info")
	}
	// The second binds the port the kernel gave the first: no port is
	// picked in advance, which another test could take meanwhile.
	first := start("127.0.0.1:0")
	udpAddr := first.UDP(t)
	replicas := []*daemontest.Child{first, start(udpAddr)}
	var bases []string
	for _, r := range replicas {
		bases = append(bases, r.Base(t))
	}

	// 40 datagrams, each from a socket of its own: 40 source ports.
	sendFromNewPorts := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			c, err := net.Dial("udp", udpAddr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "shared,host=h%d v=%di %d\n", i, i, 1_700_000_000_000_000_000+int64(i))
			c.Close()
		}
	}
	sendFromNewPorts(0, 40)
	table := pgx.Identifier{schema, "shared"}.Sanitize()
	daemontest.WaitRows(t, pool, table, 40)
	var got [2]float64
	for i, base := range bases {
		got[i] = daemontest.Metric(t, base, "pginflux_udp_received_datagrams_total", nil)
	}
	t.Logf("datagrams received by each replica: %v", got)
	if got[0] == 0 || got[1] == 0 || got[0]+got[1] != 40 {
		t.Errorf("datagrams received by the two replicas: %v, want both some, 40 in all", got)
	}

	// A request retried on another replica: one row per point.
	body := []byte("retried,host=a v=1i 1000\nretried,host=b v=2i 1000\n")
	for _, base := range bases {
		if a := post(t, nil, base+"/write", body); a.code != http.StatusNoContent {
			t.Fatalf("POST %s/write: %d %s", base, a.code, a.body)
		}
	}
	if n := count(t, pool, schema, "retried", ""); n != 2 {
		t.Errorf("a request sent twice: %d rows, want 2 (one per point)", n)
	}
	// Rolling restart: the first one stops (SIGTERM: it drains and
	// writes what it holds); the port is the second's alone.
	replicas[0].Stop(t)
	sendFromNewPorts(40, 40)
	daemontest.WaitRows(t, pool, table, 80)
	if n := daemontest.Metric(t, bases[1], "pginflux_udp_received_datagrams_total", nil); n != got[1]+40 {
		t.Errorf("replica 1 received %v datagrams in all, want %v: the 40 sent after the other stopped", n, got[1]+40)
	}
	if rows, distinct := countRows(t, pool, table); rows != 80 || distinct != 80 {
		t.Errorf("%d rows, %d distinct, want 80 each", rows, distinct)
	}
}
