package sink

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
	"github.com/pginflux/pginflux/sink/schema"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFastRowSameAsGeneral encodes random rows, some of one point, into
// columns of several types (some of which refuse some values, and keys
// without a column) twice: with fastRow, and with every row on the general
// path. The COPY rows and the rejected values must be the same.
func TestFastRowSameAsGeneral(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	types := map[string]schema.Type{
		"f":  {OID: schema.OIDFloat8, Typmod: -1, Name: "double precision"},
		"i":  {OID: schema.OIDInt8, Typmod: -1, Name: "bigint"},
		"i4": {OID: schema.OIDInt4, Typmod: -1, Name: "integer"},
		"s":  {OID: schema.OIDText, Typmod: -1, Name: "text"},
		"b":  {OID: schema.OIDBool, Typmod: -1, Name: "boolean"},
		"n":  {OID: schema.OIDNumeric, Typmod: -1, Name: "numeric"},
	}
	value := func(key string) parse.Field {
		f := parse.Field{Key: []byte(key)}
		switch rng.IntN(5) {
		case 0:
			f.Kind, f.Num = parse.Float, uint64(rng.Uint64()>>2)
		case 1:
			f.Kind, f.Num = parse.Int, uint64(rng.Int64N(1<<40)-1<<39)
		case 2:
			f.Kind, f.Num = parse.Uint, rng.Uint64()
		case 3:
			f.Kind, f.Str = parse.String, fmt.Appendf(nil, "s%d", rng.IntN(100))
		default:
			f.Kind, f.Num = parse.Bool, uint64(rng.IntN(2))
		}
		// Mostly the kind its column takes, so that most rows are fast.
		if rng.IntN(12) > 0 {
			switch key {
			case "f":
				f.Kind, f.Num = parse.Float, uint64(rng.Uint64()>>2)
			case "i", "i4":
				f.Kind, f.Num = parse.Int, uint64(rng.Int64N(1000))
			case "s", "extra":
				f.Kind, f.Str = parse.String, fmt.Appendf(nil, "s%d", rng.IntN(100))
			case "b":
				f.Kind, f.Num = parse.Bool, uint64(rng.IntN(2))
			}
		}
		return f
	}
	fastRows, deadRows, overflowed := 0, 0, 0
	for round := range 50 {
		var pts []*parse.Point
		for i := range 40 {
			p := &parse.Point{Measurement: []byte("m"), Time: int64(1e18 + rng.IntN(5)*1000)}
			for _, k := range []string{"host", "region"} {
				if rng.IntN(3) > 0 {
					p.Tags = append(p.Tags, parse.Tag{Key: []byte(k), Value: fmt.Appendf(nil, "%s%d", k, rng.IntN(3))})
				}
			}
			for _, k := range []string{"f", "i", "i4", "s", "b", "n", "f", "extra"} {
				if rng.IntN(3) > 0 {
					p.Fields = append(p.Fields, value(k))
				}
			}
			if len(p.Fields) == 0 {
				p.Fields = append(p.Fields, value("f"))
			}
			_ = i
			pts = append(pts, p)
		}
		bt := &batch{measurement: "m"}
		for _, p := range pts {
			bt.appendTypedRow(p)
			bt.ends = append(bt.ends, len(bt.buf))
			bt.addOrigin(origin)
		}
		tbl := schema.NewTypedTable("m", `"s"."m"`)
		for _, k := range bt.keys {
			if k.Name == "extra" && round%2 == 0 {
				continue // no column: the overflow column or the rejected table
			}
			if k.Name == "b" && !k.Tag && round%4 == 1 {
				tbl.Failed[k.Key] = "adding it failed"
				continue
			}
			typ, ok := types[k.Name]
			if k.Tag || !ok {
				typ = types["s"]
			}
			key := k.Key
			tbl.Add(&schema.Column{Name: k.Name, Type: typ, Owner: &key})
		}
		if round%5 == 2 {
			// The table is at --max-columns: keys without a column go
			// to the overflow column, which rows without one leave
			// NULL.
			tbl.Overflow = &schema.Column{Name: schema.OverflowColumn, Type: schema.Type{OID: schema.OIDJSONB, Typmod: -1, Name: "jsonb"}}
		}
		cols := tbl.ColumnsFor(bt.keys)
		var pp *pointPlan
		if round%3 == 0 {
			// Rows of the same tags and time are one point.
			pp = &pointPlan{}
			n := bt.rows()
			pp.sids, pp.head, pp.next, pp.tail = make([]int64, n), make([]bool, n), make([]int32, n), make([]int32, n)
			seen := map[string]int32{}
			for k, p := range pts {
				id := fmt.Sprint(p.Tags, p.Time)
				pp.sids[k] = int64(len(id))
				pp.next[k] = -1
				if h, ok := seen[id]; ok {
					pp.next[pp.tail[h]] = int32(k)
					pp.tail[h] = int32(k)
					continue
				}
				seen[id] = int32(k)
				pp.head[k], pp.tail[k] = true, int32(k)
				pp.rows++
			}
		}
		var fast, general encoded
		general.noFastRow = true
		encodeTyped(&fast, bt, 0, bt.rows(), tbl, cols, pp)
		encodeTyped(&general, bt, 0, bt.rows(), tbl, cols, pp)
		if !bytes.Equal(fast.rows, general.rows) || !reflect.DeepEqual(fast.ends, general.ends) {
			t.Fatalf("round %d: fastRow's COPY rows differ from the general path's", round)
		}
		if !reflect.DeepEqual(fast.dead, general.dead) || fast.overflowed != general.overflowed {
			t.Fatalf("round %d: rejected values differ: fast %v, general %v", round, fast.dead, general.dead)
		}
		pos := make([]int, len(cols)+1)
		var scratch encoded
		for r := range bt.rows() {
			if pp != nil && !pp.head[r] {
				continue
			}
			if fastRow(&scratch, bt, r, 0, tbl, slotsOf(bt, tbl, cols), uniqueCols(cols), pos, pp, 0, tbl.Overflow != nil) {
				fastRows++
			}
		}
		overflowed += fast.overflowed
		for _, d := range fast.dead {
			if len(d) > 0 {
				deadRows++
			}
		}
	}
	// Both paths were taken, often.
	if fastRows < 100 || deadRows < 100 || overflowed < 20 {
		t.Errorf("%d rows took fastRow, %d had rejected values, %d values overflowed: the test does not exercise every path", fastRows, deadRows, overflowed)
	}
}

