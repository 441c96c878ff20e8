package sink

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

// points reads a table as "tags|fields" lines, in both storage modes: the
// columns given, or tags and fields as text for jsonb.
func points(t *testing.T, pool *pgxpool.Pool, schema, table, storage, cols string) []string {
	t.Helper()
	if storage == StorageJSONB {
		cols = "tags::text, fields::text"
	}
	return dbtest.Query(t, pool, "SELECT extract(epoch from time)::bigint, "+cols+" FROM "+pgx.Identifier{schema, table}.Sanitize()+" ORDER BY time, 2, 3")
}

// TestPointMerge: the rows of one point — in one batch, in two batches,
// written again, partly written again — are one row, with the last value
// of each field.
func TestPointMerge(t *testing.T) {
	t.Parallel()
	bothStorages(t, testPointMerge)
}

func testPointMerge(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	cfg := Config{Schema: schema, Storage: storage}
	const s1, s2 = " 1000000000", " 2000000000"
	m := writeBatches(t, pool, cfg,
		// Split in one batch (as Telegraf's UDP output splits wide points).
		[]string{"mem,host=a used=1i,free=2i" + s1, "mem,host=a total=3i,avail=4i" + s1, "mem,host=b used=9i" + s1},
		// Split over two batches; the tags in another order are the same series.
		[]string{"mem,zone=z,host=a used=5i" + s2},
		[]string{"mem,host=a,zone=z free=6i" + s2},
		// A later write of one field updates that field only.
		[]string{"mem,host=a free=20i" + s1},
		// The same batch sent again changes nothing.
		[]string{"mem,host=a free=20i" + s1, "mem,host=b used=9i" + s1},
		[]string{"mem,host=a free=20i" + s1, "mem,host=b used=9i" + s1},
	)
	var want []string
	if storage == StorageColumns {
		want = []string{"1|a|∅|1|20|3|4", "1|b|∅|9|∅|∅|∅", "2|a|z|5|6|∅|∅"}
	} else {
		want = []string{
			`1|{"host": "a"}|{"free": 20, "used": 1, "avail": 4, "total": 3}`,
			`1|{"host": "b"}|{"used": 9}`,
			`2|{"host": "a", "zone": "z"}|{"free": 6, "used": 5}`,
		}
	}
	dbtest.Equal(t, "points", points(t, pool, schema, "mem", storage, "host, zone, used, free, total, avail"), want)
	if got := testutil.ToFloat64(m.MergedRows); got != 1 {
		t.Errorf("rows merged in memory: got %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.UpsertBatches); got < 3 {
		t.Errorf("batches merged into stored points: got %v, want at least 3", got)
	}
}

// TestPointMergeManyInBatch: many writes of a few points in one batch, and
// again in the next batch, interleaved; each field ends with the value
// written last.
func TestPointMergeManyInBatch(t *testing.T) {
	t.Parallel()
	bothStorages(t, testPointMergeManyInBatch)
}

func testPointMergeManyInBatch(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	var g1, g2 []string
	for i := range 1000 {
		g1 = append(g1, fmt.Sprintf("m,host=h%d f%d=%di %d", i%3, i%4, i, (i%5+1)*1_000_000_000))
		g2 = append(g2, fmt.Sprintf("m,host=h%d f%d=%di %d", i%3, i%4, i+1000, (i%5+1)*1_000_000_000))
	}
	writeBatches(t, pool, Config{Schema: schema, Storage: storage}, g1, g2)
	// Point (h, t) gets f_k from the last i with i%3=h, i%5+1=t, i%4=k.
	var want []string
	for h := range 3 {
		for ts := 1; ts <= 5; ts++ {
			vals := make([]string, 4)
			for i := range 1000 {
				if i%3 == h && i%5+1 == ts {
					vals[i%4] = fmt.Sprint(i + 1000)
				}
			}
			for k := range vals {
				if vals[k] == "" {
					vals[k] = "∅"
				}
			}
			want = append(want, fmt.Sprintf("%d|h%d|%s", ts, h, strings.Join(vals, "|")))
		}
	}
	cols := "host, f0, f1, f2, f3"
	if storage == StorageJSONB {
		cols = "tags->>'host', coalesce(fields->>'f0', '∅'), coalesce(fields->>'f1', '∅'), coalesce(fields->>'f2', '∅'), coalesce(fields->>'f3', '∅')"
	}
	got := dbtest.Query(t, pool, "SELECT extract(epoch from time)::bigint, "+cols+" FROM "+pgx.Identifier{schema, "m"}.Sanitize()+" ORDER BY 1, 2")
	dbtest.Equal(t, "points", got, sortedStrings(want))
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j-1] > out[j]; j-- {
			out[j-1], out[j] = out[j], out[j-1]
		}
	}
	return out
}

