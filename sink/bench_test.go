package sink

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

// cpuLines returns n Telegraf-like cpu lines (2 tags, 10 floats).
func cpuLines(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "cpu,cpu=cpu%d,host=host-%04d usage_guest=0,usage_guest_nice=0,usage_idle=%d.%d,usage_iowait=0.1,usage_irq=0,usage_nice=0,usage_softirq=0.02,usage_steal=0,usage_system=2.%d,usage_user=%d.25 %d\n",
			i%4, i%100, 90+i%10, i%7, i%9, i%5, 1574753954000000000+int64(i))
	}
	return []byte(b.String())
}

// parsedCPU parses n cpu lines into owned Points.
func parsedCPU(b *testing.B, n int) []*parse.Point {
	b.Helper()
	return parsedLines(b, cpuLines(n), n)
}

// parsedLines parses n lines into owned Points.
func parsedLines(b *testing.B, lines []byte, n int) []*parse.Point {
	b.Helper()
	p := parse.NewParser(parse.Nanosecond)
	p.Reset(lines, time.Now())
	var pts []*parse.Point
	for {
		pt, err := p.Next()
		if err != nil {
			break
		}
		c := &parse.Point{Measurement: []byte(string(pt.Measurement)), Time: pt.Time}
		for _, t := range pt.Tags {
			c.Tags = append(c.Tags, parse.Tag{Key: []byte(string(t.Key)), Value: []byte(string(t.Value))})
		}
		for _, f := range pt.Fields {
			c.Fields = append(c.Fields, parse.Field{Key: []byte(string(f.Key)), Kind: f.Kind, Num: f.Num, Str: []byte(string(f.Str))})
		}
		pts = append(pts, c)
	}
	if len(pts) != n {
		b.Fatalf("parsed %d of %d lines", len(pts), n)
	}
	return pts
}

