package daemon_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/daemon"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/internal/devtools/testcert"
)

// Writes over HTTP (/write, /api/v2/write): what a 204 means, precision,
// partial writes, authentication, size limits, schemas by database, TLS.
// Back-pressure and bounds are http_limits_test.go's; what clients are
// answered while PostgreSQL is down, outage_test.go's.

// TestWriteCommitted: every 204 comes after the request's rows are
// committed: they are counted right after it, without waiting. Plain and
// gzip, v1 and v2, sequential and concurrent.
func TestWriteCommitted(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--flush-interval", "1h").Base
	total := 0
	for i := range 20 {
		var b strings.Builder
		for j := range 50 {
			fmt.Fprintf(&b, "committed,req=r%d v=%di %d\n", i, j, 1_700_000_000_000_000_000+int64(i*50+j)*1000)
		}
		enc := []string{"", "gzip"}[i%2]
		target := []string{"/write?db=telegraf", "/api/v2/write?org=o&bucket=b"}[i/2%2]
		a := post(t, nil, base+target, []byte(b.String()), "Content-Encoding", enc)
		if a.code != http.StatusNoContent {
			t.Fatalf("request %d: got %d %q, want 204", i, a.code, a.body)
		}
		total += 50
		if n := count(t, pool, schema, "committed", ""); n != total {
			t.Fatalf("after the 204 of request %d: %d rows visible, want %d", i, n, total)
		}
	}

	// Concurrent requests share batches; each 204 still means committed.
	var wg sync.WaitGroup
	for k := range 16 {
		wg.Go(func() {
			var b strings.Builder
			for j := range 100 {
				fmt.Fprintf(&b, "concurrent,k=k%d v=%di %d\n", k, j, 1_700_000_000_000_000_000+int64(j)*1000)
			}
			a, err := tryPost(t.Context(), nil, base+"/write", []byte(b.String()), "Content-Encoding", "gzip")
			if err != nil || a.code != http.StatusNoContent {
				t.Errorf("request %d: got %d %q, %v", k, a.code, a.body, err)
				return
			}
			var n int
			q := "SELECT count(*) FROM " + pgx.Identifier{schema, "concurrent"}.Sanitize() + " WHERE k = $1"
			if err := pool.QueryRow(t.Context(), q, fmt.Sprintf("k%d", k)).Scan(&n); err != nil || n != 100 {
				t.Errorf("after the 204 of request %d: %d rows visible (%v), want 100", k, n, err)
			}
		})
	}
	wg.Wait()
}

