package daemon_test

// How FuzzUDPToPostgres matches what PostgreSQL holds with what the
// parser saw.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// point is a row as the parser saw it, or as PostgreSQL holds it: the
// time in microseconds (what timestamptz keeps) and each value in a
// canonical form keyed by "t:" or "f:" and the key.
type point struct {
	measurement string
	micros      int64
	values      map[string]string
	line        int64 // parser's line number, for messages
}

func (p point) String() string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range p.values {
			if !yield(k) {
				return
			}
		}
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%q @%d {", p.measurement, p.micros)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 8 {
			fmt.Fprintf(&b, "... %d more", len(keys)-i)
			break
		}
		v := p.values[k]
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		fmt.Fprintf(&b, "%q: %q", k, v)
	}
	b.WriteString("}")
	return b.String()
}

type rejectedLine struct {
	reason string
	line   []byte
}

type expected struct {
	points   []point
	rejected []rejectedLine // by the parser
}

// expect parses data as the pipeline does.
func expect(data []byte, received time.Time) expected {
	var e expected
	pr := parse.NewParser(parse.Nanosecond)
	pr.Reset(data, received)
	for {
		pt, err := pr.Next()
		if err == io.EOF {
			return e
		}
		if err != nil {
			var le *parse.LineError
			if errors.As(err, &le) {
				e.rejected = append(e.rejected, rejectedLine{le.Reason.String(), bytes.Clone(pr.Line(le.Line))})
			}
			continue
		}
		e.points = append(e.points, toPoint(pt))
	}
}

func toPoint(pt *parse.Point) point {
	p := point{measurement: string(pt.Measurement), micros: floorMicros(pt.Time), values: make(map[string]string), line: pt.Line}
	// A repeated key: the last value wins, in columns as in jsonb.
	for _, tg := range pt.Tags {
		p.values["t:"+string(tg.Key)] = "s:" + string(tg.Value)
	}
	for i := range pt.Fields {
		f := &pt.Fields[i]
		p.values["f:"+string(f.Key)] = canonField(f)
	}
	return p
}

func floorMicros(ns int64) int64 {
	us := ns / 1000
	if ns%1000 < 0 {
		us--
	}
	return us
}

func canonField(f *parse.Field) string {
	switch f.Kind {
	case parse.Float:
		// The shortest decimal that is f; normalized, once the column
		// it went into is known, by storedAs.
		return "F:" + strconv.FormatFloat(f.Float(), 'g', -1, 64)
	case parse.Int:
		return "n:" + strconv.FormatInt(f.Int(), 10)
	case parse.Uint:
		return "n:" + strconv.FormatUint(f.Uint(), 10)
	case parse.Bool:
		return "b:" + strconv.FormatBool(f.Bool())
	default:
		return "s:" + string(f.Str)
	}
}

// canonDecimal is the exact value of a decimal number.
func canonDecimal(s string) string {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "bad number " + s
	}
	return "n:" + r.RatString()
}

// How a column stores numbers, which decides how a value the parser saw
// compares with what PostgreSQL gives back.
type store int

const (
	storeDecimal store = iota // numeric, jsonb: a float as its shortest decimal, integers exactly
	storeDouble               // double precision: the double
	storeInteger              // bigint, integer, smallint: a whole float as that integer
)

// storedAs returns the canonical form of v, the parser's, once stored as
// st stores numbers: a float ("F:") becomes what st keeps of it, and an
// integer ("n:") in a double column the double, when exact (when not, the
// sink rejects it and v stays unmatched by any row).
func storedAs(v string, st store) string {
	switch {
	case strings.HasPrefix(v, "F:"):
		f, err := strconv.ParseFloat(v[2:], 64)
		if err != nil {
			return "bad float " + v
		}
		switch st {
		case storeDouble:
			// to_jsonb, which reads the rows back, turns -0 into 0.
			return "F:" + strconv.FormatFloat(f+0, 'g', -1, 64)
		case storeInteger:
			if i, acc := big.NewFloat(f).Int(nil); acc == big.Exact {
				return "n:" + i.String()
			}
		}
		return canonDecimal(v[2:])
	case strings.HasPrefix(v, "n:") && st == storeDouble:
		r, ok := new(big.Rat).SetString(v[2:])
		if !ok {
			return "bad number " + v
		}
		if f, exact := r.Float64(); exact {
			return "F:" + strconv.FormatFloat(f+0, 'g', -1, 64)
		}
	}
	return v
}

// canonJSON is the canonical form of a JSON value decoded with UseNumber,
// read from a column that stores numbers as st does.
func canonJSON(v any, st store) string {
	switch x := v.(type) {
	case string:
		return "s:" + x
	case bool:
		return "b:" + strconv.FormatBool(x)
	case json.Number:
		if st == storeDouble {
			f, err := strconv.ParseFloat(string(x), 64)
			if err != nil {
				return "bad float " + string(x)
			}
			return "F:" + strconv.FormatFloat(f, 'g', -1, 64)
		}
		return canonDecimal(string(x))
	}
	return fmt.Sprintf("unexpected %T %v", v, v)
}

