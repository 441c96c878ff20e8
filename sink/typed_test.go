package sink

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
)

// TestFastRowSameAsGeneral encodes random rows, some of one point, into
// columns of several types (some of which refuse some values, and keys
// without a column) twice: with fastRow, and with every row on the general
// path. The COPY rows and the rejected values must be the same.
func TestFastRowSameAsGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	types := map[string]colType{
		"f":  {oid: oidFloat8, typmod: -1, name: "double precision"},
		"i":  {oid: oidInt8, typmod: -1, name: "bigint"},
		"i4": {oid: oidInt4, typmod: -1, name: "integer"},
		"s":  {oid: oidText, typmod: -1, name: "text"},
		"b":  {oid: oidBool, typmod: -1, name: "boolean"},
		"n":  {oid: oidNumeric, typmod: -1, name: "numeric"},
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
		tbl := &typedTable{name: "m", ident: `"s"."m"`, owned: map[colKey]*column{}, byName: map[string]*column{}, failed: map[colKey]string{}}
		for _, k := range bt.keys {
			if k.name == "extra" && round%2 == 0 {
				continue // no column: the overflow column or the rejected table
			}
			typ, ok := types[k.name]
			if k.tag || !ok {
				typ = types["s"]
			}
			key := colKey{tag: k.tag, key: k.name}
			c := &column{name: k.name, typ: typ, owner: &key}
			tbl.owned[key], tbl.byName[k.name] = c, c
		}
		if round%5 == 2 {
			// The table is at --max-columns: keys without a column go
			// to the overflow column, which rows without one leave
			// NULL.
			tbl.overflow = &column{name: overflowColumn, typ: colType{oid: oidJSONB, typmod: -1, name: "jsonb"}}
		}
		if round%4 == 1 {
			tbl.failed[colKey{key: "b"}] = "adding it failed"
			delete(tbl.owned, colKey{key: "b"})
			delete(tbl.byName, "b")
		}
		cols := tbl.columnsFor(bt.keys)
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
		encodeTyped(&fast, bt, 0, bt.rows(), tbl, cols, pp)
		testHookNoFastRow = true
		encodeTyped(&general, bt, 0, bt.rows(), tbl, cols, pp)
		testHookNoFastRow = false
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
			if fastRow(&scratch, bt, r, 0, tbl, slotsOf(bt, tbl, cols), uniqueCols(cols), pos, pp, 0, tbl.overflow != nil) {
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
func slotsOf(bt *batch, tbl *typedTable, keyCols []*column) []int {
	slot := make([]int, len(bt.keys))
	index := map[*column]int{}
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

func uniqueCols(keyCols []*column) []*column {
	var cols []*column
	seen := map[*column]bool{}
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
	pool, schema := pgtest.Schema(t)
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 100, FlushInterval: time.Hour, Writers: 1,
		MaxColumns: 6, RejectedTable: "pginflux_rejected"}, m, quiet)
	b := s.NewBatcher()
	b.Add(line(t, "wide,host=a f0=0i,f1=1i,f2=2i,f3=3i,f4=4i,f5=5i,f6=6i 1000"), origin)
	b.Flush()
	waitFor(t, func() bool { return tableRows(t, pool, schema, "wide") == 1 })
	b.Add(line(t, "wide,host=b f0=10i 2000"), origin)
	b.Add(line(t, "wide,host=c f0=20i,f7=27i 3000"), origin)
	b.Flush()
	closeSink(t, s)
	if n := tableRows(t, pool, schema, "wide"); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	if n := tableRows(t, pool, schema, "pginflux_rejected"); n > 0 {
		t.Errorf("%d rows in the rejected table, want none", n)
	}
}
