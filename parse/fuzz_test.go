package parse

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

var fuzzSeeds = []string{
	"",
	"cpu,cpu=cpu0,host=host-0001 usage_guest=0,usage_idle=95.9,usage_system=2.0 1574753954000000000\n",
	"m f=1",
	"m,t=v f=1i,g=2u,h=true,s=\"x\" -5\r\n",
	"# comment\n\n  \nm f=1 1\n",
	`my\ meas,tag\ key=tag\ value,k\,2=v\,2,k\=3=v\=3 field\ key="str \"q\" \\ \n",f\,2=1,f\=3=T 1`,
	`a\ b c\ d="x\"y"`,
	"a\\ b c\\ d=\"x\\\"y\"\nb f=1 1\n",
	"a s=\"multi\nline\nstring\",f=1 1\nb f=1 1\n",
	"a s=\"\xff\nb f=1\" 1\nx\\ y z\\ w=\"q\\\"r\"\nc f=1 1\n",
	"m,t=1,t=2 f=1,f=2",
	"温度,地点=東京 値=1.5,ключ=\"значение\" 1\n",
	"m f=NaN\nm f=-Inf\nm f=1e999\nm f=9223372036854775808i\nm f=18446744073709551616u\nm f=1 9223372036854775808\n",
	"m f=\"a\x00b\"\nm\x00 f=1\nm,t\x00=v f=1\nm f\x00=1\n",
	"m\xff f=1\nm f=\"\xed\xa0\x80\"\n",
	"m\nm,t=v\nm \nm,t=v 123\n",
	"m f=1 1\r\r\nm f=1 1 x\n# a\tb\n",
	`m\ f=1`,
	`m\\ f=1`,
	`m,t=a\\,b f=1`,
	"m f=\"\\\\\" 1\nm f=\"\\\" 1\n",
	"m f=.5,g=5.,h=-0,i=1e-400,j=0x1p3,k=1_000 1\n",
	"m f=\"", "m f=\"\\", "m,t=\\", "m\\", "\\", "m f=1\\ 1",
	"\r", "\n\r\n\r", "m f=1\r", "m\tf=1",
	"a f=1x,s=\"one\nb=2 3\nc f=4\" 5\nd f=6 7\n",
	"m,t=a v=1i,s=\"x\nm v=2 3\n\",w=oops 4\nok f=1 1\n",
	"a f=z\\\nb f=1 1\nc f=1 1\n",
	"# a=b \"c\nd f=1 1\n",
	"m v=1i,v=\"s\",w=1 1\n",
	"m f=0x1p4,g=1_000\nm f=-Inf\nm f=1e+5,g=-.5e-1\n",
}

const fuzzWarmUp = `a\ b,c\ d=e\ f,g=h i\ j="k\"l",m=1i,n=2,o=true,p=3u,q="r" 1
s,t=u v="w"
`

func FuzzParser(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	now := time.Unix(1700000000, 123456789)
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		// A Parser that has parsed another buffer, so that data reuses its
		// arena, tags and fields.
		p := NewParser(Nanosecond)
		if _, _, err := collect(p, []byte(fuzzWarmUp), now); err != nil {
			t.Fatal(err)
		}
		got, errs, err := collect(p, data, now)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, orig) {
			t.Fatalf("parsing changed data")
		}

		maxLine := int64(bytes.Count(data, newline)) + 1
		prev := int64(0)
		for i, o := range got {
			line := o.Line
			if o.Point != nil {
				line = o.Point.Line
				checkPoint(t, o.Point)
				roundTrip(t, o.Point)
			} else if !reasonValid(o.Reason) {
				t.Errorf("outcome %d: got reason %v", i, o.Reason)
			}
			if line <= prev || line > maxLine {
				t.Errorf("outcome %d: got line %v after line %v, want in (%v, %v]", i, line, prev, prev, maxLine)
			}
			prev = line
		}
		for _, le := range errs {
			if le.Err == nil {
				t.Errorf("%v: got no Err", le)
			}
			_ = le.Error()
		}

		// Line numbers from token offsets agree with the shadow decoder's.
		sp := NewParser(Nanosecond)
		sp.lines.forceShadow = true
		shadow, _, err := collect(sp, data, now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, shadow) {
			t.Errorf("line numbers differ:\n  token offsets: %v\n  shadow:        %v", got, shadow)
		}

		checkReference(t, data, now, got)
		checkSplit(t, data)
	})
}