// Reasons of the rejected table for one value of a row that landed, and
// for a whole row.
var (
	valueReasons = map[string]bool{sink.ReasonTypeConflict: true, sink.ReasonOutOfRange: true, sink.ReasonTooLong: true, sink.ReasonOverflow: true}
	rowReasons   = map[string]bool{sink.ReasonRefused: true, sink.ReasonReservedName: true, sink.ReasonTableMismatch: true}
)

// compare matches every point the parser made to a row, or to a whole-row
// entry of the rejected table, and finds nothing left over.
func compare(t *testing.T, storage string, want expected, got actual) {
	t.Helper()
	// The parser's rejections, byte for byte.
	var parserDead []rejectedLine
	var valueDead, rowDead []*deadLetter
	for i := range got.dead {
		d := &got.dead[i]
		switch {
		case d.measurement == nil:
			parserDead = append(parserDead, rejectedLine{d.reason, d.line})
		case valueReasons[d.reason] && d.parsed != nil:
			valueDead = append(valueDead, d)
		case rowReasons[d.reason] && d.parsed != nil:
			rowDead = append(rowDead, d)
		case d.parsed != nil:
			t.Errorf("%s: rejected-table row with unexpected reason %q: %q (%s)", storage, d.reason, d.line, d.detail)
		}
	}
	key := func(r rejectedLine) string { return r.reason + "\x00" + string(r.line) }
	wantRej := make(map[string]int)
	for _, r := range want.rejected {
		wantRej[key(r)]++
	}
	for _, r := range parserDead {
		if wantRej[key(r)] == 0 {
			t.Errorf("%s: rejected table holds %s line %q, which the parser did not reject (or not that often)", storage, r.reason, r.line)
			continue
		}
		wantRej[key(r)]--
	}
	for k, n := range wantRej {
		if n > 0 {
			reason, line, _ := strings.Cut(k, "\x00")
			t.Errorf("%s: the parser rejected %q (%s), but the rejected table does not hold it", storage, line, reason)
		}
	}

	nrows := 0
	for _, rs := range got.rows {
		nrows += len(rs)
	}
	t.Logf("%s: %d lines parsed, %d rejected by the parser; %d rows in %d tables, %d values and %d rows in the rejected table",
		storage, len(want.points), len(want.rejected), nrows, len(got.rows), len(valueDead), len(rowDead))

	// The parser's values as their columns store them.
	stored := func(p *point) {
		st := got.stores[p.measurement]
		for k, v := range p.values {
			p.values[k] = storedAs(v, st[k])
		}
	}
	for i := range want.points {
		stored(&want.points[i])
	}
	for _, d := range append(slices.Clip(valueDead), rowDead...) {
		stored(d.parsed)
	}

	// Whole: rows equal to their line, and lines in the rejected table.
	whole := make(map[string][]*point)
	partial := make(map[string][]*point) // by measurement and time
	for m := range got.rows {
		for i := range got.rows[m] {
			r := &got.rows[m][i]
			whole[r.key()] = append(whole[r.key()], r)
		}
	}
	wholeDead := make(map[string][]*deadLetter)
	for _, d := range rowDead {
		wholeDead[d.parsed.key()] = append(wholeDead[d.parsed.key()], d)
	}
	var rest []point
	for _, e := range want.points {
		k := e.key()
		if rs := whole[k]; len(rs) > 0 {
			whole[k] = rs[1:]
			continue
		}
		if ds := wholeDead[k]; len(ds) > 0 {
			wholeDead[k] = ds[1:]
			continue
		}
		rest = append(rest, e)
	}
	// Partial: rows lacking values that are in the rejected table.
	for _, rs := range whole {
		for _, r := range rs {
			partial[r.where()] = append(partial[r.where()], r)
		}
	}
	values := newValueIndex(valueDead)
	for _, e := range rest {
		if !matchPartial(e, partial, values) {
			t.Errorf("%s: line %d %v neither landed nor is in the rejected table", storage, e.line, e)
		}
	}
	for _, rs := range partial {
		for _, r := range rs {
			t.Errorf("%s: table of %q has a row from no line (a duplicate?): %v", storage, r.measurement, r)
		}
	}
	for _, ds := range wholeDead {
		for _, d := range ds {
			t.Errorf("%s: rejected-table row %s %q (%s) belongs to no line", storage, d.reason, d.line, d.detail)
		}
	}
	for _, d := range values.unused() {
		t.Errorf("%s: rejected-table row %s %q (%s) belongs to no line", storage, d.reason, d.line, d.detail)
	}
}

// where is a point's measurement and time.
func (p point) where() string { return p.measurement + "\x00" + strconv.FormatInt(p.micros, 10) }

