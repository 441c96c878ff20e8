package daemon_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
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
// testdata/influxql (see its README.md): a corpus's data set written into
// pginflux, the same queries, the same answers.

// goldenStorages are the storages the answers are checked in.
var goldenStorages = []string{"columns", "jsonb"}

// goldenWriteChunk is how many lines of data.lp one write carries.
const goldenWriteChunk = 5000

// goldenMaxDiffs is how many differences of one answer a failure lists.
const goldenMaxDiffs = 8

// goldenShortBody is the longest body a failure shows whole.
const goldenShortBody = 400

// TestInfluxQLGolden writes each corpus's data.lp into its database (the
// one data.lp names, or telegraf) of a pginflux (--schema that database,
// --schema-from-db, so that another database is not found), in each
// storage, and sends each query of its queries.txt to /query (GET, with
// the query's epoch): the status and the JSON of the answer must be
// InfluxDB's (see jsonDiff). Each corpus and storage has a PostgreSQL
// database of its own; each query is a subtest named by its number, so
// that one runs alone with
//
//	go test ./internal/daemon -run 'TestInfluxQLGolden/fleet/columns/029' -v
//
// A query of the corpus's known_failures.txt is skipped, saying why and
// how it differs, when it fails in that storage; it fails the test when
// it passes, so that the list only shrinks.
func TestInfluxQLGolden(t *testing.T) {
	t.Parallel()
	for _, c := range readGoldenCorpora(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			answers, err := c.readAnswers()
			if err != nil {
				t.Fatalf("the answer files (TestInfluxQLAnswerFiles says more): %v", err)
			}
			data, err := os.ReadFile(filepath.Join(c.Dir, "data.lp"))
			if err != nil {
				t.Fatal(err)
			}
			for _, storage := range goldenStorages {
				t.Run(storage, func(t *testing.T) {
					t.Parallel()
					conn := ownDatabase(t, "influxql_"+c.Name+"_"+storage)
					p := daemontest.Config{ConnString: conn}.Start(t, c.DB, "--storage", storage, "--schema-from-db")
					writeDataSet(t, p.Base, c, data)
					for _, q := range c.Queries {
						t.Run(fmt.Sprintf("%03d", q.Num), func(t *testing.T) {
							t.Parallel()
							g, ok := answers[q.Num]
							if !ok {
								t.Fatalf("no %s for query %d (line %d of queries.txt)", c.goldenFile(q.Num), q.Num, q.Line)
							}
							problems := goldenProblems(t, p.Base, c, q, g)
							k, known := c.Known[q.Num]
							known = known && k.in(storage)
							switch {
							case known && problems == "":
								t.Errorf("query %03d of %s passes in %s storage: remove line %d of testdata/influxql/%s/known_failures.txt (%s)",
									q.Num, c.Name, storage, k.Line, c.Name, k.Reason)
							case known:
								t.Skipf("known failure (testdata/influxql/%s/known_failures.txt line %d: %s):\n%s", c.Name, k.Line, k.Reason, problems)
							case problems != "":
								t.Error(problems)
							}
						})
					}
				})
			}
		})
	}
}

// TestInfluxQLAnswerFiles: in each corpus, each query of queries.txt has
// its answer file, recorded for the same query text, database and epoch,
// no answer file is without its query, and known_failures.txt names
// queries there are: a query added, removed or moved without the answers
// recorded again shows here.
func TestInfluxQLAnswerFiles(t *testing.T) {
	t.Parallel()
	for _, c := range readGoldenCorpora(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			answers, err := c.readAnswers()
			if err != nil {
				t.Error(err)
			}
			if _, err := os.Stat(filepath.Join(c.Dir, "data.lp")); err != nil {
				t.Error(err)
			}
			for _, q := range c.Queries {
				g, ok := answers[q.Num]
				switch {
				case !ok:
					t.Errorf("query %d (line %d of %s/queries.txt): no %s", q.Num, q.Line, c.Name, c.goldenFile(q.Num))
				case g.Query != q.Text || g.DB != q.DB || g.Epoch != q.Epoch:
					t.Errorf("query %d (line %d of %s/queries.txt) is %q on db %s (epoch %q), but %s answers %q on db %s (epoch %q): record the answers again (testdata/influxql/README.md)",
						q.Num, q.Line, c.Name, q.Text, q.DB, q.Epoch, c.goldenFile(q.Num), g.Query, g.DB, g.Epoch)
				case g.Status < 100 || g.Status > 599:
					t.Errorf("%s: status %d", c.goldenFile(q.Num), g.Status)
				}
			}
			for _, num := range slices.Sorted(maps.Keys(answers)) {
				if num < 1 || num > len(c.Queries) {
					t.Errorf("%s: no query %d in %s/queries.txt, which has %d", c.goldenFile(num), num, c.Name, len(c.Queries))
				}
			}
			for _, num := range slices.Sorted(maps.Keys(c.Known)) {
				if num > len(c.Queries) {
					t.Errorf("%s/known_failures.txt line %d: no query %d in queries.txt, which has %d", c.Name, c.Known[num].Line, num, len(c.Queries))
				}
			}
		})
	}
}

