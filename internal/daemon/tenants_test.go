package daemon_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	influxdb1 "github.com/influxdata/influxdb1-client/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/daemon"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// Several tenants (--auth-file, docs/operations.md "Several tenants"),
// end to end: InfluxDB's client libraries with tokens and 1.x users, each
// kept to its grant; rows written as a credential's PostgreSQL role, and
// what that role may not do answered 403 without holding anyone else's
// rows; a reload that takes a credential away mid-stream; and secrets
// that never show in the log, the metrics or an answer.

// tenantSecret returns 32 random hex digits: a token or a password that
// no other text holds, so that finding it in a log means it leaked.
func tenantSecret(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// tenantUser returns the SECRET field of a 1.x user with password, as
// auth.HashPassword makes it but at bcrypt's lowest cost: the file takes
// any, and HashPassword's costs a second or more a verification under the
// race detector.
func tenantUser(t *testing.T, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return "user:" + user + ":" + string(hash)
}

// writeCredentials writes lines as the credentials file at path, whole:
// a reload never reads half of it.
func writeCredentials(t *testing.T, path string, lines ...string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tokenHeader is the Authorization header of a token, as InfluxDB 2's
// clients send it.
func tokenHeader(token string) []string { return []string{"Authorization", "Token " + token} }

// TestTenantClients: InfluxDB's client libraries with credentials of
// --auth-file. influxdb-client-go v2 with a write-only token writes its
// bucket and gets a 403 ("forbidden") for another, and cannot query;
// influxdb1-client with a user and password writes to its databases; a
// query-only user can SHOW MEASUREMENTS and SHOW DATABASES (only its own)
// but not write; a wrong password is 401. The metrics count each
// credential's answers.
func TestTenantClients(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	_, other := pgtest.Schema(t)
	writerToken, alicePW, grafanaPW := tenantSecret(t), tenantSecret(t), tenantSecret(t)
	file := filepath.Join(t.TempDir(), "credentials")
	writeCredentials(t, file,
		"# the tenants of TestTenantClients",
		"writer  "+auth.HashToken(writerToken)+" write="+schema,
		"alice   "+tenantUser(t, "alice", alicePW)+" write="+schema+","+other,
		"grafana "+tenantUser(t, "grafana", grafanaPW)+" query="+schema,
	)
	base := daemontest.Start(t, schema, "--schema-from-db", "--auth-file", file).Base
	ctx := t.Context()

	// influxdb-client-go v2, a token that may write to its bucket only.
	v2 := influxdb2.NewClientWithOptions(base, writerToken, influxdb2.DefaultOptions().
		SetLogLevel(0).SetHTTPRequestTimeout(uint(daemontest.Client.Timeout/time.Second)))
	defer v2.Close()
	if err := v2.WriteAPIBlocking("any-org", schema).WriteRecord(ctx, "tenant_v2,host=a v=1i 1700000000000000000"); err != nil {
		t.Fatalf("v2 write to its bucket: %v", err)
	}
	if n := count(t, pool, schema, "tenant_v2", "host = 'a' AND v = 1"); n != 1 {
		t.Errorf("v2 write to its bucket: got %d rows, want 1", n)
	}
	err := v2.WriteAPIBlocking("any-org", other).WriteRecord(ctx, "tenant_v2,host=b v=2i 1700000001000000000")
	var he *influxhttp.Error
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden || he.Code != "forbidden" ||
		!strings.Contains(he.Message, fmt.Sprintf(`"writer" is not authorized to write to database %q`, other)) {
		t.Errorf("v2 write to another bucket: got %v, want a 403 forbidden naming the bucket", err)
	}
	if n := count(t, pool, other, "tenant_v2", ""); n != 0 {
		t.Errorf("v2 write to another bucket: got %d rows in %s, want none", n, other)
	}
	q := "/query?db=" + url.QueryEscape(schema) + "&q=" + url.QueryEscape("SHOW MEASUREMENTS")
	if a := post(t, nil, base+q, nil, tokenHeader(writerToken)...); a.code != http.StatusForbidden ||
		!strings.Contains(a.message(t), fmt.Sprintf(`"writer" is not authorized to query database %q`, schema)) {
		t.Errorf("a write-only token's query: got %d %q, want 403", a.code, a.body)
	}

	// influxdb1-client, users and passwords.
	v1 := func(user, password string) influxdb1.Client {
		t.Helper()
		c, err := influxdb1.NewHTTPClient(influxdb1.HTTPConfig{Addr: base, Username: user, Password: password, Timeout: daemontest.Client.Timeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	batch := func(db, m string, v float64) influxdb1.BatchPoints {
		t.Helper()
		bp, err := influxdb1.NewBatchPoints(influxdb1.BatchPointsConfig{Database: db, Precision: "s"})
		if err != nil {
			t.Fatal(err)
		}
		pt, err := influxdb1.NewPoint(m, map[string]string{"host": "a"}, map[string]any{"v": v}, time.Unix(1700000000+int64(v), 0))
		if err != nil {
			t.Fatal(err)
		}
		bp.AddPoint(pt)
		return bp
	}
	alice := v1("alice", alicePW)
	for _, db := range []string{schema, other} {
		if err := alice.Write(batch(db, "tenant_v1", 1)); err != nil {
			t.Fatalf("v1 write to %s: %v", db, err)
		}
		if n := count(t, pool, db, "tenant_v1", "host = 'a' AND v = 1"); n != 1 {
			t.Errorf("v1 write to %s: got %d rows, want 1", db, n)
		}
	}

	grafana := v1("grafana", grafanaPW)
	show := func(q, db string) []string {
		t.Helper()
		resp, err := grafana.Query(influxdb1.NewQuery(q, db, ""))
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("%s on %q: %v", q, db, err)
		}
		var names []string
		for _, r := range resp.Results {
			for _, s := range r.Series {
				for _, v := range s.Values {
					names = append(names, v[0].(string))
				}
			}
		}
		return names
	}
	if got, want := show("SHOW MEASUREMENTS", schema), []string{"tenant_v1", "tenant_v2"}; !slices.Equal(got, want) {
		t.Errorf("SHOW MEASUREMENTS as a query-only user: got %v, want %v", got, want)
	}
	// Other tests' schemas hold pginflux's tables too, and other has
	// alice's: the user sees only its own.
	if got := show("SHOW DATABASES", ""); !slices.Equal(got, []string{schema}) {
		t.Errorf("SHOW DATABASES as a query-only user: got %v, want [%s]", got, schema)
	}
	resp, err := grafana.Query(influxdb1.NewQuery("SHOW MEASUREMENTS", other, ""))
	if err == nil {
		err = resp.Error()
	}
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`"grafana" is not authorized to query database %q`, other)) {
		t.Errorf("SHOW MEASUREMENTS on another database: got %v, want 403", err)
	}
	// influxdb1-client's error of a write is the answer's body.
	if err := grafana.Write(batch(schema, "tenant_v1", 2)); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf(`\"grafana\" is not authorized to write to database \"%s\"`, schema)) {
		t.Errorf("a query-only user's write: got %v, want 403", err)
	}

	wrong := v1("alice", "wrong-"+alicePW)
	if err := wrong.Write(batch(schema, "tenant_v1", 3)); err == nil || !strings.Contains(err.Error(), "authorization failed") {
		t.Errorf("a wrong password's write: got %v, want 401", err)
	}
	resp, err = wrong.Query(influxdb1.NewQuery("SHOW MEASUREMENTS", schema, ""))
	if err == nil {
		err = resp.Error()
	}
	if err == nil || !strings.Contains(err.Error(), "authorization failed") {
		t.Errorf("a wrong password's query: got %v, want 401", err)
	}
	if a := post(t, nil, base+"/write?db="+schema+"&u=alice&p=wrong-"+alicePW, []byte("tenant_v1,host=a v=3 1700000003\n")); a.code != http.StatusUnauthorized {
		t.Errorf("a wrong password in the query string: got %d %q, want 401", a.code, a.body)
	}
	if n := count(t, pool, schema, "tenant_v1", ""); n != 1 {
		t.Errorf("after the refused writes: got %d rows, want 1", n)
	}

	mfs := daemontest.Scrape(t, base)
	for _, c := range []struct {
		cred, code string
		want       float64
	}{
		{"writer", "204", 1}, {"writer", "403", 1},
		{"alice", "204", 2},
		{"grafana", "403", 1},
	} {
		if got, _ := daemontest.Sample(mfs, "pginflux_http_credential_write_requests_total", map[string]string{"credential": c.cred, "code": c.code}); got != c.want {
			t.Errorf("write requests of %s answered %s: got %v, want %v", c.cred, c.code, got, c.want)
		}
	}
	if got, _ := daemontest.Sample(mfs, "pginflux_http_write_requests_total", map[string]string{"code": "401"}); got != 2 {
		t.Errorf("write requests answered 401: got %v, want 2", got)
	}
	if got, _ := daemontest.Sample(mfs, "pginflux_http_credential_lines_total", map[string]string{"credential": "alice", "outcome": "taken"}); got != 2 {
		t.Errorf("lines taken of alice: got %v, want 2", got)
	}
}

// teams are two tenants' roles and schemas, made as docs/operations.md's
// worked example makes them: a NOLOGIN role each, granted to the role
// pginflux connects as, and a schema each that the role owns; and a third
// role, which owns what neither team may write.
type teams struct {
	roleA, roleB, outsider string
	schemaA, schemaB       string
	pool                   *pgxpool.Pool
}

// makeTeams makes the roles and schemas of two teams, named after schema
// (roles are the whole server's: each test needs names of its own), and
// drops them at cleanup. Call it before the daemon starts, so that the
// daemon is closed before they are dropped.
func makeTeams(t *testing.T, pool *pgxpool.Pool, schema string) *teams {
	t.Helper()
	sfx := schema[len(schema)-8:]
	tm := &teams{
		roleA: "tenant_a_" + sfx, roleB: "tenant_b_" + sfx, outsider: "tenant_o_" + sfx,
		schemaA: "team_a_" + sfx, schemaB: "team_b_" + sfx,
		pool: pool,
	}
	t.Cleanup(func() {
		for _, s := range []string{tm.schemaA, tm.schemaB} {
			tm.exec(t, "DROP SCHEMA IF EXISTS "+sqlIdent(s)+" CASCADE")
		}
		for _, r := range []string{tm.roleA, tm.roleB, tm.outsider} {
			tm.exec(t, "DROP OWNED BY "+sqlIdent(r))
			tm.exec(t, "DROP ROLE "+sqlIdent(r))
		}
	})
	for _, r := range []string{tm.roleA, tm.roleB, tm.outsider} {
		tm.exec(t, "CREATE ROLE "+sqlIdent(r)+" NOLOGIN")
	}
	tm.exec(t, "CREATE SCHEMA "+sqlIdent(tm.schemaA)+" AUTHORIZATION "+sqlIdent(tm.roleA))
	tm.exec(t, "CREATE SCHEMA "+sqlIdent(tm.schemaB)+" AUTHORIZATION "+sqlIdent(tm.roleB))
	tm.exec(t, "GRANT "+sqlIdent(tm.roleA)+", "+sqlIdent(tm.roleB)+" TO CURRENT_USER")
	return tm
}

func sqlIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// exec runs sql as the administrator, also from a cleanup.
func (tm *teams) exec(t *testing.T, sql string) {
	t.Helper()
	if _, err := tm.pool.Exec(context.WithoutCancel(t.Context()), sql); err != nil {
		t.Errorf("%s: %v", sql, err)
	}
}

// owner returns the owner of schema.table.
func (tm *teams) owner(t *testing.T, schema, table string) string {
	t.Helper()
	var owner string
	if err := tm.pool.QueryRow(t.Context(), "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = $2", schema, table).Scan(&owner); err != nil {
		t.Fatalf("the owner of %s.%s: %v", schema, table, err)
	}
	return owner
}

// TestTenantRoles: a credential's rows are written as its role. The
// tables a team's writes make are its role's. Once team B's role may no
// longer insert into one of its tables, B's writes to it are answered 403
// saying permission was denied, the rows dropped and counted, while team
// A writes all along, every request 204 and every row stored, and B's
// writes to its other tables still land.
func TestTenantRoles(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	tm := makeTeams(t, pool, schema)
	tokA, tokB := tenantSecret(t), tenantSecret(t)
	file := filepath.Join(t.TempDir(), "credentials")
	writeCredentials(t, file,
		"team-a "+auth.HashToken(tokA)+" write="+tm.schemaA+" role="+tm.roleA,
		"team-b "+auth.HashToken(tokB)+" write="+tm.schemaB+" role="+tm.roleB,
	)
	// A commit timeout short enough that rows held rather than refused
	// show as a 503 within the test's time.
	p := daemontest.Config{Options: daemon.Options{CommitTimeout: 10 * time.Second}}.Start(t, schema, "--schema-from-db", "--auth-file", file)
	base := p.Base
	write := func(token, db, body string) answer {
		t.Helper()
		return post(t, nil, base+"/api/v2/write?org=o&bucket="+url.QueryEscape(db), []byte(body), tokenHeader(token)...)
	}

	for _, c := range []struct{ token, schema, role string }{{tokA, tm.schemaA, tm.roleA}, {tokB, tm.schemaB, tm.roleB}} {
		if a := write(c.token, c.schema, "m,host=h v=1i 1700000000000000000\n"); a.code != http.StatusNoContent {
			t.Fatalf("a first write to %s: got %d %q", c.schema, a.code, a.body)
		}
		if n := count(t, pool, c.schema, "m", ""); n != 1 {
			t.Errorf("%s.m: got %d rows, want 1", c.schema, n)
		}
		if owner := tm.owner(t, c.schema, "m"); owner != c.role {
			t.Errorf("%s.m is owned by %s, want %s, the role of the credential that made it", c.schema, owner, c.role)
		}
	}
	if a := write(tokA, tm.schemaB, "m,host=h v=2i 1700000001000000000\n"); a.code != http.StatusForbidden {
		t.Errorf("team A's write to team B's schema: got %d %q, want 403", a.code, a.body)
	}

	// Team B's role loses INSERT on m: another role owns it, B keeps only
	// SELECT and UPDATE.
	tm.exec(t, "ALTER TABLE "+sqlIdent(tm.schemaB)+".m OWNER TO "+sqlIdent(tm.outsider))
	tm.exec(t, "GRANT SELECT, UPDATE ON "+sqlIdent(tm.schemaB)+".m TO "+sqlIdent(tm.roleB))
	var canInsert bool
	if err := pool.QueryRow(t.Context(), "SELECT has_table_privilege($1, $2, 'INSERT')", tm.roleB, tm.schemaB+".m").Scan(&canInsert); err != nil || canInsert {
		t.Fatalf("role %s may insert into %s.m: %v, %v; want false", tm.roleB, tm.schemaB, canInsert, err)
	}

	// Team A writes all along, until team B's refused writes are answered.
	const perRequest = 10
	stop := make(chan struct{})
	type result struct {
		requests int
		err      error
	}
	teamA := make(chan result, 1)
	started := make(chan struct{}) // team A's first request is answered
	go func() {
		defer func() {
			select {
			case <-started:
			default:
				close(started)
			}
		}()
		bodies := distinctLines("busy", 500*perRequest, perRequest)
		for i, body := range bodies {
			a, err := tryPost(t.Context(), nil, base+"/api/v2/write?bucket="+tm.schemaA, []byte(body), tokenHeader(tokA)...)
			if err == nil && a.code != http.StatusNoContent {
				err = fmt.Errorf("got %d %q, want 204", a.code, a.body)
			}
			if err != nil {
				teamA <- result{i, err}
				return
			}
			if i == 0 {
				close(started)
			}
			select {
			case <-stop:
				if i >= 9 {
					teamA <- result{i + 1, nil}
					return
				}
			default:
			}
		}
		teamA <- result{len(bodies), nil}
	}()
	<-started
	const refused = 5
	for i := range refused {
		var body strings.Builder
		for j := range perRequest {
			fmt.Fprintf(&body, "m,host=h%d v=%di %d\n", j, i*perRequest+j, 1_700_000_100_000_000_000+int64(i*perRequest+j)*1000)
		}
		a := write(tokB, tm.schemaB, body.String())
		if a.code != http.StatusForbidden || !strings.Contains(a.body, `"code":"forbidden"`) || !strings.Contains(a.message(t), "permission denied") {
			t.Errorf("team B's write to a table its role may not insert into: got %d %q, want 403, permission denied", a.code, a.body)
		}
	}
	close(stop)
	r := <-teamA
	if r.err != nil {
		t.Fatalf("team A's request %d while team B was refused: %v", r.requests, r.err)
	}
	if rows, distinct := countRows(t, pool, pgx.Identifier{tm.schemaA, "busy"}.Sanitize()); rows != r.requests*perRequest || distinct != rows {
		t.Errorf("team A: got %d rows (%d distinct) of %d requests answered 204, want %d", rows, distinct, r.requests, r.requests*perRequest)
	}
	if n := count(t, pool, tm.schemaB, "m", ""); n != 1 {
		t.Errorf("%s.m: got %d rows, want only the first", tm.schemaB, n)
	}
	if a := write(tokB, tm.schemaB, "ok,host=h v=1i 1700000000000000000\nok,host=h v=2i 1700000001000000000\n"); a.code != http.StatusNoContent {
		t.Errorf("team B's write to another table: got %d %q, want 204", a.code, a.body)
	}
	if n := count(t, pool, tm.schemaB, "ok", ""); n != 2 {
		t.Errorf("%s.ok: got %d rows, want 2", tm.schemaB, n)
	}
	mfs := daemontest.Scrape(t, base)
	if got, _ := daemontest.Sample(mfs, "pginflux_sink_dropped_rows_total", map[string]string{"reason": "denied"}); got != refused*perRequest {
		t.Errorf("rows dropped as denied: got %v, want %d", got, refused*perRequest)
	}
	if got, _ := daemontest.Sample(mfs, "pginflux_http_credential_write_requests_total", map[string]string{"credential": "team-b", "code": "403"}); got != refused {
		t.Errorf("team B's requests answered 403: got %v, want %d", got, refused)
	}
	p.Stop(t)
}

// TestTenantRowLevelSecurity: a row-level security policy on a team's
// table is PostgreSQL's business: a row it allows lands, one it refuses
// is answered 403, and the next allowed row lands again, nothing held.
func TestTenantRowLevelSecurity(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	tm := makeTeams(t, pool, schema)
	tokB := tenantSecret(t)
	file := filepath.Join(t.TempDir(), "credentials")
	writeCredentials(t, file, "team-b "+auth.HashToken(tokB)+" write="+tm.schemaB+" role="+tm.roleB)
	// Rows held rather than written or refused are answered 503 after
	// the commit timeout; the held rows are given up at the stop.
	p := daemontest.Config{Options: daemon.Options{CommitTimeout: 10 * time.Second}}.Start(t, schema,
		"--schema-from-db", "--auth-file", file, "--shutdown-timeout", "1s")
	write := func(line string) answer {
		t.Helper()
		return post(t, nil, p.Base+"/write?db="+url.QueryEscape(tm.schemaB), []byte(line+"\n"), tokenHeader(tokB)...)
	}
	if a := write("rls,host=allowed v=1i 1700000000000000000"); a.code != http.StatusNoContent {
		t.Fatalf("the write that makes the table: got %d %q", a.code, a.body)
	}
	table := sqlIdent(tm.schemaB) + ".rls"
	tm.exec(t, "ALTER TABLE "+table+" ENABLE ROW LEVEL SECURITY")
	tm.exec(t, "ALTER TABLE "+table+" FORCE ROW LEVEL SECURITY") // its owner, team B's role, too
	tm.exec(t, "CREATE POLICY allowed_hosts ON "+table+" USING (true) WITH CHECK (host = 'allowed')")

	for i, c := range []struct {
		host string
		want int
	}{{"allowed", http.StatusNoContent}, {"other", http.StatusForbidden}, {"allowed", http.StatusNoContent}} {
		a := write(fmt.Sprintf("rls,host=%s v=%di %d", c.host, i+2, 1_700_000_000_000_000_000+int64(i+1)*1000))
		if a.code != c.want || c.want == http.StatusForbidden && !strings.Contains(a.message(t), "row-level security") {
			t.Fatalf("host=%s under the policy: got %d %q, want %d; pginflux's warnings:\n%s", c.host, a.code, a.body, c.want, logWarnings(p.Log.String()))
		}
	}
	if n, other := count(t, pool, tm.schemaB, "rls", "host = 'allowed'"), count(t, pool, tm.schemaB, "rls", "host <> 'allowed'"); n != 3 || other != 0 {
		t.Errorf("%s: got %d rows of host allowed and %d of others, want 3 and 0", table, n, other)
	}
}

// logWarnings returns the lines of log at level WARN or ERROR.
func logWarnings(log string) string {
	var b strings.Builder
	for l := range strings.Lines(log) {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestTenantReloadRevokes: credentials change while clients write. X is
// removed from the file and Z's write= moved elsewhere, then pginflux
// reloads (Daemon.Reload, what SIGHUP does): every request of X and Z
// sent after the reload is answered 401 and 403, every request answered
// 204 before it is stored exactly once, none is lost or left waiting, and
// Y, unchanged, writes all along.
func TestTenantReloadRevokes(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	tokX, tokY, tokZ := tenantSecret(t), tenantSecret(t), tenantSecret(t)
	file := filepath.Join(t.TempDir(), "credentials")
	lineX := "x " + auth.HashToken(tokX) + " write=" + schema
	lineY := "y " + auth.HashToken(tokY) + " write=" + schema
	writeCredentials(t, file, lineX, lineY, "z "+auth.HashToken(tokZ)+" write="+schema)
	p := daemontest.Start(t, schema, "--auth-file", file)
	base := p.Base

	// Each client writes until it has sent afterReload requests after the
	// reload, at most maxRequests; the reload comes once each has had
	// beforeReload answered.
	const perRequest, beforeReload, afterReload, maxRequests = 5, 40, 30, 400
	var reloaded atomic.Bool
	type sent struct {
		code  int
		after bool // sent once the reload had returned
	}
	type stream struct {
		token, measurement string
		answers            []sent
		err                error
	}
	streams := []*stream{{token: tokX, measurement: "revoke_x"}, {token: tokY, measurement: "revoke_y"}, {token: tokZ, measurement: "revoke_z"}}
	var ready, wg sync.WaitGroup
	ready.Add(len(streams))
	for _, s := range streams {
		wg.Go(func() {
			readied := false
			setReady := func() {
				if !readied {
					readied = true
					ready.Done()
				}
			}
			defer setReady()
			sentAfter := 0
			for i, body := range distinctLines(s.measurement, maxRequests*perRequest, perRequest) {
				after := reloaded.Load()
				if after {
					if sentAfter == afterReload {
						break
					}
					sentAfter++
				}
				a, err := tryPost(t.Context(), nil, base+"/api/v2/write?bucket="+url.QueryEscape(schema), []byte(body), tokenHeader(s.token)...)
				if err != nil {
					s.err = fmt.Errorf("request %d: %w", i, err)
					return
				}
				s.answers = append(s.answers, sent{a.code, after})
				if i+1 == beforeReload {
					setReady()
				}
			}
		})
	}
	ready.Wait()
	writeCredentials(t, file, lineY, "z "+auth.HashToken(tokZ)+" write="+schema+"_elsewhere")
	if err := p.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	reloaded.Store(true)
	wg.Wait()

	for _, c := range []struct {
		s       *stream
		revoked int // the answer once revoked; 0: never
	}{{streams[0], http.StatusUnauthorized}, {streams[1], 0}, {streams[2], http.StatusForbidden}} {
		s := c.s
		if s.err != nil {
			t.Errorf("%s: %v", s.measurement, s.err)
			continue
		}
		ok, after := 0, 0
		for i, a := range s.answers {
			switch {
			case a.code == http.StatusNoContent && !(a.after && c.revoked != 0):
				ok++
			case a.code == c.revoked && c.revoked != 0:
			default:
				t.Errorf("%s: request %d (sent after the reload: %v) answered %d", s.measurement, i, a.after, a.code)
			}
			if a.after {
				after++
			}
		}
		if ok < beforeReload || after != afterReload {
			t.Errorf("%s: %d requests answered 204, %d sent after the reload; want at least %d and %d: the reload did not come mid-stream",
				s.measurement, ok, after, beforeReload, afterReload)
		}
		if c.revoked == 0 && ok != len(s.answers) {
			t.Errorf("%s: %d of %d requests answered 204, want all", s.measurement, ok, len(s.answers))
		}
		rows, distinct := countRows(t, pool, pgx.Identifier{schema, s.measurement}.Sanitize())
		if rows != ok*perRequest || distinct != rows {
			t.Errorf("%s: got %d rows (%d distinct), want %d: %d requests answered 204, %d lines each", s.measurement, rows, distinct, ok*perRequest, ok, perRequest)
		}
		name := strings.TrimPrefix(s.measurement, "revoke_")
		if got := daemontest.Metric(t, base, "pginflux_http_credential_write_requests_total", map[string]string{"credential": name, "code": "204"}); got != float64(ok) {
			t.Errorf("%s: pginflux_http_credential_write_requests_total{code=204}: got %v, want %d", name, got, ok)
		}
	}
	p.Log.WaitFor(t, `msg="credentials reread" .* credentials=2`)
}

// TestTenantSecretsNeverShown: with the log at debug, after requests
// refused 401 (wrong tokens and passwords, in every form clients send
// them), 403, writes, a bad line, a reload and a reload of a broken file
// whose secret stands where it should not, neither the log, nor
// /metrics, nor any answer (body or header) holds a token, a password,
// the basic-auth header of either, or their hashes.
func TestTenantSecretsNeverShown(t *testing.T) {
	t.Parallel()
	_, schema := pgtest.Schema(t)
	tokA, bobPW, carolTok, daveTok := tenantSecret(t), tenantSecret(t), tenantSecret(t), tenantSecret(t)
	wrongTok, wrongPW := tenantSecret(t), tenantSecret(t)
	bob := tenantUser(t, "bob", bobPW)
	file := filepath.Join(t.TempDir(), "credentials")
	lineA := "team-a " + auth.HashToken(tokA) + " write=" + schema + " query=" + schema
	lineBob := "bob " + bob + " write=" + schema
	writeCredentials(t, file, lineA, lineBob)
	p := daemontest.Start(t, schema, "--log-level", "debug", "--auth-file", file)
	base := p.Base

	var shown strings.Builder // every answer, headers and body
	do := func(target string, want int, body string, headers ...string) {
		t.Helper()
		a := post(t, nil, base+target, []byte(body), headers...)
		fmt.Fprintf(&shown, "%d %v %s\n", a.code, a.header, a.body)
		if a.code != want {
			t.Errorf("%s %v: got %d %q, want %d", target, headers, a.code, a.body, want)
		}
	}
	db := url.QueryEscape(schema)
	line := func(i int) string {
		return fmt.Sprintf("secrets,host=h v=%di %d\n", i, 1_700_000_000_000_000_000+int64(i)*1000)
	}
	// Refused: 401.
	do("/api/v2/write?bucket="+db, http.StatusUnauthorized, line(0), tokenHeader(wrongTok)...)
	do("/api/v2/write?bucket="+db, http.StatusUnauthorized, line(0), "Authorization", "Bearer "+wrongTok)
	do("/write?db="+db+"&u=bob&p="+wrongPW, http.StatusUnauthorized, line(0))
	do("/write?db="+db, http.StatusUnauthorized, line(0), "Authorization", basicAuth("bob", wrongPW))
	do("/write?db="+db, http.StatusUnauthorized, line(0), "Authorization", "Token bob:"+wrongPW)
	do("/query?q=SHOW+DATABASES&u=bob&p="+wrongPW, http.StatusUnauthorized, "")
	// Refused: 403.
	do("/api/v2/write?bucket="+db+"_other", http.StatusForbidden, line(0), tokenHeader(tokA)...)
	do("/write?db="+db+"_other&u=bob&p="+bobPW, http.StatusForbidden, line(0))
	do("/query?db="+db+"&q=SHOW+MEASUREMENTS&u=bob&p="+bobPW, http.StatusForbidden, "")
	// Taken.
	do("/api/v2/write?bucket="+db, http.StatusNoContent, line(1), tokenHeader(tokA)...)
	do("/write?db="+db+"&u=bob&p="+bobPW, http.StatusNoContent, line(2))
	do("/write?db="+db, http.StatusNoContent, line(3), "Authorization", basicAuth("bob", bobPW))
	do("/write?db="+db, http.StatusNoContent, line(4), "Authorization", "Token bob:"+bobPW)
	do("/write?db="+db+"&u=anyone&p="+tokA, http.StatusNoContent, line(5))
	do("/write?db="+db, http.StatusBadRequest, "secrets,host=h v=\n", tokenHeader(tokA)...)
	do("/query?db="+db+"&q=SHOW+MEASUREMENTS", http.StatusOK, "", tokenHeader(tokA)...)

	// A reload that adds a credential, then one of a broken file, with a
	// token where a right should be and a hash where a name should be.
	writeCredentials(t, file, lineA, lineBob, "carol "+auth.HashToken(carolTok)+" write="+schema)
	if err := p.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	do("/api/v2/write?bucket="+db, http.StatusNoContent, line(6), tokenHeader(carolTok)...)
	writeCredentials(t, file, lineA, "dave "+auth.HashToken(daveTok)+" "+daveTok, auth.HashToken(daveTok)+" "+bob)
	if err := p.Reload(); err != nil {
		fmt.Fprintln(&shown, err) // Reload's error is no secret either
	}
	// Each problem named by its line, none by its text.
	p.Log.WaitFor(t, `cannot reread --auth-file.*credentials:2: .*credentials:3: `)
	do("/api/v2/write?bucket="+db, http.StatusNoContent, line(7), tokenHeader(carolTok)...)
	do("/api/v2/write?bucket="+db, http.StatusUnauthorized, line(7), tokenHeader(daveTok)...)
	do("/api/v2/write?bucket="+db, http.StatusUnauthorized, line(7), "Authorization", "Token "+wrongTok)

	for _, target := range []string{"/metrics", "/health", "/readyz", "/ping?verbose=true"} {
		resp, body := daemontest.Get(t, http.MethodGet, base+target)
		fmt.Fprintf(&shown, "%s %v %s\n", resp.Status, resp.Header, body)
	}
	logs := p.Log.String()
	if !strings.Contains(logs, "level=DEBUG") || !strings.Contains(logs, "credentials read") {
		t.Fatalf("the log has no debug lines, or does not say the credentials were read:\n%s", logs)
	}
	secrets := map[string]string{}
	for name, s := range map[string]string{"team A's token": tokA, "carol's token": carolTok, "dave's token": daveTok, "a wrong token": wrongTok} {
		h := auth.HashToken(s)
		secrets[name] = s
		secrets[name+"'s hash"] = h[strings.LastIndex(h, ":")+1:]
	}
	for name, pw := range map[string]string{"bob's password": bobPW, "a wrong password": wrongPW} {
		secrets[name] = pw
		secrets[name+" in basic auth"] = strings.TrimPrefix(basicAuth("bob", pw), "Basic ")
		secrets[name+" in base64"] = base64.StdEncoding.EncodeToString([]byte(pw))
	}
	secrets["bob's bcrypt hash"] = bob[strings.Index(bob, "$"):]
	secrets["bob's bcrypt salt and hash"] = bob[len(bob)-53:]
	for name, s := range secrets {
		for where, text := range map[string]string{"the log": logs, "the answers and /metrics": shown.String()} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds %s", where, name)
			}
		}
	}
}
