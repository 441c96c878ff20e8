package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/doccheck"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// The tables pginflux writes: both storage layouts and the rejected
// table, a point's identity (one row per point, however it arrives),
// converting a table made in append mode, and the privileges pginflux
// needs.

// TestEndToEndColumns is the default storage: one typed column per tag and
// field.
func TestEndToEndColumns(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema)
	daemontest.Send(t, p.UDP,
		"cpu,host=a,cpu=cpu0 usage_idle=95.9,usage_user=2.0 1574753954000000000\n"+
			"cpu,host=b,cpu=cpu1 usage_idle=90,usage_user=7.5,procs=12i 1574753955000000000\n"+
			"cpu,host=c usage_idle=\n"+
			"cpu,host=d usage_idle=\"not a number\" 1574753956000000000\n")
	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	daemontest.WaitRows(t, pool, cpu, 3)
	p.Stop(t)
	rows, err := pool.Query(t.Context(), "SELECT time, host, coalesce(cpu, '-'), coalesce(usage_idle, -1), coalesce(usage_user, -1), coalesce(procs, -1) FROM "+cpu+" ORDER BY time")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var tm time.Time
		var host, c string
		var idle, user float64
		var procs int64
		if err := rows.Scan(&tm, &host, &c, &idle, &user, &procs); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %s %v %v %d", tm.Unix(), host, c, idle, user, procs))
	}
	want := []string{
		"1574753954 a cpu0 95.9 2 -1",
		"1574753955 b cpu1 90 7.5 12",
		"1574753956 d - -1 -1 -1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var reasons []string
	rrows, err := pool.Query(t.Context(), "SELECT reason || ': ' || line FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" ORDER BY reason")
	if err != nil {
		t.Fatal(err)
	}
	reasons, err = pgx.CollectRows(rrows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	wantReasons := []string{
		"syntax: cpu,host=c usage_idle=",
		`type_conflict: cpu,host=d usage_idle="not a number" 1574753956000000000`,
	}
	if strings.Join(reasons, "\n") != strings.Join(wantReasons, "\n") {
		t.Errorf("got rejected\n%s\nwant\n%s", strings.Join(reasons, "\n"), strings.Join(wantReasons, "\n"))
	}
}

type jsonbRow struct {
	time   time.Time
	tags   string
	fields string
}

func readJSONB(t *testing.T, pool *pgxpool.Pool, table string) []jsonbRow {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT time, tags::text, fields::text FROM "+table+" ORDER BY time, fields::text")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (jsonbRow, error) {
		var j jsonbRow
		err := r.Scan(&j.time, &j.tags, &j.fields)
		return j, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestEndToEndJSONB is --storage jsonb: tags and fields in two jsonb
// columns; the bad lines of a datagram are kept in the rejected table,
// with their reason and source, and its good lines land.
func TestEndToEndJSONB(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--storage", "jsonb")
	before := time.Now()

	daemontest.Send(t, p.UDP,
		"cpu,host=a,cpu=cpu0 usage_idle=95.9,usage_user=2.0 1574753954000000000",
		// One datagram mixing good and bad lines: only the good ones land.
		strings.Join([]string{
			"cpu,host=b,cpu=cpu1 usage_idle=90,usage_user=7.5 1574753955000000000",
			"cpu,host=c usage_idle=", // no value
			"mem,host=a used=123i,free=42u,ok=true,note=\"fine \\\"x\\\"\" 1574753956000000000",
			"cpu,host=d",                         // no fields
			"disk,host=a used=1i,nul=\"a\x00b\"", // NUL byte
			"disk,host=a,path=/ used_percent=12.5",
			"",
		}, "\n"),
	)

	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	mem := pgx.Identifier{schema, "mem"}.Sanitize()
	disk := pgx.Identifier{schema, "disk"}.Sanitize()
	daemontest.WaitRows(t, pool, cpu, 2)
	daemontest.WaitRows(t, pool, mem, 1)
	daemontest.WaitRows(t, pool, disk, 1)

	gotCPU := readJSONB(t, pool, cpu)
	wantCPU := []jsonbRow{
		{time.Unix(1574753954, 0), `{"cpu": "cpu0", "host": "a"}`, `{"usage_idle": 95.9, "usage_user": 2.0}`},
		{time.Unix(1574753955, 0), `{"cpu": "cpu1", "host": "b"}`, `{"usage_idle": 90.0, "usage_user": 7.5}`},
	}
	compareRows(t, gotCPU, wantCPU)

	gotMem := readJSONB(t, pool, mem)
	wantMem := []jsonbRow{
		{time.Unix(1574753956, 0), `{"host": "a"}`, `{"ok": true, "free": 42, "note": "fine \"x\"", "used": 123}`},
	}
	compareRows(t, gotMem, wantMem)

	// A line without a timestamp gets the time it was received.
	gotDisk := readJSONB(t, pool, disk)
	if len(gotDisk) != 1 || gotDisk[0].tags != `{"host": "a", "path": "/"}` || gotDisk[0].fields != `{"used_percent": 12.5}` {
		t.Fatalf("got %+v", gotDisk)
	}
	if d := gotDisk[0].time; d.Before(before.Add(-time.Second)) || d.After(time.Now().Add(time.Second)) {
		t.Errorf("got time %v, want about now (%v)", d, before)
	}
	p.Stop(t)

	// The bad lines are kept, with their reason, for a person to look at.
	rows, err := pool.Query(t.Context(), "SELECT reason, line, source FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" ORDER BY line")
	if err != nil {
		t.Fatal(err)
	}
	type rej struct{ reason, line, source string }
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rej, error) {
		var x rej
		return x, r.Scan(&x.reason, &x.line, &x.source)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []rej{
		{"syntax", "cpu,host=c usage_idle=", ""},
		{"syntax", "cpu,host=d", ""},
		{"nul_byte", "disk,host=a used=1i,nul=\"a\ufffdb\"", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got rejected %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i].reason != want[i].reason || got[i].line != want[i].line || !strings.HasPrefix(got[i].source, "127.0.0.1:") {
			t.Errorf("rejected %d: got %+v, want %+v from 127.0.0.1", i, got[i], want[i])
		}
	}
}

func compareRows(t *testing.T, got, want []jsonbRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range got {
		if !got[i].time.Equal(want[i].time) || got[i].tags != want[i].tags || got[i].fields != want[i].fields {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestPointIdentityEndToEnd: a point split over two datagrams, and over
// two HTTP requests, is one row; a later write of one field updates only
// it; a resent /write body changes nothing.
func TestPointIdentityEndToEnd(t *testing.T) {
	t.Parallel()
	for _, storage := range []string{"columns", "jsonb"} {
		t.Run(storage, func(t *testing.T) {
			t.Parallel()
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
					" AS r, LATERAL to_jsonb(r.*) AS j ORDER BY time, 1"
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

// TestTableConversion runs the recipe of docs/tables.md that converts a
// table made in append mode (as earlier versions made them) to one with a point key,
// then writes into it: the old rows of a point were merged, and new
// writes merge into them.
func TestTableConversion(t *testing.T) {
	t.Parallel()
	_, after, ok := strings.Cut(doccheck.Section(t, "docs/tables.md", "Converting a table"), "To convert")
	if !ok {
		t.Fatal("docs/tables.md has no conversion recipe")
	}
	_, after, _ = strings.Cut(after, "```sql\n")
	recipe, _, _ := strings.Cut(after, "```")
	pool, schema := pgtest.Schema(t)
	recipe = strings.ReplaceAll(recipe, "metrics.", pgx.Identifier{schema}.Sanitize()+".")

	p := daemontest.Start(t, schema, "--write-mode", "append")
	daemontest.Send(t, p.UDP, "cpu,host=a,cpu=cpu0 usage_idle=90 1000000000\ncpu,host=a,cpu=cpu0 usage_user=5 1000000000\ncpu,host=b,cpu=cpu0 usage_idle=80 1000000000\n")
	table := pgx.Identifier{schema, "cpu"}.Sanitize()
	daemontest.WaitRows(t, pool, table, 3)
	p.Stop(t)
	if _, err := pool.Exec(t.Context(), recipe); err != nil {
		t.Fatalf("the recipe: %v\n%s", err, recipe)
	}
	sel := "SELECT concat_ws('|', host, usage_idle, usage_user) FROM " + table + " ORDER BY host"
	pollRows(t, pool, sel, "a|90|5", "b|80")

	p = daemontest.Start(t, schema)
	daemontest.Send(t, p.UDP, "cpu,cpu=cpu0,host=a usage_user=6 1000000000\ncpu,host=c,cpu=cpu0 usage_idle=70 1000000000\n")
	pollRows(t, pool, sel, "a|90|6", "b|80", "c|70")
	p.Stop(t)
}

// TestMinimalPrivileges runs pginflux as a role that is no superuser and
// has no privilege on the database beyond PUBLIC's CONNECT and TEMP: only
// USAGE and CREATE on a schema an administrator made. Its tables and the
// rejected table are created and filled. A second role, with USAGE on the
// schema and INSERT on tables made for it, writes into those.
func TestMinimalPrivileges(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	cluster := pgtest.Cluster(t) // trust on its unix socket; skips for an external server
	role := "pginflux_min_" + schema[len(schema)-8:]
	roleRO := role + "_ins"
	admin := func(sql string) {
		t.Helper()
		// Also from the cleanup, when t.Context is done.
		if _, err := pool.Exec(context.WithoutCancel(t.Context()), sql); err != nil {
			t.Errorf("%s: %v", sql, err)
		}
	}
	ident := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	admin("CREATE ROLE " + ident(role) + " LOGIN")
	admin("CREATE ROLE " + ident(roleRO) + " LOGIN")
	t.Cleanup(func() {
		// Before the schema goes: the roles own tables in it.
		for _, r := range []string{role, roleRO} {
			admin("DROP OWNED BY " + ident(r))
			admin("DROP ROLE " + ident(r))
		}
	})
	admin("GRANT USAGE, CREATE ON SCHEMA " + ident(schema) + " TO " + ident(role))
	var super, createDB, createOnDB bool
	if err := pool.QueryRow(t.Context(), `SELECT rolsuper, rolcreatedb, has_database_privilege($1, current_database(), 'CREATE')
		FROM pg_roles WHERE rolname = $1`, role).Scan(&super, &createDB, &createOnDB); err != nil {
		t.Fatal(err)
	}
	if super || createDB || createOnDB {
		t.Fatalf("role %s: superuser %v, createdb %v, CREATE on the database %v; want none", role, super, createDB, createOnDB)
	}

	t.Run("create", func(t *testing.T) {
		t.Parallel()
		p := daemontest.Config{ConnString: cluster.ConnString("postgres") + " user=" + role}.Start(t, schema)
		logs := p.Log
		daemontest.Send(t, p.UDP, "minpriv,host=a v=1i,s=\"x\" 1000000000\nminpriv,host=b v=2i 2000000000\nminpriv,host=c v=\n")
		daemontest.WaitRows(t, pool, pgx.Identifier{schema, "minpriv"}.Sanitize(), 2)
		daemontest.WaitRows(t, pool, pgx.Identifier{schema, "pginflux_rejected"}.Sanitize(), 1)
		p.Stop(t)
		var owner string
		if err := pool.QueryRow(t.Context(), "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'minpriv'", schema).Scan(&owner); err != nil {
			t.Fatal(err)
		}
		if owner != role {
			t.Errorf("table owner: got %s, want %s", owner, role)
		}
		if strings.Contains(logs.String(), "schema created") {
			t.Error("pginflux created the schema, which existed")
		}
	})

	t.Run("insert only", func(t *testing.T) {
		t.Parallel()
		for _, sql := range []string{
			"CREATE TABLE " + ident(schema) + ".preset (time timestamptz NOT NULL, host text, v bigint)",
			"GRANT USAGE ON SCHEMA " + ident(schema) + " TO " + ident(roleRO),
			"GRANT INSERT ON " + ident(schema) + ".preset TO " + ident(roleRO),
		} {
			admin(sql)
		}
		p := daemontest.Config{ConnString: cluster.ConnString("postgres") + " user=" + roleRO}.Start(t, schema, "--rejected-table", "")
		base := p.Base
		daemontest.Send(t, p.UDP, "preset,host=a v=1i 1000000000\npreset,host=b v=2i 2000000000\n")
		daemontest.WaitRows(t, pool, pgx.Identifier{schema, "preset"}.Sanitize(), 2)
		if v := daemontest.Metric(t, base, "pginflux_sink_dropped_rows_total", nil); v != 0 {
			t.Errorf("dropped rows: got %v, want 0", v)
		}
		p.Stop(t)
	})
}