// TestNewTagKeyIsNewSeries: a tag key that appears after the table holds
// rows makes other series; the point key is not rebuilt, and host=a and
// host=a,zone=z are two points at one time.
func TestNewTagKeyIsNewSeries(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	cfg := Config{Schema: schema, Storage: StorageColumns}
	writeBatches(t, pool, cfg, []string{"cpu,host=a v=1 1000000000", "cpu,host=b v=2 1000000000"})
	indexes := func() []string {
		return dbtest.Query(t, pool, "SELECT indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = '"+
			pgx.Identifier{schema, "cpu"}.Sanitize()+"'::regclass")
	}
	before := indexes()
	writeBatches(t, pool, cfg, []string{"cpu,host=a,zone=z v=3 1000000000", "cpu,host=a v=4 1000000000"})
	dbtest.Equal(t, "indexes", indexes(), before)
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT host, zone, v FROM "+pgx.Identifier{schema, "cpu"}.Sanitize()+" ORDER BY host, zone"),
		[]string{"a|z|3", "a|∅|4", "b|∅|2"})
	dbtest.Equal(t, "series", dbtest.Query(t, pool, "SELECT table_name, tags::text FROM "+pgx.Identifier{schema, "pginflux_series"}.Sanitize()+" ORDER BY 2"),
		[]string{`cpu|{"host": "a", "zone": "z"}`, `cpu|{"host": "a"}`, `cpu|{"host": "b"}`})
	// The series table joins back to the rows.
	dbtest.Equal(t, "join", dbtest.Query(t, pool, "SELECT s.tags->>'zone', c.v FROM "+pgx.Identifier{schema, "cpu"}.Sanitize()+" c JOIN "+
		pgx.Identifier{schema, "pginflux_series"}.Sanitize()+" s ON s.table_name = 'cpu' AND s.series_id = c.series_id WHERE s.tags @> '{\"zone\": \"z\"}'"),
		[]string{"z|3"})
}

// TestSeriesCollision: two tag sets whose proposed ids collide (forced by
// the hook) get two ids, from one process and from two, and their points
// stay apart.
func TestSeriesCollision(t *testing.T) {
	t.Parallel()
	bothStorages(t, testSeriesCollision)
}

func testSeriesCollision(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	cfg := Config{Schema: schema, Storage: storage, Seams: Seams{SeriesHash: func([]byte) int64 { return 42 }}}
	m := writeBatches(t, pool, cfg, []string{"c,host=a v=1i 1000000000", "c,host=b v=2i 1000000000"})
	// Another process, with a new tag set and the two known ones.
	writeBatches(t, pool, cfg, []string{"c,host=c v=3i 1000000000", "c,host=b v=22i 1000000000", "c,host=a v=11i 2000000000"})
	cols := "host, v"
	if storage == StorageJSONB {
		cols = "tags->>'host', fields->>'v'"
	}
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT extract(epoch from time)::bigint, "+cols+" FROM "+pgx.Identifier{schema, "c"}.Sanitize()+" ORDER BY 1, 2"),
		[]string{"1|a|1", "1|b|22", "1|c|3", "2|a|11"})
	dbtest.Equal(t, "ids", dbtest.Query(t, pool, "SELECT series_id, tags->>'host' FROM "+pgx.Identifier{schema, "pginflux_series"}.Sanitize()+" ORDER BY 1"),
		[]string{"42|a", "43|b", "44|c"})
	if got := testutil.ToFloat64(m.SeriesCollisions); got != 1 {
		t.Errorf("collisions: got %v, want 1", got)
	}
}

