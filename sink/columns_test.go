package sink

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
)

// line parses one line of line protocol into a Point the test owns.
func line(t *testing.T, text string) *parse.Point {
	t.Helper()
	p := parse.NewParser(parse.Nanosecond)
	p.Reset([]byte(text), time.Unix(0, 0))
	pt, err := p.Next()
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	c := &parse.Point{Measurement: []byte(string(pt.Measurement)), Time: pt.Time}
	for _, tg := range pt.Tags {
		c.Tags = append(c.Tags, parse.Tag{Key: []byte(string(tg.Key)), Value: []byte(string(tg.Value))})
	}
	for _, f := range pt.Fields {
		c.Fields = append(c.Fields, parse.Field{Key: []byte(string(f.Key)), Kind: f.Kind, Num: f.Num, Str: []byte(string(f.Str))})
	}
	return c
}

// write sends lines through a fresh columns-storage sink and closes it.
func write(t *testing.T, pool *pgxpool.Pool, schema string, cfg Config, lines ...string) *Metrics {
	t.Helper()
	cfg.Schema, cfg.Storage = schema, StorageColumns
	return writeBatches(t, pool, cfg, lines)
}

// columns returns "name type" of every column of a table, in order.
func columns(t *testing.T, pool *pgxpool.Pool, schema, table string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, pgx.Identifier{schema, table}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// query returns the rows of a query as text, one string per row with the
// columns separated by |, NULL as ∅.
func query(t *testing.T, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "∅"
			case time.Time:
				parts[i] = v.UTC().Format(time.RFC3339Nano)
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		if len(got) > 20 {
			t.Errorf("%s: got %d rows, first %q; want %q", what, len(got), got[:20], want)
			return
		}
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

func TestColumnsTypes(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	write(t, pool, schema, Config{},
		`m,host=a,region=eu f=1.5,i=-7i,u=18446744073709551615u,s="hi \"x\"",b=true 1000`,
		`m,host=b f=2,i=9223372036854775807i,u=0u,b=F 2000`,
	)
	equal(t, "columns", columns(t, pool, schema, "m"), []string{
		"time timestamp with time zone", "series_id bigint", "host text", "region text",
		"f double precision", "i bigint", "u numeric", "s text", "b boolean",
	})
	equal(t, "rows", query(t, pool, "SELECT host, region, f, i, u::text, s, b FROM "+pgx.Identifier{schema, "m"}.Sanitize()+" ORDER BY time"), []string{
		`a|eu|1.5|-7|18446744073709551615|hi "x"|true`,
		`b|∅|2|9223372036854775807|0|∅|false`,
	})
}

func TestColumnsUint64Bigint(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	m := write(t, pool, schema, Config{UintType: "bigint"},
		`m u=5u 1000`,
		`m u=18446744073709551615u 2000`,
	)
	equal(t, "columns", columns(t, pool, schema, "m"), []string{"time timestamp with time zone", "series_id bigint", "u bigint"})
	equal(t, "rows", query(t, pool, "SELECT u FROM "+pgx.Identifier{schema, "m"}.Sanitize()+" ORDER BY time"), []string{"5", "∅"})
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(ReasonOutOfRange)); got != 1 {
		t.Errorf("got %v out_of_range, want 1", got)
	}
	equal(t, "rejected", rejectedLines(t, pool, schema), []string{"out_of_range: m u=18446744073709551615u 2000"})
}

func rejectedLines(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	var out []string
	for _, r := range readRejected(t, pool, schema) {
		out = append(out, r.reason+": "+r.line)
	}
	return out
}

// TestConflictInBigBatch: a value that cannot fit its column, in the middle
// of a 10,000-row batch, fails nothing: every row lands (that one without
// the value) and the value goes to the rejected table.
func TestConflictInBigBatch(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	lines := make([]string, 10_000)
	for i := range lines {
		lines[i] = fmt.Sprintf("cpu,host=h%d usage=%d.5,n=%di %d", i%7, i, i, (i+1)*1000)
	}
	lines[5000] = `cpu,host=h3 usage="high",n=5000i 5001000`
	m := write(t, pool, schema, Config{}, lines...)
	table := pgx.Identifier{schema, "cpu"}.Sanitize()
	equal(t, "counts", query(t, pool, "SELECT count(*), count(usage), count(n) FROM "+table), []string{"10000|9999|10000"})
	equal(t, "row", query(t, pool, "SELECT host, usage, n FROM "+table+" WHERE n = 5000"), []string{"h3|∅|5000"})
	equal(t, "rejected", rejectedLines(t, pool, schema), []string{`type_conflict: cpu,host=h3 usage="high" 5001000`})
	if got := testutil.ToFloat64(m.RowsWritten); got != 10_000 {
		t.Errorf("got %v rows written, want 10000", got)
	}
}

// TestPrecreatedTable: a table a user made beforehand, with narrower types
// and extra columns, is written into as it is; only missing columns are
// added, and what does not fit goes to the rejected table.
func TestPrecreatedTable(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "cpu"}.Sanitize()
	_, err := pool.Exec(t.Context(), "CREATE TABLE "+table+` (
		id bigserial PRIMARY KEY,
		time timestamptz NOT NULL,
		host varchar(64),
		usage_idle real,
		cores int,
		note text DEFAULT 'from a default')`)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 300)
	m := write(t, pool, schema, Config{},
		`cpu,host=a usage_idle=95.25,cores=8i,extra=1i 1000`,
		`cpu,host=`+long+` usage_idle=1e300,cores=1.5,extra=2i 2000`,
		`cpu,host=c usage_idle=7i,cores=4.0,extra=3i 3000`,
	)
	equal(t, "columns", columns(t, pool, schema, "cpu"), []string{
		"id bigint", "time timestamp with time zone", "host character varying(64)", "usage_idle real",
		"cores integer", "note text", "extra bigint",
	})
	equal(t, "rows", query(t, pool, "SELECT id, host, usage_idle, cores, note, extra FROM "+table+" ORDER BY time"), []string{
		"1|a|95.25|8|from a default|1",
		"2|∅|∅|∅|from a default|2",
		"3|c|7|4|from a default|3",
	})
	equal(t, "rejected", rejectedLines(t, pool, schema), []string{
		"out_of_range: cpu,host=" + long + " cores=1.5 2000",
		"out_of_range: cpu,host=" + long + " usage_idle=1e+300 2000",
		"too_long: cpu,host=" + long + " usage_idle=1e+300,cores=1.5,extra=2i 2000",
	})
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(ReasonTooLong)); got != 1 {
		t.Errorf("got %v too_long, want 1", got)
	}
}

