package schema_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

func TestColumnsTypes(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	write(t, pool, schema, sink.Config{},
		`m,host=a,region=eu f=1.5,i=-7i,u=18446744073709551615u,s="hi \"x\"",b=true 1000`,
		`m,host=b f=2,i=9223372036854775807i,u=0u,b=F 2000`,
	)
	dbtest.Equal(t, "columns", dbtest.Columns(t, pool, schema, "m"), []string{
		"time timestamp with time zone", "series_id bigint", "host text", "region text",
		"f double precision", "i bigint", "u numeric", "s text", "b boolean",
	})
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT host, region, f, i, u::text, s, b FROM "+pgx.Identifier{schema, "m"}.Sanitize()+" ORDER BY time"), []string{
		`a|eu|1.5|-7|18446744073709551615|hi "x"|true`,
		`b|∅|2|9223372036854775807|0|∅|false`,
	})
}

func TestColumnsUint64Bigint(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	m := write(t, pool, schema, sink.Config{UintType: "bigint"},
		`m u=5u 1000`,
		`m u=18446744073709551615u 2000`,
	)
	dbtest.Equal(t, "columns", dbtest.Columns(t, pool, schema, "m"), []string{"time timestamp with time zone", "series_id bigint", "u bigint"})
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT u FROM "+pgx.Identifier{schema, "m"}.Sanitize()+" ORDER BY time"), []string{"5", "∅"})
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(sink.ReasonOutOfRange)); got != 1 {
		t.Errorf("got %v out_of_range, want 1", got)
	}
	dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), []string{"out_of_range: m u=18446744073709551615u 2000"})
}

// TestPrecreatedTable: a table a user made beforehand, with narrower types
// and extra columns, is written into as it is; only missing columns are
// added, and what does not fit goes to the rejected table.
func TestPrecreatedTable(t *testing.T) {
	t.Parallel()
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
	m := write(t, pool, schema, sink.Config{},
		`cpu,host=a usage_idle=95.25,cores=8i,extra=1i 1000`,
		`cpu,host=`+long+` usage_idle=1e300,cores=1.5,extra=2i 2000`,
		`cpu,host=c usage_idle=7i,cores=4.0,extra=3i 3000`,
	)
	dbtest.Equal(t, "columns", dbtest.Columns(t, pool, schema, "cpu"), []string{
		"id bigint", "time timestamp with time zone", "host character varying(64)", "usage_idle real",
		"cores integer", "note text", "extra bigint",
	})
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT id, host, usage_idle, cores, note, extra FROM "+table+" ORDER BY time"), []string{
		"1|a|95.25|8|from a default|1",
		"2|∅|∅|∅|from a default|2",
		"3|c|7|4|from a default|3",
	})
	dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), []string{
		"out_of_range: cpu,host=" + long + " cores=1.5 2000",
		"out_of_range: cpu,host=" + long + " usage_idle=1e+300 2000",
		"too_long: cpu,host=" + long + " usage_idle=1e+300,cores=1.5,extra=2i 2000",
	})
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(sink.ReasonTooLong)); got != 1 {
		t.Errorf("got %v too_long, want 1", got)
	}
}

// TestClashes: a tag and a field with one key, keys named time, and keys
// that differ only in case each get their own column, deterministically.
func TestClashes(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	write(t, pool, schema, sink.Config{},
		`m,host=a,time=t1,Host=A host=1.5,time=2i,Time=3i 1000`,
		`m,host=b host=2.5 2000`,
	)
	dbtest.Equal(t, "columns", dbtest.Columns(t, pool, schema, "m"), []string{
		"time timestamp with time zone", "series_id bigint", "host text", "time_tag text", "Host text",
		"host_field double precision", "time_field bigint", "Time bigint",
	})
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, `SELECT host, time_tag, "Host", host_field, time_field, "Time" FROM `+pgx.Identifier{schema, "m"}.Sanitize()+" ORDER BY time"), []string{
		"a|t1|A|1.5|2|3",
		"b|∅|∅|2.5|∅|∅",
	})
	comments := dbtest.Query(t, pool, `SELECT attname || ': ' || col_description(attrelid, attnum) FROM pg_attribute
		WHERE attrelid = '`+pgx.Identifier{schema, "m"}.Sanitize()+`'::regclass AND attnum > 2 ORDER BY attnum`)
	dbtest.Equal(t, "comments", comments, []string{
		"host: pginflux tag host", "time_tag: pginflux tag time", "Host: pginflux tag Host",
		"host_field: pginflux field host", "time_field: pginflux field time", "Time: pginflux field Time",
	})
}

