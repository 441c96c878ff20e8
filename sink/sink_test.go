package sink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// minInt64Bits is math.MinInt64 as Field.Num holds it.
const minInt64Bits = 1 << 63

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// pt builds a point: tags as "k=v" pairs, one float field v.
func pt(measurement string, v float64, unixNanos int64, tags ...string) *parse.Point {
	p := &parse.Point{Measurement: []byte(measurement), Time: unixNanos}
	for _, kv := range tags {
		k, val, _ := strings.Cut(kv, "=")
		p.Tags = append(p.Tags, parse.Tag{Key: []byte(k), Value: []byte(val)})
	}
	p.Fields = []parse.Field{{Key: []byte("v"), Kind: parse.Float, Num: math.Float64bits(v)}}
	return p
}

// origin is where the test's rows come from.
var origin = Origin{Source: netip.MustParseAddrPort("192.0.2.1:5555"), Received: time.Unix(1_700_000_000, 0)}

func newSink(t *testing.T, pool *pgxpool.Pool, schema, storage string) (*Sink, *Metrics) {
	t.Helper()
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: storage, BatchSize: 100_000, FlushInterval: time.Hour, Writers: 2,
		RejectedTable: "pginflux_rejected"}, m, quiet)
	return s, m
}

// bothStorages runs f as a subtest for each storage mode.
func bothStorages(t *testing.T, f func(t *testing.T, storage string)) {
	for _, st := range []string{StorageJSONB, StorageColumns} {
		t.Run(st, func(t *testing.T) { f(t, st) })
	}
}

// rejectedRow is one row of the rejected table.
type rejectedRow struct {
	source, measurement, reason, line string
}