// TestConcurrentSeries: sinks registering the same and colliding tag sets
// at once agree on one id per tag set.
func TestConcurrentSeries(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	hash := func(b []byte) int64 { return int64(len(b) % 3) }
	var wg sync.WaitGroup
	for k := range 4 {
		wg.Go(func() {
			var lines []string
			for i := range 50 {
				lines = append(lines, fmt.Sprintf("s,host=h%d v%d=%di %d", i, k, i, 1_000_000_000))
			}
			writeBatches(t, pool, Config{Schema: schema, Storage: StorageColumns, Seams: Seams{SeriesHash: hash}}, lines)
		})
	}
	wg.Wait()
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT count(*), count(DISTINCT series_id), count(v0), count(v1), count(v2), count(v3) FROM "+
		pgx.Identifier{schema, "s"}.Sanitize()), []string{"50|50|50|50|50|50"})
	dbtest.Equal(t, "series", dbtest.Query(t, pool, "SELECT count(*), count(DISTINCT tags) FROM "+pgx.Identifier{schema, "pginflux_series"}.Sanitize()), []string{"50|50"})
}

// TestAppendMode: --write-mode append makes tables without a key, where a
// point written twice is two rows.
func TestAppendMode(t *testing.T) {
	t.Parallel()
	bothStorages(t, testAppendMode)
}

func testAppendMode(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	cfg := Config{Schema: schema, Storage: storage, WriteMode: WriteAppend}
	writeBatches(t, pool, cfg, []string{"m,host=a v=1i 1000000000", "m,host=a w=1i 1000000000"}, []string{"m,host=a v=1i 1000000000"})
	if got := dbtest.Count(t, pool, schema, "m"); got != 3 {
		t.Errorf("rows: got %d, want 3", got)
	}
	for _, c := range dbtest.Columns(t, pool, schema, "m") {
		if strings.HasPrefix(c, "series_id") {
			t.Errorf("append table has column %s", c)
		}
	}
}

// TestPrecreatedKeys: a table made beforehand is merged into when it has a
// unique key on (series_id, time), and written in append mode, said once
// in the log, when it has none.
func TestPrecreatedKeys(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	for _, sql := range []string{
		"CREATE TABLE " + pgx.Identifier{schema, "keyed"}.Sanitize() + " (id bigserial, time timestamptz NOT NULL, series_id bigint NOT NULL, host varchar(20), v real, UNIQUE (time, series_id))",
		"CREATE TABLE " + pgx.Identifier{schema, "plain"}.Sanitize() + " (time timestamptz NOT NULL, host text, v real)",
		"CREATE TABLE " + pgx.Identifier{schema, "partial"}.Sanitize() + " (time timestamptz NOT NULL, series_id bigint, host text, v real)",
		"CREATE UNIQUE INDEX ON " + pgx.Identifier{schema, "partial"}.Sanitize() + " (series_id, time) WHERE v > 0",
	} {
		if _, err := pool.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 100, FlushInterval: time.Hour, RejectedTable: "pginflux_rejected"}, m, log)
	b := s.NewBatcher()
	for range 2 {
		for _, tbl := range []string{"keyed", "plain", "partial"} {
			b.Add(dbtest.Line(t, tbl+",host=a v=1 1000000000"), origin)
			b.Add(dbtest.Line(t, tbl+",host=a w=2i 1000000000"), origin)
		}
		b.Flush()
	}
	closeSink(t, s)
	for tbl, want := range map[string]int{"keyed": 1, "plain": 4, "partial": 4} {
		if got := dbtest.Count(t, pool, schema, tbl); got != want {
			t.Errorf("%s: got %d rows, want %d", tbl, got, want)
		}
	}
	dbtest.Equal(t, "keyed", dbtest.Query(t, pool, "SELECT host, v, w FROM "+pgx.Identifier{schema, "keyed"}.Sanitize()), []string{"a|1|2"})
	mu.Lock()
	defer mu.Unlock()
	said := func(tbl string) (n int) {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "no point key") && strings.HasSuffix(l, "table="+tbl) {
				n++
			}
		}
		return n
	}
	for tbl, want := range map[string]int{"plain": 1, "partial": 1, "keyed": 0} {
		if n := said(tbl); n != want {
			t.Errorf("%s: said keyless %d times in the log, want %d:\n%s", tbl, n, want, logs.String())
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestPointMergePartitioned: partitioned tables (the key includes time)
// and tables made by a template merge too.
func TestPointMergePartitioned(t *testing.T) {
	t.Parallel()
	bothStorages(t, testPointMergePartitioned)
}

func testPointMergePartitioned(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	tmpl := mustTemplate(t, "CREATE INDEX ON {{.Table}} USING brin ({{.TimeColumn}})")
	day := int64(24 * time.Hour)
	cfg := Config{Schema: schema, Storage: storage, PartitionBy: "day", CreateTableSQL: tmpl}
	writeBatches(t, pool, cfg,
		[]string{fmt.Sprintf("p,host=a v=1i %d", day), fmt.Sprintf("p,host=a v=2i %d", 3*day)},
		[]string{fmt.Sprintf("p,host=a w=1i %d", day), fmt.Sprintf("p,host=a v=3i %d", 3*day)},
	)
	cols := "host, v, w"
	if storage == StorageJSONB {
		cols = "tags->>'host', fields->>'v', coalesce(fields->>'w', '∅')"
	}
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT extract(epoch from time)::bigint / 86400, "+cols+" FROM "+pgx.Identifier{schema, "p"}.Sanitize()+" ORDER BY 1"),
		[]string{"1|a|1|1", "3|a|3|∅"})
}

// TestTimeColumnPrecision: a time column keeping seconds gets the time
// floored (as microseconds are), not rounded, and lines of a series within
// one second are one point there.
func TestTimeColumnPrecision(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "coarse"}.Sanitize()
	mustExec(t, pool, "CREATE TABLE "+table+" (time timestamptz(0) NOT NULL, series_id bigint NOT NULL, host text, a bigint, b bigint, PRIMARY KEY (series_id, time))")
	writeBatches(t, pool, Config{Schema: schema, Storage: StorageColumns},
		[]string{"coarse,host=x a=1i 1700000000700000000", "coarse,host=x b=2i 1700000000300000000"},
		[]string{"coarse,host=x a=3i 1700000000900000000"})
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT extract(epoch from time)::text || ' ' || a || ' ' || b FROM "+table), []string{"1700000000.000000 3 2"})
}

