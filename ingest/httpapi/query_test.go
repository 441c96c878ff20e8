package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/influxql"

	"github.com/pginflux/pginflux/internal/query"
)

// fakeCatalog answers /query from maps. (The tests of package main ask
// PostgreSQL; these look at InfluxQL and JSON alone.)
type fakeCatalog struct {
	mu      sync.Mutex
	dbs     map[string][]string // database -> measurements; "" is the default
	created []string
	err     error // returned by every method when set
}

func (c *fakeCatalog) CreateDatabase(_ context.Context, db string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.created = append(c.created, db)
	return c.err
}

func (c *fakeCatalog) Databases(context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for db := range c.dbs {
		if db != "" {
			names = append(names, db)
		}
	}
	slices.Sort(names)
	return names, c.err
}

func (c *fakeCatalog) lookup(db string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	m, ok := c.dbs[db]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, db)
	}
	return slices.Clone(m), nil
}

func (c *fakeCatalog) Measurements(_ context.Context, db string) ([]string, error) {
	return c.lookup(db)
}

func (c *fakeCatalog) Retention(_ context.Context, db string) (time.Duration, error) {
	if _, err := c.lookup(db); err != nil {
		return 0, err
	}
	if db == "short" {
		return 72 * time.Hour, nil
	}
	return 0, nil
}

