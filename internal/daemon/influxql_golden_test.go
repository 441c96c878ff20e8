package daemon_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// /query's InfluxQL compared with InfluxDB 1.8.10's answers, recorded in
// testdata/influxql (see its README.md): the same data set written into
// pginflux, the same queries, the same answers.

// goldenStorages are the storages the answers are checked in.
var goldenStorages = []string{"columns", "jsonb"}

// goldenWriteChunk is how many lines of data.lp one write carries.
const goldenWriteChunk = 5000

// goldenMaxDiffs is how many differences of one answer a failure lists.
const goldenMaxDiffs = 8

// goldenShortBody is the longest body a failure shows whole.
const goldenShortBody = 400

// TestInfluxQLGolden writes data.lp into database telegraf of a pginflux
// (--schema telegraf --schema-from-db, so that another database is not
// found), in each storage, and sends each query of queries.txt to /query
// (GET, epoch=ns): the status and the JSON of the answer must be
// InfluxDB's (see jsonDiff). Each storage has a PostgreSQL database of
// its own; each query is a subtest named by its number, so that one runs
// alone with
//
//	go test ./internal/daemon -run 'TestInfluxQLGolden/columns/029' -v
func TestInfluxQLGolden(t *testing.T) {
	t.Parallel()
	queries := readGoldenQueries(t)
	answers, err := readGoldenAnswers()
	if err != nil {
		t.Fatalf("the answer files (TestInfluxQLAnswerFiles says more): %v", err)
	}
	data, err := os.ReadFile(filepath.Join(influxqlDir, "data.lp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, storage := range goldenStorages {
		t.Run(storage, func(t *testing.T) {
			t.Parallel()
			conn := ownDatabase(t, "influxql_"+storage)
			p := daemontest.Config{ConnString: conn}.Start(t, influxqlDefaultDB, "--storage", storage, "--schema-from-db")
			writeDataSet(t, p.Base, data)
			for _, q := range queries {
				t.Run(fmt.Sprintf("%03d", q.Num), func(t *testing.T) {
					t.Parallel()
					g, ok := answers[q.Num]
					if !ok {
						t.Fatalf("no %s for query %d (line %d of queries.txt)", goldenFile(q.Num), q.Num, q.Line)
					}
					checkGolden(t, p.Base, q, g)
				})
			}
		})
	}
}

// TestInfluxQLAnswerFiles: each query of queries.txt has its answer file,
// recorded for the same query text and database, and no answer file is
// without its query: a query added, removed or moved without the answers
// recorded again shows here.
func TestInfluxQLAnswerFiles(t *testing.T) {
	t.Parallel()
	queries := readGoldenQueries(t)
	answers, err := readGoldenAnswers()
	if err != nil {
		t.Error(err)
	}
	for _, q := range queries {
		g, ok := answers[q.Num]
		switch {
		case !ok:
			t.Errorf("query %d (line %d of queries.txt): no %s", q.Num, q.Line, goldenFile(q.Num))
		case g.Query != q.Text || g.DB != q.DB:
			t.Errorf("query %d (line %d of queries.txt) is %q on db %s, but %s answers %q on db %s: record the answers again (testdata/influxql/README.md)",
				q.Num, q.Line, q.Text, q.DB, goldenFile(q.Num), g.Query, g.DB)
		case g.Status < 100 || g.Status > 599:
			t.Errorf("%s: status %d", goldenFile(q.Num), g.Status)
		}
	}
	nums := make([]int, 0, len(answers))
	for num := range answers {
		nums = append(nums, num)
	}
	slices.Sort(nums)
	for _, num := range nums {
		if num < 1 || num > len(queries) {
			t.Errorf("%s: no query %d in queries.txt, which has %d", goldenFile(num), num, len(queries))
		}
	}
}

// TestGoldenJSONDiff: how TestInfluxQLGolden compares answers.
func TestGoldenJSONDiff(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, got, want string
		diffs           []string
	}{
		{name: "equal", got: `{"results":[{"statement_id":0,"series":[{"values":[[1,2.5,"a",true,null]]}]}]}`,
			want: `{"results":[{"series":[{"values":[[1,2.5,"a",true,null]]}],"statement_id":0}]}`},
		{name: "a value", got: `{"results":[{"series":[{"values":[[1,3.5]]}]}]}`, want: `{"results":[{"series":[{"values":[[1,3.6]]}]}]}`,
			diffs: []string{"results[0].series[0].values[0][1]: got 3.5, want 3.6"}},
		{name: "float rounding", got: `[73.24875000000002, 1e-13, 144.0]`, want: `[73.24875, 0, 144]`},
		{name: "relative", got: `[100.0000002]`, want: `[100]`, diffs: []string{"[0]: got 100.0000002, want 100"}},
		{name: "integers exact", got: `[1704067200000000001]`, want: `[1704067200000000000]`,
			diffs: []string{"[0]: got 1704067200000000001, want 1704067200000000000"}},
		{name: "a time as a float", got: `[1.7040672000000003e18]`, want: `[1704067200000000000]`,
			diffs: []string{"[0]: got 1.7040672000000003e18, want 1704067200000000000"}},
		{name: "keys", got: `{"error":"x","statement_id":0}`, want: `{"series":[],"statement_id":0}`,
			diffs: []string{`error: got "x", want no such key`, "series: missing, want []"}},
		{name: "a key not a name", got: `{"a b":1}`, want: `{"a b":2}`, diffs: []string{`["a b"]: got 1, want 2`}},
		{name: "lengths", got: `[[1],[2]]`, want: `[[1],[3],[4]]`, diffs: []string{"(the body): got 2 elements, want 3", "[1][0]: got 2, want 3"}},
		{name: "types", got: `{"a":"1","b":null,"c":[]}`, want: `{"a":1,"b":false,"c":{}}`,
			diffs: []string{`a: got "1", want 1`, "b: got null, want false", "c: got [], want an object"}},
		{name: "error strings exactly", got: `{"error":"database not found: nosuchdb "}`, want: `{"error":"database not found: nosuchdb"}`,
			diffs: []string{`error: got "database not found: nosuchdb ", want "database not found: nosuchdb"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeGoldenJSON([]byte(c.got))
			if err != nil {
				t.Fatal(err)
			}
			want, err := decodeGoldenJSON([]byte(c.want))
			if err != nil {
				t.Fatal(err)
			}
			diffs, n := jsonDiff(got, want, 10)
			if !slices.Equal(diffs, c.diffs) || n != len(c.diffs) {
				t.Errorf("got %d differences %q, want %q", n, diffs, c.diffs)
			}
		})
	}
	got, _ := decodeGoldenJSON([]byte(`[1,2,3,4]`))
	want, _ := decodeGoldenJSON([]byte(`[5,6,7,8]`))
	if diffs, n := jsonDiff(got, want, 2); len(diffs) != 2 || n != 4 {
		t.Errorf("limit 2 of 4: got %d differences %q", n, diffs)
	}
}

// checkGolden sends query q to pginflux at base and fails the test,
// saying how, unless its answer is g's.
func checkGolden(t *testing.T, base string, q goldenQuery, g goldenAnswer) {
	t.Helper()
	if g.Query != q.Text || g.DB != q.DB {
		t.Fatalf("%s answers %q on db %s, not query %d (line %d of queries.txt), %q on db %s: record the answers again (testdata/influxql/README.md)",
			goldenFile(q.Num), g.Query, g.DB, q.Num, q.Line, q.Text, q.DB)
	}
	want, err := decodeGoldenJSON(g.Answer)
	if err != nil {
		t.Fatalf("%s: %v", goldenFile(q.Num), err)
	}
	target := base + "/query?" + url.Values{"db": {q.DB}, "q": {q.Text}, "epoch": {"ns"}}.Encode()
	resp, body := daemontest.Get(t, http.MethodGet, target)

	var problems []string
	if resp.StatusCode != g.Status {
		problems = append(problems, fmt.Sprintf("status: got %d, want %d", resp.StatusCode, g.Status))
	}
	got, err := decodeGoldenJSON([]byte(body))
	if err != nil {
		problems = append(problems, fmt.Sprintf("body: not one JSON value (%v)", err))
	} else if diffs, n := jsonDiff(got, want, goldenMaxDiffs); n > 0 {
		head := fmt.Sprintf("body: %d differences", n)
		if n == 1 {
			head = "body: 1 difference"
		}
		if n > len(diffs) {
			head += fmt.Sprintf(", the first %d", len(diffs))
		}
		problems = append(problems, head+":")
		for _, d := range diffs {
			problems = append(problems, "  "+d)
		}
	}
	if len(problems) == 0 {
		return
	}
	// The body whole when short; its start when it is not JSON or the
	// status is not InfluxDB's (a 501 says why).
	if len(body) <= goldenShortBody || err != nil || resp.StatusCode != g.Status {
		problems = append(problems, "got body: "+shorten(strings.TrimSpace(body), goldenShortBody))
	}
	t.Errorf("query %03d (line %d of queries.txt) on db %s:\n%s\n%s\nwant: %s\nrerun: go test ./internal/daemon -run '%s' -v",
		q.Num, q.Line, q.DB, q.Text, strings.Join(problems, "\n"), goldenFile(q.Num), t.Name())
}

// writeDataSet posts data (line protocol, ns timestamps) to database
// telegraf, goldenWriteChunk lines a request; each 204 means its lines
// are committed.
func writeDataSet(t *testing.T, base string, data []byte) {
	t.Helper()
	lines := bytes.SplitAfter(data, []byte("\n"))
	target := base + "/write?" + url.Values{"db": {influxqlDefaultDB}, "precision": {"ns"}}.Encode()
	for i := 0; i < len(lines); i += goldenWriteChunk {
		end := min(i+goldenWriteChunk, len(lines))
		body := bytes.Join(lines[i:end], nil)
		if len(bytes.TrimSpace(body)) == 0 {
			continue
		}
		if a := post(t, nil, target, body); a.code != http.StatusNoContent {
			t.Fatalf("write lines %d to %d of data.lp: got %d %s, want 204", i+1, end, a.code, shorten(a.body, goldenShortBody))
		}
	}
}

// ownDatabase creates a PostgreSQL database for this test alone, on the
// test server (pgtest.ConnString), named pginflux_, prefix, an underscore
// and 8 random hex digits, and returns a connection string to it. It is
// dropped at cleanup, after the daemons started after this call have
// stopped (cleanups run last first).
func ownDatabase(t *testing.T, prefix string) string {
	t.Helper()
	server := pgtest.ConnString(t)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // never fails
	name := "pginflux_" + prefix + "_" + hex.EncodeToString(rnd[:])
	conn, err := withDatabase(server, name)
	if err != nil {
		t.Fatalf("a connection string to database %s: %v", name, err)
	}
	ident := pgx.Identifier{name}.Sanitize()
	admin, err := pgx.Connect(t.Context(), server)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer admin.Close(context.Background())
	// template0: no session is ever connected to it, which would make
	// CREATE DATABASE fail.
	if _, err := admin.Exec(t.Context(), "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		t.Fatalf("create database %s (with %s, its role needs CREATEDB): %v", name, pgtest.EnvDatabaseURL, err)
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return conn
}

// withDatabase returns connection string conn (a URL, or keywords and
// values) naming database name instead of its own.
func withDatabase(conn, name string) (string, error) {
	out := conn + " dbname=" + name // the last of a keyword wins
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			// Not err: it holds the URL, and the URL a password.
			return "", fmt.Errorf("cannot parse the test server's URL")
		}
		q := u.Query()
		q.Del("dbname")
		u.RawQuery = q.Encode()
		u.Path, u.RawPath = "/"+name, ""
		out = u.String()
	}
	cfg, err := pgconn.ParseConfig(out)
	if err != nil {
		return "", err
	}
	if cfg.Database != name {
		return "", fmt.Errorf("the connection string names database %q, want %q", cfg.Database, name)
	}
	return out, nil
}