func readRejected(t *testing.T, pool *pgxpool.Pool, schema string) []rejectedRow {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT coalesce(source, ''), coalesce(measurement, ''), reason, line FROM "+
		pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()+" ORDER BY line")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rejectedRow, error) {
		var x rejectedRow
		return x, r.Scan(&x.source, &x.measurement, &x.reason, &x.line)
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func closeSink(t *testing.T, s *Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, schema, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTableName(t *testing.T) {
	short := strings.Repeat("a", 63)
	if got := TableName(short); got != short {
		t.Errorf("got %q, want the 63-byte name unchanged", got)
	}
	long1 := strings.Repeat("a", 63) + "1"
	long2 := strings.Repeat("a", 63) + "2"
	n1, n2 := TableName(long1), TableName(long2)
	if n1 == n2 {
		t.Errorf("two long names sharing 63 bytes map to one table %q", n1)
	}
	if n1 != TableName(long1) {
		t.Error("not deterministic")
	}
	for _, n := range []string{n1, n2, TableName(strings.Repeat("é", 40))} {
		if len(n) > 63 || !utf8.ValidString(n) {
			t.Errorf("%q: %d bytes, valid UTF-8 %v", n, len(n), utf8.ValidString(n))
		}
	}
	if want := strings.Repeat("a", 50) + "_"; !strings.HasPrefix(n1, want) || len(n1) != 63 {
		t.Errorf("got %q, want 50 bytes of the name, _, 12 hex digits", n1)
	}
}

func TestJSONEncoding(t *testing.T) {
	tests := []struct {
		name string
		f    parse.Field
		want string
	}{
		{name: "integral float keeps its point", f: parse.Field{Kind: parse.Float, Num: math.Float64bits(2)}, want: "2.0"},
		{name: "float", f: parse.Field{Kind: parse.Float, Num: math.Float64bits(-95.25)}, want: "-95.25"},
		{name: "large float", f: parse.Field{Kind: parse.Float, Num: math.Float64bits(1e300)}, want: "1" + strings.Repeat("0", 300) + ".0"},
		{name: "int", f: parse.Field{Kind: parse.Int, Num: minInt64Bits}, want: "-9223372036854775808"},
		{name: "uint", f: parse.Field{Kind: parse.Uint, Num: math.MaxUint64}, want: "18446744073709551615"},
		{name: "true", f: parse.Field{Kind: parse.Bool, Num: 1}, want: "true"},
		{name: "false", f: parse.Field{Kind: parse.Bool}, want: "false"},
		{name: "string escapes", f: parse.Field{Kind: parse.String, Str: []byte("a\"b\\c\nd\te\x01é")}, want: `"a\"b\\c\nd\te\u0001é"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendJSONValue(nil, &tt.f)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestValuesRoundTrip writes every value type and reads it back through
// PostgreSQL's own jsonb parser.
func TestValuesRoundTrip(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	s, m := newSink(t, pool, schema, StorageJSONB)
	b := s.NewBatcher()
	p := &parse.Point{
		Measurement: []byte("types"),
		Tags:        []parse.Tag{{Key: []byte("quote\"tag"), Value: []byte("line\nbreak é")}},
		Fields: []parse.Field{
			{Key: []byte("f"), Kind: parse.Float, Num: math.Float64bits(1.5)},
			{Key: []byte("i"), Kind: parse.Int, Num: uint64(1<<63 - 1)},
			{Key: []byte("u"), Kind: parse.Uint, Num: math.MaxUint64},
			{Key: []byte("b"), Kind: parse.Bool, Num: 1},
			{Key: []byte("s"), Kind: parse.String, Str: []byte(`say "hi" \ bye`)},
			{Key: []byte("i"), Kind: parse.Int, Num: 7}, // repeated key: the last wins
		},
		Time: -1, // one nanosecond before 1970: floored to the microsecond
	}
	b.Add(p, origin)
	b.Flush()
	closeSink(t, s)

	var tm time.Time
	var tag, sval string
	var f float64
	var i int64
	var u string
	var bl bool
	err := pool.QueryRow(t.Context(), `SELECT time, tags->>'quote"tag', (fields->>'f')::float8, (fields->>'i')::int8,
		fields->>'u', (fields->>'b')::bool, fields->>'s' FROM `+pgx.Identifier{schema, "types"}.Sanitize()).
		Scan(&tm, &tag, &f, &i, &u, &bl, &sval)
	if err != nil {
		t.Fatal(err)
	}
	if !tm.Equal(time.Unix(0, -1000)) || tag != "line\nbreak é" || f != 1.5 || i != 7 || u != "18446744073709551615" || !bl || sval != `say "hi" \ bye` {
		t.Errorf("got %v %q %v %v %v %v %q", tm, tag, f, i, u, bl, sval)
	}
	if got := testutil.ToFloat64(m.RowsWritten); got != 1 {
		t.Errorf("got %v rows written, want 1", got)
	}
	if got := testutil.ToFloat64(m.PendingRows); got != 0 {
		t.Errorf("got %v pending rows, want 0", got)
	}
}

// TestHostileNames: names are always quoted, so a measurement that looks
// like SQL is only a name; long names get their documented short form and
// keep the full name as the table's comment.
func TestHostileNames(t *testing.T) { bothStorages(t, testHostileNames) }

func testHostileNames(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+pgx.Identifier{schema, "y"}.Sanitize()+" (a int)"); err != nil {
		t.Fatal(err)
	}
	injection := fmt.Sprintf(`x"; DROP TABLE "%s".y; --`, schema)
	long := "a.very.long.measurement.name." + strings.Repeat("Ünïcødé ", 10)
	names := []string{injection, long, "Mixed Case.dots;semi", "cpu", "CPU", "'single'"}

	s, _ := newSink(t, pool, schema, storage)
	b := s.NewBatcher()
	for i, n := range names {
		b.Add(pt(n, float64(i), int64(i)), origin)
	}
	b.Flush()
	closeSink(t, s)

	for _, n := range names {
		if got := count(t, pool, schema, TableName(n)); got != 1 {
			t.Errorf("%q: got %d rows, want 1", n, got)
		}
	}
	if got := count(t, pool, schema, "y"); got != 0 {
		t.Errorf("table y: got %d rows", got)
	}
	var comment string
	err := pool.QueryRow(t.Context(), "SELECT obj_description($1::regclass, 'pg_class')",
		pgx.Identifier{schema, TableName(long)}.Sanitize()).Scan(&comment)
	if err != nil {
		t.Fatal(err)
	}
	if comment != long {
		t.Errorf("got comment %q, want %q", comment, long)
	}
}

// TestConcurrentCreation: two sinks (as two pginflux processes would) see
// the same new measurement and schema at once; both write all their rows.
func TestConcurrentCreation(t *testing.T) { bothStorages(t, testConcurrentCreation) }

func testConcurrentCreation(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	schema += "_new" // not created yet: both race to create it too
	t.Cleanup(func() {
		pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	const perSink, sinks, tables = 500, 4, 5
	var wg sync.WaitGroup
	for k := range sinks {
		wg.Go(func() {
			s, _ := newSink(t, pool, schema, storage)
			b := s.NewBatcher()
			for i := range perSink {
				b.Add(pt(fmt.Sprintf("race%d", i%tables), float64(k), int64(k*perSink+i)*1000), origin)
			}
			b.Flush()
			closeSink(t, s)
		})
	}
	wg.Wait()
	for i := range tables {
		if got, want := count(t, pool, schema, fmt.Sprintf("race%d", i)), perSink*sinks/tables; got != want {
			t.Errorf("race%d: got %d rows, want %d", i, got, want)
		}
	}
}

// TestRefusedRowIsolated: a row PostgreSQL refuses (here a CHECK the user
// put on the table) fails neither its batch nor the other rows, and is
// kept in the rejected table as a line to replay.
func TestRefusedRowIsolated(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "checked"}.Sanitize()
	_, err := pool.Exec(t.Context(), "CREATE TABLE "+table+
		` (time timestamptz NOT NULL, tags jsonb NOT NULL, fields jsonb NOT NULL CHECK ((fields->>'v')::float8 <> 4567))`)
	if err != nil {
		t.Fatal(err)
	}
	s, m := newSink(t, pool, schema, StorageJSONB)
	b := s.NewBatcher()
	const n = 10_000
	for i := range n {
		b.Add(pt("checked", float64(i), int64(i)*1000, "host=a b"), origin)
	}
	b.Flush()
	closeSink(t, s)
	if got := count(t, pool, schema, "checked"); got != n-1 {
		t.Errorf("got %d rows, want %d", got, n-1)
	}
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(ReasonRefused)); got != 1 {
		t.Errorf("got %v refused rows, want 1", got)
	}
	want := []rejectedRow{{source: "192.0.2.1:5555", measurement: "checked", reason: ReasonRefused, line: `checked,host=a\ b v=4567 4567000`}}
	if got := readRejected(t, pool, schema); !slices.Equal(got, want) {
		t.Errorf("got rejected %+v, want %+v", got, want)
	}
	if got := testutil.ToFloat64(m.RowsWritten); got != n-1 {
		t.Errorf("got %v rows written, want %d", got, n-1)
	}
}

// TestTableMismatch: a table made beforehand with a layout jsonb storage
// cannot fill is reported, its rows go to the rejected table, and nothing
// else stops.
func TestTableMismatch(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+pgx.Identifier{schema, "odd"}.Sanitize()+" (time timestamptz, tags text, fields jsonb)"); err != nil {
		t.Fatal(err)
	}
	s, m := newSink(t, pool, schema, StorageJSONB)
	b := s.NewBatcher()
	b.Add(pt("odd", 1, 1), origin)
	b.Add(pt("odd", 2, 2), origin)
	b.Add(pt("fine", 3, 3), origin)
	b.Flush()
	closeSink(t, s)
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(ReasonTableMismatch)); got != 2 {
		t.Errorf("got %v table_mismatch rows, want 2", got)
	}
	if got := len(readRejected(t, pool, schema)); got != 2 {
		t.Errorf("got %d rows in the rejected table, want 2", got)
	}
	if got := count(t, pool, schema, "fine"); got != 1 {
		t.Errorf("got %d rows in fine, want 1", got)
	}
}

// TestTableDroppedMeanwhile: a table dropped behind pginflux's back is made
// again, not fatal.
func TestTableDroppedMeanwhile(t *testing.T) { bothStorages(t, testTableDroppedMeanwhile) }

func testTableDroppedMeanwhile(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	s, _ := newSink(t, pool, schema, storage)
	b := s.NewBatcher()
	b.Add(pt("gone", 1, 1), origin)
	b.Flush()
	waitFor(t, func() bool { return tableRows(t, pool, schema, "gone") == 1 })
	if _, err := pool.Exec(t.Context(), "DROP TABLE "+pgx.Identifier{schema, "gone"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	b.Add(pt("gone", 2, 2), origin)
	b.Flush()
	closeSink(t, s)
	if got := count(t, pool, schema, "gone"); got != 1 {
		t.Errorf("got %d rows, want 1", got)
	}
}

func tableRows(t *testing.T, pool *pgxpool.Pool, schema, table string) int {
	var n int
	err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&n)
	if err != nil {
		return -1
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAbandonCounts: with the database unreachable, a shutdown whose
// timeout passes reports exactly the rows it could not write.
func TestAbandonCounts(t *testing.T) {
	pool := pgtest.Unreachable(t)
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: "x", Storage: StorageColumns, BatchSize: 10, FlushInterval: time.Hour, Writers: 1}, m, quiet)
	b := s.NewBatcher()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	stop := context.AfterFunc(ctx, s.Abandon)
	defer stop()
	for i := range 95 {
		b.Add(pt("lost", 1, int64(i)), origin)
	}
	b.Flush()
	err := s.Close(ctx)
	if err == nil {
		t.Fatal("got no error")
	}
	if got := s.Abandoned(); got != 95 {
		t.Errorf("got %d abandoned, want 95", got)
	}
	if got := testutil.ToFloat64(m.RowsDropped.WithLabelValues(DropAbandoned)); got != 95 {
		t.Errorf("got %v abandoned in the metric, want 95", got)
	}
	if got := testutil.ToFloat64(m.PendingRows); got != 0 {
		t.Errorf("got %v pending, want 0", got)
	}
}

// TestPendingLimitHolds: with the database unreachable, a producer stops
// at the pending-rows limit (rather than buffering in open batches of many
// tables without end) and goes on once the sink abandons its work.
func TestPendingLimitHolds(t *testing.T) {
	pool := pgtest.Unreachable(t)
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: "x", BatchSize: 1000, MaxPendingRows: 100, FlushInterval: time.Hour, Writers: 1}, m, quiet)
	var added atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := s.NewBatcher()
		for i := range 1000 {
			b.Add(pt(fmt.Sprintf("held%d", i%5), 1, int64(i)), origin)
			added.Add(1)
		}
		b.Flush()
	}()
	waitFor(t, func() bool { return testutil.ToFloat64(m.PendingRows) >= 101 })
	select {
	case <-done:
		t.Fatalf("the producer added all %d rows past a limit of 100", added.Load())
	default:
	}
	if got := added.Load(); got > 101 {
		t.Errorf("got %d rows taken in, want at most 101", got)
	}
	s.Abandon()
	<-done
	if err := s.Close(t.Context()); err == nil {
		t.Error("got no error from Close after abandoning")
	}
	if got := testutil.ToFloat64(m.PendingRows); got != 0 {
		t.Errorf("got %v pending, want 0", got)
	}
	if got := testutil.ToFloat64(m.RowsDropped.WithLabelValues(DropAbandoned)); got != 1000 {
		t.Errorf("got %v abandoned, want 1000", got)
	}
}

// TestPendingLimitLosesNothing: a limit far below the rows sent slows the
// producer down and loses nothing.
func TestPendingLimitLosesNothing(t *testing.T) {
	bothStorages(t, func(t *testing.T, storage string) {
		pool, schema := pgtest.Schema(t)
		m := NewMetrics(nil)
		s := New(pool, Config{Schema: schema, Storage: storage, BatchSize: 50, MaxPendingRows: 100, FlushInterval: time.Hour, Writers: 2}, m, quiet)
		b := s.NewBatcher()
		for i := range 5000 {
			b.Add(pt(fmt.Sprintf("limited%d", i%3), float64(i), int64(i)*1000), origin)
		}
		b.Flush()
		closeSink(t, s)
		total := 0
		for i := range 3 {
			total += count(t, pool, schema, fmt.Sprintf("limited%d", i))
		}
		if total != 5000 {
			t.Errorf("got %d rows, want 5000", total)
		}
	})
}