// key is a point's measurement, time and values.
func (p point) key() string {
	var b strings.Builder
	b.WriteString(p.where())
	for _, k := range slices.Sorted(maps.Keys(p.values)) {
		b.WriteString("\x00" + k + "\x00" + p.values[k])
	}
	return b.String()
}

// valueIndex finds the rejected-table entry of one value of a row: a line
// with the row's measurement and time that carries the value; a field's
// entry holds that field alone, a tag's (detail "tag ...") the whole line.
type valueIndex struct {
	by   map[string][]*deadLetter
	used map[*deadLetter]bool
	all  []*deadLetter
}

func newValueIndex(dead []*deadLetter) *valueIndex {
	x := &valueIndex{by: make(map[string][]*deadLetter), used: make(map[*deadLetter]bool), all: dead}
	for _, d := range dead {
		p := d.parsed
		var fields []string
		for k := range p.values {
			if strings.HasPrefix(k, "f:") {
				fields = append(fields, k)
			}
		}
		if strings.HasPrefix(d.detail, "tag ") {
			for k, v := range p.values {
				if strings.HasPrefix(k, "t:") {
					x.by[p.where()+"\x00"+k+"\x00"+v] = append(x.by[p.where()+"\x00"+k+"\x00"+v], d)
				}
			}
		} else if len(fields) == 1 {
			k := fields[0]
			x.by[p.where()+"\x00"+k+"\x00"+p.values[k]] = append(x.by[p.where()+"\x00"+k+"\x00"+p.values[k]], d)
		}
	}
	return x
}

// find returns an entry for value v of key k of e not used yet and not in
// taken.
func (x *valueIndex) find(e point, k, v string, taken []*deadLetter) *deadLetter {
	for _, d := range x.by[e.where()+"\x00"+k+"\x00"+v] {
		if !x.used[d] && !slices.Contains(taken, d) {
			return d
		}
	}
	return nil
}

func (x *valueIndex) unused() []*deadLetter {
	var ds []*deadLetter
	for _, d := range x.all {
		if !x.used[d] {
			ds = append(ds, d)
		}
	}
	return ds
}

// matchPartial finds a row for e, and takes it from rows: each value of
// the row is e's, and each value of e the row lacks is in the rejected
// table. Rows holding more values are tried first.
func matchPartial(e point, rows map[string][]*point, values *valueIndex) bool {
	cands := rows[e.where()]
	order := slices.Clone(cands)
	slices.SortStableFunc(order, func(a, b *point) int { return len(b.values) - len(a.values) })
next:
	for _, r := range order {
		for k, v := range r.values {
			if e.values[k] != v {
				continue next
			}
		}
		var take []*deadLetter
		for k, v := range e.values {
			if _, ok := r.values[k]; ok {
				continue
			}
			d := values.find(e, k, v, take)
			if d == nil {
				continue next
			}
			take = append(take, d)
		}
		for _, d := range take {
			values.used[d] = true
		}
		rows[e.where()] = slices.DeleteFunc(cands, func(c *point) bool { return c == r })
		return true
	}
	return false
}

// checkCounters checks the metrics against what was found.
func checkCounters(t *testing.T, storage string, reg *prometheus.Registry, want expected, got actual) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := make(map[string]*dto.MetricFamily)
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	value := func(name string, labels map[string]string) float64 {
		v, _ := daemontest.Sample(byName, name, labels)
		return v
	}
	if n := value("pginflux_sink_dropped_rows_total", nil); n != 0 {
		t.Errorf("%s: %v rows dropped, want none", storage, n)
	}
	if n := value("pginflux_ingest_dropped_datagrams_total", nil); n != 0 {
		t.Errorf("%s: %v datagrams dropped, want none", storage, n)
	}
	if n := value("pginflux_sink_pending_rows", nil); n != 0 {
		t.Errorf("%s: %v rows still pending after Close", storage, n)
	}
	byReason := make(map[string]int)
	for _, d := range got.dead {
		byReason[d.reason]++
	}
	for reason, n := range byReason {
		if c := value("pginflux_sink_rejected_total", map[string]string{"reason": reason}); int(c) != n {
			t.Errorf("%s: pginflux_sink_rejected_total{reason=%q} is %v, the rejected table holds %d", storage, reason, c, n)
		}
	}
	if c := value("pginflux_sink_rejected_total", nil); int(c) != len(got.dead) {
		t.Errorf("%s: pginflux_sink_rejected_total is %v, the rejected table holds %d", storage, c, len(got.dead))
	}
	if c := value("pginflux_parse_rejected_lines_total", nil); int(c) != len(want.rejected) {
		t.Errorf("%s: pginflux_parse_rejected_lines_total is %v, the parser rejected %d", storage, c, len(want.rejected))
	}
	rows := 0
	for _, rs := range got.rows {
		rows += len(rs)
	}
	if c := value("pginflux_sink_written_rows_total", nil); int(c) != rows {
		t.Errorf("%s: pginflux_sink_written_rows_total is %v, the tables hold %d rows", storage, c, rows)
	}
}
