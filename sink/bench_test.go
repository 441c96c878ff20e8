package sink

import (
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

// parsedCPU parses lines into owned Points.
func parsedCPU(b *testing.B, n int) []*parse.Point {
	b.Helper()
	p := parse.NewParser(parse.Nanosecond)
	p.Reset(cpuLines(n), time.Now())
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
		bt.buf, bt.ends = bt.buf[:0], bt.ends[:0]
		for _, p := range pts {
			bt.buf = appendJSONBRow(bt.buf, p)
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
