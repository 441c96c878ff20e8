package daemon_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// The end-to-end tests of the daemon: each starts the real daemon with
// package daemontest and talks to it as clients do, in a schema of its
// own (pgtest.Schema), in parallel with the others. A test that stops,
// restarts or crashes PostgreSQL does so to a server of its own
// (ownServer), so that it can run in parallel too.
//
// The files, by topic: udp_test.go, tcp_test.go; http_write_test.go,
// http_limits_test.go (back-pressure, the commit timeout, stopping),
// http_query_test.go and clients_test.go (InfluxDB's client libraries);
// outage_test.go (PostgreSQL away), spool_test.go; schema_test.go
// (tables, points, privileges), nanos_test.go (--time-nanos); ops_test.go (metrics, health,
// readiness, reload), startup_test.go; hostile_test.go (hostile clients:
// bombs, big bodies, slow clients; peak RSS); tenants_test.go,
// tenants_roles_test.go, tenants_reload_test.go (--auth-file); docs_test.go; timescale_test.go,
// citus_test.go; fuzz_test.go with its checkers (fuzzcheck_test.go,
// fuzzread_test.go). catalog_test.go, readiness_test.go and
// reload_test.go test their files from inside the package.

func TestMain(m *testing.M) { daemontest.Main(m) }

// distinctLines returns n distinct lines of measurement m, per lines a
// datagram: line i has the integer field v=i, the string field s and the
// timestamp 1700000000000000000+1000i (a microsecond apart: distinct
// points), so that loss and duplicates show in counts (see countRows).
func distinctLines(m string, n, per int) []string {
	var out []string
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s,host=h%d v=%di,s=\"line %d\" %d\n", m, i%13, i, i, 1_700_000_000_000_000_000+int64(i)*1000)
		if (i+1)%per == 0 || i == n-1 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	return out
}

// answer is an HTTP answer read whole.
type answer struct {
	code   int
	header http.Header
	body   string
}