// TestClashes: a tag and a field with one key, keys named time, and keys
// that differ only in case each get their own column, deterministically.
func TestClashes(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	write(t, pool, schema, Config{},
		`m,host=a,time=t1,Host=A host=1.5,time=2i,Time=3i 1000`,
		`m,host=b host=2.5 2000`,
	)
	equal(t, "columns", columns(t, pool, schema, "m"), []string{
		"time timestamp with time zone", "series_id bigint", "host text", "time_tag text", "Host text",
		"host_field double precision", "time_field bigint", "Time bigint",
	})
	equal(t, "rows", query(t, pool, `SELECT host, time_tag, "Host", host_field, time_field, "Time" FROM `+pgx.Identifier{schema, "m"}.Sanitize()+" ORDER BY time"), []string{
		"a|t1|A|1.5|2|3",
		"b|∅|∅|2.5|∅|∅",
	})
	comments := query(t, pool, `SELECT attname || ': ' || col_description(attrelid, attnum) FROM pg_attribute
		WHERE attrelid = '`+pgx.Identifier{schema, "m"}.Sanitize()+`'::regclass AND attnum > 2 ORDER BY attnum`)
	equal(t, "comments", comments, []string{
		"host: pginflux tag host", "time_tag: pginflux tag time", "Host: pginflux tag Host",
		"host_field: pginflux field host", "time_field: pginflux field time", "Time: pginflux field Time",
	})
}

