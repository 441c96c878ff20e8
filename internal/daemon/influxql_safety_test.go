package daemon_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// /query is safe for the database: read-only, bounded in time, points and
// series, and run with the querying credential's rights.

// queryAnswer is /query's answer, decoded.
type queryAnswer struct {
	Results []struct {
		Series []struct {
			Name   string
			Tags   map[string]string
			Values [][]any
		}
		Error string
	}
	Error string
}

// influxQL sends q to /query of base and decodes the answer.
func influxQL(t *testing.T, base, db, q string, headers ...string) (int, queryAnswer) {
	t.Helper()
	a := post(t, nil, base+"/query?epoch=ns&db="+url.QueryEscape(db), []byte(url.Values{"q": {q}}.Encode()),
		append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
	var qa queryAnswer
	if err := json.Unmarshal([]byte(a.body), &qa); err != nil {
		t.Fatalf("%s: %d %q: %v", q, a.code, a.body, err)
	}
	return a.code, qa
}

// TestInfluxQLBounds: a statement that runs past --query-timeout (here
// waiting for a lock) is cancelled with InfluxDB's "query timeout" error,
// and the next one is answered; more points or series than
// --query-max-points and --query-max-series are errors, not truncated
// answers; what reads like SQL in a query is only ever a value.
func TestInfluxQLBounds(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--query-timeout", "300ms", "--query-max-points", "5", "--query-max-series", "2").Base
	writeLines(t, base+"/write?db=x&precision=s", 204,
		"m,host=a v=1 1700000000", "m,host=a v=2 1700000010", "m,host=a v=3 1700000020",
		"m,host=b v=4 1700000000", "m,host=c v=5 1700000000", "m,host=c v=6 1700000010")
	check := func(q, wantErr string) {
		t.Helper()
		code, qa := influxQL(t, base, "x", q)
		if code != http.StatusOK || len(qa.Results) != 1 || !strings.Contains(qa.Results[0].Error, wantErr) {
			t.Errorf("%s: got %d %+v, want the error %q", q, code, qa, wantErr)
		}
	}
	check(`SELECT v FROM m`, "max-select-point limit exceeded: (6/5)")
	check(`SELECT mean(v) FROM m GROUP BY host`, "max-select-series limit exceeded: (3/2)")
	if _, qa := influxQL(t, base, "x", `SELECT mean(v) FROM m WHERE host != 'c' GROUP BY host`); len(qa.Results) != 1 || len(qa.Results[0].Series) != 2 {
		t.Errorf("two series: got %+v", qa)
	}

	release := lockTable(t, pool, schema, "m")
	check(`SELECT last(v) FROM m`, "query timeout")
	release()
	if _, qa := influxQL(t, base, "x", `SELECT last(v) FROM m`); len(qa.Results) != 1 || len(qa.Results[0].Series) != 1 || qa.Results[0].Series[0].Values[0][1] != float64(3) {
		t.Errorf("after the lock: got %+v, want last 3 (host a's, the latest)", qa)
	}

	for _, q := range []string{
		`SELECT v FROM m WHERE host = 'a\'; DROP TABLE m; --'`,
		`SELECT v FROM m WHERE host =~ /'\); DROP TABLE m; --/`,
		`SELECT "v\"; DROP TABLE m; --" FROM "m\"; DROP TABLE m; --"`,
		`SELECT v FROM m WHERE "host\" = 'a'; DROP TABLE m; --" = 'x'`,
		`SELECT v INTO m2 FROM m`,
		`DROP MEASUREMENT m`,
		`DELETE FROM m`,
	} {
		if code, qa := influxQL(t, base, "x", q); code != http.StatusOK || len(qa.Results) != 1 || len(qa.Results[0].Series) != 0 {
			t.Errorf("%s: got %d %+v, want no series", q, code, qa)
		}
	}
	if n := count(t, pool, schema, "m", "true"); n != 6 {
		t.Errorf("after the queries: got %d rows in m, want 6", n)
	}
	if n := queryInt(t, pool, "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'm2'", schema); n != 0 {
		t.Errorf("SELECT INTO made table m2")
	}
}

// TestInfluxQLRoles: a credential's query runs as its role, so PostgreSQL
// decides what it may read: team A reads its schema; team B, granted
// query= on team A's database by the file but not by PostgreSQL, gets
// PostgreSQL's refusal in the statement's result; a credential without
// query= on it gets 403 before anything runs.
func TestInfluxQLRoles(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	tm := makeTeams(t, pool, schema)
	tokA, tokB, tokW := tenantSecret(t), tenantSecret(t), tenantSecret(t)
	file := filepath.Join(t.TempDir(), "credentials")
	writeCredentials(t, file,
		"team-a "+auth.HashToken(tokA)+" write="+tm.schemaA+" query="+tm.schemaA+" role="+tm.roleA,
		"team-b "+auth.HashToken(tokB)+" write="+tm.schemaB+" query="+tm.schemaA+","+tm.schemaB+" role="+tm.roleB,
		"writer "+auth.HashToken(tokW)+" write="+tm.schemaA,
	)
	base := daemontest.Start(t, schema, "--schema-from-db", "--auth-file", file).Base
	if a := post(t, nil, base+"/api/v2/write?org=o&precision=s&bucket="+tm.schemaA, []byte("m,host=h v=1i 1700000000\n"), tokenHeader(tokA)...); a.code != http.StatusNoContent {
		t.Fatalf("write: got %d %q", a.code, a.body)
	}
	q := `SELECT sum(v) FROM m`
	code, qa := influxQL(t, base, tm.schemaA, q, tokenHeader(tokA)...)
	if code != http.StatusOK || len(qa.Results) != 1 || len(qa.Results[0].Series) != 1 || qa.Results[0].Series[0].Values[0][1] != float64(1) {
		t.Errorf("team A: got %d %+v, want sum 1", code, qa)
	}
	code, qa = influxQL(t, base, tm.schemaA, q, tokenHeader(tokB)...)
	if code != http.StatusOK || len(qa.Results) != 1 || !strings.Contains(qa.Results[0].Error, "permission denied") {
		t.Errorf("team B: got %d %+v, want PostgreSQL's permission denied", code, qa)
	}
	code, qa = influxQL(t, base, tm.schemaA, q, tokenHeader(tokW)...)
	if code != http.StatusForbidden || !strings.Contains(qa.Error, "not authorized to query") {
		t.Errorf("a write-only credential: got %d %+v, want 403", code, qa)
	}
}

// TestInfluxQLMemory: the rows of a series being answered draw from the
// memory budget: a statement whose windows would hold more than it admits
// is an error, and a smaller one is answered.
func TestInfluxQLMemory(t *testing.T) {
	t.Parallel()
	_, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--max-memory", "32MiB").Base
	writeLines(t, base+"/write?db=x&precision=s", 204, "m,host=a v=1 1700000000", "m,host=a v=2 1700000010")
	// 500,000 windows of one series: 34 MB of rows, more than the 24 MiB
	// a 32 MiB budget admits.
	q := `SELECT count(v) FROM m WHERE time >= 1700000000s AND time < 1700500000s GROUP BY time(1s)`
	code, qa := influxQL(t, base, "x", q)
	if code != http.StatusOK || len(qa.Results) != 1 || !strings.Contains(qa.Results[0].Error, "needs more memory than --max-memory leaves") {
		t.Errorf("%s: got %d %+v, want the memory error", q, code, qa)
	}
	q = `SELECT count(v) FROM m WHERE time >= 1700000000s AND time < 1700001000s GROUP BY time(1s)`
	if _, qa := influxQL(t, base, "x", q); len(qa.Results) != 1 || len(qa.Results[0].Series) != 1 || len(qa.Results[0].Series[0].Values) != 1000 {
		t.Errorf("%s: got %+v, want 1,000 windows", q, qa)
	}
}