// TestWritePrecision: each precision of each API gives the exact time
// (PostgreSQL keeps microseconds: nanoseconds are floored away).
func TestWritePrecision(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--flush-interval", "1h").Base
	const sec = 1_700_000_000
	cases := []struct {
		api, precision string
		ts             int64
		want           time.Time
	}{
		{"v1", "", sec*1e9 + 123456789, time.Unix(sec, 123456000)},
		{"v1", "n", sec*1e9 + 123456789, time.Unix(sec, 123456000)},
		{"v1", "ns", sec*1e9 + 1, time.Unix(sec, 0)},
		{"v1", "u", sec*1e6 + 654321, time.Unix(sec, 654321000)},
		{"v1", "us", sec*1e6 + 1, time.Unix(sec, 1000)},
		{"v1", "ms", sec*1e3 + 999, time.Unix(sec, 999_000_000)},
		{"v1", "s", sec, time.Unix(sec, 0)},
		{"v1", "m", 28_333_334, time.Unix(28_333_334*60, 0)},
		{"v1", "h", 472_223, time.Unix(472_223*3600, 0)},
		{"v2", "", sec*1e9 + 5000, time.Unix(sec, 5000)},
		{"v2", "ns", sec*1e9 + 7000, time.Unix(sec, 7000)},
		{"v2", "us", sec*1e6 + 42, time.Unix(sec, 42000)},
		{"v2", "ms", sec*1e3 + 5, time.Unix(sec, 5_000_000)},
		{"v2", "s", sec + 1, time.Unix(sec+1, 0)},
	}
	for i, c := range cases {
		target := "/write?db=telegraf"
		if c.api == "v2" {
			target = "/api/v2/write?org=o&bucket=telegraf"
		}
		if c.precision != "" {
			target += "&precision=" + c.precision
		}
		line := fmt.Sprintf("prec,case=c%d v=1i %d\n", i, c.ts)
		if a := post(t, nil, base+target, []byte(line)); a.code != http.StatusNoContent {
			t.Fatalf("%s precision %q: got %d %q, want 204", c.api, c.precision, a.code, a.body)
		}
		var got time.Time
		if err := pool.QueryRow(t.Context(), "SELECT time FROM "+pgx.Identifier{schema, "prec"}.Sanitize()+" WHERE \"case\" = $1", fmt.Sprintf("c%d", i)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(c.want) {
			t.Errorf("%s precision %q of %d: got %v, want %v", c.api, c.precision, c.ts, got.UTC(), c.want.UTC())
		}
	}
	// A v2 client cannot ask for v1's units.
	if a := post(t, nil, base+"/api/v2/write?precision=m", []byte("prec v=1i 1\n")); a.code != http.StatusBadRequest || !strings.Contains(a.message(t), "want ns, us, ms or s") {
		t.Errorf("v2 precision m: got %d %q, want 400", a.code, a.body)
	}
}

// TestWritePartial: a request with malformed lines gets 400 naming the
// first one by its line number, after its good lines are committed; the
// bad lines are kept in the rejected table. Values their columns cannot
// hold are answered the same way.
func TestWritePartial(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--flush-interval", "1h", "--max-line-size", "1KiB")
	base := p.Base
	long := "partial,host=g usage=7 " + strings.Repeat("9", 1100)
	for i, api := range []string{"/write?db=telegraf", "/api/v2/write?bucket=telegraf"} {
		// The good lines of each request are points of their own (a
		// minute later), not the first request's again.
		ts := func(s int) string { return fmt.Sprint(1_700_000_000_000_000_000 + int64(s+60*i)*1_000_000_000) }
		body := strings.Join([]string{
			"partial,host=a usage=1 " + ts(0),
			"partial,host=b usage=2 " + ts(1),
			"partial,host=c usage=",
			"partial,host=d usage=4 " + ts(3),
			"partial,host=e",
			"partial,host=f usage=6 " + ts(5),
			long,
			"partial,host=h usage=8 " + ts(7),
		}, "\n") + "\n"
		before := count(t, pool, schema, "partial", "true")
		a := post(t, nil, base+api, []byte(body), "Content-Encoding", "gzip")
		if a.code != http.StatusBadRequest {
			t.Fatalf("%s: got %d %q, want 400", api, a.code, a.body)
		}
		// Visible right after the answer.
		if n := count(t, pool, schema, "partial", "true") - before; n != 5 {
			t.Errorf("%s: %d good lines visible after the 400, want 5", api, n)
		}
		msg := a.message(t)
		want := "partial write: unable to parse 'partial,host=c usage=' at line 3: syntax: "
		wantEnd := fmt.Sprintf("; 3 of 8 lines rejected (kept in %s.pginflux_rejected)", schema)
		if !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, wantEnd) {
			t.Errorf("%s: got message %q, want %q...%q", api, msg, want, wantEnd)
		}
		if strings.HasPrefix(api, "/api/v2/") && !strings.Contains(a.body, `"code":"invalid"`) {
			t.Errorf("v2: got %q, want code invalid", a.body)
		}
	}

	// A value its column cannot hold: the row lands with NULL there, the
	// value goes to the rejected table, and the client hears of it.
	a := post(t, nil, base+"/write", []byte("partial,host=x usage=\"high\" 1700000010000000000\n"))
	if a.code != http.StatusBadRequest || !strings.Contains(a.message(t), "partial write: 1 rows written with values their columns cannot hold (type conflicts)") {
		t.Errorf("type conflict: got %d %q", a.code, a.body)
	}
	if n := count(t, pool, schema, "partial", "host = 'x' AND usage IS NULL"); n != 1 {
		t.Errorf("type conflict: got %d rows, want the row with NULL", n)
	}

	// A measurement named like the rejected table is refused, and said so.
	a = post(t, nil, base+"/write", []byte("partial,host=y usage=1 1700000011000000000\npginflux_rejected v=1i 1\n"))
	if a.code != http.StatusBadRequest || !strings.Contains(a.message(t), "partial write: unable to parse 'pginflux_rejected v=1i 1' at line 2: the measurement has the name of the rejected table; 1 of 2 lines rejected") {
		t.Errorf("reserved name: got %d %q", a.code, a.body)
	}

	p.Stop(t)
	rows, err := pool.Query(t.Context(), "SELECT reason, detail, line FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" ORDER BY detail, reason")
	if err != nil {
		t.Fatal(err)
	}
	type rej struct{ reason, detail, line string }
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rej, error) {
		var x rej
		return x, r.Scan(&x.reason, &x.detail, &x.line)
	})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, g := range got {
		lines = append(lines, g.reason+" "+g.detail)
	}
	tooLong := fmt.Sprintf("too_long line 7: the line has %d bytes, more than --max-line-size (1024); its first 1024 bytes are kept", len(long))
	wantLines := []string{
		`type_conflict field "usage" into column "usage": a string value does not fit column type double precision`,
		// Twice each: once per request.
		"syntax line 3: syntax: column 22: field value has unrecognized type",
		"syntax line 3: syntax: column 22: field value has unrecognized type",
		"syntax line 5: syntax: column 15: expected tag key or field but found '\\n' instead",
		"syntax line 5: syntax: column 15: expected tag key or field but found '\\n' instead",
		tooLong, tooLong,
		"reserved_name the measurement has the name of the rejected table",
	}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("got rejected\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
}

