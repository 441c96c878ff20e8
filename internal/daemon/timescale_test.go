package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/daemon"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/internal/importer"
	"github.com/pginflux/pginflux/sink"
	"github.com/pginflux/pginflux/sink/schema"
)

// hypertableRecipe is the --create-table-sql recipe of docs/tables.md for
// TimescaleDB, word for word (TestDocsTableRecipes).
const hypertableRecipe = "SELECT create_hypertable({{.TableLiteral}}, {{.TimeColumnLiteral}}, migrate_data => true);"

// brinRecipe is docs/tables.md's recipe of a BRIN index on time.
const brinRecipe = "CREATE INDEX ON {{.Table}} USING brin ({{.TimeColumn}});"

// leanHypertableRecipe makes hypertables with the newer by_range API and
// without TimescaleDB's index on time: pginflux's point key starts with
// time already.
const leanHypertableRecipe = "SELECT create_hypertable({{.TableLiteral}}, by_range({{.TimeColumnLiteral}}), create_default_indexes => false);"

// tsT0 is 2024-01-01T00:00:00Z in nanoseconds, and tsDay a day: points at
// tsT0 and tsT0+8*tsDay fall into two chunks of TimescaleDB's default
// 7-day interval.
const (
	tsT0  = int64(1_704_067_200_000_000_000)
	tsDay = int64(24 * time.Hour)
	tsSec = int64(time.Second)
)

// timescale is one TimescaleDB server for the subtests of TestTimescale:
// its connection string and a pool on it.
type timescale struct {
	conn string
	pool *pgxpool.Pool
}

