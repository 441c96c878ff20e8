package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/daemon"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// Several tenants: rows written as a credential's role (see tenants_test.go).

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
