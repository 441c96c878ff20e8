package sink

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

func TestJSONEncoding(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// TestConcurrentCreation: two sinks (as two pginflux processes would) see
// the same new measurement and schema at once; both write all their rows.
func TestConcurrentCreation(t *testing.T) {
	t.Parallel()
	bothStorages(t, testConcurrentCreation)
}

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
		if got, want := dbtest.Count(t, pool, schema, fmt.Sprintf("race%d", i)), perSink*sinks/tables; got != want {
			t.Errorf("race%d: got %d rows, want %d", i, got, want)
		}
	}
}

// TestRefusedRowIsolated: a row PostgreSQL refuses (here a CHECK the user
// put on the table) fails neither its batch nor the other rows, and is
// kept in the rejected table as a line to replay.
func TestRefusedRowIsolated(t *testing.T) {
	t.Parallel()
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
	if got := dbtest.Count(t, pool, schema, "checked"); got != n-1 {
		t.Errorf("got %d rows, want %d", got, n-1)
	}
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(ReasonRefused)); got != 1 {
		t.Errorf("got %v refused rows, want 1", got)
	}
	want := []dbtest.Rejected{{Source: "192.0.2.1:5555", Measurement: "checked", Reason: ReasonRefused, Line: `checked,host=a\ b v=4567 4567000`}}
	if got := dbtest.ReadRejected(t, pool, schema); !slices.Equal(got, want) {
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
	t.Parallel()
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
	if got := len(dbtest.ReadRejected(t, pool, schema)); got != 2 {
		t.Errorf("got %d rows in the rejected table, want 2", got)
	}
	if got := dbtest.Count(t, pool, schema, "fine"); got != 1 {
		t.Errorf("got %d rows in fine, want 1", got)
	}
}

// TestTableDroppedMeanwhile: a table dropped behind pginflux's back is made
// again, not fatal.
func TestTableDroppedMeanwhile(t *testing.T) {
	t.Parallel()
	bothStorages(t, testTableDroppedMeanwhile)
}

func testTableDroppedMeanwhile(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	s, _ := newSink(t, pool, schema, storage)
	b := s.NewBatcher()
	b.Add(pt("gone", 1, 1), origin)
	b.Flush()
	dbtest.WaitFor(t, func() bool { return dbtest.TryCount(t, pool, schema, "gone") == 1 })
	if _, err := pool.Exec(t.Context(), "DROP TABLE "+pgx.Identifier{schema, "gone"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	b.Add(pt("gone", 2, 2), origin)
	b.Flush()
	closeSink(t, s)
	if got := dbtest.Count(t, pool, schema, "gone"); got != 1 {
		t.Errorf("got %d rows, want 1", got)
	}
}

// TestAbandonCounts: with the database unreachable, a shutdown whose
// timeout passes reports exactly the rows it could not write.
func TestAbandonCounts(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	dbtest.WaitFor(t, func() bool { return testutil.ToFloat64(m.PendingRows) >= 101 })
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
	t.Parallel()
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
			total += dbtest.Count(t, pool, schema, fmt.Sprintf("limited%d", i))
		}
		if total != 5000 {
			t.Errorf("got %d rows, want 5000", total)
		}
	})
}