// TestConcurrentColumns: sinks (as separate pginflux processes would) add
// different columns to one table at the same time; all succeed.
func TestConcurrentColumns(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	const sinks, rows = 4, 200
	var wg sync.WaitGroup
	for k := range sinks {
		wg.Go(func() {
			m := sink.NewMetrics(nil)
			s := sink.New(pool, sink.Config{Schema: schema, Storage: sink.StorageColumns, BatchSize: 20, FlushInterval: time.Hour, Writers: 2, RejectedTable: "pginflux_rejected"}, m, quiet)
			b := s.NewBatcher()
			for i := range rows {
				b.Add(dbtest.Line(t, fmt.Sprintf("shared,sink=s%d f%d=%di,g%d_%d=1 %d", k, k, i, k, i%5, (k*rows+i+1)*1000)), origin)
			}
			b.Flush()
			closeSink(t, s)
		})
	}
	wg.Wait()
	table := pgx.Identifier{schema, "shared"}.Sanitize()
	dbtest.Equal(t, "count", dbtest.Query(t, pool, "SELECT count(*) FROM "+table), []string{fmt.Sprint(sinks * rows)})
	if got, want := len(dbtest.Columns(t, pool, schema, "shared")), 1+1+1+sinks*(1+5); got != want {
		t.Errorf("got %d columns, want %d: %v", got, want, dbtest.Columns(t, pool, schema, "shared"))
	}
	for k := range sinks {
		dbtest.Equal(t, "per sink", dbtest.Query(t, pool, fmt.Sprintf("SELECT count(f%d) FROM %s WHERE sink = 's%d'", k, table, k)), []string{fmt.Sprint(rows)})
	}
}

// TestColumnsChangedBehindOurBack: columns that a person drops or adds
// after pginflux has cached the table are picked up.
func TestColumnsChangedBehindOurBack(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "m"}.Sanitize()
	cfg := sink.Config{Schema: schema, Storage: sink.StorageColumns, BatchSize: 100, FlushInterval: time.Hour, Writers: 1, RejectedTable: "pginflux_rejected"}
	s := sink.New(pool, cfg, sink.NewMetrics(nil), quiet)
	b := s.NewBatcher()
	b.Add(dbtest.Line(t, "m a=1i,b=2i 1000"), origin)
	b.Flush()
	dbtest.WaitFor(t, func() bool { return dbtest.TryCount(t, pool, schema, "m") == 1 })
	if _, err := pool.Exec(t.Context(), "ALTER TABLE "+table+" DROP COLUMN b, ADD COLUMN c text"); err != nil {
		t.Fatal(err)
	}
	b.Add(dbtest.Line(t, `m a=3i,b=4i,c="see" 2000`), origin)
	b.Flush()
	closeSink(t, s)
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT a, b, c FROM "+table+" ORDER BY time"), []string{"1|∅|∅", "3|4|see"})
}

// TestColumnLimit: keys beyond --max-columns go to the table's overflow
// jsonb column, counted, and no batch fails.
func TestColumnLimit(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	var fields []string
	for i := range 8 {
		fields = append(fields, fmt.Sprintf("f%d=%di", i, i))
	}
	m := write(t, pool, schema, sink.Config{MaxColumns: 6}, // time, series_id and four
		"wide,host=a "+strings.Join(fields, ",")+" 1000",
		"wide,host=b,zone=z f0=10i,f7=17i 2000",
	)
	dbtest.Equal(t, "columns", dbtest.Columns(t, pool, schema, "wide"), []string{
		"time timestamp with time zone", "series_id bigint", "host text", "f0 bigint", "f1 bigint", "f2 bigint", "pginflux_overflow jsonb",
	})
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT host, f0, f1, f2, pginflux_overflow::text FROM "+pgx.Identifier{schema, "wide"}.Sanitize()+" ORDER BY time"), []string{
		`a|0|1|2|{"fields": {"f3": 3, "f4": 4, "f5": 5, "f6": 6, "f7": 7}}`,
		`b|10|∅|∅|{"tags": {"zone": "z"}, "fields": {"f7": 17}}`,
	})
	if got := testutil.ToFloat64(m.OverflowValues); got != 7 {
		t.Errorf("got %v overflow values, want 7", got)
	}
}

// TestSystemColumnNames: keys named like PostgreSQL's system columns get
// columns of their own instead of failing ADD COLUMN.
func TestSystemColumnNames(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	write(t, pool, schema, sink.Config{},
		"m,ctid=x xmin=1,tableoid=2i,cmax=true 1000",
		"m,host=a f=1 2000",
	)
	dbtest.Equal(t, "columns", dbtest.Columns(t, pool, schema, "m"), []string{
		"time timestamp with time zone", "series_id bigint", "ctid_tag text", "xmin_field double precision", "tableoid_field bigint",
		"cmax_field boolean", "host text", "f double precision",
	})
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT count(*) FROM "+pgx.Identifier{schema, "m"}.Sanitize()), []string{"2"})
}

// TestColumnCannotBeAdded: a role that may write into a table but not
// alter it loses only the new key's values, to the rejected table; the
// rows and every other value land.
func TestColumnCannotBeAdded(t *testing.T) {
	t.Parallel()
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
	m := write(t, rolePool, schema, sink.Config{}, "preset,host=a v=1i 1000", "preset,host=b v=2i,w=3i 2000")
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT host, v FROM "+table+" ORDER BY time"), []string{"a|1", "b|2"})
	dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), []string{"column_failed: preset,host=b w=3i 2000"})
	if got := testutil.ToFloat64(m.RowsDropped.WithLabelValues(sink.DropPermanentError)); got != 0 {
		t.Errorf("got %v rows dropped, want 0", got)
	}
}
