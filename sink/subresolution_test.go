package sink

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

// TestSubresolutionMerge: points of one series less than a microsecond
// apart are one row, counted as merged and as merged below the time
// column's resolution, and said in the log; a point written twice at one
// time is an ordinary merge only; series apart at the same sub-microsecond
// times do not merge.
func TestSubresolutionMerge(t *testing.T) {
	t.Parallel()
	var subMicro, seriesApart []string
	for i := range 100 {
		subMicro = append(subMicro, fmt.Sprintf("m,host=a v=%di %d", i, 3000+i))
		seriesApart = append(seriesApart, fmt.Sprintf("m,host=h%d v=%di %d", i, i, 3000+i))
	}
	for _, tc := range []struct {
		name                 string
		lines                []string
		rows, merged, subres int
		host, v              string // the value of host's point at 3 µs
	}{
		{"one series at 3000..3099 ns", subMicro, 1, 99, 99, "a", "99"},
		{"one time twice", []string{"m,host=a v=1i 3000", "m,host=a v=2i 3000"}, 1, 1, 0, "a", "2"},
		{"series apart", seriesApart, 100, 0, 0, "h7", "7"},
		{"times repeated, out of order", []string{"m,host=a v=1i 3001", "m,host=a v=2i 3000", "m,host=b v=9i 3000",
			"m,host=a v=3i 3001", "m,host=a v=4i 3000", "m,host=a v=5i 4000"}, 3, 3, 1, "a", "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bothStorages(t, func(t *testing.T, storage string) {
				pool, schema, m, logs := writeLogged(t, storage, tc.lines)
				if got := dbtest.Count(t, pool, schema, "m"); got != tc.rows {
					t.Errorf("rows: got %d, want %d", got, tc.rows)
				}
				v := "m.v"
				if storage == StorageJSONB {
					v = "m.fields->>'v'"
				}
				dbtest.Equal(t, "host="+tc.host+" at 3 µs", dbtest.Query(t, pool, "SELECT "+v+" FROM "+pgx.Identifier{schema, "m"}.Sanitize()+" m JOIN "+
					pgx.Identifier{schema, "pginflux_series"}.Sanitize()+" s ON s.table_name = 'm' AND s.series_id = m.series_id "+
					"WHERE s.tags->>'host' = '"+tc.host+"' AND m.time = to_timestamp(0) + interval '3 microseconds'"), []string{tc.v})
				if got := testutil.ToFloat64(m.MergedRows); got != float64(tc.merged) {
					t.Errorf("merged rows: got %v, want %d", got, tc.merged)
				}
				if got := testutil.ToFloat64(m.SubresolutionMergedRows); got != float64(tc.subres) {
					t.Errorf("rows merged below the resolution: got %v, want %d", got, tc.subres)
				}
				want := "level=WARN msg=\"points of one series less than the time column's resolution apart were merged into one row: " +
					"send times at least that far apart (at most microsecond precision), or use --write-mode append if every point must be kept"
				attrs := fmt.Sprintf(" schema=%s table=m merged_points=%d resolution=1µs\n", schema, tc.subres)
				switch said := strings.Contains(logs, want); {
				case tc.subres > 0 && (!said || !strings.Contains(logs, attrs)):
					t.Errorf("the log does not warn with%s:\n%s", attrs, logs)
				case tc.subres == 0 && said:
					t.Errorf("the log warns of merges below the resolution:\n%s", logs)
				}
			})
		})
	}
}

// writeLogged writes lines as one batch through a fresh sink in a schema
// of its own, and returns where the rows went, the sink's metrics and
// what it logged.
func writeLogged(t *testing.T, storage string, lines []string) (*pgxpool.Pool, string, *Metrics, string) {
	t.Helper()
	pool, schema := pgtest.Schema(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: storage, BatchSize: 100_000, FlushInterval: time.Hour, RejectedTable: "pginflux_rejected"}, m, log)
	b := s.NewBatcher()
	for _, l := range lines {
		b.Add(dbtest.Line(t, l), origin)
	}
	b.Flush()
	closeSink(t, s)
	mu.Lock()
	defer mu.Unlock()
	return pool, schema, m, logs.String()
}

