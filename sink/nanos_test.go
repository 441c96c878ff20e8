package sink

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

// nanosRows reads table as "nanoseconds|host|v|w" lines, the time in Unix
// nanoseconds from time and time_ns, in both storage modes.
func nanosRows(t *testing.T, pool *pgxpool.Pool, schema, table, storage string) []string {
	t.Helper()
	cols := "host, v, w"
	if storage == StorageJSONB {
		cols = "tags->>'host', fields->>'v', fields->>'w'"
	}
	return dbtest.Query(t, pool, "SELECT (extract(epoch from time) * 1000000)::bigint * 1000 + time_ns, "+cols+
		" FROM "+pgx.Identifier{schema, table}.Sanitize()+" ORDER BY 1, 2")
}

// TestTimeNanos: with --time-nanos, points of one series less than a
// microsecond apart are rows of their own, each time read back exactly
// from time and time_ns; a point written twice at one nanosecond, in one
// batch or in two (the second an upsert), is one row; in both storages,
// in plain and partitioned tables. Without it they are one row.
func TestTimeNanos(t *testing.T) {
	t.Parallel()
	for _, partitionBy := range []string{"", "day"} {
		t.Run("partition by "+partitionBy, func(t *testing.T) {
			t.Parallel()
			bothStorages(t, func(t *testing.T, storage string) { testTimeNanos(t, storage, partitionBy) })
		})
	}
}

func testTimeNanos(t *testing.T, storage, partitionBy string) {
	lines, want := []string{"m,host=a w=0i 3000"}, []string{"3000|a|0|0"}
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("m,host=a v=%di %d", i, 3000+i))
		if i > 0 {
			want = append(want, fmt.Sprintf("%d|a|%d|∅", 3000+i, i))
		}
	}
	pool, schema := pgtest.Schema(t)
	cfg := Config{Schema: schema, Storage: storage, PartitionBy: partitionBy, TimeNanos: true}
	m := writeBatches(t, pool, cfg, lines)
	dbtest.Equal(t, "100 points at 3000..3099 ns", nanosRows(t, pool, schema, "m", storage), want)
	if got := testutil.ToFloat64(m.MergedRows); got != 1 {
		t.Errorf("rows merged: got %v, want 1 (w and v at 3000 ns)", got)
	}
	if got := testutil.ToFloat64(m.SubresolutionMergedRows); got != 0 {
		t.Errorf("rows merged below the resolution: got %v, want 0", got)
	}

	m = writeBatches(t, pool, cfg,
		// Twice at one nanosecond in one batch; before 1970 too.
		[]string{"n,host=a v=1i 3001", "n,host=a v=2i 3000", "n,host=a w=7i 3001", "n,host=a v=4i -1", "n,host=a w=5i -1"},
		// Again in the next batch: merged into the stored rows.
		[]string{"n,host=a w=8i 3000", "n,host=a v=3i 3001", "n,host=a v=6i 3002"},
	)
	dbtest.Equal(t, "points written twice", nanosRows(t, pool, schema, "n", storage),
		[]string{"-1|a|4|5", "3000|a|2|8", "3001|a|3|7", "3002|a|6|∅"})
	if got := testutil.ToFloat64(m.UpsertBatches); got != 1 {
		t.Errorf("batches merged into stored points: got %v, want 1", got)
	}

	cfg.TimeNanos = false
	writeBatches(t, pool, cfg, lines)
	if got := dbtest.Count(t, pool, schema, "m"); got != 100 {
		t.Errorf("a table with time_ns, without --time-nanos: got %d rows, want 100", got)
	}
	var others []string
	for i := range 100 {
		others = append(others, fmt.Sprintf("o,host=a v=%di %d", i, 3000+i))
	}
	writeBatches(t, pool, cfg, others)
	if got := dbtest.Count(t, pool, schema, "o"); got != 1 {
		t.Errorf("without --time-nanos: got %d rows, want 1", got)
	}
}

// TestTimeNanosOwnTable: a table made beforehand whose point key includes
// a smallint time_ns keeps nanoseconds, whatever --time-nanos says, and a
// field named time_ns gets a column of its own; one whose time_ns is not
// smallint has no point key pginflux knows, and is appended to.
func TestTimeNanosOwnTable(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	for _, sql := range []string{
		"CREATE TABLE " + pgx.Identifier{schema, "own"}.Sanitize() + " (time timestamptz NOT NULL, series_id bigint NOT NULL, time_ns smallint NOT NULL, host text, v bigint, w bigint, UNIQUE (series_id, time_ns, time))",
		"CREATE TABLE " + pgx.Identifier{schema, "wide"}.Sanitize() + " (time timestamptz NOT NULL, series_id bigint, time_ns integer NOT NULL DEFAULT 0, host text, v bigint, UNIQUE (time, series_id, time_ns))",
	} {
		mustExec(t, pool, sql)
	}
	writeBatches(t, pool, Config{Schema: schema, Storage: StorageColumns},
		[]string{"own,host=a v=1i,time_ns=9i 1001", "own,host=a v=2i 1002", "own,host=a w=3i 1002", "wide,host=a v=1i 1001", "wide,host=a v=2i 1002"},
		[]string{"own,host=a w=4i 1001"},
	)
	dbtest.Equal(t, "own", nanosRows(t, pool, schema, "own", StorageColumns), []string{"1001|a|1|4", "1002|a|2|3"})
	dbtest.Equal(t, "own: time_ns field", dbtest.Query(t, pool, "SELECT time_ns_field FROM "+pgx.Identifier{schema, "own"}.Sanitize()+" WHERE time_ns = 1"), []string{"9"})
	if got := dbtest.Count(t, pool, schema, "wide"); got != 2 {
		t.Errorf("wide: got %d rows, want 2 (appended)", got)
	}
}

// TestKeyOrderNanos: in a table that keeps nanoseconds, rows of one series
// and microsecond apart in nanoseconds are points apart, in the order of
// the key (time, series_id, time_ns), and rows at one nanosecond one point.
func TestKeyOrderNanos(t *testing.T) {
	t.Parallel()
	const n = 3000
	pp := pointPlan{nanos: true, micros: make([]int64, n), sids: make([]int64, n), ns: make([]uint16, n)}
	for k := range n {
		pp.micros[k], pp.sids[k], pp.ns[k] = int64(k%5), int64(k%3), uint16((k*7)%1000)
	}
	pp.group(n)
	pp.keyOrder(n)
	want := make(map[[3]int64]bool)
	for k := range n {
		want[[3]int64{pp.micros[k], pp.sids[k], int64(pp.ns[k])}] = true
	}
	if pp.rows != len(want) || len(pp.keys) != len(want) {
		t.Fatalf("%d points, %d keys, want %d", pp.rows, len(pp.keys), len(want))
	}
	for i := 1; i < len(pp.keys); i++ {
		if comparePointKeys(pp.keys[i-1], pp.keys[i]) >= 0 {
			t.Fatalf("key %d: %+v after %+v, want rising keys", i, pp.keys[i], pp.keys[i-1])
		}
	}
}
