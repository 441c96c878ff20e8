package parse

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testNow is the time given to lines without a timestamp.
var testNow = time.Unix(1700000000, 123456789)

// tag, field and point are copies of a Point's data that outlive the next
// call to Next and compare with reflect.DeepEqual.
type tag struct{ Key, Value string }

type field struct {
	Key   string
	Kind  Kind
	Value any // float64, int64, uint64, string or bool
}

type point struct {
	Measurement string
	Tags        []tag
	Fields      []field
	Time        int64
	Line        int64
}

func (p *point) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q", p.Measurement)
	for _, t := range p.Tags {
		fmt.Fprintf(&b, ",%q=%q", t.Key, t.Value)
	}
	for i, f := range p.Fields {
		sep := ","
		if i == 0 {
			sep = " "
		}
		fmt.Fprintf(&b, "%s%q=%s:%#v", sep, f.Key, f.Kind, f.Value)
	}
	fmt.Fprintf(&b, " %d (line %d)", p.Time, p.Line)
	return b.String()
}

// outcome is what one call to Next gave: a point or a rejected line.
type outcome struct {
	Point  *point // nil for a rejected line
	Line   int64  // of a rejected line
	Reason Reason // of a rejected line
}

func (o outcome) String() string {
	if o.Point != nil {
		return o.Point.String()
	}
	return fmt.Sprintf("rejected line %d: %s", o.Line, o.Reason)
}

func ok(p *point) outcome { return outcome{Point: p} }

func bad(line int64, r Reason) outcome { return outcome{Line: line, Reason: r} }

func copyPoint(pt *Point) *point {
	c := &point{Measurement: string(pt.Measurement), Time: pt.Time, Line: pt.Line}
	for _, t := range pt.Tags {
		c.Tags = append(c.Tags, tag{string(t.Key), string(t.Value)})
	}
	for i := range pt.Fields {
		f := &pt.Fields[i]
		c.Fields = append(c.Fields, field{Key: string(f.Key), Kind: f.Kind, Value: fieldValue(f)})
	}
	return c
}

func fieldValue(f *Field) any {
	switch f.Kind {
	case Float:
		return f.Float()
	case Int:
		return f.Int()
	case Uint:
		return f.Uint()
	case String:
		return string(f.Str)
	case Bool:
		return f.Bool()
	}
	return fmt.Sprintf("invalid kind %d", f.Kind)
}

// collect parses data to the end with p, returning every outcome and the
// LineErrors in order.
func collect(p *Parser, data []byte, now time.Time) ([]outcome, []*LineError, error) {
	p.Reset(data, now)
	var got []outcome
	var errs []*LineError
	// Every entry consumes at least one byte.
	for range len(data) + 2 {
		pt, err := p.Next()
		if err == io.EOF {
			return got, errs, nil
		}
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) {
				return got, errs, fmt.Errorf("Next returned %T %v, want a *LineError", err, err)
			}
			got = append(got, bad(le.Line, le.Reason))
			errs = append(errs, le)
			continue
		}
		if pt == nil {
			return got, errs, errors.New("Next returned a nil point and a nil error")
		}
		got = append(got, ok(copyPoint(pt)))
	}
	return got, errs, errors.New("Next did not return io.EOF")
}

// parseAll parses data at the given precision. It also parses it with
// line numbers found only by the shadow decoder and fails tb if the two
// differ.
func parseAll(tb testing.TB, prec Precision, data string) ([]outcome, []*LineError) {
	tb.Helper()
	got, errs, err := collect(NewParser(prec), []byte(data), testNow)
	if err != nil {
		tb.Fatalf("parse %q: %v", data, err)
	}
	p := NewParser(prec)
	p.lines.forceShadow = true
	shadow, _, err := collect(p, []byte(data), testNow)
	if err != nil {
		tb.Fatalf("parse %q with the shadow decoder: %v", data, err)
	}
	if !reflect.DeepEqual(got, shadow) {
		tb.Errorf("parse %q: line numbers differ:\n  token offsets: %v\n  shadow:        %v", data, got, shadow)
	}
	return got, errs
}

// checkOutcomes fails t unless got equals want.
func checkOutcomes(t *testing.T, got, want []outcome) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