// checkPoint checks the invariants of every Point.
func checkPoint(t *testing.T, p *point) {
	t.Helper()
	checkToken(t, "measurement", p.Measurement, false)
	for _, tg := range p.Tags {
		checkToken(t, "tag key", tg.Key, false)
		checkToken(t, "tag value", tg.Value, false)
	}
	if len(p.Fields) == 0 {
		t.Errorf("%v: got no fields", p)
	}
	for _, f := range p.Fields {
		checkToken(t, "field key", f.Key, false)
		switch f.Kind {
		case Float:
			if x := f.Value.(float64); math.IsNaN(x) || math.IsInf(x, 0) {
				t.Errorf("%v: got float %v", p, x)
			}
		case String:
			checkToken(t, "string value", f.Value.(string), true)
		case Int, Uint, Bool:
		default:
			t.Errorf("%v: got kind %v", p, f.Kind)
		}
	}
}

func checkToken(t *testing.T, what, s string, emptyOK bool) {
	t.Helper()
	if s == "" && !emptyOK {
		t.Errorf("got an empty %s", what)
	}
	if !utf8.ValidString(s) {
		t.Errorf("%s %q: invalid UTF-8", what, s)
	}
	if bytes.IndexByte([]byte(s), 0) >= 0 {
		t.Errorf("%s %q: holds a NUL byte", what, s)
	}
}

func reasonValid(r Reason) bool {
	for _, x := range Reasons {
		if r == x {
			return true
		}
	}
	return false
}