// TestQuery: statements answered in InfluxDB 1.x's JSON (times as
// epoch= says, chunks, params); malformed ones 400, a statement's own
// error in its result and the statements after it not executed, as in
// InfluxDB; what would write refused.
func TestQuery(t *testing.T) {
	cat := &fakeCatalog{dbs: map[string][]string{
		"":          {"cpu", "disk", "mem"},
		"telegraf":  {"cpu", "disk", "diskio", "mem", "net"},
		"short":     {},
		"we ird\"x": {"a b"},
	}}
	s, _ := writeServer(t, Config{Catalog: cat, Reader: fakeReader{}})
	h := s.Handler()
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	get := func(q string) req { return req{method: "GET", target: "/query?q=" + q} }
	for _, c := range []struct {
		name string
		r    req
		want int
		body string // whole, without the final newline; a prefix for errors
	}{
		{"create, form", req{target: "/query", body: []byte(`q=CREATE+DATABASE+%22telegraf%22`), header: form}, 200, `{"results":[{"statement_id":0}]}`},
		{"create, get", get("create%20database%20x"), 200, `{"results":[{"statement_id":0}]}`},
		{"two creates", req{target: "/query?q=CREATE+DATABASE+a%3B+CREATE+DATABASE+b+WITH+DURATION+1d+REPLICATION+1%3B"}, 200, `{"results":[{"statement_id":0},{"statement_id":1}]}`},
		{"show databases", get("SHOW+DATABASES"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["short"],["telegraf"],["we ird\"x"]]}]}]}`},
		{"not found", get("SHOW+RETENTION+POLICIES&db=nope"), 200, `{"results":[{"statement_id":0,"error":"database not found: nope"}]}`},
		{"error ends", get("SHOW+RETENTION+POLICIES+ON+nope%3BSHOW+DATABASES"), 200, `{"results":[{"statement_id":0,"error":"database not found: nope"},{"statement_id":1,"error":"not executed"}]}`},
		{"retention policies", get("SHOW+RETENTION+POLICIES+ON+telegraf"), 200,
			`{"results":[{"statement_id":0,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","0s","168h0m0s",1,true]]}]}]}`},
		{"retention of 3 days", get("SHOW+RETENTION+POLICIES&db=short"), 200,
			`{"results":[{"statement_id":0,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","72h0m0s","24h0m0s",1,true]]}]}]}`},
		{"comment, case", get("show+Databases+--+a+comment%0A"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["short"],["telegraf"],["we ird\"x"]]}]}]}`},
		{"select, rfc3339", get("SELECT+mean(v)+FROM+cpu+GROUP+BY+host&db=telegraf"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","mean"],"values":[["2024-01-01T00:00:00Z",1.5],["2024-01-01T00:01:00.000000001Z",2]]}]}]}`},
		{"select, epoch=ms", get("SELECT+mean(v)+FROM+cpu+GROUP+BY+host&epoch=ms"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","mean"],"values":[[1704067200000,1.5],[1704067260000,2]]}]}]}`},
		{"select, tz", get("SELECT+mean(v)+FROM+cpu+tz('Europe/Paris')"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","mean"],"values":[["2024-01-01T01:00:00+01:00",1.5],["2024-01-01T01:01:00.000000001+01:00",2]]}]}]}`},
		{"params", get("SELECT+mean(v)+FROM+cpu+WHERE+host%3D%24h&epoch=s&params=%7B%22h%22%3A%22a%22%7D"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","mean"],"values":[[1704067200,1.5],[1704067260,2]]}]}]}`},
		{"statement error", get("SELECT+mean(v)+FROM+fails%3BSHOW+DATABASES"), 200, `{"results":[{"statement_id":0,"error":"it failed"},{"statement_id":1,"error":"not executed"}]}`},
		{"unreachable", get("SELECT+mean(v)+FROM+unreachable"), 503, `{"error":"the database is unreachable`},
		{"drop", req{target: "/query?q=CREATE+DATABASE+a%3BDROP+DATABASE+a"}, 200,
			`{"results":[{"statement_id":0},{"statement_id":1,"error":"DROP DATABASE is not supported by pginflux: /query only reads; the data is in PostgreSQL, change it there"}]}`},
		{"delete", get("DELETE+FROM+cpu"), 200, `{"results":[{"statement_id":0,"error":"DELETE FROM is not supported by pginflux: /query only reads`},
		{"show users", get("SHOW+USERS"), 200, `{"results":[{"statement_id":0,"error":"SHOW USERS is not supported by pginflux"}]}`},
		{"missing q", req{target: "/query"}, 400, `{"error":"missing required parameter \"q\""}`},
		{"only semicolons", get("%3B%3B"), 400, `{"error":"error parsing query: found EOF`},
		{"no name", get("CREATE+DATABASE"), 400, `{"error":"error parsing query: found EOF, expected identifier`},
		{"bad limit", get("SHOW+MEASUREMENTS+LIMIT+x"), 400, `{"error":"error parsing query: found x, expected integer`},
		{"bad regex", get("SHOW+MEASUREMENTS+WITH+MEASUREMENT+%3D~+%2F(%2F"), 400, `{"error":"error parsing query: `},
		{"bad params", get("SELECT+v+FROM+m&params=%7Bx"), 400, `{"error":"error parsing query parameters: `},
		{"bad epoch", get("SELECT+v+FROM+m&epoch=d"), 400, `{"error":"invalid epoch \"d\"`},
		{"too many statements", get(strings.Repeat("SHOW+DATABASES%3B", maxStatements+1)), 400, `{"error":"error parsing query: 101 statements, more than the 100`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := c.r.do(t, h)
			b = strings.TrimSuffix(b, "\n")
			if resp.StatusCode != c.want || !strings.HasPrefix(b, c.body) || (c.want == 200 && strings.HasSuffix(c.body, "}") && b != c.body) {
				t.Fatalf("got %s\n%s\nwant %d\n%s", resp.Status, b, c.want, c.body)
			}
			if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("got Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	cat.mu.Lock()
	if got := strings.Join(cat.created, ","); got != "telegraf,x,a,b,a" {
		t.Errorf("got databases created %q, want telegraf,x,a,b,a", got)
	}
	cat.mu.Unlock()

	resp, b := get("SHOW+DATABASES&pretty=true").do(t, h)
	if resp.StatusCode != 200 || !strings.Contains(b, "\n    \"results\": [\n") {
		t.Errorf("pretty: got %s %q", resp.Status, b)
	}

	cat.mu.Lock()
	cat.err = fmt.Errorf("%w: the database is unreachable", ErrUnavailable)
	cat.mu.Unlock()
	if resp, b := get("SHOW+DATABASES").do(t, h); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("catalog unavailable: got %s %q, want 503", resp.Status, b)
	}
	cat.mu.Lock()
	cat.err = errors.New("permission denied")
	cat.mu.Unlock()
	if resp, b := get("SHOW+DATABASES").do(t, h); resp.StatusCode != 500 {
		t.Errorf("catalog failing: got %s %q, want 500", resp.Status, b)
	}
}

// TestQueryNoCatalog: without a Catalog, CREATE DATABASE is a no-op and
// SHOW DATABASES is an error.
func TestQueryNoCatalog(t *testing.T) {
	s, _ := writeServer(t, Config{})
	h := s.Handler()
	if resp, b := (req{target: "/query?q=CREATE+DATABASE+x"}).do(t, h); resp.StatusCode != 200 || b != `{"results":[{"statement_id":0}]}`+"\n" {
		t.Errorf("CREATE DATABASE: got %s %q", resp.Status, b)
	}
	if resp, b := (req{target: "/query?q=SHOW+DATABASES"}).do(t, h); resp.StatusCode != 200 || !strings.Contains(b, `"error":"SHOW DATABASES is answered only with a database"`) {
		t.Errorf("SHOW DATABASES: got %s %q, want its error", resp.Status, b)
	}
}

// fakeReader answers SELECT from cpu with two windows of series host=a,
// fails from fails with a statement error and from unreachable as when
// PostgreSQL is down.
type fakeReader struct{}

func (fakeReader) Run(_ context.Context, st influxql.Statement, req query.Request, emit func(query.Series) error) error {
	sel, ok := st.(*influxql.SelectStatement)
	if !ok {
		return query.StatementError("only SELECT")
	}
	switch sel.Sources[0].(*influxql.Measurement).Name {
	case "fails":
		return query.StatementError("it failed")
	case "unreachable":
		return fmt.Errorf("%w: connection refused", query.ErrUnavailable)
	}
	loc := time.UTC
	if sel.Location != nil {
		loc = sel.Location
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return emit(query.Series{Name: "cpu", Tags: map[string]string{"host": "a"}, Columns: []string{"time", "mean"},
		Values: [][]any{{t0.In(loc), 1.5}, {t0.Add(time.Minute + 1).In(loc), float64(2)}}})
}

// TestQueryChunked: chunked=true streams a JSON object a chunk, the
// series' rows chunk_size at a time, partial but the last.
func TestQueryChunked(t *testing.T) {
	s, _ := writeServer(t, Config{Catalog: &fakeCatalog{}, Reader: fakeReader{}})
	resp, b := (req{method: "GET", target: "/query?q=SELECT+mean(v)+FROM+cpu&epoch=s&chunked=true&chunk_size=1"}).do(t, s.Handler())
	want := `{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","mean"],"values":[[1704067200,1.5]],"partial":true}],"partial":true}]}
{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"a"},"columns":["time","mean"],"values":[[1704067260,2]]}]}]}
`
	if resp.StatusCode != 200 || b != want {
		t.Errorf("got %s\n%s\nwant\n%s", resp.Status, b, want)
	}
}

// TestEncodeRow: rows are written as encoding/json writes them.
func TestEncodeRow(t *testing.T) {
	rows := [][]any{
		{int64(1704067200000), 1.5, nil, true, "a \"b\"\n<", float64(2), math.Copysign(0, -1)},
		{int64(-1), 1e21, 1e20, 1e-7, 1e-6, 123456789.125, -2.5e-10, math.MaxFloat64, math.SmallestNonzeroFloat64},
		{time.Date(2024, 1, 1, 0, 0, 0, 1, time.UTC), "x", false},
	}
	for _, r := range rows {
		var q queryWriter
		q.encodeRow(r)
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.pending.String(); got != string(want) {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