// BenchmarkEncodeJSONB is the parser goroutine's work per line in jsonb
// storage: the row in final binary COPY form.
func BenchmarkEncodeJSONB(b *testing.B) {
	pts := parsedCPU(b, 1000)
	bt := new(batch)
	b.ReportAllocs()
	for b.Loop() {
		bt.buf, bt.ends, bt.subMicros = bt.buf[:0], bt.ends[:0], bt.subMicros[:0]
		for _, p := range pts {
			bt.appendJSONB(p)
			bt.ends = append(bt.ends, len(bt.buf))
		}
	}
	b.ReportMetric(float64(len(pts)*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkEncodeColumns is the whole encoding work per line in columns
// storage: the compact row on the parser goroutine, then the binary COPY
// row on the writer.
func BenchmarkEncodeColumns(b *testing.B) {
	pts := parsedCPU(b, 1000)
	bt := &batch{measurement: "cpu"}
	t, cols := benchTable(bt, pts)
	var e encoded
	b.ReportAllocs()
	for b.Loop() {
		bt.buf, bt.ends, bt.rowOrigin = bt.buf[:0], bt.ends[:0], bt.rowOrigin[:0]
		for _, p := range pts {
			bt.appendTypedRow(p)
			bt.ends = append(bt.ends, len(bt.buf))
			bt.addOrigin(origin)
		}
		encodeTyped(&e, bt, 0, bt.rows(), t, cols, nil)
	}
	b.ReportMetric(float64(len(pts)*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// benchTable makes the table a columns-storage sink would have made for
// the points, without a database.
func benchTable(bt *batch, pts []*parse.Point) (*schema.TypedTable, []*schema.Column) {
	for _, p := range pts {
		bt.appendTypedRow(p)
		bt.ends = append(bt.ends, len(bt.buf))
		bt.addOrigin(origin)
	}
	t := schema.NewTypedTable("cpu", `"bench"."cpu"`)
	for _, k := range bt.keys {
		typ := schema.Type{OID: schema.OIDFloat8, Typmod: -1, Name: "double precision"}
		if k.Tag {
			typ = schema.Type{OID: schema.OIDText, Typmod: -1, Name: "text"}
		}
		key := k.Key
		t.Add(&schema.Column{Name: k.Name, Type: typ, Owner: &key})
	}
	return t, t.ColumnsFor(bt.keys)
}

// fleetLines returns a batch of Telegraf's cpu lines from a fleet: hosts
// hosts of cpus series each (cpu-total, cpu0, ...), round after round,
// the lines of one host in a round sharing its timestamp (or, with
// round, every line of a round sharing one), until n lines.
func fleetLines(n, hosts, cpus int, round bool) []byte {
	group := cpus
	if round {
		group = hosts * cpus
	}
	var b strings.Builder
	for i := range n {
		host, cpu := (i/cpus)%hosts, i%cpus
		name := "cpu-total"
		if cpu > 0 {
			name = fmt.Sprintf("cpu%d", cpu-1)
		}
		fmt.Fprintf(&b, "cpu,cpu=%s,host=host-%04d usage_guest=0,usage_guest_nice=0,usage_idle=%d.%d,usage_iowait=0.1,usage_irq=0,usage_nice=0,usage_softirq=0.02,usage_steal=0,usage_system=2.%d,usage_user=%d.25 %d\n",
			name, host, 90+i%10, i%7, i%9, i%5, 1574753954000000000+int64(i/group)*1000)
	}
	return []byte(b.String())
}

// BenchmarkEncodePoints is a writer's work per row of a batch for a table
// with a point key, in columns storage, series ids known: each row's tag
// set and time, the rows of each point (and of those the rows merged
// below the time column's resolution: none here), the points in key
// order (or as they came), and the binary COPY rows. One batch of 10,000 lines from
// 1,000 hosts × 9 cpus, stamped by host or by round; with "nanos", for a
// table whose key keeps nanoseconds (--time-nanos).
func BenchmarkEncodePoints(b *testing.B) {
	for _, stamps := range []string{"host", "round"} {
		b.Run(stamps, func(b *testing.B) { benchmarkEncodePoints(b, stamps == "round", false) })
		b.Run(stamps+"_nanos", func(b *testing.B) { benchmarkEncodePoints(b, stamps == "round", true) })
	}
}

func benchmarkEncodePoints(b *testing.B, round, nanos bool) {
	pts := parsedLines(b, fleetLines(10_000, 1000, 9, round), 10_000)
	bt := &batch{measurement: "cpu"}
	t, cols := benchTable(bt, pts)
	t.Point, t.Nanos = true, nanos
	n := bt.rows()
	pp := pointPlan{nanos: nanos}
	pp.readRows(bt, 0, n, 1, true)
	ids := make(map[string]int64)
	for k := range n {
		c := string(pp.canonOf(k))
		if _, ok := ids[c]; !ok {
			sum := sha256.Sum256([]byte(c))
			ids[c] = int64(binary.BigEndian.Uint64(sum[:]) >> 1)
		}
	}
	for _, order := range []string{"as sent", "key order"} {
		b.Run(order, func(b *testing.B) {
			var e encoded
			b.ReportAllocs()
			for b.Loop() {
				pp.readRows(bt, 0, n, 1, true)
				pp.sids = resize(pp.sids, n)
				for k := range n {
					pp.sids[k] = ids[string(pp.canonOf(k))]
				}
				pp.group(n)
				pp.countSubresolution(bt, 0, n, true)
				if order == "key order" {
					pp.keyOrder(n)
				} else {
					pp.keys, pp.reordered = pp.keys[:0], false
					for k := range n {
						if pp.head[k] {
							pp.keys = append(pp.keys, pointKey{ord: int32(len(pp.keys))})
						}
					}
				}
				encodeTyped(&e, bt, 0, n, t, cols, &pp)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/row")
		})
	}
}

// BenchmarkSubresolution is a writer's work per row of a batch in which
// every row merges, 100 series of 100 lines each 1 ns apart, series ids
// known: the rows of each point, and of those the rows merged below the
// time column's resolution. (A batch without merges costs nothing more.)
func BenchmarkSubresolution(b *testing.B) {
	var lines strings.Builder
	for i := range 10_000 {
		fmt.Fprintf(&lines, "cpu,host=host-%04d usage_idle=%d %d\n", i%100, i, 1574753954000000000+int64(i/100))
	}
	pts := parsedLines(b, []byte(lines.String()), 10_000)
	for _, storage := range []string{StorageColumns, StorageJSONB} {
		b.Run(storage, func(b *testing.B) {
			columns := storage == StorageColumns
			bt := &batch{measurement: "cpu", tagIDs: map[string]uint32{}, fieldIDs: map[string]uint32{}}
			for _, p := range pts {
				if columns {
					bt.appendTypedRow(p)
				} else {
					bt.appendJSONB(p)
				}
				bt.ends = append(bt.ends, len(bt.buf))
			}
			n := bt.rows()
			var pp pointPlan
			pp.readRows(bt, 0, n, 1, columns)
			ids := make(map[string]int64)
			pp.sids = resize(pp.sids, n)
			for k := range n {
				c := string(pp.canonOf(k))
				if _, ok := ids[c]; !ok {
					ids[c] = int64(len(ids))
				}
				pp.sids[k] = ids[c]
			}
			b.ReportAllocs()
			for b.Loop() {
				pp.group(n)
				pp.countSubresolution(bt, 0, n, columns)
			}
			if pp.rows != 100 || pp.subres != n-100 {
				b.Fatalf("got %d points, %d merged below the resolution; want 100, %d", pp.rows, pp.subres, n-100)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/row")
		})
	}
}
