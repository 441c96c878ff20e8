package daemon_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
)

// PostgreSQL away: down at start, restarted or crashed mid-stream, down
// at shutdown, and what HTTP clients are answered meanwhile. Each test
// stops a server of its own (ownServer), so all run in parallel.

// TestDatabaseDownAtStart: with PostgreSQL down, pginflux starts, listens,
// says so in its log and on /readyz, holds what it receives, and writes
// all of it once PostgreSQL is up.
func TestDatabaseDownAtStart(t *testing.T) {
	t.Parallel()
	cluster, pool, schema := ownServer(t)
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := daemontest.Config{ConnString: cluster.ConnString("postgres")}.Start(t, schema)
	base, logs := p.Base, p.Log
	keepRunning(t, cluster)

	// Logged before listening.
	logs.WaitFor(t, `level=INFO msg="starting pginflux".*`)
	logs.WaitFor(t, `level=WARN msg="database not reachable yet; receiving anyway and retrying".* err=.*`)
	body := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "")
	if !strings.HasPrefix(body, "database unreachable: ") {
		t.Errorf("/readyz: got %q, want the reason", body)
	}

	const n = 1000
	daemontest.Send(t, p.UDP, distinctLines("downatstart", n, 10)...)
	// Every row is held, none lost, while the writers retry.
	daemontest.WaitMetric(t, base, "pginflux_sink_pending_rows", nil, n)
	logs.WaitFor(t, `level=WARN msg="database unavailable; holding rows and retrying".*`)

	if err := cluster.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{schema, "downatstart"}.Sanitize()
	daemontest.WaitRows(t, pool, table, n)
	if rows, distinct := countRows(t, pool, table); rows != n || distinct != n {
		t.Errorf("got %d rows (%d distinct), want %d", rows, distinct, n)
	}
	logs.WaitFor(t, `level=INFO msg="database available again"`)
	waitStatus(t, base+"/readyz", http.StatusOK, "")
	wantNoDrops(t, base)
	p.Stop(t)
}

// TestDatabaseRestartMidStream restarts PostgreSQL while a paced sender
// sends, well below capacity, 20,000 distinct lines: every one lands
// exactly once, through the retries of the writers and the atomicity of
// COPY.
func TestDatabaseRestartMidStream(t *testing.T) {
	t.Parallel()
	cluster, pool, schema := ownServer(t)
	p := daemontest.Config{ConnString: cluster.ConnString("postgres")}.Start(t, schema)
	keepRunning(t, cluster)

	const n, perDatagram = 20_000, 10
	// Stop, then start: the restart takes a second or so, during which
	// the writers' COPYs fail and are retried.
	streamBreaking(t, p, distinctLines("restart", n, perDatagram), func() {
		if err := cluster.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
	})

	table := pgx.Identifier{schema, "restart"}.Sanitize()
	daemontest.WaitRows(t, pool, table, n)
	if rows, distinct := countRows(t, pool, table); rows != n || distinct != n {
		t.Errorf("got %d rows (%d distinct), want %d: lost or duplicated rows", rows, distinct, n)
	}
	if v := daemontest.Metric(t, p.Base, "pginflux_sink_retries_total", nil); v == 0 {
		t.Error("pginflux_sink_retries_total is 0: no COPY met the restart, the test proved nothing")
	}
	wantNoDrops(t, p.Base)
	p.Stop(t)
}

// TestCrashMidStreamNoDuplicates: PostgreSQL crashes (pg_ctl -m immediate)
// while pginflux streams batches into it; once it is back every line is
// there exactly once, in both write modes: merge by point identity, append
// by the commit marker checked before a retry.
func TestCrashMidStreamNoDuplicates(t *testing.T) {
	t.Parallel()
	// One server, crashed by one subtest after the other.
	cluster, pool, _ := ownServer(t)
	for _, mode := range []string{"merge", "append"} {
		t.Run(mode, func(t *testing.T) {
			schema := subtestSchema(t)
			// The test servers commit asynchronously (synchronous_commit
			// off), which a crash may undo; pginflux's sessions here commit
			// as a durable server does.
			conn := cluster.ConnString("postgres") + " options='-c synchronous_commit=on'"
			p := daemontest.Config{ConnString: conn}.Start(t, schema, "--write-mode", mode, "--batch-size", "500")
			defer func() {
				if t.Failed() {
					t.Logf("log:\n%s", p.Log)
				}
			}()
			keepRunning(t, cluster)

			const n, perDatagram = 20_000, 10
			streamBreaking(t, p, distinctLines("crash", n, perDatagram), func() {
				if err := cluster.Crash(t.Context()); err != nil {
					t.Fatal(err)
				}
				if err := cluster.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
			})
			table := pgx.Identifier{schema, "crash"}.Sanitize()
			daemontest.WaitRows(t, pool, table, n)
			if rows, distinct := countRows(t, pool, table); rows != n || distinct != n {
				t.Errorf("got %d rows (%d distinct), want %d: lost or duplicated rows", rows, distinct, n)
			}
			if v := daemontest.Metric(t, p.Base, "pginflux_sink_retries_total", nil); v == 0 {
				t.Error("pginflux_sink_retries_total is 0: no write met the crash, the test proved nothing")
			}
			wantNoDrops(t, p.Base)
			p.Stop(t)
		})
	}
}

