package daemon_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestReplicasShareUDPPort is docs/SCALING.md's first two recipes, with
// two pginflux processes (the test binary as TestDaemonHelperProcess):
//
//   - both bind one UDP port (SO_REUSEPORT), and the kernel spreads
//     datagrams from many source ports over the two: each gets some, and
//     every line is stored once;
//   - a rolling restart: one gets SIGTERM, and what is sent afterwards all
//     goes to the other;
//   - behind an HTTP balancer, a request retried on the other replica
//     (the same body to each) is one row per point, in merge mode.
func TestReplicasShareUDPPort(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	udpPort := freePort(t, "udp")
	udpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(udpPort))

	type replica struct {
		*daemontest.Child
		base string
	}
	var replicas [2]replica
	for i := range replicas {
		replicas[i].Child = daemontest.StartChild(t, "--database-url", pgtest.ConnString(t), "--schema", schema,
			"--udp-address", udpAddr, "--udp-readers", "1", "--http-address", "127.0.0.1:0",
			"--flush-interval", "20ms", "--log-level", "info")
	}
	for i := range replicas {
		replicas[i].base = replicas[i].Base(t)
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
	for i, r := range replicas {
		got[i] = daemontest.Metric(t, r.base, "pginflux_udp_received_datagrams_total", nil)
	}
	t.Logf("datagrams received by each replica: %v", got)
	if got[0] == 0 || got[1] == 0 || got[0]+got[1] != 40 {
		t.Errorf("datagrams received by the two replicas: %v, want both some, 40 in all", got)
	}

	// A request retried on another replica: one row per point.
	body := []byte("retried,host=a v=1i 1000\nretried,host=b v=2i 1000\n")
	for _, base := range []string{replicas[0].base, replicas[1].base} {
		if a := post(t, nil, base+"/write", body); a.code != http.StatusNoContent {
			t.Fatalf("POST %s/write: %d %s", base, a.code, a.body)
		}
	}
	if n := count(t, pool, schema, "retried", "true"); n != 2 {
		t.Errorf("a request sent twice: %d rows, want 2 (one per point)", n)
	}
	// Rolling restart: the first one stops (SIGTERM: it drains and
	// writes what it holds); the port is the second's alone.
	replicas[0].Stop(t)
	sendFromNewPorts(40, 40)
	daemontest.WaitRows(t, pool, table, 80)
	if n := daemontest.Metric(t, replicas[1].base, "pginflux_udp_received_datagrams_total", nil); n != got[1]+40 {
		t.Errorf("replica 1 received %v datagrams in all, want %v: the 40 sent after the other stopped", n, got[1]+40)
	}

	var rows, distinct int
	if err := pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT v) FROM "+table).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != 80 || distinct != 80 {
		t.Errorf("%d rows, %d distinct, want 80 each", rows, distinct)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