// TestReadKnownFailures: the lines known_failures.txt takes.
func TestReadKnownFailures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, text string
		want       map[int]knownFailure
		wantErr    bool
	}{
		{name: "none", text: "# nothing yet\n\n", want: map[int]knownFailure{}},
		{name: "both storages and one", text: "# why\n007 # integral() is missing\n12 jsonb # a float's digits\n",
			want: map[int]knownFailure{
				7:  {Line: 2, Reason: "integral() is missing"},
				12: {Line: 3, Storages: []string{"jsonb"}, Reason: "a float's digits"},
			}},
		{name: "no reason", text: "007\n", wantErr: true},
		{name: "empty reason", text: "007 #  \n", wantErr: true},
		{name: "not a number", text: "x # why\n", wantErr: true},
		{name: "zero", text: "000 # why\n", wantErr: true},
		{name: "twice", text: "1 # why\n001 # again\n", wantErr: true},
		{name: "not a storage", text: "1 rows # why\n", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			name := filepath.Join(t.TempDir(), "known_failures.txt")
			if err := os.WriteFile(name, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readKnownFailures(name)
			if (err != nil) != c.wantErr {
				t.Fatalf("got error %v, want error %v", err, c.wantErr)
			}
			if !c.wantErr && !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
	if got, err := readKnownFailures(filepath.Join(t.TempDir(), "none.txt")); err != nil || len(got) != 0 {
		t.Errorf("no file: got %v, %v; want no failures", got, err)
	}
}

// TestParseGoldenQueries: the options of a line of queries.txt.
func TestParseGoldenQueries(t *testing.T) {
	t.Parallel()
	got, err := parseGoldenQueries(strings.NewReader("# c\nSHOW DATABASES\nepoch=rfc3339 db=x SELECT 1\nepoch=ns SELECT a = 1\n"), "telegraf")
	want := []goldenQuery{
		{Num: 1, Line: 2, DB: "telegraf", Text: "SHOW DATABASES"},
		{Num: 2, Line: 3, DB: "x", Epoch: epochRFC3339, Text: "SELECT 1"},
		{Num: 3, Line: 4, DB: "telegraf", Text: "SELECT a = 1"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v (%v), want %+v", got, err, want)
	}
	if _, err := parseGoldenQueries(strings.NewReader("db=x\n"), "telegraf"); err == nil {
		t.Errorf("got no error for db= without a query")
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

// goldenProblems sends query q of corpus c to pginflux at base and says
// how its answer differs from g's, or "" when it does not.
func goldenProblems(t *testing.T, base string, c goldenCorpus, q goldenQuery, g goldenAnswer) string {
	t.Helper()
	if g.Query != q.Text || g.DB != q.DB || g.Epoch != q.Epoch {
		t.Fatalf("%s answers %q on db %s (epoch %q), not query %d (line %d of %s/queries.txt), %q on db %s (epoch %q): record the answers again (testdata/influxql/README.md)",
			c.goldenFile(q.Num), g.Query, g.DB, g.Epoch, q.Num, q.Line, c.Name, q.Text, q.DB, q.Epoch)
	}
	want, err := decodeGoldenJSON(g.Answer)
	if err != nil {
		t.Fatalf("%s: %v", c.goldenFile(q.Num), err)
	}
	params := url.Values{"db": {q.DB}, "q": {q.Text}, "epoch": {"ns"}}
	switch q.Epoch {
	case "":
	case epochRFC3339:
		params.Del("epoch")
	default:
		params.Set("epoch", q.Epoch)
	}
	resp, body := daemontest.Get(t, http.MethodGet, base+"/query?"+params.Encode())

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
		return ""
	}
	// The body whole when short; its start when it is not JSON or the
	// status is not InfluxDB's (a 501 says why).
	if len(body) <= goldenShortBody || err != nil || resp.StatusCode != g.Status {
		problems = append(problems, "got body: "+shorten(strings.TrimSpace(body), goldenShortBody))
	}
	return fmt.Sprintf("query %03d (line %d of %s/queries.txt) on db %s:\n%s\n%s\nwant: %s\nrerun: go test ./internal/daemon -run '%s' -v",
		q.Num, q.Line, c.Name, q.DB, q.Text, strings.Join(problems, "\n"), c.goldenFile(q.Num), t.Name())
}

// writeDataSet posts data, c's data.lp (line protocol, ns timestamps), to
// c's database, goldenWriteChunk lines a request; each 204 means its
// lines are committed.
func writeDataSet(t *testing.T, base string, c goldenCorpus, data []byte) {
	t.Helper()
	lines := bytes.SplitAfter(data, []byte("\n"))
	target := base + "/write?" + url.Values{"db": {c.DB}, "precision": {"ns"}}.Encode()
	for i := 0; i < len(lines); i += goldenWriteChunk {
		end := min(i+goldenWriteChunk, len(lines))
		body := bytes.Join(lines[i:end], nil)
		if len(bytes.TrimSpace(body)) == 0 {
			continue
		}
		if a := post(t, nil, target, body); a.code != http.StatusNoContent {
			t.Fatalf("write lines %d to %d of %s/data.lp: got %d %s, want 204", i+1, end, c.Name, a.code, shorten(a.body, goldenShortBody))
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