// TestShutdownWhileDatabaseDown: on SIGTERM with PostgreSQL down, pginflux
// gives up after --shutdown-timeout, exits 0, and its log says exactly how
// many rows were abandoned.
func TestShutdownWhileDatabaseDown(t *testing.T) {
	t.Parallel()
	cluster, _, schema := ownServer(t)
	const timeout = time.Second
	p := daemontest.Config{ConnString: cluster.ConnString("postgres")}.Start(t, schema, "--shutdown-timeout", timeout.String())
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	const n = 500
	daemontest.Send(t, p.UDP, distinctLines("abandoned", n, 10)...)
	daemontest.WaitMetric(t, p.Base, "pginflux_sink_pending_rows", nil, n)

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v, want nil (exit 0)", err)
		}
	case <-time.After(daemontest.Patience):
		// The database never comes back: only giving up ends Close.
		t.Fatalf("pginflux did not give up within %v of SIGTERM, with --shutdown-timeout %v", daemontest.Patience, timeout)
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("run returned %v after SIGTERM, before --shutdown-timeout (%v)", took, timeout)
	}
	line := p.Log.WaitFor(t, `level=ERROR msg="stopped with rows not written".*`)
	if !strings.Contains(line, "abandoned_rows="+strconv.Itoa(n)) ||
		!strings.Contains(line, fmt.Sprintf("shutdown timeout passed: %d rows were not written", n)) {
		t.Errorf("got %q, want %d abandoned rows", line, n)
	}
}

