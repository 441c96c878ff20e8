package httpapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestQuery: the statements InfluxDB tools send before writing, answered
// in InfluxDB 1.x's JSON; others 501, malformed ones 400, a statement's
// own error in its result.
func TestQuery(t *testing.T) {
	cat := &fakeCatalog{dbs: map[string][]string{
		"":          {"cpu", "disk", "mem"},
		"telegraf":  {"cpu", "disk", "diskio", "mem", "net"},
		"short":     {},
		"we ird\"x": {"a b"},
	}}
	s, _ := writeServer(t, Config{Catalog: cat})
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
		{"grafana", get("SHOW+measurements&db=telegraf&epoch=ms"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["cpu"],["disk"],["diskio"],["mem"],["net"]]}]}]}`},
		{"no db: the default", get("SHOW+MEASUREMENTS"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["cpu"],["disk"],["mem"]]}]}]}`},
		{"limit, offset", get("SHOW+MEASUREMENTS+ON+telegraf+LIMIT+2+OFFSET+1&db=other"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["disk"],["diskio"]]}]}]}`},
		{"regex", get("SHOW+MEASUREMENTS+ON+%22telegraf%22+WITH+MEASUREMENT+%3D~+%2F(%3Fi)%5EDISK%2F+LIMIT+100"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["disk"],["diskio"]]}]}]}`},
		{"not regex", get("SHOW+MEASUREMENTS+WITH+MEASUREMENT+!~+%2Fi%2F&db=telegraf"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["cpu"],["mem"],["net"]]}]}]}`},
		{"equal", get("SHOW+MEASUREMENTS+WITH+MEASUREMENT+%3D+%22a+b%22&db=we+ird%22x"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"measurements","columns":["name"],"values":[["a b"]]}]}]}`},
		{"none", get("SHOW+MEASUREMENTS&db=short"), 200, `{"results":[{"statement_id":0}]}`},
		{"not found", get("SHOW+MEASUREMENTS&db=nope"), 200, `{"results":[{"statement_id":0,"error":"database not found: nope"}]}`},
		{"error ends", get("SHOW+MEASUREMENTS+ON+nope%3BSHOW+DATABASES"), 200, `{"results":[{"statement_id":0,"error":"database not found: nope"}]}`},
		{"retention policies", get("SHOW+RETENTION+POLICIES+ON+telegraf"), 200,
			`{"results":[{"statement_id":0,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","0s","168h0m0s",1,true]]}]}]}`},
		{"retention of 3 days", get("SHOW+RETENTION+POLICIES&db=short"), 200,
			`{"results":[{"statement_id":0,"series":[{"columns":["name","duration","shardGroupDuration","replicaN","default"],"values":[["autogen","72h0m0s","24h0m0s",1,true]]}]}]}`},
		{"comment, case", get("show+Databases+--+a+comment%0A"), 200,
			`{"results":[{"statement_id":0,"series":[{"name":"databases","columns":["name"],"values":[["short"],["telegraf"],["we ird\"x"]]}]}]}`},
		{"select", get("SELECT+*+FROM+cpu"), 501, `{"error":"pginflux does not serve queries: its data is in PostgreSQL, query it there (SELECT * FROM is not one of`},
		{"mixed", req{target: "/query?q=CREATE+DATABASE+a%3BDROP+DATABASE+a"}, 501, `{"error":"pginflux does not serve queries`},
		{"where", get("SHOW+MEASUREMENTS+WHERE+host%3D%27a%27"), 501, `{"error":"pginflux does not serve queries: its data is in PostgreSQL, query it there (SHOW MEASUREMENTS ... WHERE`},
		{"show tag keys", get("SHOW+TAG+KEYS"), 501, `{"error":"pginflux does not serve queries`},
		{"missing q", req{target: "/query"}, 400, `{"error":"missing required parameter \"q\""}`},
		{"only semicolons", get("%3B%3B"), 400, `{"error":"error parsing query: found EOF`},
		{"no name", get("CREATE+DATABASE"), 400, `{"error":"error parsing query: CREATE DATABASE: expected a database name, found EOF"}`},
		{"bad limit", get("SHOW+MEASUREMENTS+LIMIT+x"), 400, `{"error":"error parsing query: LIMIT: expected a number, found x"}`},
		{"bad regex", get("SHOW+MEASUREMENTS+WITH+MEASUREMENT+%3D~+%2F(%2F"), 400, `{"error":"error parsing query: WITH MEASUREMENT: error parsing regexp`},
		{"unterminated", get("CREATE+DATABASE+%22x"), 400, `{"error":"error parsing query: unterminated quoted identifier"}`},
		{"trailing", get("SHOW+DATABASES+x"), 400, `{"error":"error parsing query: SHOW DATABASES: found x, expected the end"}`},
		{"too many statements", get(strings.Repeat("SHOW+DATABASES%3B", maxStatements+1)), 400, `{"error":"error parsing query: 101 statements, more than the 100`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := c.r.do(t, h)
			b = strings.TrimSuffix(b, "\n")
			if resp.StatusCode != c.want || (c.want == 200 && b != c.body) || !strings.HasPrefix(b, c.body) {
				t.Fatalf("got %s\n%s\nwant %d\n%s", resp.Status, b, c.want, c.body)
			}
			if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("got Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	cat.mu.Lock()
	if got := strings.Join(cat.created, ","); got != "telegraf,x,a,b" {
		t.Errorf("got databases created %q, want telegraf,x,a,b", got)
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
// SHOW is not served.
func TestQueryNoCatalog(t *testing.T) {
	s, _ := writeServer(t, Config{})
	h := s.Handler()
	if resp, b := (req{target: "/query?q=CREATE+DATABASE+x"}).do(t, h); resp.StatusCode != 200 || b != `{"results":[{"statement_id":0}]}`+"\n" {
		t.Errorf("CREATE DATABASE: got %s %q", resp.Status, b)
	}
	if resp, b := (req{target: "/query?q=SHOW+DATABASES"}).do(t, h); resp.StatusCode != 501 {
		t.Errorf("SHOW DATABASES: got %s %q, want 501", resp.Status, b)
	}
}

// TestLex: the tokens of InfluxQL that /query reads.
func TestLex(t *testing.T) {
	for q, want := range map[string]string{
		`SHOW MEASUREMENTS ON "a\"b" WITH MEASUREMENT =~ /a\/b\d/`: `SHOW|MEASUREMENTS|ON|"a\"b"|WITH|MEASUREMENT|=~|/a/b\d/`,
		`create database x with duration 1h;`:                      `create|database|x|with|duration|1h|;`,
		`a != 'it''s'`:                                             `a|!=|'it'|'s'`,
		`a <> b -- the rest`:                                       `a|<>|b`,
		`été/2`:                                                    `été|/|2`,
	} {
		toks, err := lex(q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if got := strings.Join(texts(toks), "|"); got != want {
			t.Errorf("%s: got %s, want %s", q, got, want)
		}
	}
}
