package daemon_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// nanosLines are 100 lines of one series at base+3000 … base+3099 ns, v
// its number, and wantNanos the rows they are with --time-nanos, as
// nanosRows reads them.
func nanosLines(measurement string, base int64) (lines, want []string) {
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("%s,host=a v=%di %d", measurement, i, base+3000+int64(i)))
		want = append(want, fmt.Sprintf("%d|a|%d", base+3000+int64(i), i))
	}
	return lines, want
}

// nanosRows reads table (quoted) as "nanoseconds|host|v" lines, the time
// in Unix nanoseconds from time and time_ns, in either storage.
func nanosRows(t *testing.T, pool *pgxpool.Pool, table, storage string) []string {
	t.Helper()
	cols := "host, v"
	if storage == "jsonb" {
		cols = "tags->>'host', fields->>'v'"
	}
	return queryRows(t, pool, "SELECT concat_ws('|', (extract(epoch from time) * 1000000)::bigint * 1000 + time_ns, "+cols+
		") FROM "+table+" ORDER BY time, time_ns")
}

// TestTimeNanosEndToEnd: with --time-nanos, 100 lines of one series less
// than a microsecond apart, sent over HTTP, are 100 rows with their exact
// times; a point written again at the same nanosecond merges into its row;
// nothing counts as merged below the resolution. In both storages.
func TestTimeNanosEndToEnd(t *testing.T) {
	t.Parallel()
	for _, storage := range []string{"columns", "jsonb"} {
		t.Run(storage, func(t *testing.T) {
			t.Parallel()
			pool, schema := pgtest.Schema(t)
			p := daemontest.Start(t, schema, "--storage", storage, "--time-nanos")
			lines, want := nanosLines("ev", 0)
			writeLines(t, p.Base+"/write", http.StatusNoContent, lines...)
			writeLines(t, p.Base+"/write", http.StatusNoContent, "ev,host=a v=1000i 3050")
			want[50] = "3050|a|1000"
			table := pgx.Identifier{schema, "ev"}.Sanitize()
			equalRows(t, "rows", nanosRows(t, pool, table, storage), want)
			if n := daemontest.Metric(t, p.Base, "pginflux_sink_subresolution_merged_rows_total", nil); n != 0 {
				t.Errorf("rows merged below the resolution: %v, want 0", n)
			}
		})
	}
}

// TestTimeNanosImport: pginflux import with --time-nanos into tables
// partitioned by day keeps the 100 points of one series at 3000 … 3099 ns
// after 2024-01-01 apart, a line written twice at one nanosecond is one
// row, and the same file imported again changes nothing. In both storages.
func TestTimeNanosImport(t *testing.T) {
	t.Parallel()
	for _, storage := range []string{"columns", "jsonb"} {
		t.Run(storage, func(t *testing.T) {
			t.Parallel()
			pool, schema := pgtest.Schema(t)
			lines, want := nanosLines("ev", tsT0)
			lines = append(lines, fmt.Sprintf("ev,host=a v=7i %d", tsT0+3007))
			path := filepath.Join(t.TempDir(), "export.lp")
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := importFile(t, path, "--database-url", pgtest.ConnString(t), "--schema", schema,
					"--storage", storage, "--time-nanos", "--partition-by", "day"); err != nil {
					t.Fatal(err)
				}
			}
			equalRows(t, "rows", nanosRows(t, pool, pgx.Identifier{schema, "ev"}.Sanitize(), storage), want)
			if got := queryRows(t, pool, "SELECT relname::text FROM pg_inherits JOIN pg_class ON oid = inhrelid WHERE inhparent = $1::regclass",
				pgx.Identifier{schema, "ev"}.Sanitize()); !strings.Contains(strings.Join(got, ","), "ev_p20240101") {
				t.Errorf("partitions %q, want ev_p20240101 among them", got)
			}
		})
	}
}

// testTimeNanos: with --time-nanos, the recipe makes hypertables whose
// point key includes time_ns; 100 points of one series less than a
// microsecond apart are 100 rows, and written again once their chunk is
// compressed they merge into their rows there.
func (ts *timescale) testTimeNanos(t *testing.T) {
	t.Parallel()
	schema := ts.schema(t)
	ev := pgx.Identifier{schema, "ev"}.Sanitize()
	p := ts.start(t, schema, "", "--time-nanos", "--create-table-sql", hypertableRecipe)
	lines, want := nanosLines("ev", tsT0)
	writeLines(t, p.Base+"/write", http.StatusNoContent, lines...)
	ts.wantHypertable(t, ev, "PRIMARY KEY (\"time\", series_id, time_ns)")
	p.Stop(t)
	ts.compress(t, ev, "series_id")

	p = ts.start(t, schema, "", "--time-nanos")
	writeLines(t, p.Base+"/write", http.StatusNoContent, fmt.Sprintf("ev,host=a v=1000i %d", tsT0+3050))
	p.Stop(t)
	want[50] = fmt.Sprintf("%d|a|1000", tsT0+3050)
	equalRows(t, "rows", nanosRows(t, ts.pool, ev, "columns"), want)
	ts.wantCompressed(t, ev)
	ts.wantNothingRejected(t, schema)
}