// TestWriteAuth: with --http-token, a request without it or with another
// gets 401 in its API's dialect; each form of giving it is taken.
func TestWriteAuth(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	const token = "t0ken-of-the-test"
	base := daemontest.Start(t, schema, "--flush-interval", "1h", "--http-token", token).Base
	// Each accepted request writes a point of its own.
	line := func(i int) []byte { return fmt.Appendf(nil, "auth v=1i %d\n", 1_700_000_000_000_000_000+int64(i)*1000) }
	for _, c := range []struct {
		name, target string
		headers      []string
	}{
		{"v1 none", "/write", nil},
		{"v2 none", "/api/v2/write?bucket=b", nil},
		{"v2 wrong token", "/api/v2/write?bucket=b", []string{"Authorization", "Token wrong"}},
		{"v1 wrong password", "/write?u=telegraf&p=wrong", nil},
		{"v1 wrong basic", "/write", []string{"Authorization", "Basic dGVsZWdyYWY6d3Jvbmc="}},
		{"query none", "/query?q=CREATE+DATABASE+telegraf", nil},
	} {
		a := post(t, nil, base+c.target, line(0), c.headers...)
		if a.code != http.StatusUnauthorized {
			t.Errorf("%s: got %d %q, want 401", c.name, a.code, a.body)
			continue
		}
		if strings.HasPrefix(c.target, "/api/v2/") && !strings.Contains(a.body, `"code":"unauthorized"`) ||
			!strings.HasPrefix(c.target, "/api/v2/") && !strings.Contains(a.body, `"error":"authorization failed`) {
			t.Errorf("%s: got body %q, not in its API's dialect", c.name, a.body)
		}
	}
	if n := count(t, pool, schema, "pginflux_rejected", "true"); n != 0 {
		t.Errorf("unauthorized requests left %d rejected rows", n)
	}
	basicReq, _ := http.NewRequest("POST", "/", nil)
	basicReq.SetBasicAuth("telegraf", token)
	ok := 0
	for i, c := range []struct {
		name, target string
		headers      []string
	}{
		{"v2 token", "/api/v2/write?org=o&bucket=b", []string{"Authorization", "Token " + token}},
		{"v1 token", "/write?db=d", []string{"Authorization", "Token " + token}},
		{"bearer", "/write", []string{"Authorization", "Bearer " + token}},
		{"basic", "/write?db=d", []string{"Authorization", basicReq.Header.Get("Authorization")}},
		{"p", "/write?db=d&u=telegraf&p=" + url.QueryEscape(token), nil},
	} {
		if a := post(t, nil, base+c.target, line(i), c.headers...); a.code != http.StatusNoContent {
			t.Errorf("%s: got %d %q, want 204", c.name, a.code, a.body)
			continue
		}
		ok++
	}
	if n := count(t, pool, schema, "auth", "true"); n != ok {
		t.Errorf("got %d rows, want %d", n, ok)
	}
	// Operational endpoints need no token.
	if resp, _ := daemontest.Get(t, http.MethodGet, base+"/metrics"); resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics: got %s, want 200 without a token", resp.Status)
	}
}