// TestDomainColumns: a column of a domain without constraints takes values
// as its base type does, exactness checks included; one of a domain with
// a CHECK is left alone, and its key gets a column of its own.
func TestDomainColumns(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	q := func(n string) string { return pgx.Identifier{schema, n}.Sanitize() }
	mustExec(t, pool,
		"CREATE DOMAIN "+q("money2")+" AS numeric(5,2)",
		"CREATE DOMAIN "+q("positive")+" AS bigint CHECK (VALUE > 0)",
		"CREATE DOMAIN "+q("ts")+" AS timestamptz",
		"CREATE TABLE "+q("d")+" (time "+q("ts")+" NOT NULL, v "+q("money2")+", w "+q("positive")+")")
	write(t, pool, schema, Config{WriteMode: WriteAppend}, "d v=1.25,w=5i 1000", "d v=1.234,w=-1i 2000")
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT concat_ws(' ', v, w, w_field) FROM "+q("d")+" ORDER BY time"), []string{"1.25 5", "-1"})
	dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), []string{"out_of_range: d v=1.234 2000"})
}

// TestPointMergeOverflow: keys in the overflow column merge as fields do:
// a later write of a point adds its keys, replaces those it carries, and
// keeps the others.
func TestPointMergeOverflow(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	// time, series_id, host, a: then the overflow column.
	cfg := Config{Schema: schema, Storage: StorageColumns, MaxColumns: 4}
	writeBatches(t, pool, cfg,
		[]string{"o,host=h a=1i,b=2i,c=3i 1000"},
		[]string{"o,host=h b=20i,d=4i 1000"},
		[]string{"o,host=h a=10i 1000"})
	dbtest.Equal(t, "row", dbtest.Query(t, pool, "SELECT a || ' ' || pginflux_overflow::text FROM "+pgx.Identifier{schema, "o"}.Sanitize()),
		[]string{`10 {"fields": {"b": 20, "c": 3, "d": 4}}`})
}

// TestBatchKeepsPointWhole: a batch that fills up in the middle of a
// point's lines takes the rest of them before it is handed over, so that
// the next batch does not hit the point in PostgreSQL.
func TestBatchKeepsPointWhole(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	var lines []string
	for i := range 100 {
		// Three lines a point: batches of 10 fill up inside points.
		for _, f := range []string{"a", "b", "c"} {
			lines = append(lines, fmt.Sprintf("w,host=h%d %s=%di %d", i%4, f, i, (i+1)*1000))
		}
	}
	m := writeBatches(t, pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 10}, lines)
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT count(*), count(a), count(b), count(c) FROM "+pgx.Identifier{schema, "w"}.Sanitize()), []string{"100|100|100|100"})
	if got := testutil.ToFloat64(m.UpsertBatches); got != 0 {
		t.Errorf("%v batches hit stored points, want none", got)
	}
}

