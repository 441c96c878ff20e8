package importer

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testConfig(schema string) Config {
	return Config{
		Sink: sink.Config{Schema: schema, Storage: sink.StorageColumns, BatchSize: 1000, FlushInterval: time.Second,
			Writers: 2, RejectedTable: "pginflux_rejected"},
		Precision: parse.Nanosecond,
		Parsers:   2,
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func file(t *testing.T, path string) Input {
	t.Helper()
	in, err := File(path)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func queryStrings(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return got
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: got\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// dropSchemasAfter drops schemas a test makes besides its own.
func dropSchemasAfter(t *testing.T, pool *pgxpool.Pool, schemas ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, s := range schemas {
			if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
				t.Errorf("drop schema %s: %v", s, err)
			}
		}
	})
}

// TestImportSchemaFromDB imports an influx_inspect export naming two
// databases into a schema each, with small chunks so that the parts of a
// chunk, the DDL section and the changes of database fall anywhere.
func TestImportSchemaFromDB(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	dbA, dbB := schema+"_a", schema+"_b"
	dropSchemasAfter(t, pool, dbA, dbB)
	export := strings.Join([]string{
		"# INFLUXDB EXPORT: 1677-09-21T00:12:43Z - 2262-04-11T23:47:16Z",
		"# DDL",
		"CREATE DATABASE " + dbA + " WITH NAME autogen",
		"CREATE DATABASE " + dbB + " WITH NAME autogen",
		"# DML",
		"# CONTEXT-DATABASE:" + dbA,
		"# CONTEXT-RETENTION-POLICY:autogen",
		"# writing tsm data",
		"cpu,host=a usage_idle=90.5 1000000000",
		"cpu,host=a usage_user=2.5 1000000000",
		"cpu,host=b usage_idle=", // line 11: bad
		"# CONTEXT-DATABASE:" + dbB,
		"# CONTEXT-RETENTION-POLICY:autogen",
		"mem,host=a used=12i 2000000000",
		"# CONTEXT-DATABASE:" + dbA,
		"# CONTEXT-RETENTION-POLICY:weekly",
		"cpu,host=c usage_idle=80 3000000000",
		"",
	}, "\n")
	path := writeFile(t, "export.lp", export)
	for _, chunk := range []int{16, 64, 1 << 20} {
		t.Run(fmt.Sprint("chunk ", chunk), func(t *testing.T) {
			for _, s := range []string{dbA, dbB} {
				if _, err := pool.Exec(t.Context(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
					t.Fatal(err)
				}
			}
			cfg := testConfig(schema)
			cfg.SchemaFromDB = true
			cfg.ChunkSize = chunk
			res, err := New(pool, cfg, quiet).Run(t.Context(), []Input{file(t, path)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Lines != 5 || res.Rows != 4 || res.Rejected["syntax"] != 1 || res.DDLLines != 2 {
				t.Errorf("got %d lines, %d rows, rejected %v, %d DDL lines; want 5, 4, syntax 1, 2", res.Lines, res.Rows, res.Rejected, res.DDLLines)
			}
			equal(t, "schemas", res.Schemas, []string{dbA, dbB})
			equal(t, "databases", res.Databases, []string{dbA, dbB})
			equal(t, dbA+".cpu", queryStrings(t, pool, "SELECT concat_ws(' ', extract(epoch FROM time), host, usage_idle, usage_user) FROM "+
				pgx.Identifier{dbA, "cpu"}.Sanitize()+" ORDER BY time, host, usage_idle"),
				// The export writes a line per field: the two lines of
				// cpu,host=a at 1s are one point, hence one row.
				[]string{"1.000000 a 90.5 2.5", "3.000000 c 80"})
			equal(t, dbB+".mem", queryStrings(t, pool, "SELECT concat_ws(' ', extract(epoch FROM time), host, used) FROM "+
				pgx.Identifier{dbB, "mem"}.Sanitize()), []string{"2.000000 a 12"})
			equal(t, "rejected", queryStrings(t, pool, "SELECT concat_ws(' | ', reason, line, detail, source IS NULL) FROM "+
				pgx.Identifier{dbA, "pginflux_rejected"}.Sanitize()),
				[]string{"syntax | cpu,host=b usage_idle= | " + path + " line 11: syntax: column 23: field value has unrecognized type | t"})
		})
	}
}

// TestImportEvicts alternates between more databases than the sinks that
// may be open at once: every change of database past the bound closes a
// sink after the parsers hand over its rows, and nothing is lost.
func TestImportEvicts(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	dbs := []string{schema + "_a", schema + "_b", schema + "_c"}
	dropSchemasAfter(t, pool, dbs...)
	var b strings.Builder
	n := 0
	for round := range 20 {
		for _, db := range dbs {
			fmt.Fprintf(&b, "# CONTEXT-DATABASE:%s\n", db)
			for range 50 {
				n++
				fmt.Fprintf(&b, "m,round=r%d v=%di %d\n", round, n, n*1000)
			}
		}
	}
	cfg := testConfig(schema)
	cfg.SchemaFromDB = true
	cfg.MaxSchemas = 2
	cfg.ChunkSize = 512
	cfg.Sink.BatchSize = 7
	res, err := New(pool, cfg, quiet).Run(t.Context(), []Input{file(t, writeFile(t, "x.lp", b.String()))})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != int64(n) {
		t.Errorf("got %d rows written, want %d", res.Rows, n)
	}
	var got, sum int64
	for _, db := range dbs {
		var c, s int64
		if err := pool.QueryRow(t.Context(), "SELECT count(*), coalesce(sum(v), 0) FROM "+pgx.Identifier{db, "m"}.Sanitize()).Scan(&c, &s); err != nil {
			t.Fatal(err)
		}
		if c != int64(n/3) {
			t.Errorf("%s has %d rows, want %d", db, c, n/3)
		}
		got += c
		sum += s
	}
	if want := int64(n) * int64(n+1) / 2; got != int64(n) || sum != want {
		t.Errorf("got %d rows summing to %d, want %d summing to %d", got, sum, n, want)
	}
}

// TestImportLongLine: a line over the limit is rejected with its first
// bytes and where it was; the lines around it land.
func TestImportLongLine(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	long := "m,host=a s=\"" + strings.Repeat("x", 3000) + "\" 2000"
	path := writeFile(t, "long.lp", "m v=1 1000\n"+long+"\nm v=3 3000\n")
	cfg := testConfig(schema)
	cfg.MaxLineSize = 2000
	cfg.ChunkSize = 100
	res, err := New(pool, cfg, quiet).Run(t.Context(), []Input{file(t, path)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 2 || res.Lines != 3 || res.Rejected[ReasonTooLong] != 1 {
		t.Errorf("got %d rows, %d lines, rejected %v; want 2, 3, too_long 1", res.Rows, res.Lines, res.Rejected)
	}
	equal(t, "rows", queryStrings(t, pool, "SELECT v::text FROM "+pgx.Identifier{schema, "m"}.Sanitize()+" ORDER BY time"), []string{"1", "3"})
	equal(t, "rejected", queryStrings(t, pool, "SELECT concat_ws(' | ', reason, line = $1, detail) FROM "+
		pgx.Identifier{schema, "pginflux_rejected"}.Sanitize(), long[:longLinePrefix]),
		[]string{fmt.Sprintf("too_long | t | %s line 2: the line has %d bytes, more than the limit of 2000; line holds its first 1024 bytes only", path, len(long))})
}

// TestImportGzipAndStream reads a gzip file (known by its content, not its
// name) and a stream, in one import, with line numbers of each.
func TestImportGzipAndStream(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, "g v=1 1000\ng v=\n")
	zw.Close()
	path := writeFile(t, "compressed.data", gz.String())
	res, err := New(pool, testConfig(schema), quiet).Run(t.Context(), []Input{
		file(t, path),
		Stream("-", strings.NewReader("s v=2 2000\n\ns v=x\n")),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 2 || res.Lines != 4 || res.Inputs != 2 || res.Bytes != int64(gz.Len())+18 {
		t.Errorf("got %d rows, %d lines, %d inputs, %d bytes; want 2, 4, 2, %d", res.Rows, res.Lines, res.Inputs, res.Bytes, gz.Len()+18)
	}
	equal(t, "rejected", queryStrings(t, pool, "SELECT detail FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" ORDER BY detail"), []string{
		"- line 3: syntax: column 5: field value has unrecognized type",
		path + " line 2: syntax: column 5: field value has unrecognized type",
	})
}

func TestImportNotGzip(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	path := writeFile(t, "plain.lp.gz", "m v=1 1000\n")
	_, err := New(pool, testConfig(schema), quiet).Run(t.Context(), []Input{file(t, path)})
	if err == nil || !strings.Contains(err.Error(), "not gzip") {
		t.Fatalf("got %v, want an error saying the file is not gzip", err)
	}
}

// TestImportCorruptGzip: the lines before the damage are written, and
// the error says where.
func TestImportCorruptGzip(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	for i := range 20000 {
		fmt.Fprintf(zw, "m v=%di %d\n", i, i*1000)
	}
	zw.Close()
	data := gz.Bytes()
	data = data[:len(data)-100] // cut the end off
	path := writeFile(t, "cut.lp.gz", string(data))
	cfg := testConfig(schema)
	cfg.ChunkSize = 4096
	res, err := New(pool, cfg, quiet).Run(t.Context(), []Input{file(t, path)})
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "read "+path+" after line ") {
		t.Fatalf("got %v, want an unexpected EOF reading %s", err, path)
	}
	var got int64
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, "m"}.Sanitize()).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got == 0 || got != res.Rows || got >= 20000 {
		t.Errorf("got %d rows in the table, %d written; want the same, some but not all", got, res.Rows)
	}
}

// TestImportInterrupted: ending the context ends an import even while it
// waits for more input on a stream.
func TestImportInterrupted(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancelCause(t.Context())
	im := New(pool, testConfig(schema), quiet)
	done := make(chan error, 1)
	go func() {
		_, err := im.Run(ctx, []Input{Stream("-", pr)})
		done <- err
	}()
	if _, err := io.WriteString(pw, "m v=1 1000\n"); err != nil {
		t.Fatal(err)
	}
	// The line has been taken once Progress counts its bytes.
	deadline := time.Now().Add(20 * time.Second)
	for im.Progress().Read == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop := errors.New("interrupt")
	cancel(stop)
	select {
	case err := <-done:
		if !errors.Is(err, stop) || !strings.HasPrefix(err.Error(), "interrupted") {
			t.Fatalf("got %v, want interrupted: %v", err, stop)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the import did not stop within 20s of its context ending")
	}
}

// TestDryRunTouchesNothing plans a new schema and an existing one and
// creates nothing: no schema, no table, no column, no rejected table.
func TestDryRunTouchesNothing(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+pgx.Identifier{schema, "old"}.Sanitize()+" (time timestamptz NOT NULL, host text)"); err != nil {
		t.Fatal(err)
	}
	other := schema + "_new"
	dropSchemasAfter(t, pool, other)
	input := "old,host=a v=1.5 1000\nold,host=b v=2.5,n=1i 2000\nnew,cpu=c0 x=1u 3000\nbad line\npginflux_rejected v=1 1\n" +
		"# CONTEXT-DATABASE:" + other + "\nthere v=1 1\n"
	cfg := testConfig(schema)
	cfg.DryRun = true
	cfg.SchemaFromDB = true
	cfg.Sink.PartitionBy = "day" // whose upkeep would make the schema and partitions
	res, err := New(pool, cfg, quiet).Run(t.Context(), []Input{Stream("-", strings.NewReader(input))})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WritePlan(&out, res, cfg)
	want := fmt.Sprintf(`Dry run: nothing was written. Writing these lines would:
in schema "%s":
  create table "new" for 1 row:
      time timestamptz
      series_id bigint  (the tag set; primary key (time, series_id))
      "cpu" text  (tag cpu)
      "x" numeric  (field x)
  write 2 rows into table "old" (exists), adding:
      "v" double precision  (field v)
      "n" bigint  (field n)
create schema "%s", and in it:
  create table "there" for 1 row:
      time timestamptz
      series_id bigint  (the tag set; primary key (time, series_id))
      "v" double precision  (field v)
reject 2 lines (reserved_name 1, syntax 1) into table "pginflux_rejected"
Values that do not fit the type of an existing column are only found when writing.
`, schema, other)
	if out.String() != want {
		t.Errorf("got plan\n%s\nwant\n%s", out.String(), want)
	}
	equal(t, "tables", queryStrings(t, pool, "SELECT tablename::text FROM pg_tables WHERE schemaname IN ($1, $2) ORDER BY 1", schema, other), []string{"old"})
	equal(t, "columns of old", queryStrings(t, pool, "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum",
		pgx.Identifier{schema, "old"}.Sanitize()), []string{"time", "host"})
	equal(t, "schemas", queryStrings(t, pool, "SELECT nspname::text FROM pg_namespace WHERE nspname = $1", other), nil)
}

// TestImportTriggerRefuses: rows PostgreSQL refuses for their own values
// (a trigger refusing every one of them) are kept in the rejected table,
// each, and counted; none is dropped.
func TestImportTriggerRefuses(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "m"}.Sanitize()
	fn := pgx.Identifier{schema, "refuse"}.Sanitize()
	for _, sql := range []string{
		"CREATE TABLE " + table + " (time timestamptz NOT NULL, v double precision)",
		"CREATE FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by a trigger'; END $$",
		"CREATE TRIGGER refuse BEFORE INSERT ON " + table + " FOR EACH ROW EXECUTE FUNCTION " + fn + "()",
	} {
		if _, err := pool.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "m v=%d %d\n", i, i*1000)
	}
	res, err := New(pool, testConfig(schema), quiet).Run(t.Context(), []Input{Stream("-", strings.NewReader(b.String()))})
	if err != nil {
		t.Fatal(err)
	}
	var dropped int64
	for _, n := range res.Dropped {
		dropped += n
	}
	if res.Rejected[sink.ReasonRefused] != 100 || dropped != 0 {
		t.Errorf("got %d rows written, rejected %v, dropped %v; want 100 rejected (refused), none dropped", res.Rows, res.Rejected, res.Dropped)
	}
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" WHERE reason = 'refused'").Scan(&n); err != nil || n != 100 {
		t.Errorf("rejected table: %d refused rows (%v), want 100", n, err)
	}
}

// TestImportBadDatabaseName: with --schema-from-db, a database that cannot
// name a schema stops the import, saying where.
func TestImportBadDatabaseName(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	cfg := testConfig(schema)
	cfg.SchemaFromDB = true
	input := "m v=1 1\n# CONTEXT-DATABASE:pg_catalog\nm v=2 2\n"
	res, err := New(pool, cfg, quiet).Run(t.Context(), []Input{Stream("in", strings.NewReader(input))})
	if err == nil || !strings.Contains(err.Error(), `in line 2: database "pg_catalog" cannot name a schema (--schema-from-db): names starting with pg_ are PostgreSQL's`) {
		t.Fatalf("got %v, want an error about database pg_catalog on line 2", err)
	}
	if res.Rows != 1 {
		t.Errorf("got %d rows written, want the 1 before the bad database", res.Rows)
	}
}