// message returns the error message of an answer in either dialect.
func (a answer) message(t *testing.T) string {
	t.Helper()
	var e struct {
		Error   string `json:"error"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil {
		t.Fatalf("answer %d %q: not JSON: %v", a.code, a.body, err)
	}
	return e.Error + e.Message
}

// tryPost sends body to url with the headers given as name, value pairs,
// gzipping it first when Content-Encoding is gzip; client nil is
// daemontest.Client. Safe to call from any goroutine.
func tryPost(ctx context.Context, client *http.Client, url string, body []byte, headers ...string) (answer, error) {
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Content-Encoding" && headers[i+1] == "gzip" {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			body = b.Bytes()
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if client == nil {
		client = daemontest.Client
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{code: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// post is tryPost, failing the test when there is no answer; call it from
// the test's goroutine.
func post(t *testing.T, client *http.Client, url string, body []byte, headers ...string) answer {
	t.Helper()
	a, err := tryPost(t.Context(), client, url, body, headers...)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return a
}

// writeLines posts lines to url (a /write URL) and fails the test unless
// the answer is want.
func writeLines(t *testing.T, url string, want int, lines ...string) answer {
	t.Helper()
	a := post(t, nil, url, []byte(strings.Join(lines, "\n")+"\n"))
	if a.code != want {
		t.Fatalf("POST %s: got %d %s, want %d", url, a.code, a.body, want)
	}
	return a
}

// tryWrite posts lines to url (a /write URL) and returns an error unless
// the answer is 204. Safe to call from any goroutine.
func tryWrite(ctx context.Context, url string, lines ...string) error {
	a, err := tryPost(ctx, nil, url, []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		return err
	}
	if a.code != http.StatusNoContent {
		return fmt.Errorf("POST %s: got %d %s, want 204", url, a.code, a.body)
	}
	return nil
}

// count counts the rows of schema.table where where holds ("" for all);
// a table that does not exist has none.
func count(t *testing.T, pool *pgxpool.Pool, schema, table, where string) int {
	t.Helper()
	var exists bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{schema, table}.Sanitize()).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return 0
	}
	var n int
	q := "SELECT count(*) FROM " + pgx.Identifier{schema, table}.Sanitize()
	if where != "" {
		q += " WHERE " + where
	}
	if err := pool.QueryRow(t.Context(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// countRows returns count(*) and count(DISTINCT v) of a table (a quoted
// name), for lines of distinctLines.
func countRows(t *testing.T, pool *pgxpool.Pool, table string) (rows, distinct int) {
	t.Helper()
	if err := pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT v) FROM "+table).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// queryRows returns the one text column of each row of sql.
func queryRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return got
}

// queryInt runs a query of one integer.
func queryInt(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// pollRows polls sql until it returns want (rows joined by newlines),
// failing the test once what it returns has not changed for
// daemontest.Patience.
func pollRows(t *testing.T, pool *pgxpool.Pool, sql string, want ...string) {
	t.Helper()
	var poll daemontest.Poller
	stall := daemontest.NewStall()
	for {
		var got []string
		rows, err := pool.Query(t.Context(), sql)
		if err == nil {
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err == nil && strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		if stall.Stalled(strings.Join(got, "\n")) {
			t.Fatalf("%s: got %q (err %v) for %v, want %q", sql, got, err, daemontest.Patience, want)
		}
		poll.Sleep()
	}
}

// waitStatus polls url until it answers want with a body holding
// contains, and returns the body; it fails the test after
// daemontest.Patience.
func waitStatus(t *testing.T, url string, want int, contains string) string {
	t.Helper()
	deadline := time.Now().Add(daemontest.Patience)
	var poll daemontest.Poller
	for {
		resp, body := daemontest.Get(t, http.MethodGet, url)
		if resp.StatusCode == want && strings.Contains(body, contains) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: got %s %q after %v, want %d with %q", url, resp.Status, body, daemontest.Patience, want, contains)
		}
		poll.Sleep()
	}
}

// lockTable holds an exclusive lock on schema.table until the returned
// function is called (or the test ends): a COPY into it waits, as if the
// database were slow.
func lockTable(t *testing.T, pool *pgxpool.Pool, schema, table string) (release func()) {
	t.Helper()
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE "+pgx.Identifier{schema, table}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback(context.Background()) }) }
	t.Cleanup(release)
	return release
}

// ownServer starts a PostgreSQL server for this test alone, for a test
// that stops, restarts or crashes it: the shared one stays up for the
// tests running beside it. It returns the server, a pool on it, and the
// schema to give the daemon (which creates it). Like pgtest.Cluster, it
// skips the test when PGINFLUX_TEST_DATABASE_URL names the server to
// use: one that cannot be stopped.
func ownServer(t *testing.T) (*pgcluster.Cluster, *pgxpool.Pool, string) {
	t.Helper()
	if os.Getenv(pgtest.EnvDatabaseURL) != "" {
		t.Skipf("%s is set: no server of its own to stop", pgtest.EnvDatabaseURL)
	}
	c := pgtest.NewCluster(t, pgcluster.Options{})
	pool, err := pgxpool.New(t.Context(), c.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return c, pool, "metrics"
}

// subtestSchema returns a schema name for a subtest on a server its
// parent shares among its subtests (see ownServer): t.Name() in lower
// case, every other character an underscore.
func subtestSchema(t *testing.T) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '_'
	}, t.Name())
}

// keepRunning starts c again at cleanup if the test left it stopped.
// Registered after the daemon starts, it runs before the daemon stops
// (cleanups run last first), so that the daemon does not wait out its
// shutdown timeout writing into a server that is away.
func keepRunning(t *testing.T, c *pgcluster.Cluster) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Start(ctx); err != nil {
			t.Errorf("start PostgreSQL again: %v", err)
		}
	})
}

// streamBreaking sends datagrams to p, 5 every 10 ms (2,000 take about
// 4 s), and calls breakIt a third of the way through, while it goes on
// sending; it returns once all are sent. The daemon's socket buffers
// (--udp-read-buffer, 16 MiB asked) hold the whole stream, should its
// readers stall.
func streamBreaking(t *testing.T, p *daemontest.Instance, datagrams []string, breakIt func()) {
	t.Helper()
	conn, err := net.Dial("udp", p.UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	third := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(datagrams); {
			<-tick.C
			for j := 0; j < 5 && i < len(datagrams); j, i = j+1, i+1 {
				if _, err := conn.Write([]byte(datagrams[i])); err != nil {
					sent <- err
					return
				}
				if i == len(datagrams)/3 {
					close(third)
				}
			}
		}
		sent <- nil
	}()
	select {
	case <-third:
	case err := <-sent:
		t.Fatalf("sender stopped early: %v", err)
	}
	breakIt()
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
}

// wantNoDrops fails the test unless the counters of rows and datagrams
// pginflux dropped or rejected are 0.
func wantNoDrops(t *testing.T, base string) {
	t.Helper()
	for _, name := range []string{"pginflux_sink_dropped_rows_total", "pginflux_ingest_dropped_datagrams_total",
		"pginflux_udp_kernel_dropped_datagrams_total", "pginflux_sink_rejected_total"} {
		if v := daemontest.Metric(t, base, name, nil); v != 0 {
			t.Errorf("%s: got %v, want 0", name, v)
		}
	}
}
