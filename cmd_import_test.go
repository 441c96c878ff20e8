package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// runImportCommand runs "pginflux import args..." as main does, with stdin
// as its standard input, and returns its error, standard output and
// standard error.
func runImportCommand(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	err = runCommand(t.Context(), append([]string{"import"}, args...), func(string) string { return "" }, stdin, &out, &errOut)
	return out.String(), errOut.String(), err
}

// cpuLines writes n cheap Telegraf-like lines with distinct timestamps
// (a second apart) and n=i, so that a sum proves every line was stored
// exactly once.
func cpuLines(w io.Writer, measurement string, n int) error {
	buf := make([]byte, 0, 1<<16)
	for i := range n {
		buf = append(buf, measurement...)
		buf = append(buf, ",host=h"...)
		buf = strconv.AppendInt(buf, int64(i%100), 10)
		buf = append(buf, " usage_idle="...)
		buf = strconv.AppendInt(buf, int64(90+i%10), 10)
		buf = append(buf, ".5,n="...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, "i "...)
		buf = strconv.AppendInt(buf, 1_600_000_000_000_000_000+int64(i)*1_000_000_000, 10)
		buf = append(buf, '\n')
		if len(buf) > cap(buf)-200 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := w.Write(buf)
	return err
}

// countAndSum returns count(*) and sum(n) of a table.
func countAndSum(t *testing.T, pool *pgxpool.Pool, schema, table string) (count, sum int64) {
	t.Helper()
	err := pool.QueryRow(t.Context(), "SELECT count(*), coalesce(sum(n), 0) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&count, &sum)
	if err != nil {
		t.Fatal(err)
	}
	return count, sum
}

// TestImportMillionLines imports a file of 1,000,000 lines, then a gzip
// file, and finds every row, exactly once; the progress bar (forced) and
// the summary are on standard error.
func TestImportMillionLines(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	const n = 1_000_000
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.lp")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cpuLines(f, "cpu", n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, stderr, err := runImportCommand(t, nil, "--database-url", pgtest.ConnString(t), "--schema", schema, "--progress", "always", path)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	t.Logf("imported %d lines in %v (%.0f lines/s)", n, took, n/took.Seconds())
	if count, sum := countAndSum(t, pool, schema, "cpu"); count != n || sum != n*(n-1)/2 {
		t.Errorf("got %d rows summing to %d, want %d summing to %d", count, sum, n, n*(n-1)/2)
	}
	for _, want := range []string{"\r[", "100.0%", "1,000,000 lines", "lines/s",
		"pginflux import: imported 1,000,000 lines", "1,000,000 rows written into schema \"" + schema + "\"", "nothing rejected"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("standard error lacks %q:\n%s", want, stderr)
		}
	}

	// A smaller gzip file, with a name that does not say so.
	const nz = 100_000
	gzPath := filepath.Join(dir, "cpu_gz.data")
	f, err = os.Create(gzPath)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if err := cpuLines(zw, "cpu_gz", nz); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runImportCommand(t, nil, "--database-url", pgtest.ConnString(t), "--schema", schema, gzPath); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if count, sum := countAndSum(t, pool, schema, "cpu_gz"); count != nz || sum != nz*(nz-1)/2 {
		t.Errorf("got %d rows summing to %d, want %d summing to %d", count, sum, nz, nz*(nz-1)/2)
	}
}

// influxExport is what influx_inspect export writes (without -lponly):
// its DDL section is InfluxQL, the context lines name the database, and
// it writes one field a line, in nanoseconds. One line is broken.
const influxExport = `# INFLUXDB EXPORT: 1677-09-21T00:12:43Z - 2262-04-11T23:47:16Z
# DDL
CREATE DATABASE telegraf WITH NAME autogen
CREATE RETENTION POLICY weekly ON telegraf DURATION 0s REPLICATION 1
# DML
# CONTEXT-DATABASE:telegraf
# CONTEXT-RETENTION-POLICY:autogen
# writing tsm data
cpu,cpu=cpu0,host=a usage_idle=95.9 1574753954000000000
cpu,cpu=cpu0,host=a usage_idle=95.5 1574753964000000000
cpu,cpu=cpu0,host=a usage_user=2 1574753954000000000
cpu,cpu=cpu0,host=a usage_user=2.5 1574753964000000000
mem,host=a used=123i 1574753954000000000
mem,host=a note="a \"quoted\" note" 1574753954000000000
mem,host=a used=oops 1574753964000000000
# writing wal data
# CONTEXT-DATABASE:telegraf
# CONTEXT-RETENTION-POLICY:weekly
# writing tsm data
cpu,cpu=cpu1,host=b usage_idle=80 1574753974000000000
`

// TestImportInfluxExport imports an influx_inspect export: the DDL is
// skipped, the rows land, and the broken line is in the rejected table
// with its file and line.
func TestImportInfluxExport(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	path := filepath.Join(t.TempDir(), "export.lp")
	if err := os.WriteFile(path, []byte(influxExport), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runImportCommand(t, nil, "--database-url", pgtest.ConnString(t), "--schema", schema, path)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	equal := func(what string, got, want []string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: got\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	// The export writes a line per field: the lines of a point make one
	// row again.
	check := func() {
		t.Helper()
		equal("cpu", queryRows(t, pool, "SELECT concat_ws(' ', extract(epoch FROM time)::bigint, cpu, host, usage_idle, usage_user) FROM "+
			pgx.Identifier{schema, "cpu"}.Sanitize()+" ORDER BY time, usage_idle NULLS LAST"), []string{
			"1574753954 cpu0 a 95.9 2",
			"1574753964 cpu0 a 95.5 2.5",
			"1574753974 cpu1 b 80",
		})
		equal("mem", queryRows(t, pool, "SELECT concat_ws(' ', extract(epoch FROM time)::bigint, host, used, note) FROM "+
			pgx.Identifier{schema, "mem"}.Sanitize()+" ORDER BY time, used NULLS LAST"), []string{
			`1574753954 a 123 a "quoted" note`,
		})
	}
	check()
	equal("rejected", queryRows(t, pool, "SELECT concat_ws(' | ', reason, line, detail) FROM "+
		pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()), []string{
		"syntax | mem,host=a used=oops 1574753964000000000 | " + path + " line 15: syntax: column 17: field value has unrecognized type",
	})
	for _, want := range []string{"imported 8 lines", "7 rows written", "1 line, row or value rejected (syntax 1), kept in table pginflux_rejected",
		"skipped 2 lines of the export's DDL section", "the input names database telegraf; its lines went to schema \"" + schema + "\""} {
		if !strings.Contains(stderr, want) {
			t.Errorf("standard error lacks %q:\n%s", want, stderr)
		}
	}
	// Importing the same file again changes nothing.
	if _, stderr, err := runImportCommand(t, nil, "--database-url", pgtest.ConnString(t), "--schema", schema, path); err != nil {
		t.Fatalf("import again: %v\n%s", err, stderr)
	}
	check()
}

func queryRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
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

// TestImportDryRun: a dry run prints the tables and columns the import
// would create and the lines it would reject, and creates nothing, not
// even the rejected table.
func TestImportDryRun(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	path := filepath.Join(t.TempDir(), "export.lp")
	if err := os.WriteFile(path, []byte(influxExport), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runImportCommand(t, nil, "--database-url", pgtest.ConnString(t), "--schema", schema, "--dry-run", path)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	want := `Dry run: nothing was written. Writing these lines would:
in schema "` + schema + `":
  create table "cpu" for 5 rows:
      time timestamptz
      series_id bigint  (the tag set; primary key (time, series_id))
      "cpu" text  (tag cpu)
      "host" text  (tag host)
      "usage_idle" double precision  (field usage_idle)
      "usage_user" double precision  (field usage_user)
  create table "mem" for 2 rows:
      time timestamptz
      series_id bigint  (the tag set; primary key (time, series_id))
      "host" text  (tag host)
      "used" bigint  (field used)
      "note" text  (field note)
reject 1 line (syntax 1) into table "pginflux_rejected"
Values that do not fit the type of an existing column are only found when writing.
`
	if stdout != want {
		t.Errorf("got plan\n%s\nwant\n%s", stdout, want)
	}
	if !strings.Contains(stderr, "parsed (dry run, nothing written) 8 lines") {
		t.Errorf("standard error lacks the dry run's summary:\n%s", stderr)
	}
	if got := queryRows(t, pool, "SELECT relname::text FROM pg_class WHERE relnamespace = $1::regnamespace", schema); len(got) != 0 {
		t.Errorf("a dry run created %v", got)
	}
}

// TestImportStdinAndGzip reads standard input (gzip, found by content)
// and a plain file named after it, in the order given.
func TestImportStdinAndGzip(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if err := cpuLines(zw, "piped", 1000); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	path := filepath.Join(t.TempDir(), "plain.lp")
	var plain bytes.Buffer
	if err := cpuLines(&plain, "plain", 500); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, plain.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// Flags after the files are flags.
	_, stderr, err := runImportCommand(t, &gz, "-", path, "--database-url", pgtest.ConnString(t), "--schema", schema, "--progress", "never")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if count, sum := countAndSum(t, pool, schema, "piped"); count != 1000 || sum != 1000*999/2 {
		t.Errorf("piped: got %d rows summing to %d", count, sum)
	}
	if count, sum := countAndSum(t, pool, schema, "plain"); count != 500 || sum != 500*499/2 {
		t.Errorf("plain: got %d rows summing to %d", count, sum)
	}
	if strings.Contains(stderr, "\r") || !strings.Contains(stderr, "from 2 inputs") {
		t.Errorf("want a summary of 2 inputs and no progress:\n%s", stderr)
	}
}

// TestImportExitStatus: bad flags are usage errors (status 2); a file that
// cannot be read or a database that cannot be reached are failures
// (status 1), before anything is written.
func TestImportExitStatus(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.lp")
	unreachable := "host=" + filepath.Join(t.TempDir(), "no-server") + " user=nobody connect_timeout=5"
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no file", []string{"--database-url", unreachable}, true, "nothing to import"},
		{"bad value", []string{"--batch-size", "0", "x.lp"}, true, "--batch-size: 0 is outside"},
		{"bad progress", []string{"--progress", "sometimes", "x.lp"}, true, `--progress: "sometimes" is not one of`},
		{"stdin twice", []string{"-", "-"}, true, "standard input) can be read only once"},
		{"unknown flag", []string{"--udp-address", ":1", "x.lp"}, true, "import: unknown flag --udp-address (pginflux import --help lists the flags)"},
		{"missing file", []string{"--database-url", unreachable, missing}, false, "no such file or directory"},
		{"no database", []string{"--database-url", unreachable, "-"}, false, "cannot reach the database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runImportCommand(t, nil, tt.args...)
			var usage usageError
			if err == nil || errors.As(err, &usage) != tt.usage || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v (usage error: %v), want an error with %q (usage error: %v)", err, errors.As(err, &usage), tt.want, tt.usage)
			}
		})
	}
}

// envImportChild, in a child process of the test binary, holds the
// arguments (JSON) of the pginflux import that TestImportHelperProcess
// runs in it.
const envImportChild = "PGINFLUX_TEST_IMPORT_CHILD"

// TestImportHelperProcess is not a test: it is pginflux import in a
// process of its own, started by TestImportConcurrentProcesses. It waits
// until its standard input is closed, so that its siblings start at once.
func TestImportHelperProcess(t *testing.T) {
	spec := os.Getenv(envImportChild)
	if spec == "" {
		t.Skip("runs only as a child of TestImportConcurrentProcesses")
	}
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	io.Copy(io.Discard, os.Stdin)
	err := runCommand(context.Background(), append([]string{"import"}, args...), func(string) string { return "" }, os.Stdin, os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// TestImportConcurrentProcesses runs three pginflux imports at once, each
// in a process (and so a PostgreSQL session) of its own, into one new
// measurement of one schema. Each brings new columns of its own every few
// batches, and all three bring the same new columns too: creating the
// table and adding columns race all along, and the advisory lock on the
// table, after which the catalog is read again, must make every one of
// them succeed. Afterwards every row and every column is there.
func TestImportConcurrentProcesses(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	const (
		procs    = 3
		lines    = 3000
		perCol   = 50 // lines per own new column: a new column every 5 batches of 10
		perCommn = 100
	)
	dir := t.TempDir()
	var children []*exec.Cmd
	var gates []io.WriteCloser
	var outputs []*bytes.Buffer
	for p := range procs {
		var b strings.Builder
		for i := range lines {
			fmt.Fprintf(&b, "shared,proc=p%d v=%di,f_p%d_%d=%di,common_%d=1i %d\n",
				p, i, p, i/perCol, i, i/perCommn, 1_600_000_000_000_000_000+int64(i*procs+p)*1_000_000)
		}
		path := filepath.Join(dir, fmt.Sprintf("p%d.lp", p))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		args, err := json.Marshal([]string{"--database-url", pgtest.ConnString(t), "--schema", schema,
			"--batch-size", "10", "--writers", "2", "--parsers", "2", "--progress", "never", path})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestImportHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envImportChild+"="+string(args))
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, out
		gate, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children, gates, outputs = append(children, cmd), append(gates, gate), append(outputs, out)
	}
	for _, g := range gates {
		g.Close()
	}
	for i, c := range children {
		if err := c.Wait(); err != nil {
			t.Errorf("import %d: %v\n%s", i, err, outputs[i])
		}
	}
	if t.Failed() {
		return
	}

	table := pgx.Identifier{schema, "shared"}.Sanitize()
	var count, sum int64
	if err := pool.QueryRow(t.Context(), "SELECT count(*), sum(v) FROM "+table).Scan(&count, &sum); err != nil {
		t.Fatal(err)
	}
	if count != procs*lines || sum != procs*lines*(lines-1)/2 {
		t.Errorf("got %d rows summing to %d, want %d summing to %d", count, sum, procs*lines, procs*lines*(lines-1)/2)
	}
	cols := queryRows(t, pool, "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped", table)
	want := map[string]bool{"time": true, "series_id": true, "proc": true, "v": true}
	for p := range procs {
		for c := range lines / perCol {
			want[fmt.Sprintf("f_p%d_%d", p, c)] = true
		}
	}
	for c := range lines / perCommn {
		want[fmt.Sprintf("common_%d", c)] = true
	}
	got := make(map[string]bool)
	for _, c := range cols {
		got[c] = true
		if !want[c] {
			t.Errorf("unexpected column %q", c)
		}
	}
	for c := range want {
		if !got[c] {
			t.Errorf("column %q is missing", c)
		}
	}
	if len(cols) != len(want) {
		t.Errorf("got %d columns, want %d", len(cols), len(want))
	}
	// Every value is in its column: each own column holds perCol values of
	// its process, each common column perCommn of each process.
	var wrong int64
	var q strings.Builder
	q.WriteString("SELECT 0")
	for p := range procs {
		for c := range lines / perCol {
			fmt.Fprintf(&q, " + (count(f_p%d_%d) FILTER (WHERE proc = 'p%d') <> %d)::int", p, c, p, perCol)
		}
	}
	for c := range lines / perCommn {
		fmt.Fprintf(&q, " + (count(common_%d) <> %d)::int", c, procs*perCommn)
	}
	if err := pool.QueryRow(t.Context(), q.String()+" FROM "+table).Scan(&wrong); err != nil {
		t.Fatal(err)
	}
	if wrong != 0 {
		t.Errorf("%d columns do not hold the values they should", wrong)
	}
	var rejected bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()).Scan(&rejected); err != nil {
		t.Fatal(err)
	}
	if rejected {
		t.Error("something was rejected")
	}
}