// TestWriteTooLarge: a body over --http-max-body gets 413. One that says
// its size (Content-Length) is refused before it is read, and nothing of
// it is written; one whose size shows only as it is decompressed is cut
// at the limit (a gzip bomb), the complete lines before the cut taken and
// the answer saying how many.
func TestWriteTooLarge(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--http-max-body", "4KiB").Base
	lines := func(m string) []byte {
		var b bytes.Buffer
		for i := 0; b.Len() <= 4096; i++ {
			fmt.Fprintf(&b, "%s v=%di %d\n", m, i, 1_700_000_000_000_000_000+int64(i)*1000)
		}
		return b.Bytes()
	}
	for _, target := range []string{"/write", "/api/v2/write"} {
		a := post(t, nil, base+target, lines("large"))
		if a.code != http.StatusRequestEntityTooLarge || !strings.Contains(a.message(t), "--http-max-body (4096 bytes)") ||
			!strings.Contains(a.message(t), "nothing of it is written") {
			t.Errorf("plain %s: got %d %q, want 413, nothing written", target, a.code, a.body)
		}
	}
	var exists bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{schema, "large"}.Sanitize()).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Error("a table was made from a body refused for its Content-Length")
	}

	// Zeros: no line ever ends, so nothing is taken.
	bomb := make([]byte, 10<<20)
	if a := post(t, nil, base+"/write", bomb, "Content-Encoding", "gzip"); a.code != http.StatusRequestEntityTooLarge ||
		!strings.Contains(a.message(t), "--http-max-body (4096 bytes)") || !strings.Contains(a.message(t), "nothing of it is written") {
		t.Errorf("gzip bomb: got %d %q, want 413, nothing written", a.code, a.body)
	}
	body := lines("largegz")
	a := post(t, nil, base+"/write", body, "Content-Encoding", "gzip")
	m := regexp.MustCompile(`the (\d+) lines before it were taken`).FindStringSubmatch(a.message(t))
	if a.code != http.StatusRequestEntityTooLarge || m == nil {
		t.Fatalf("gzip: got %d %q, want 413 naming the lines taken", a.code, a.body)
	}
	taken, _ := strconv.Atoi(m[1])
	if total := bytes.Count(body, []byte{'\n'}); taken == 0 || taken >= total {
		t.Errorf("gzip: %d lines taken of %d", taken, total)
	}
	daemontest.WaitRows(t, pool, pgx.Identifier{schema, "largegz"}.Sanitize(), taken)
	if a := post(t, nil, base+"/write", []byte("large v=1i 1\n"), "Content-Encoding", "gzip"); a.code != http.StatusNoContent {
		t.Errorf("a small body after: got %d %q", a.code, a.body)
	}
}