// TestSubresolutionLogLimited: the warning comes at most once a minute
// per table, and then counts the points merged so since the last one.
func TestSubresolutionLogLimited(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		s := &Sink{cfg: Config{Schema: "metrics"}, metrics: NewMetrics(nil), log: slog.New(slog.NewTextHandler(&logs, nil))}
		said := func() []string {
			var out []string
			for l := range strings.Lines(logs.String()) {
				_, attrs, _ := strings.Cut(l, "\" ")
				out = append(out, strings.TrimSpace(attrs))
			}
			logs.Reset()
			return out
		}
		s.mergedSubresolution("a", 3, 1)
		s.mergedSubresolution("a", 4, 1)
		s.mergedSubresolution("b", 5, 1_000_000)
		dbtest.Equal(t, "first minute", said(), []string{
			"schema=metrics table=a merged_points=3 resolution=1µs",
			"schema=metrics table=b merged_points=5 resolution=1s",
		})
		time.Sleep(subresolutionLogEvery - time.Second)
		s.mergedSubresolution("a", 1, 1)
		dbtest.Equal(t, "within the minute", said(), nil)
		time.Sleep(time.Second)
		s.mergedSubresolution("a", 2, 1)
		dbtest.Equal(t, "a minute later", said(), []string{"schema=metrics table=a merged_points=7 resolution=1µs"})
		if got := testutil.ToFloat64(s.metrics.SubresolutionMergedRows); got != 15 {
			t.Errorf("counted: got %v, want 15", got)
		}
	})
}

func TestDistinct(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ts   []int64
		want int
	}{
		{[]int64{5}, 1},
		{[]int64{5, 5, 5}, 1},
		{[]int64{5, 6, 7}, 3},
		{[]int64{5, 5, 6, 6}, 2},
		{[]int64{7, 6, 5}, 3},
		{[]int64{6, 5, 6, 5}, 2},
		{[]int64{-9, 1 << 62, -9}, 2},
	} {
		name := fmt.Sprint(tc.ts)
		if got := distinct(tc.ts); got != tc.want {
			t.Errorf("%s: got %d, want %d", name, got, tc.want)
		}
	}
}

// TestSubMicrosKept: in jsonb storage a batch keeps the nanoseconds its
// rows do not, only once some are not 0, and they survive the spool.
func TestSubMicrosKept(t *testing.T) {
	t.Parallel()
	b := &batch{measurement: "m"}
	for _, ns := range []int64{1000, 2000, 3007, 4000, -1} {
		b.appendJSONB(pt("m", 1, ns, "host=a"))
		b.ends = append(b.ends, len(b.buf))
		b.addOrigin(origin)
		if got := b.rowNanos(b.rows()-1, false); got != ns {
			t.Errorf("row of %d ns: read back %d ns", ns, got)
		}
	}
	if want := []uint16{0, 0, 7, 0, 999}; fmt.Sprint(b.subMicros) != fmt.Sprint(want) {
		t.Errorf("kept %v, want %v", b.subMicros, want)
	}
	got, err := decodeBatch(encodeBatch(nil, b, 1, 4))
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint16{0, 7, 0}; fmt.Sprint(got.subMicros) != fmt.Sprint(want) {
		t.Errorf("from the spool: got %v, want %v", got.subMicros, want)
	}
	whole := &batch{measurement: "m"}
	whole.appendJSONB(pt("m", 1, 5000, "host=a"))
	whole.ends = append(whole.ends, len(whole.buf))
	whole.addOrigin(origin)
	if len(whole.subMicros) != 0 {
		t.Errorf("whole microseconds: kept %v, want nothing", whole.subMicros)
	}
}
