package daemon_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// pollRows polls sql until it returns want (rows joined by newlines) or 20
// seconds pass.
func pollRows(t *testing.T, pool *pgxpool.Pool, sql string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got []string
	for {
		rows, err := pool.Query(t.Context(), sql)
		if err == nil {
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err == nil && strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %q (err %v) after 20s, want %q", sql, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPointIdentityEndToEnd: a point split over two datagrams, and over
// two HTTP requests, is one row; a later write of one field updates only
// it; a resent /write body changes nothing.
func TestPointIdentityEndToEnd(t *testing.T) {
	for _, storage := range []string{"columns", "jsonb"} {
		t.Run(storage, func(t *testing.T) {
			pool, schema := pgtest.Schema(t)
			p := daemontest.Start(t, schema, "--storage", storage)
			base := p.Base
			sel := func(table string) string {
				// The row as JSON: a column not made yet is no error.
				cols := "r.host, r.used, r.free, r.total"
				if storage == "jsonb" {
					cols = "tags->>'host', fields->>'used', fields->>'free', fields->>'total'"
				}
				cols = strings.NewReplacer("r.host", "j->>'host'", "r.used", "j->>'used'", "r.free", "j->>'free'", "r.total", "j->>'total'").Replace(cols)
				return "SELECT concat_ws('|', extract(epoch from time)::bigint, " + cols + ") FROM " + pgx.Identifier{schema, table}.Sanitize() +
					" AS r, LATERAL to_jsonb(r.*) AS j ORDER BY time"
			}

			// Over UDP, as Telegraf's influxdb output splits a wide point.
			daemontest.Send(t, p.UDP, "mem,host=a used=1i,free=2i 1000000000\n")
			pollRows(t, pool, sel("mem"), "1|a|1|2")
			daemontest.Send(t, p.UDP, "mem,host=a total=3i 1000000000\n")
			pollRows(t, pool, sel("mem"), "1|a|1|2|3")

			// Over HTTP, two requests, then one field again, then a resend.
			url := base + "/write?db=x"
			for _, body := range []string{
				"web,host=a used=1i 2000000000\n",
				"web,host=a free=2i,total=9i 2000000000\n",
				"web,host=a total=3i 2000000000\n",
				"web,host=a total=3i 2000000000\nweb,host=b used=7i 2000000000\n",
				"web,host=a total=3i 2000000000\nweb,host=b used=7i 2000000000\n",
			} {
				if a := post(t, nil, url, []byte(body)); a.code != http.StatusNoContent {
					t.Fatalf("POST %q: %d %s", body, a.code, a.body)
				}
			}
			pollRows(t, pool, sel("web"), "2|a|1|2|3", "2|b|7")
			p.Stop(t)
			var n int
			if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, "web"}.Sanitize()).Scan(&n); err != nil || n != 2 {
				t.Errorf("web: %d rows (%v), want 2", n, err)
			}
		})
	}
}

// TestCrashMidStreamNoDuplicates: PostgreSQL crashes (pg_ctl -m immediate)
// while pginflux streams batches into it; once it is back every line is
// there exactly once, in both write modes: merge by point identity, append
// by the commit marker checked before a retry.
func TestCrashMidStreamNoDuplicates(t *testing.T) {
	for _, mode := range []string{"merge", "append"} {
		t.Run(mode, func(t *testing.T) {
			pool, schema := pgtest.Schema(t)
			cluster := pgtest.Cluster(t)
			// The test cluster commits asynchronously (synchronous_commit
			// off), which a crash may undo; pginflux's sessions here commit
			// as a durable server does.
			p := daemontest.Config{ConnString: pgtest.ConnString(t) + " options='-c synchronous_commit=on'"}.Start(t, schema, "--write-mode", mode, "--batch-size", "500")
			base, logs := p.Base, p.Log
			defer func() {
				if t.Failed() {
					t.Logf("log:\n%s", logs)
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
			if v := daemontest.Metric(t, base, "pginflux_sink_retries_total", nil); v == 0 {
				t.Error("pginflux_sink_retries_total is 0: no write met the crash, the test proved nothing")
			}
			for _, name := range []string{"pginflux_sink_dropped_rows_total", "pginflux_ingest_dropped_datagrams_total",
				"pginflux_udp_kernel_dropped_datagrams_total", "pginflux_sink_rejected_total"} {
				if v := daemontest.Metric(t, base, name, nil); v != 0 {
					t.Errorf("%s: got %v, want 0", name, v)
				}
			}
			p.Stop(t)
		})
	}
}

// TestResendAfterTimeoutNoDuplicates: a client whose request timed out
// while PostgreSQL was away sends it again; in merge mode the points are
// stored once.
func TestResendAfterTimeoutNoDuplicates(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	cluster := pgtest.Cluster(t)
	base := daemontest.Start(t, schema).Base
	keepRunning(t, cluster)
	var body strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&body, "resend,host=h%d v=%di %d\n", i%7, i, 1_700_000_000_000_000_000+int64(i)*1000)
	}
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
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
	for deadline := time.Now().Add(20 * time.Second); ; {
		a := post(t, nil, base+"/write", []byte(body.String()))
		if a.code == http.StatusNoContent {
			break
		}
		if a.code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("POST after the restart: %d %s", a.code, a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	table := pgx.Identifier{schema, "resend"}.Sanitize()
	// Whatever the timed-out requests left held is written by now or soon.
	deadline := time.Now().Add(20 * time.Second)
	for {
		rows, distinct := countRows(t, pool, table)
		if rows != 1000 || distinct != 1000 {
			if time.Now().After(deadline) {
				t.Fatalf("got %d rows (%d distinct), want 1000", rows, distinct)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		break
	}
}