// TestConcurrentColumns: sinks (as separate pginflux processes would) add
// different columns to one table at the same time; all succeed.
func TestConcurrentColumns(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	const sinks, rows = 4, 200
	var wg sync.WaitGroup
	for k := range sinks {
		wg.Go(func() {
			m := NewMetrics(nil)
			s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 20, FlushInterval: time.Hour, Writers: 2, RejectedTable: "pginflux_rejected"}, m, quiet)
			b := s.NewBatcher()
			for i := range rows {
				b.Add(line(t, fmt.Sprintf("shared,sink=s%d f%d=%di,g%d_%d=1 %d", k, k, i, k, i%5, (k*rows+i+1)*1000)), origin)
			}
			b.Flush()
			closeSink(t, s)
		})
	}
	wg.Wait()
	table := pgx.Identifier{schema, "shared"}.Sanitize()
	equal(t, "count", query(t, pool, "SELECT count(*) FROM "+table), []string{fmt.Sprint(sinks * rows)})
	if got, want := len(columns(t, pool, schema, "shared")), 1+1+1+sinks*(1+5); got != want {
		t.Errorf("got %d columns, want %d: %v", got, want, columns(t, pool, schema, "shared"))
	}
	for k := range sinks {
		equal(t, "per sink", query(t, pool, fmt.Sprintf("SELECT count(f%d) FROM %s WHERE sink = 's%d'", k, table, k)), []string{fmt.Sprint(rows)})
	}
}

// TestColumnsChangedBehindOurBack: columns that a person drops or adds
// after pginflux has cached the table are picked up.
func TestColumnsChangedBehindOurBack(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "m"}.Sanitize()
	cfg := Config{Schema: schema, Storage: StorageColumns, BatchSize: 100, FlushInterval: time.Hour, Writers: 1, RejectedTable: "pginflux_rejected"}
	s := New(pool, cfg, NewMetrics(nil), quiet)
	b := s.NewBatcher()
	b.Add(line(t, "m a=1i,b=2i 1000"), origin)
	b.Flush()
	waitFor(t, func() bool { return tableRows(t, pool, schema, "m") == 1 })
	if _, err := pool.Exec(t.Context(), "ALTER TABLE "+table+" DROP COLUMN b, ADD COLUMN c text"); err != nil {
		t.Fatal(err)
	}
	b.Add(line(t, `m a=3i,b=4i,c="see" 2000`), origin)
	b.Flush()
	closeSink(t, s)
	equal(t, "rows", query(t, pool, "SELECT a, b, c FROM "+table+" ORDER BY time"), []string{"1|∅|∅", "3|4|see"})
}

// TestColumnLimit: keys beyond --max-columns go to the table's overflow
// jsonb column, counted, and no batch fails.
func TestColumnLimit(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	var fields []string
	for i := range 8 {
		fields = append(fields, fmt.Sprintf("f%d=%di", i, i))
	}
	m := write(t, pool, schema, Config{MaxColumns: 6}, // time, series_id and four
		"wide,host=a "+strings.Join(fields, ",")+" 1000",
		"wide,host=b,zone=z f0=10i,f7=17i 2000",
	)
	equal(t, "columns", columns(t, pool, schema, "wide"), []string{
		"time timestamp with time zone", "series_id bigint", "host text", "f0 bigint", "f1 bigint", "f2 bigint", "pginflux_overflow jsonb",
	})
	equal(t, "rows", query(t, pool, "SELECT host, f0, f1, f2, pginflux_overflow::text FROM "+pgx.Identifier{schema, "wide"}.Sanitize()+" ORDER BY time"), []string{
		`a|0|1|2|{"fields": {"f3": 3, "f4": 4, "f5": 5, "f6": 6, "f7": 7}}`,
		`b|10|∅|∅|{"tags": {"zone": "z"}, "fields": {"f7": 17}}`,
	})
	if got := testutil.ToFloat64(m.OverflowValues); got != 7 {
		t.Errorf("got %v overflow values, want 7", got)
	}
}

// TestRejectedLinesReplay: what goes to the rejected table comes back as
// lines that parse to the values that were rejected.
func TestRejectedLinesReplay(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	write(t, pool, schema, Config{},
		`weird\ name,tag\,key=a\=b f=1i 1000`,
		`weird\ name,tag\,key=c f="str\\ \"q\"",g=true 2000`,
	)
	rej := readRejected(t, pool, schema)
	if len(rej) != 1 {
		t.Fatalf("got %+v, want one rejected value", rej)
	}
	got := line(t, rej[0].line)
	if string(got.Measurement) != "weird name" || string(got.Tags[0].Key) != "tag,key" || string(got.Tags[0].Value) != "c" ||
		len(got.Fields) != 1 || string(got.Fields[0].Str) != `str\ "q"` || got.Time != 2000 {
		t.Errorf("replayed %q as %+v", rej[0].line, got)
	}
}