// TestTimescale runs pginflux end to end against TimescaleDB: one server
// with the extension preloaded for the whole test, a schema per subtest.
// Each subtest is a recipe of docs/scaling.md's TimescaleDB section; the
// subtests run in parallel.
func TestTimescale(t *testing.T) {
	t.Parallel()
	pgtest.NeedExtension(t, "timescaledb")
	c := pgtest.NewCluster(t, pgcluster.Options{Settings: []string{
		"shared_preload_libraries=timescaledb",
		"timescaledb.telemetry_level=off",
	}})
	ts := &timescale{conn: c.ConnString("postgres")}
	pool, err := pgxpool.New(t.Context(), ts.conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ts.pool = pool
	if _, err := pool.Exec(t.Context(), "CREATE EXTENSION timescaledb"); err != nil {
		t.Fatal(err)
	}
	var version string
	if err := pool.QueryRow(t.Context(), "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("TimescaleDB %s", version)

	t.Run("recipe", ts.testRecipe)
	t.Run("jsonb", ts.testJSONB)
	t.Run("user_hypertable", ts.testUserHypertable)
	t.Run("import", ts.testImport)
	t.Run("two_processes", ts.testTwoProcesses)
	t.Run("dml_decompression_off", ts.testDMLDecompressionOff)
	t.Run("decompression_limit", ts.testDecompressionLimit)
	t.Run("partition_by_refused", ts.testPartitionByRefused)
	t.Run("time_nanos", ts.testTimeNanos)
}

// schema makes a schema for one subtest, dropped at its end.
func (ts *timescale) schema(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "_", "TestTimescale", "ts").Replace(t.Name()))
	ident := pgx.Identifier{name}.Sanitize()
	ts.exec(t, "CREATE SCHEMA "+ident)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := ts.pool.Exec(ctx, "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

func (ts *timescale) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := ts.pool.Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// start runs pginflux on the TimescaleDB server as role (postgres when
// empty), with its log captured.
func (ts *timescale) start(t *testing.T, schema, role string, extra ...string) *daemontest.Instance {
	t.Helper()
	conn := ts.conn
	if role != "" {
		conn += " user=" + role
	}
	return daemontest.Config{ConnString: conn}.Start(t, schema, extra...)
}

// line is a line of line protocol at tsT0 + offset nanoseconds.
func line(series, fields string, offset int64) string {
	return fmt.Sprintf("%s %s %d", series, fields, tsT0+offset)
}

// compress enables compression on a hypertable, segmented by segmentBy
// (TimescaleDB's choice when ""), compresses every chunk, and checks that
// they all are.
func (ts *timescale) compress(t *testing.T, table, segmentBy string) {
	t.Helper()
	opts := "timescaledb.compress"
	if segmentBy != "" {
		opts += ", timescaledb.compress_segmentby = '" + segmentBy + "'"
	}
	ts.exec(t, "ALTER TABLE "+table+" SET ("+opts+")")
	ts.compressChunks(t, table)
}

// compressChunks compresses every chunk of a hypertable with compression
// enabled, and checks that they all are.
func (ts *timescale) compressChunks(t *testing.T, table string) {
	t.Helper()
	ts.exec(t, "SELECT compress_chunk(c) FROM show_chunks($1::regclass) c", table)
	ts.wantCompressed(t, table)
}

// wantCompressed checks that every chunk of a hypertable is compressed
// (rows written into a compressed chunk since leave it compressed, with
// those rows beside the compressed ones), and returns how many there are.
func (ts *timescale) wantCompressed(t *testing.T, table string) int {
	t.Helper()
	var chunks, compressed int
	err := ts.pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE is_compressed)
		FROM timescaledb_information.chunks WHERE format('%I.%I', hypertable_schema, hypertable_name)::regclass = $1::regclass`, table).Scan(&chunks, &compressed)
	if err != nil {
		t.Fatal(err)
	}
	if chunks == 0 || compressed != chunks {
		t.Fatalf("%s: %d of %d chunks compressed, want all", table, compressed, chunks)
	}
	return chunks
}

// wantIndexes checks how many indexes a table has.
func (ts *timescale) wantIndexes(t *testing.T, table string, want int) {
	t.Helper()
	got := queryRows(t, ts.pool, "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = $1::regclass ORDER BY 1", table)
	if len(got) != want {
		t.Errorf("%s: indexes %q, want %d", table, got, want)
	}
}

// wantHypertable checks that table is a hypertable with the point key
// pginflux made, PRIMARY KEY (time, series_id), unless key is "".
func (ts *timescale) wantHypertable(t *testing.T, table, key string) {
	t.Helper()
	var n int
	if err := ts.pool.QueryRow(t.Context(), `SELECT count(*) FROM timescaledb_information.hypertables
		WHERE format('%I.%I', hypertable_schema, hypertable_name)::regclass = $1::regclass`, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%s is not a hypertable", table)
	}
	if key == "" {
		return
	}
	got := queryRows(t, ts.pool, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'", table)
	if len(got) != 1 || got[0] != key {
		t.Fatalf("%s: primary key %q, want %q", table, got, key)
	}
}

// rows returns the rows of a table in columns storage as
// "seconds|col|col|...", in order of time and then the columns; a NULL,
// or a column that does not exist, is empty.
func (ts *timescale) rows(t *testing.T, table string, cols ...string) []string {
	t.Helper()
	var sel []string
	for _, c := range cols {
		sel = append(sel, "coalesce(j->>'"+c+"', '')")
	}
	q := "SELECT concat_ws('|', extract(epoch from time)::bigint, " + strings.Join(sel, ", ") + ") AS r FROM " + table +
		" AS t, LATERAL to_jsonb(t.*) AS j ORDER BY r"
	return queryRows(t, ts.pool, q)
}

func equalRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot\n\t%s\nwant\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// wantNothingRejected checks that the schema's rejected table is empty or
// absent, and that the log has no held rows.
func (ts *timescale) wantNothingRejected(t *testing.T, schema string, logs ...*daemontest.Log) {
	t.Helper()
	if n := count(t, ts.pool, schema, "pginflux_rejected", ""); n != 0 {
		t.Errorf("%d rows in the rejected table: %q", n, queryRows(t, ts.pool, "SELECT reason || ': ' || detail FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()))
	}
	for _, l := range logs {
		if s := l.String(); strings.Contains(s, "holding rows") {
			t.Errorf("rows were held:\n%s", s)
		}
	}
}

// testRecipe: the README's recipe makes every new table a hypertable with
// pginflux's point key. New tags and fields add columns before compression
// is enabled, once it is, and once the chunks are compressed; new points
// land in compressed chunks; a point sent again, and a point split over
// two writes, are one row, both when its chunk was compressed between the
// writes and when both came after.
func (ts *timescale) testRecipe(t *testing.T) {
	t.Parallel()
	schema := ts.schema(t)
	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	p := ts.start(t, schema, "", "--create-table-sql", hypertableRecipe)
	base, logs := p.Base, p.Log

	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a", "usage_idle=1,usage_user=2", 0), line("cpu,host=b", "usage_idle=3", 0))
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a", "usage_idle=5", 8*tsDay))
	ts.wantHypertable(t, cpu, "PRIMARY KEY (\"time\", series_id)")
	ts.wantIndexes(t, cpu, 2) // the key, and TimescaleDB's on time DESC
	// Before compression: a new tag and a new field; a point split in two.
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a,zone=z", "usage_idle=6,procs=7i", tsSec))
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=c", "usage_idle=8", 0))
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=c", "usage_user=9", 0))
	// Compression enabled, the chunks not compressed yet.
	ts.exec(t, "ALTER TABLE "+cpu+" SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id')")
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a,dc=d1", "usage_idle=14,load=3i", 3*tsSec))
	p.Stop(t)
	ts.compressChunks(t, cpu)

	// A new pginflux, so that its first batches take the fast path (a
	// plain COPY) rather than the staging table that the collision above
	// left it using for a while.
	p = ts.start(t, schema, "")
	base, logs2 := p.Base, p.Log
	// A new point into a compressed chunk, bringing a new tag and a new
	// field: ADD COLUMN on a hypertable with compressed chunks.
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a,rack=r1", "usage_idle=10,temp=1.5", 2*tsSec))
	if n := daemontest.Metric(t, base, "pginflux_sink_upsert_batches_total", nil); n != 0 {
		t.Fatalf("%v batches merged through the staging table, want 0: a new point is a plain COPY", n)
	}
	// A point sent again with another value: the COPY fails on the key
	// (checked in the compressed chunk), and the batch is merged.
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a", "usage_idle=11,usage_user=2", 0))
	if n := daemontest.Metric(t, base, "pginflux_sink_upsert_batches_total", nil); n != 1 {
		t.Fatalf("%v batches merged through the staging table, want 1", n)
	}
	// The second half of a point whose first half was compressed.
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=b", "usage_user=4", 0))
	// A point split in two, both halves into a compressed chunk.
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=e", "usage_idle=12", 8*tsDay))
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=e", "usage_user=13", 8*tsDay))
	// A request sent twice changes nothing.
	for range 2 {
		writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=b", "usage_user=4", 0), line("cpu,host=e", "usage_user=13", 8*tsDay))
	}
	p.Stop(t)

	equalRows(t, "cpu", ts.rows(t, cpu, "host", "zone", "dc", "rack", "usage_idle", "usage_user", "procs", "load", "temp"), []string{
		"1704067200|a||||11|2|||",
		"1704067200|b||||3|4|||",
		"1704067200|c||||8|9|||",
		"1704067201|a|z|||6||7||",
		"1704067202|a|||r1|10||||1.5",
		"1704067203|a||d1||14|||3|",
		"1704758400|a||||5||||",
		"1704758400|e||||12|13|||",
	})
	ts.wantCompressed(t, cpu)
	ts.wantNothingRejected(t, schema, logs, logs2)
}

// testJSONB: the same in jsonb storage, where new keys need no column,
// with the lean recipe: a point sent again or split over two writes into
// a compressed chunk is one row, its fields objects joined.
func (ts *timescale) testJSONB(t *testing.T) {
	t.Parallel()
	schema := ts.schema(t)
	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	p := ts.start(t, schema, "", "--storage", "jsonb", "--create-table-sql", leanHypertableRecipe)
	base, logs := p.Base, p.Log
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a", "idle=1,user=2", 0), line("cpu,host=b", "idle=3", 0))
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a", "idle=5", 8*tsDay))
	ts.wantHypertable(t, cpu, "PRIMARY KEY (\"time\", series_id)")
	ts.wantIndexes(t, cpu, 1)
	p.Stop(t)
	ts.compress(t, cpu, "")
	// TimescaleDB chose to segment by series_id, from the key.
	if got := queryRows(t, ts.pool, `SELECT DISTINCT coalesce(segmentby, '') || ' ' || coalesce(orderby, '')
		FROM timescaledb_information.chunk_compression_settings WHERE hypertable = $1::regclass`, cpu); strings.Join(got, ",") != `series_id "time" DESC` {
		t.Errorf("segmentby and orderby: %q, want series_id and time DESC", got)
	}

	p = ts.start(t, schema, "", "--storage", "jsonb")
	base, logs2 := p.Base, p.Log
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a,zone=z", "idle=6,procs=7i", 0))
	if n := daemontest.Metric(t, base, "pginflux_sink_upsert_batches_total", nil); n != 0 {
		t.Fatalf("%v batches merged through the staging table, want 0", n)
	}
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a", "idle=11", 0))
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=b", "user=4,note=\"late\"", 0))
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=e", "idle=12", 8*tsDay))
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=e", "user=13", 8*tsDay))
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=e", "user=13", 8*tsDay))
	if n := daemontest.Metric(t, base, "pginflux_sink_upsert_batches_total", nil); n < 1 {
		t.Fatalf("%v batches merged through the staging table, want some", n)
	}
	p.Stop(t)

	got := queryRows(t, ts.pool, "SELECT concat_ws(' ', extract(epoch from time)::bigint, tags, fields) AS r FROM "+cpu+" ORDER BY r")
	equalRows(t, "cpu", got, []string{
		`1704067200 {"host": "a", "zone": "z"} {"idle": 6.0, "procs": 7}`,
		`1704067200 {"host": "a"} {"idle": 11.0, "user": 2.0}`,
		`1704067200 {"host": "b"} {"idle": 3.0, "note": "late", "user": 4.0}`,
		`1704758400 {"host": "a"} {"idle": 5.0}`,
		`1704758400 {"host": "e"} {"idle": 12.0, "user": 13.0}`,
	})
	ts.wantCompressed(t, cpu)
	ts.wantNothingRejected(t, schema, logs, logs2)
}

// testUserHypertable: hypertables made before pginflux sees their
// measurement. The README's example (a bigserial key, a default, a
// varchar and a real column), compressed already, which pginflux writes
// in append mode, adding columns for new keys; and one with a point key
// of its own, in the other order, made with the newer by_range API, into
// which pginflux merges.
func (ts *timescale) testUserHypertable(t *testing.T) {
	t.Parallel()
	schema := ts.schema(t)
	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	mem := pgx.Identifier{schema, "mem"}.Sanitize()
	ts.exec(t, `CREATE TABLE `+cpu+` (
		id         bigserial,
		time       timestamptz NOT NULL,
		host       varchar(64),
		usage_idle real,
		note       text DEFAULT 'from telegraf',
		PRIMARY KEY (id, time))`)
	ts.exec(t, "CREATE INDEX ON "+cpu+" (host, time DESC)")
	ts.exec(t, "SELECT create_hypertable($1::regclass, 'time')", cpu)
	ts.exec(t, "INSERT INTO "+cpu+" (time, host, usage_idle) VALUES ($1, 'old', 1)", time.Unix(0, tsT0))
	ts.compress(t, cpu, "host")
	ts.exec(t, `CREATE TABLE `+mem+` (time timestamptz NOT NULL, series_id bigint NOT NULL, host text, used bigint,
		PRIMARY KEY (series_id, time))`)
	ts.exec(t, "SELECT create_hypertable($1::regclass, by_range('time'))", mem)
	ts.exec(t, "ALTER TABLE "+mem+" SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id')")

	p := ts.start(t, schema, "")
	base, logs := p.Base, p.Log
	// Into the compressed chunk, with a new tag and a new field.
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a,cpu=cpu0", "usage_idle=95.5,usage_user=2", tsSec))
	writeLines(t, base+"/write", http.StatusNoContent, line("mem,host=a", "used=1i", 0), line("mem,host=b", "used=2i", 0))
	logs.WaitFor(t, `the table has no point key.*table=cpu`)
	p.Stop(t)
	ts.compressChunks(t, mem)

	p = ts.start(t, schema, "")
	base, logs2 := p.Base, p.Log
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=b,cpu=cpu1", "usage_idle=90,usage_user=7.5", 2*tsSec))
	writeLines(t, base+"/write", http.StatusNoContent, line("mem,host=a", "used=3i,free=4i", 0)) // sent again, with a new field
	writeLines(t, base+"/write", http.StatusNoContent, line("mem,host=b", "free=5i", 0))         // the other half of a point
	p.Stop(t)

	equalRows(t, "cpu", ts.rows(t, cpu, "host", "cpu", "usage_idle", "usage_user", "note"), []string{
		"1704067200|old||1||from telegraf",
		"1704067201|a|cpu0|95.5|2|from telegraf",
		"1704067202|b|cpu1|90|7.5|from telegraf",
	})
	equalRows(t, "mem", ts.rows(t, mem, "host", "used", "free"), []string{
		"1704067200|a|3|4",
		"1704067200|b|2|5",
	})
	ts.wantCompressed(t, cpu)
	ts.wantCompressed(t, mem)
	ts.wantNothingRejected(t, schema, logs, logs2)
}

// testImport: pginflux import into hypertables made by the recipe, from a
// file as influx_inspect export writes it (a line per field, points
// written twice); the same file again once the chunks are compressed
// changes nothing; a file bringing a new field for the same points adds
// its column to the compressed hypertable and merges into the rows.
func (ts *timescale) testImport(t *testing.T) {
	t.Parallel()
	schema := ts.schema(t)
	disk := pgx.Identifier{schema, "disk"}.Sanitize()
	const hosts, times = 10, 50
	export := func(fields ...string) string {
		var b strings.Builder
		for range 2 { // from the storage files, then from the WAL
			for h := range hosts {
				for i := range times {
					for f, name := range fields {
						fmt.Fprintf(&b, "disk,host=h%d %s=%di %d\n", h, name, h*1000+i*10+f, tsT0+int64(i)*int64(time.Hour))
					}
				}
			}
		}
		path := filepath.Join(t.TempDir(), "export.lp")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	first := export("used", "free")
	imp := func(path string) {
		t.Helper()
		if err := importFile(t, path, "--database-url", ts.conn, "--schema", schema, "--create-table-sql", hypertableRecipe); err != nil {
			t.Fatalf("import %s: %v", path, err)
		}
	}
	check := func(cols string, want string) {
		t.Helper()
		got := queryRows(t, ts.pool, "SELECT concat_ws('|', "+cols+") FROM "+disk)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: got %q, want %q", cols, got, want)
		}
	}
	// Sums over the points: h*1000+i*10 summed over h and i, once per point.
	const sumUsed = times*hosts*(hosts-1)/2*1000 + hosts*times*(times-1)/2*10
	imp(first)
	ts.wantHypertable(t, disk, "PRIMARY KEY (\"time\", series_id)")
	check("count(*), sum(used), sum(free)", fmt.Sprintf("%d|%d|%d", hosts*times, sumUsed, sumUsed+hosts*times))

	ts.compress(t, disk, "series_id")
	imp(first)
	check("count(*), sum(used), sum(free)", fmt.Sprintf("%d|%d|%d", hosts*times, sumUsed, sumUsed+hosts*times))
	imp(export("inodes"))
	check("count(*), sum(used), sum(free), sum(inodes)", fmt.Sprintf("%d|%d|%d|%d", hosts*times, sumUsed, sumUsed+hosts*times, sumUsed))
	ts.wantCompressed(t, disk)
	ts.wantNothingRejected(t, schema)
}

// testTwoProcesses: two pginflux processes (each run() with its own
// connection pool, so PostgreSQL sessions of their own) write into one
// new measurement at once: both make the hypertable, and every request
// brings a column of its own and one the other process brings at about
// the same moment. Then the chunk is compressed and both write the same
// points again, with new columns, merging into the compressed chunk.
// Every row, every column and every value is there.
func (ts *timescale) testTwoProcesses(t *testing.T) {
	t.Parallel()
	schema := ts.schema(t)
	shared := pgx.Identifier{schema, "shared"}.Sanitize()
	const n = 15 // requests per process and round
	var bases []string
	var logs []*daemontest.Log
	for range 2 {
		pi := ts.start(t, schema, "", "--create-table-sql", hypertableRecipe)
		base, l := pi.Base, pi.Log
		bases, logs = append(bases, base), append(logs, l)
	}
	round := func(fields func(proc, i int) string) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(bases))
		for proc, base := range bases {
			wg.Go(func() {
				for i := range n {
					l := line(fmt.Sprintf("shared,proc=p%d", proc), fields(proc, i), int64(i*2+proc)*tsSec)
					if err := tryWrite(t.Context(), base+"/write", l); err != nil {
						errs[proc] = err
						return
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	round(func(proc, i int) string { return fmt.Sprintf("v=%di,f_p%d_%d=1i,common_%d=1i", i, proc, i, i) })
	ts.wantHypertable(t, shared, "PRIMARY KEY (\"time\", series_id)")
	ts.compress(t, shared, "series_id")
	round(func(proc, i int) string { return fmt.Sprintf("g_p%d_%d=1i,late_%d=1i", proc, i, i) })

	// Each row has its time, series_id, proc and v, and 1 in exactly its
	// four columns: f_<proc>_<v>, common_<v>, g_<proc>_<v> and late_<v>.
	got := queryRows(t, ts.pool, `SELECT count(*) || '|' || count(*) FILTER (WHERE
			(SELECT count(*) FROM jsonb_object_keys(jsonb_strip_nulls(to_jsonb(r)))) = 8
			AND to_jsonb(r)->>('f_' || proc || '_' || v) = '1' AND to_jsonb(r)->>('common_' || v) = '1'
			AND to_jsonb(r)->>('g_' || proc || '_' || v) = '1' AND to_jsonb(r)->>('late_' || v) = '1')
		FROM `+shared+` r`)
	if want := fmt.Sprintf("%d|%d", 2*n, 2*n); len(got) != 1 || got[0] != want {
		t.Errorf("rows|rows with exactly their values: got %q, want %q", got, want)
	}
	cols := queryRows(t, ts.pool, "SELECT count(*)::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped", shared)
	if want := fmt.Sprint(4 + 2*n + n + 2*n + n); cols[0] != want {
		t.Errorf("got %s columns, want %s", cols[0], want)
	}
	ts.wantCompressed(t, shared)
	ts.wantNothingRejected(t, schema, logs...)
}

// testDMLDecompressionOff: with timescaledb.enable_dml_decompression off
// (here for pginflux's role), TimescaleDB refuses every row into a
// compressed chunk of a table with a unique key (SQLSTATE 0A000). The
// rows are held, not dropped nor rejected, and /readyz says why; once the
// chunk is decompressed (or the setting turned on again), they land.
func (ts *timescale) testDMLDecompressionOff(t *testing.T) {
	t.Parallel()
	schema := ts.schema(t)
	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	ts.exec(t, "CREATE ROLE ts_nodml LOGIN SUPERUSER")
	ts.exec(t, "ALTER ROLE ts_nodml SET timescaledb.enable_dml_decompression = off")
	t.Cleanup(func() { ts.pool.Exec(context.Background(), "DROP ROLE ts_nodml") })
	p := ts.start(t, schema, "ts_nodml", "--create-table-sql", hypertableRecipe)
	base, logs := p.Base, p.Log
	writeLines(t, base+"/write", http.StatusNoContent, line("cpu,host=a", "v=1", 0))
	ts.compress(t, cpu, "series_id")

	daemontest.Send(t, p.UDP, line("cpu,host=a", "v=2", tsSec)+"\n"+line("cpu,host=a", "w=3", 0)+"\n")
	body := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "SQLSTATE 0A000")
	t.Logf("/readyz: %s", body)
	logs.WaitFor(t, `cannot write to PostgreSQL; holding rows and retrying.*sqlstate_class=0A`)
	if got := ts.rows(t, cpu, "v", "w"); len(got) != 1 {
		t.Fatalf("rows while held: %q, want the first one only", got)
	}

	ts.exec(t, "SELECT decompress_chunk(c) FROM show_chunks($1::regclass) c", cpu)
	pollRows(t, ts.pool, "SELECT concat_ws('|', extract(epoch from time)::bigint, v, w) AS r FROM "+cpu+" ORDER BY r",
		"1704067200|1|3", "1704067201|2")
	p.Stop(t)
	ts.wantNothingRejected(t, schema)
}

// testDecompressionLimit: TimescaleDB refuses (SQLSTATE 53400) a
// statement that decompresses more rows of compressed chunks in one
// transaction than timescaledb.max_tuples_decompressed_per_dml_transaction
// allows (100,000 by default). With the defaults that is a batch of
// pginflux (--batch-size 10000) sending again points of more than 100
// series whose chunk is compressed, each series' rows in a compressed
// batch of 1,000: merging them decompresses all those batches. pginflux
// splits such a batch until its parts pass, with no one's help. A single
// row over the limit (a limit below a compressed batch's 1,000 rows) is
// held, not dropped nor rejected, and /readyz says why; once the limit is
// lifted for pginflux's role and its sessions are ended (it reconnects),
// it lands.
func (ts *timescale) testDecompressionLimit(t *testing.T) {
	t.Parallel()
	schema := ts.schema(t)
	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	ts.exec(t, "CREATE ROLE ts_limit LOGIN SUPERUSER")
	t.Cleanup(func() { ts.pool.Exec(context.Background(), "DROP ROLE ts_limit") })
	p := ts.start(t, schema, "ts_limit", "--create-table-sql", hypertableRecipe)
	base, logs := p.Base, p.Log
	const hosts, times = 110, 1000
	var lines []string // in time order, as a live stream comes
	for i := range times {
		for h := range hosts {
			lines = append(lines, line(fmt.Sprintf("cpu,host=h%d", h), fmt.Sprintf("v=%di", i), int64(i)*tsSec))
		}
	}
	for chunk := range slices.Chunk(lines, 11_000) {
		writeLines(t, base+"/write", http.StatusNoContent, chunk...)
	}
	ts.compress(t, cpu, "series_id") // a batch of 1,000 rows for each host

	// The first 10,000 points again, with a new field: batches of up to
	// 10,000 rows, each of all 110 series, so that merging one
	// decompresses 110 compressed batches, 110,000 rows: split, they pass.
	again := func(field string) []string {
		var out []string
		for _, l := range lines[:10_000] {
			series, rest, _ := strings.Cut(l, " ")
			_, stamp, _ := strings.Cut(rest, " ")
			out = append(out, series+" "+field+"=1i "+stamp)
		}
		return out
	}
	if err := tryWrite(t.Context(), base+"/write", again("w")...); err != nil && !strings.Contains(err.Error(), "503") {
		t.Fatalf("the request: %v, want 204 or 503 (held, written later)", err)
	}
	pollRows(t, ts.pool, "SELECT concat_ws('|', count(*), count(w), sum(v)) FROM "+cpu,
		fmt.Sprintf("%d|%d|%d", hosts*times, 10_000, hosts*times*(times-1)/2))

	// A limit no single row passes: held until it is lifted.
	ts.compressChunks(t, cpu)
	ts.exec(t, "ALTER ROLE ts_limit SET timescaledb.max_tuples_decompressed_per_dml_transaction = 500")
	ts.exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'ts_limit'")
	answer := make(chan error, 1)
	go func() { answer <- tryWrite(t.Context(), base+"/write", again("x")[:200]...) }()
	body := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "SQLSTATE 53400")
	t.Logf("/readyz: %s", body)
	// A setting to change, not an outage: the log says "cannot write".
	logs.WaitFor(t, `cannot write to PostgreSQL; holding rows and retrying" sqlstate_class=53`)
	if n := count(t, ts.pool, schema, "cpu", "x IS NOT NULL"); n != 0 {
		t.Fatalf("%d rows have x while the batch is held, want none", n)
	}

	ts.exec(t, "ALTER ROLE ts_limit SET timescaledb.max_tuples_decompressed_per_dml_transaction = 0")
	ts.exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'ts_limit'")
	pollRows(t, ts.pool, "SELECT concat_ws('|', count(*), count(w), count(x), sum(v)) FROM "+cpu,
		fmt.Sprintf("%d|%d|%d|%d", hosts*times, 10_000, 200, hosts*times*(times-1)/2))
	// The request was answered 204 (committed) or 503 (held, to be
	// written later): never as lost.
	if err := <-answer; err != nil && !strings.Contains(err.Error(), "503") {
		t.Errorf("the request held meanwhile: %v, want 204 or 503", err)
	}
	p.Stop(t)
	ts.wantCompressed(t, cpu)
	ts.wantNothingRejected(t, schema)
}

// testPartitionByRefused: --partition-by with the hypertable recipe
// cannot work (TimescaleDB makes no hypertable of a partitioned table,
// SQLSTATE 42809). sink.Config.Validate says so; a sink given both says
// so in its log at start and creates no table: the rows of new
// measurements go to the rejected table, replayable, and nothing is
// written into a measurement table.
func (ts *timescale) testPartitionByRefused(t *testing.T) {
	t.Parallel()
	recipe, err := schema.ParseTemplate(hypertableRecipe)
	if err != nil {
		t.Fatal(err)
	}
	brin, err := schema.ParseTemplate(brinRecipe)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		cfg       sink.Config
		wantError bool
	}{
		{name: "recipe and partition-by", cfg: sink.Config{CreateTableSQL: recipe, PartitionBy: "day"}, wantError: true},
		{name: "recipe alone", cfg: sink.Config{CreateTableSQL: recipe}},
		{name: "partition-by alone", cfg: sink.Config{PartitionBy: "week"}},
		{name: "BRIN recipe and partition-by", cfg: sink.Config{CreateTableSQL: brin, PartitionBy: "month"}},
	} {
		err := tt.cfg.Validate()
		if (err != nil) != tt.wantError {
			t.Errorf("%s: Validate() = %v, want an error: %v", tt.name, err, tt.wantError)
		}
		if err != nil && (!strings.Contains(err.Error(), "--partition-by") || !strings.Contains(err.Error(), "--create-table-sql")) {
			t.Errorf("%s: %v does not name both flags", tt.name, err)
		}
	}

	schema := ts.schema(t)
	tables := func() []string {
		return queryRows(t, ts.pool, "SELECT relname::text FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'p') ORDER BY 1", schema)
	}
	// Refused at start, before connecting (the configuration's check):
	// nothing made at all.
	_, err = daemontest.Config{ConnString: ts.conn}.TryStart(t, schema, "--partition-by", "day", "--create-table-sql", hypertableRecipe)
	if err == nil || !strings.Contains(err.Error(), "--partition-by") || !strings.Contains(err.Error(), "create_hypertable") {
		t.Fatalf("Start returned %v, want an error naming --partition-by and create_hypertable", err)
	}
	if got := tables(); len(got) != 0 {
		t.Errorf("tables made: %q", got)
	}
}

// importFile imports the file at path as pginflux import does with the
// flags args (the command is tested in package main).
func importFile(t *testing.T, path string, args ...string) error {
	t.Helper()
	cfg, err := config.Parse(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	pool, pingErr, err := daemon.OpenPool(t.Context(), cfg, "pginflux import")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if pingErr != nil {
		return pingErr
	}
	in, err := importer.File(path)
	if err != nil {
		return err
	}
	sc := cfg.Sink()
	sc.Retention = 0
	im := importer.New(pool, importer.Config{Sink: sc, Precision: cfg.Precision, Parsers: cfg.Parsers}, slog.New(slog.DiscardHandler))
	_, err = im.Run(t.Context(), []importer.Input{in})
	return err
}