// slotsOf and uniqueCols are encodeTyped's key-to-column mapping.
func slotsOf(bt *batch, tbl *schema.TypedTable, keyCols []*schema.Column) []int {
	slot := make([]int, len(bt.keys))
	index := map[*schema.Column]int{}
	for id := range bt.keys {
		c := keyCols[id]
		if c == nil {
			slot[id] = -1
			continue
		}
		if _, ok := index[c]; !ok {
			index[c] = len(index) + 1
		}
		slot[id] = index[c]
	}
	return slot
}

func uniqueCols(keyCols []*schema.Column) []*schema.Column {
	var cols []*schema.Column
	seen := map[*schema.Column]bool{}
	for _, c := range keyCols {
		if c != nil && !seen[c] {
			seen[c] = true
			cols = append(cols, c)
		}
	}
	return cols
}

// TestOverflowMixedBatch: in a table at --max-columns, a batch where some
// rows bring a key without a column (to the overflow column) and others
// do not: every row lands, none is refused.
func TestOverflowMixedBatch(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 100, FlushInterval: time.Hour, Writers: 1,
		MaxColumns: 6, RejectedTable: "pginflux_rejected"}, m, quiet)
	b := s.NewBatcher()
	b.Add(dbtest.Line(t, "wide,host=a f0=0i,f1=1i,f2=2i,f3=3i,f4=4i,f5=5i,f6=6i 1000"), origin)
	b.Flush()
	dbtest.WaitFor(t, func() bool { return dbtest.TryCount(t, pool, schema, "wide") == 1 })
	b.Add(dbtest.Line(t, "wide,host=b f0=10i 2000"), origin)
	b.Add(dbtest.Line(t, "wide,host=c f0=20i,f7=27i 3000"), origin)
	b.Flush()
	closeSink(t, s)
	if n := dbtest.TryCount(t, pool, schema, "wide"); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	if n := dbtest.TryCount(t, pool, schema, "pginflux_rejected"); n > 0 {
		t.Errorf("%d rows in the rejected table, want none", n)
	}
}