// roundTrip encodes p with lineprotocol.Encoder, parses it again and
// checks that it gets p back.
func roundTrip(t *testing.T, p *point) {
	t.Helper()
	var enc lineprotocol.Encoder
	enc.SetLax(true) // tags in line order, duplicates kept
	enc.SetPrecision(lineprotocol.Nanosecond)
	enc.StartLine(p.Measurement)
	for _, tg := range p.Tags {
		enc.AddTag(tg.Key, tg.Value)
	}
	for _, f := range p.Fields {
		var v lineprotocol.Value
		switch x := f.Value.(type) {
		case float64:
			v, _ = lineprotocol.FloatValue(x)
		case int64:
			v = lineprotocol.IntValue(x)
		case uint64:
			v = lineprotocol.UintValue(x)
		case bool:
			v = lineprotocol.BoolValue(x)
		case string:
			v, _ = lineprotocol.StringValue(x)
		}
		enc.AddField(f.Key, v)
	}
	enc.EndLine(time.Unix(0, p.Time))
	if err := enc.Err(); err != nil {
		t.Fatalf("encode %v: %v", p, err)
	}
	text := enc.Bytes()
	got, _, err := collect(NewParser(Nanosecond), text, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := *p
	want.Line = 1
	if len(got) != 1 || got[0].Point == nil || !reflect.DeepEqual(*got[0].Point, want) {
		t.Errorf("round trip of %v through %q: got %v", p, text, got)
	}
}

// checkReference decodes data with a reference made of the raw decoder
// and checks that the Parser agreed on every entry. The reference makes
// the same decoder calls in the same order as the Parser, but reads
// through a lineReader to learn where entries start (as the shadow decoder
// does, but decoding every entry), parses values with
// lineprotocol.NewValueFromBytes, checks floats against a regular
// expression of the grammar, parses timestamps with Decoder.Time, resolves
// repeated field keys with a map, and after a rejected entry starts a new
// decoder at the end of the logical line that InfluxDB's scanner finds
// (influxScanLine). It only copies the Parser's NUL check and its
// classification by bytes.
func checkReference(t *testing.T, data []byte, now time.Time, got []outcome) {
	t.Helper()
	var want []outcome
	off, base := 0, int64(1)
	for restart := true; restart; {
		restart = false
		rd := &lineReader{data: data[off:]}
		dec := lineprotocol.NewDecoder(rd)
		for dec.Next() {
			line := base + rd.line() - 1
			o := refEntry(dec, line, now)
			want = append(want, o)
			if o.Point == nil {
				start := lineOffset(data, line)
				end := refLogicalEnd(data, start)
				base = line + int64(bytes.Count(data[start:end], newline))
				off = end
				restart = true
				break
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, reference %v", got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Point == nil && w.Point == nil && w.Reason == ReasonSyntax {
			w.Reason = g.Reason // classified from the bytes of the line
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("entry %d: got %v, reference %v", i, g, w)
		}
	}
}

// lineOffset returns the offset of the start of line n of data.
func lineOffset(data []byte, n int64) int {
	off := 0
	for ; n > 1; n-- {
		off += bytes.IndexByte(data[off:], '\n') + 1
	}
	return off
}

// floatGrammar is a float field value as line protocol writes it.
var floatGrammar = regexp.MustCompile(`^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// refEntry decodes the entry that starts on the given line.
func refEntry(dec *lineprotocol.Decoder, line int64, now time.Time) outcome {
	fail := func(err error) outcome {
		o := outcome{Line: line, Reason: ReasonSyntax}
		if errors.Is(err, lineprotocol.ErrValueOutOfRange) {
			o.Reason = ReasonOutOfRange
		}
		return o
	}
	m, err := dec.Measurement()
	if err != nil {
		return fail(err)
	}
	p := &point{Measurement: string(m), Line: line}
	for {
		k, v, err := dec.NextTag()
		if err != nil {
			return fail(err)
		}
		if k == nil {
			break
		}
		p.Tags = append(p.Tags, tag{string(k), string(v)})
	}
	for {
		k, kind, raw, err := dec.NextFieldBytes()
		if err != nil {
			return fail(err)
		}
		if k == nil {
			break
		}
		if kind == lineprotocol.Float && !floatGrammar.Match(raw) {
			o := fail(errors.New("float grammar"))
			o.Reason = badBytes(raw)
			return o
		}
		v, err := lineprotocol.NewValueFromBytes(kind, raw)
		if err != nil {
			o := fail(err)
			if kind != lineprotocol.String && o.Reason == ReasonSyntax {
				o.Reason = badBytes(raw)
			}
			return o
		}
		if kind == lineprotocol.String && bytes.IndexByte(raw, 0) >= 0 {
			o := fail(errors.New("NUL"))
			o.Reason = ReasonNulByte
			return o
		}
		f := field{Key: string(k)}
		switch v.Kind() {
		case lineprotocol.Float:
			f.Kind, f.Value = Float, v.FloatV()
		case lineprotocol.Int:
			f.Kind, f.Value = Int, v.IntV()
		case lineprotocol.Uint:
			f.Kind, f.Value = Uint, v.UintV()
		case lineprotocol.Bool:
			f.Kind, f.Value = Bool, v.BoolV()
		case lineprotocol.String:
			f.Kind, f.Value = String, v.StringV()
		}
		p.Fields = append(p.Fields, f)
	}
	ts, err := dec.Time(lineprotocol.Nanosecond, now)
	if err != nil {
		return fail(err)
	}
	p.Time = ts.UnixNano()
	p.Fields = lastValues(p.Fields)
	return outcome{Point: p}
}

// lastValues returns, of the fields that share a key, only the last, as
// InfluxDB keeps them.
func lastValues(fields []field) []field {
	last := make(map[string]int)
	for i, f := range fields {
		last[f.Key] = i
	}
	var kept []field
	for i, f := range fields {
		if last[f.Key] == i {
			kept = append(kept, f)
		}
	}
	return kept
}