// TestMergedRejectAttribution: when the lines of one point come from two
// requests in one batch, a value that does not fit is charged to the
// request that sent it, with its origin.
func TestMergedRejectAttribution(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1,
		RejectedTable: "pginflux_rejected"}, NewMetrics(nil), quiet)
	first, second := NewTicket(), NewTicket()
	o2 := Origin{Source: netip.MustParseAddrPort("192.0.2.2:2222"), Received: origin.Received}
	b := s.NewBatcher()
	b.addRow(dbtest.Line(t, "m,host=a v=1i,w=1i 1000"), origin, first)
	b.Flush()
	first.Seal()
	if _, err := first.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	third := NewTicket()
	b.addRow(dbtest.Line(t, "m,host=a w=2i 2000"), origin, third)
	b.addRow(dbtest.Line(t, `m,host=a v="x" 2000`), o2, second)
	b.Flush()
	second.Seal()
	third.Seal()
	rej2, err2 := second.Wait(t.Context())
	rej3, err3 := third.Wait(t.Context())
	closeSink(t, s)
	if err2 != nil || err3 != nil || rej2 != 1 || rej3 != 0 {
		t.Errorf("rejected rows told: second %d (%v), third %d (%v); want 1 and 0", rej2, err2, rej3, err3)
	}
	dbtest.Equal(t, "rejected", dbtest.Query(t, pool, "SELECT source || ' ' || line FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()),
		[]string{`192.0.2.2:2222 m,host=a v="x" 2000`})
}

// TestKeyOrder: a batch's points come out in the order of the point key,
// (time, series_id), each once, whatever order the rows came in: times
// rising with a few points each (as from a fleet), one time for all,
// falling times, points written twice, negative ids (tables converted by
// hand) and the extremes of int64.
func TestKeyOrder(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := map[string]func(k int) (micros, sid int64){
		"in order":       func(k int) (int64, int64) { return int64(k / 9), int64(k % 9) },
		"hosts":          func(k int) (int64, int64) { return int64(k / 9), rng.Int64N(1 << 62) },
		"one time":       func(k int) (int64, int64) { return 7, rng.Int64N(1 << 62) },
		"falling":        func(k int) (int64, int64) { return int64(-k), rng.Int64N(4) },
		"written twice":  func(k int) (int64, int64) { return int64(k % 50), int64(k % 7) },
		"random":         func(k int) (int64, int64) { return rng.Int64N(100), rng.Int64N(100) },
		"a point at all": func(k int) (int64, int64) { return 1, 1 },
		// Ids of a table converted by hand (docs/tables.md) are negative,
		// beside the ones pginflux makes.
		"converted": func(k int) (int64, int64) { return int64(k / 300), rng.Int64N(1<<62) - 1<<61 },
		"extremes": func(k int) (int64, int64) {
			return 0, [...]int64{math.MinInt64, math.MaxInt64, -1, 0}[k%4] + int64(k/4)*[...]int64{1, -1, 1, 1}[k%4]
		},
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			const n = 3000
			var pp pointPlan
			pp.micros, pp.sids = make([]int64, n), make([]int64, n)
			for k := range n {
				pp.micros[k], pp.sids[k] = shape(k)
			}
			pp.group(n)
			pp.keyOrder(n)
			if len(pp.keys) != pp.rows {
				t.Fatalf("%d keys for %d points", len(pp.keys), pp.rows)
			}
			var heads []int // the points' first rows, as they came
			for k := range n {
				if pp.head[k] {
					heads = append(heads, k)
				}
			}
			seen := make(map[int32]bool)
			for i, pk := range pp.keys {
				k := heads[pk.ord]
				if seen[pk.ord] || pk.micros != pp.micros[k] || pk.sid != pp.sids[k] {
					t.Fatalf("key %d: %+v is not the first row of a point not seen before", i, pk)
				}
				seen[pk.ord] = true
				if i > 0 && comparePointKeys(pp.keys[i-1], pk) >= 0 {
					t.Fatalf("key %d: %+v after %+v, want rising keys", i, pk, pp.keys[i-1])
				}
			}
		})
	}
}