// TestOutageHoldsMaxPendingRows: while PostgreSQL is down, pginflux holds
// up to --max-pending-rows rows — the parsers do not stop at the first
// batches the writers cannot write — and drops nothing below that; once
// the server is back, every row lands once.
func TestOutageHoldsMaxPendingRows(t *testing.T) {
	t.Parallel()
	cluster, pool, schema := ownServer(t)
	p := daemontest.Config{ConnString: cluster.ConnString("postgres")}.Start(t, schema, "--batch-size", "500", "--max-pending-rows", "30000")
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
	// 2,500 datagrams, 50 every 10 ms at most: within what the socket
	// buffers and the queue take even if the readers or parsers stall, so
	// that a drop would be pginflux's holding.
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
	daemontest.WaitMetric(t, p.Base, "pginflux_sink_pending_rows", nil, n)
	if v := daemontest.Metric(t, p.Base, "pginflux_ingest_dropped_datagrams_total", nil); v != 0 {
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

// TestWriteWhileDatabaseDown: with PostgreSQL stopped for real, every
// /write is answered while it is still down, not held until it is back:
// 503 with Retry-After when its rows can be neither committed nor spooled
// (no spool, or a full one), 204 when they are spooled. A request taken
// before the sink knows that the server is down gets that answer too, as
// soon as it knows; once the sink knows, requests are refused at once,
// saying why. Rows held or spooled are written once the server is back.
func TestWriteWhileDatabaseDown(t *testing.T) {
	t.Parallel()
	// One server, stopped by one subtest after the other.
	cluster, pool, _ := ownServer(t)
	for _, tc := range []struct {
		name      string
		spool     string // "", "room" or "full"
		downFirst bool   // PostgreSQL is down before pginflux starts
		want      int
	}{
		{"no spool", "", false, http.StatusServiceUnavailable},
		{"spool with room", "room", false, http.StatusNoContent},
		{"full spool", "full", true, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schema := subtestSchema(t)
			// Running for the next subtest, after this one's daemon has
			// stopped.
			keepRunning(t, cluster)
			// Rows held at the stop are given up after a second.
			args := []string{"--flush-interval", "1h", "--shutdown-timeout", "1s"}
			if tc.spool != "" {
				dir := t.TempDir()
				args = append(args, "--spool-dir", dir, "--spool-max-size", "1MiB")
				if tc.spool == "full" {
					// What an earlier run left, more than the spool may hold.
					if err := os.WriteFile(filepath.Join(dir, "seg-00000000000000000001-00112233aabbccdd"), make([]byte, 2<<20), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tc.downFirst {
				if err := cluster.Stop(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			base := daemontest.Config{ConnString: cluster.ConnString("postgres")}.Start(t, schema, args...).Base
			written := 0 // rows to find once the server is back
			if !tc.downFirst {
				if a := post(t, nil, base+"/write", []byte("down v=0i 1000\n")); a.code != http.StatusNoContent {
					t.Fatalf("before the stop: got %d %q", a.code, a.body)
				}
				written++
				if err := cluster.Stop(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			check := func(what string, a answer) {
				t.Helper()
				t.Logf("%s: %d %s", what, a.code, strings.TrimSpace(a.body))
				if a.code != tc.want {
					t.Errorf("%s: got %d %q, want %d", what, a.code, a.body, tc.want)
				}
				if a.code == http.StatusServiceUnavailable && (a.header.Get("Retry-After") != "5" || !strings.Contains(a.message(t), "PostgreSQL does not take rows now")) {
					t.Errorf("%s: got %d %v %q, want 503 with Retry-After 5 saying why", what, a.code, a.header.Get("Retry-After"), a.body)
				}
			}

			// Taken before the sink knows: answered once it learns, from
			// its first failed COPY, that the server is down.
			check("the request taken first", postWhileDown(t, base+"/api/v2/write?bucket=b", []byte("down v=1i 2000\n")))
			written++
			for i, target := range []string{"/write", "/api/v2/write", "/write"} {
				check(target, postWhileDown(t, base+target, fmt.Appendf(nil, "down v=%di %d\n", i+2, (i+3)*1000), "Content-Encoding", "gzip"))
				if tc.want == http.StatusNoContent {
					written++
				}
			}
			if tc.spool == "full" {
				return // the junk in the spool is no test of replay
			}
			if err := cluster.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			daemontest.WaitRows(t, pool, pgx.Identifier{schema, "down"}.Sanitize(), written)
		})
	}
}

// postWhileDown posts body to url with PostgreSQL stopped: the answer
// must come because the server is down, not when the commit timeout (a
// minute in these tests) runs out.
func postWhileDown(t *testing.T, url string, body []byte, header ...string) answer {
	t.Helper()
	start := time.Now()
	a := post(t, nil, url, body, header...)
	if took := time.Since(start); took > daemontest.CommitTimeout {
		t.Errorf("%s answered after %v, want it answered while PostgreSQL is down (within %v)", url, took, daemontest.CommitTimeout)
	}
	return a
}

// TestResendAfterTimeoutNoDuplicates: a client whose request timed out
// while PostgreSQL was away sends it again; in merge mode the points are
// stored once.
func TestResendAfterTimeoutNoDuplicates(t *testing.T) {
	t.Parallel()
	cluster, pool, schema := ownServer(t)
	base := daemontest.Config{ConnString: cluster.ConnString("postgres")}.Start(t, schema).Base
	keepRunning(t, cluster)
	var body strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&body, "resend,host=h%d v=%di %d\n", i%7, i, 1_700_000_000_000_000_000+int64(i)*1000)
	}
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Whatever happens to these (cut by the client, or answered), the
	// points must be stored once in the end.
	client := &http.Client{Timeout: 500 * time.Millisecond}
	for range 3 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/write", strings.NewReader(body.String()))
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	if err := cluster.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Sent again until taken: pginflux answers 503 until it has seen the
	// server back.
	for deadline := time.Now().Add(daemontest.Patience); ; {
		a := post(t, nil, base+"/write", []byte(body.String()))
		if a.code == http.StatusNoContent {
			break
		}
		if a.code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("POST after the restart: %d %s", a.code, a.body)
		}
		time.Sleep(100 * time.Millisecond) // as the client's retry would
	}
	// Whatever the timed-out requests left held is written by now or soon.
	pollRows(t, pool, "SELECT count(*) || ' ' || count(DISTINCT v) FROM "+pgx.Identifier{schema, "resend"}.Sanitize(), "1000 1000")
}