// TestSchemaFromDB: with --schema-from-db, a request's db (v1) or bucket
// (v2) names the schema; without one, --schema; beyond the bound on
// schemas, 400.
func TestSchemaFromDB(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	_, other := pgtest.Schema(t)
	p := daemontest.Config{Options: daemon.Options{MaxSchemas: 2}}.Start(t, schema, "--flush-interval", "1h", "--schema-from-db")
	base := p.Base
	for i, c := range []struct{ target, want string }{
		{"/write?db=" + url.QueryEscape(other), other},
		{"/api/v2/write?org=o&bucket=" + url.QueryEscape(other), other},
		{"/write", schema},
		{"/write?db=" + url.QueryEscape(schema), schema},
		{"/api/v2/write", schema},
	} {
		if a := post(t, nil, base+c.target, fmt.Appendf(nil, "fromdb v=1i %d\n", (i+1)*1000)); a.code != http.StatusNoContent {
			t.Fatalf("%s: got %d %q", c.target, a.code, a.body)
		}
	}
	if n := count(t, pool, other, "fromdb", "true"); n != 2 {
		t.Errorf("%s: got %d rows, want 2", other, n)
	}
	if n := count(t, pool, schema, "fromdb", "true"); n != 3 {
		t.Errorf("%s: got %d rows, want 3", schema, n)
	}
	a := post(t, nil, base+"/write?db=pginflux_third", []byte("fromdb v=1i 1\n"))
	if a.code != http.StatusBadRequest || !strings.Contains(a.message(t), "at most 2") {
		t.Errorf("a third schema: got %d %q, want 400", a.code, a.body)
	}
	a = post(t, nil, base+"/api/v2/write?bucket=pg_catalog", []byte("fromdb v=1i 1\n"))
	if a.code != http.StatusBadRequest || !strings.Contains(a.message(t), "cannot name a schema") {
		t.Errorf("pg_catalog: got %d %q, want 400", a.code, a.body)
	}
	p.Stop(t) // closes the sink of the other schema
}

// TestHTTPS: with --tls-cert and --tls-key, every endpoint is served over
// TLS, and plain HTTP is not.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	certFile, keyFile, roots := testcert.Files(t)
	base := daemontest.Start(t, schema, "--flush-interval", "1h", "--tls-cert", certFile, "--tls-key", keyFile).Base
	tlsBase := "https://" + strings.TrimPrefix(base, "http://")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()
	if a := post(t, client, tlsBase+"/api/v2/write?bucket=b", []byte("tls v=1i 1\n"), "Content-Encoding", "gzip"); a.code != http.StatusNoContent {
		t.Fatalf("got %d %q", a.code, a.body)
	}
	if n := count(t, pool, schema, "tls", "true"); n != 1 {
		t.Errorf("got %d rows, want 1", n)
	}
	resp, err := client.Get(tlsBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics over https: got %s", resp.Status)
	}
	resp, err = http.Get(base + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP is served besides HTTPS")
		}
	}
}

// TestOnlyHTTP: pginflux runs with neither UDP nor TCP, taking writes over
// HTTP alone (with nothing at all to listen on, it refuses to start:
// TestNothingToListenOn).
func TestOnlyHTTP(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	// Start returns once writes are open.
	base := daemontest.Start(t, schema, "--udp-address", "").Base
	if a := post(t, nil, base+"/write", []byte("onlyhttp v=1i 1\n")); a.code != http.StatusNoContent {
		t.Fatalf("got %d %q", a.code, a.body)
	}
	if n := count(t, pool, schema, "onlyhttp", "true"); n != 1 {
		t.Errorf("got %d rows, want 1", n)
	}
	if body := waitStatus(t, base+"/readyz", http.StatusOK, ""); body != "ok\n" {
		t.Errorf("/readyz: got %q", body)
	}
}