func TestNumericEncoding(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "n"}.Sanitize()
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+table+" (time timestamptz NOT NULL, v numeric)"); err != nil {
		t.Fatal(err)
	}
	vals := []string{"0", "1", "-1", "95.9", "0.0001", "12345.6789", "1e-07", "1e+21", "-123456789012.5", "2.5e-05", "9999", "10000", "0.5"}
	var lines []string
	for i, v := range vals {
		lines = append(lines, fmt.Sprintf("n v=%s %d", v, (i+1)*1000))
	}
	lines = append(lines, "n v=18446744073709551615u 99000", "n v=-9223372036854775808i 100000")
	write(t, pool, schema, Config{}, lines...)
	got := query(t, pool, "SELECT v::text FROM "+table+" ORDER BY time")
	want := []string{"0", "1", "-1", "95.9", "0.0001", "12345.6789", "0.0000001", "1000000000000000000000", "-123456789012.5", "0.000025", "9999", "10000", "0.5",
		"18446744073709551615", "-9223372036854775808"}
	equal(t, "numeric", got, want)
}

// TestSystemColumnNames: keys named like PostgreSQL's system columns get
// columns of their own instead of failing ADD COLUMN.
func TestSystemColumnNames(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	write(t, pool, schema, Config{},
		"m,ctid=x xmin=1,tableoid=2i,cmax=true 1000",
		"m,host=a f=1 2000",
	)
	equal(t, "columns", columns(t, pool, schema, "m"), []string{
		"time timestamp with time zone", "series_id bigint", "ctid_tag text", "xmin_field double precision", "tableoid_field bigint",
		"cmax_field boolean", "host text", "f double precision",
	})
	equal(t, "rows", query(t, pool, "SELECT count(*) FROM "+pgx.Identifier{schema, "m"}.Sanitize()), []string{"2"})
}

// TestColumnCannotBeAdded: a role that may write into a table but not
// alter it loses only the new key's values, to the rejected table; the
// rows and every other value land.
func TestColumnCannotBeAdded(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	role := "writer_" + schema
	table := pgx.Identifier{schema, "preset"}.Sanitize()
	for _, sql := range []string{
		"CREATE ROLE " + pgx.Identifier{role}.Sanitize() + " LOGIN",
		"CREATE TABLE " + table + " (time timestamptz NOT NULL, host text, v bigint)",
		"CREATE TABLE " + pgx.Identifier{schema, "pginflux_rejected"}.Sanitize() + " (received timestamptz NOT NULL, source text, measurement text, reason text NOT NULL, detail text, line text NOT NULL, raw bytea)",
		"GRANT USAGE ON SCHEMA " + pgx.Identifier{schema}.Sanitize() + " TO " + pgx.Identifier{role}.Sanitize(),
		"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA " + pgx.Identifier{schema}.Sanitize() + " TO " + pgx.Identifier{role}.Sanitize(),
	} {
		if _, err := pool.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
		pool.Exec(context.Background(), "DROP ROLE "+pgx.Identifier{role}.Sanitize())
	})
	cfg, err := pgxpool.ParseConfig(pgtest.ConnString(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.User = role
	rolePool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rolePool.Close()
	m := write(t, rolePool, schema, Config{}, "preset,host=a v=1i 1000", "preset,host=b v=2i,w=3i 2000")
	equal(t, "rows", query(t, pool, "SELECT host, v FROM "+table+" ORDER BY time"), []string{"a|1", "b|2"})
	equal(t, "rejected", rejectedLines(t, pool, schema), []string{"column_failed: preset,host=b w=3i 2000"})
	if got := testutil.ToFloat64(m.RowsDropped.WithLabelValues(DropPermanentError)); got != 0 {
		t.Errorf("got %v rows dropped, want 0", got)
	}
}