// TestConflictInBigBatch: a value that cannot fit its column, in the middle
// of a 10,000-row batch, fails nothing: every row lands (that one without
// the value) and the value goes to the rejected table.
func TestConflictInBigBatch(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	lines := make([]string, 10_000)
	for i := range lines {
		lines[i] = fmt.Sprintf("cpu,host=h%d usage=%d.5,n=%di %d", i%7, i, i, (i+1)*1000)
	}
	lines[5000] = `cpu,host=h3 usage="high",n=5000i 5001000`
	m := write(t, pool, schema, Config{}, lines...)
	table := pgx.Identifier{schema, "cpu"}.Sanitize()
	dbtest.Equal(t, "counts", dbtest.Query(t, pool, "SELECT count(*), count(usage), count(n) FROM "+table), []string{"10000|9999|10000"})
	dbtest.Equal(t, "row", dbtest.Query(t, pool, "SELECT host, usage, n FROM "+table+" WHERE n = 5000"), []string{"h3|∅|5000"})
	dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), []string{`type_conflict: cpu,host=h3 usage="high" 5001000`})
	if got := testutil.ToFloat64(m.RowsWritten); got != 10_000 {
		t.Errorf("got %v rows written, want 10000", got)
	}
}

// TestRejectedLinesReplay: what goes to the rejected table comes back as
// lines that parse to the values that were rejected.
func TestRejectedLinesReplay(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	write(t, pool, schema, Config{},
		`weird\ name,tag\,key=a\=b f=1i 1000`,
		`weird\ name,tag\,key=c f="str\\ \"q\"",g=true 2000`,
	)
	rej := dbtest.ReadRejected(t, pool, schema)
	if len(rej) != 1 {
		t.Fatalf("got %+v, want one rejected value", rej)
	}
	got := dbtest.Line(t, rej[0].Line)
	if string(got.Measurement) != "weird name" || string(got.Tags[0].Key) != "tag,key" || string(got.Tags[0].Value) != "c" ||
		len(got.Fields) != 1 || string(got.Fields[0].Str) != `str\ "q"` || got.Time != 2000 {
		t.Errorf("replayed %q as %+v", rej[0].Line, got)
	}
}

func TestNumericEncoding(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "n"}.Sanitize()
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+table+" (time timestamptz NOT NULL, v numeric)"); err != nil {
		t.Fatal(err)
	}
	vals := []string{"0", "1", "-1", "95.9", "0.0001", "12345.6789", "1e-07", "1e+21", "-123456789012.5", "2.5e-05", "9999", "10000", "0.5"}
	var lines []string
	for i, v := range vals {
		lines = append(lines, fmt.Sprintf("n v=%s %d", v, (i+1)*1000))
	}
	lines = append(lines, "n v=18446744073709551615u 99000", "n v=-9223372036854775808i 100000")
	write(t, pool, schema, Config{}, lines...)
	got := dbtest.Query(t, pool, "SELECT v::text FROM "+table+" ORDER BY time")
	want := []string{"0", "1", "-1", "95.9", "0.0001", "12345.6789", "0.0000001", "1000000000000000000000", "-123456789012.5", "0.000025", "9999", "10000", "0.5",
		"18446744073709551615", "-9223372036854775808"}
	dbtest.Equal(t, "numeric", got, want)
}
