package parse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// influxScanLine is scanLine of InfluxDB's models/points.go (1.x and 2.x)
// as it is there: it returns the index of the newline that ends the
// logical line starting at i, or len(buf), and the line.
func influxScanLine(buf []byte, i int) (int, []byte) {
	start := i
	quoted := false
	fields := false

	// tracks how many '=' and commas we've seen
	// this duplicates some of the functionality in scanFields
	equals := 0
	commas := 0
	for {
		// reached the end of buf?
		if i >= len(buf) {
			break
		}

		// skip past escaped characters
		if buf[i] == '\\' && i+2 < len(buf) {
			i += 2
			continue
		}

		if buf[i] == ' ' {
			fields = true
		}

		// If we see a double quote, makes sure it is not escaped
		if fields {
			if !quoted && buf[i] == '=' {
				i++
				equals++
				continue
			} else if !quoted && buf[i] == ',' {
				i++
				commas++
				continue
			} else if buf[i] == '"' && equals > commas {
				i++
				quoted = !quoted
				continue
			}
		}

		if buf[i] == '\n' && !quoted {
			break
		}
		i++
	}

	return i, buf[start:i]
}

// refLogicalEnd is where the logical line that starts at the start of a
// physical line ends (past its newline): InfluxDB's scanLine after the
// line's leading spaces, except that a comment line ends at its newline.
// These are the two places where pginflux splits as line-protocol/v2 does
// rather than as InfluxDB does.
func refLogicalEnd(data []byte, start int) int {
	i := start
	for i < len(data) && data[i] == ' ' {
		i++
	}
	var end int
	if i < len(data) && data[i] == '#' {
		end = len(data)
		if nl := bytes.IndexByte(data[i:], '\n'); nl >= 0 {
			end = i + nl
		}
	} else {
		end, _ = influxScanLine(data, i)
	}
	if end < len(data) {
		end++ // the newline
	}
	return end
}

// logicalLine is a line as InfluxDB's ParsePoints sees it: its first line
// number and its text without the line end.
type logicalLine struct {
	line int64
	text string
}

// influxSplit splits data into logical lines as InfluxDB's ParsePoints
// does (with refLogicalEnd's two exceptions), leaving out blank lines and
// comments as line-protocol/v2 has them: spaces and perhaps a CR, or a '#'
// after spaces and no control character after it (v2 rejects those).
func influxSplit(data []byte) []logicalLine {
	var out []logicalLine
	line := int64(1)
	for pos := 0; pos < len(data); {
		end := refLogicalEnd(data, pos)
		block := data[pos:end]
		n := line
		line += int64(bytes.Count(block, newline))
		pos = end
		block = bytes.TrimSuffix(block, newline)
		block = bytes.TrimSuffix(block, []byte{'\r'})
		rest := bytes.TrimLeft(block, " ")
		if len(rest) == 0 || rest[0] == '#' && !bytes.ContainsFunc(rest, isControl) {
			continue
		}
		out = append(out, logicalLine{n, string(block)})
	}
	return out
}

// splitOutcomes parses data and returns, for each outcome, its first line
// and, for a rejected line, Line's text of it.
func splitOutcomes(t *testing.T, data []byte) (lines []logicalLine, rejected []bool) {
	t.Helper()
	p := NewParser(Nanosecond)
	p.Reset(data, testNow)
	for range len(data) + 2 {
		pt, err := p.Next()
		if err == io.EOF {
			return lines, rejected
		}
		var le *LineError
		switch {
		case errors.As(err, &le):
			lines = append(lines, logicalLine{le.Line, string(p.Line(le.Line))})
			rejected = append(rejected, true)
		case err != nil:
			t.Fatalf("Next: %v", err)
		default:
			lines = append(lines, logicalLine{pt.Line, ""})
			rejected = append(rejected, false)
		}
	}
	t.Fatal("Next did not return io.EOF")
	return nil, nil
}

// checkSplit is the differential check of how the Parser splits data into
// logical lines: every point and every rejected line starts where a
// logical line of InfluxDB's starts, one for one, and Line gives a rejected
// line's whole text. Where a line the decoder accepts holds a backslash
// escape outside its string values that the decoder and InfluxDB read
// differently (a `\\`), the decoder decides the extent of that line, and
// only the rejected lines are checked against InfluxDB's split.
func checkSplit(t *testing.T, data []byte) {
	t.Helper()
	got, rejected := splitOutcomes(t, data)
	want := influxSplit(data)
	byLine := make(map[int64]string, len(want))
	for _, l := range want {
		byLine[l.line] = l.text
	}
	for i, g := range got {
		if !rejected[i] {
			continue
		}
		w, ok := byLine[g.line]
		if !ok {
			t.Errorf("rejected line %d %q: InfluxDB has no logical line starting there: %v", g.line, g.text, want)
		} else if g.text != w {
			t.Errorf("rejected line %d: got text %q, InfluxDB's logical line %q", g.line, g.text, w)
		}
	}
	if bytes.Contains(data, []byte(`\\`)) {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %v, InfluxDB %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i].line != want[i].line {
			t.Errorf("line %d: got it starting on line %d, InfluxDB on line %d (%q)", i, got[i].line, want[i].line, want[i].text)
		}
	}
}

func TestRejectedLineSpansLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want []outcome
		text map[int64]string // Line of rejected lines
	}{
		{
			name: "bad value before a multi-line string",
			data: "a f=1x,s=\"one\nb=2 3\nc f=4\" 5\nd f=1 1\n",
			want: []outcome{bad(1, ReasonSyntax), ok(pt("d", 4))},
			text: map[int64]string{1: "a f=1x,s=\"one\nb=2 3\nc f=4\" 5"},
		},
		{
			name: "bad timestamp after a multi-line string",
			data: "a s=\"x\ny\" 12z\nb f=1 1\n",
			want: []outcome{bad(1, ReasonSyntax), ok(pt("b", 3))},
			text: map[int64]string{1: "a s=\"x\ny\" 12z"},
		},
		{
			name: "string with a fragment that would parse",
			data: "m,t=a v=1i,s=\"x\nm v=2 3\n\",w=oops 4\nok f=1 1\n",
			want: []outcome{bad(1, ReasonSyntax), ok(pt("ok", 4))},
			text: map[int64]string{1: "m,t=a v=1i,s=\"x\nm v=2 3\n\",w=oops 4"},
		},
		{
			name: "out of range value before a multi-line string",
			data: "a f=1e999,s=\"x\nb f=2 2\n\" 1\nc f=1 1\n",
			want: []outcome{bad(1, ReasonOutOfRange), ok(pt("c", 4))},
			text: map[int64]string{1: "a f=1e999,s=\"x\nb f=2 2\n\" 1"},
		},
		{
			name: "NUL in a multi-line string",
			data: "a s=\"x\n\x00\nb f=1 1\" 1\nc f=1 1\n",
			want: []outcome{bad(1, ReasonNulByte), ok(pt("c", 4))},
			text: map[int64]string{1: "a s=\"x\n\x00\nb f=1 1\" 1"},
		},
		{
			name: "CRLF after a bad multi-line line",
			data: "a f=z,s=\"x\r\nb f=1 1\r\n\" 1\r\nc f=1 1\r\n",
			want: []outcome{bad(1, ReasonSyntax), ok(pt("c", 4))},
			text: map[int64]string{1: "a f=z,s=\"x\r\nb f=1 1\r\n\" 1"},
		},
		{
			name: "escaped quote does not close",
			data: "a f=z,s=\"x\\\"\nb f=1 1\n\" 1\nc f=1 1\n",
			want: []outcome{bad(1, ReasonSyntax), ok(pt("c", 4))},
			text: map[int64]string{1: "a f=z,s=\"x\\\"\nb f=1 1\n\" 1"},
		},
		{
			name: "quote in a tag value does not open",
			data: "a,t=\"x f=z\nb f=1 1\n",
			want: []outcome{bad(1, ReasonSyntax), ok(pt("b", 2))},
			text: map[int64]string{1: "a,t=\"x f=z"},
		},
		{
			name: "quote in a field key does not open",
			data: "a f\"=z\nb f=1 1\n",
			want: []outcome{bad(1, ReasonSyntax), ok(pt("b", 2))},
			text: map[int64]string{1: "a f\"=z"},
		},
		{
			name: "unterminated string eats the rest",
			data: "a f=1 1\nb f=z,s=\"x\nc f=1 1\n",
			want: []outcome{ok(pt("a", 1)), bad(2, ReasonSyntax)},
			text: map[int64]string{2: "b f=z,s=\"x\nc f=1 1"},
		},
		{
			name: "escaped newline outside a string continues the line",
			data: "a f=z\\\nb f=1 1\nc f=1 1\n",
			want: []outcome{bad(1, ReasonSyntax), ok(pt("c", 3))},
			text: map[int64]string{1: "a f=z\\\nb f=1 1"},
		},
		{
			name: "comment ends at its newline",
			data: "# a=b \"c\nd f=1 1\n",
			want: []outcome{ok(pt("d", 2))},
		},
		{
			name: "good multi-line string then a bad one",
			data: "a s=\"x\ny\" 1\nb s=\"x\ny\",f=q 1\nc f=1 1\n",
			want: []outcome{
				ok(&point{Measurement: "a", Fields: []field{{"s", String, "x\ny"}}, Time: 1, Line: 1}),
				bad(3, ReasonSyntax), ok(pt("c", 5)),
			},
			text: map[int64]string{3: "b s=\"x\ny\",f=q 1"},
		},
		{
			name: "bad escaped entry after good lines",
			data: "a f=1 1\nx\\ y z\\ w=\"q\\\"r\ns\",f=q 1\nc f=1 1\n",
			want: []outcome{ok(pt("a", 1)), bad(2, ReasonSyntax), ok(pt("c", 4))},
			text: map[int64]string{2: "x\\ y z\\ w=\"q\\\"r\ns\",f=q 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := parseAll(t, Nanosecond, tt.data)
			checkOutcomes(t, got, tt.want)
			lines, rejected := splitOutcomes(t, []byte(tt.data))
			for i, l := range lines {
				if !rejected[i] {
					continue
				}
				if want, ok := tt.text[l.line]; !ok || l.text != want {
					t.Errorf("Line(%d): got %q, want %q", l.line, l.text, want)
				}
			}
			checkSplit(t, []byte(tt.data))
			checkReference(t, []byte(tt.data), testNow, got)
		})
	}
}

// TestDecodeErrorLine checks that a DecodeError's line is a line of the
// whole buffer after the Parser started a new decoder.
func TestDecodeErrorLine(t *testing.T) {
	t.Parallel()
	data := "a f=z,s=\"x\ny\" 1\nb f=1 1\nc,t f=1\n"
	_, errs := parseAll(t, Nanosecond, data)
	if len(errs) != 2 {
		t.Fatalf("got %v errors, want 2", errs)
	}
	if got, want := errs[1].Error(), "line 4: syntax: column 3: expected '=' after tag key \"t\", but got ' ' instead"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRepeatedFieldKeys(t *testing.T) {
	t.Parallel()
	var many strings.Builder
	many.WriteString("m ")
	for i := range 40 {
		if i > 0 {
			many.WriteByte(',')
		}
		many.WriteString("k")
		many.WriteByte(byte('a' + i%20))
		many.WriteString("=")
		many.WriteString(strings.Repeat("1", 1+i/20))
		many.WriteString("i")
	}
	var manyWant []field
	for i := 20; i < 40; i++ {
		manyWant = append(manyWant, field{"k" + string(rune('a'+i%20)), Int, int64(11)})
	}
	tests := []struct {
		name string
		line string
		want []field
	}{
		{name: "int then string", line: `m v=1i,v="s"`, want: []field{{"v", String, "s"}}},
		{name: "string then int", line: `m v="s",v=1i`, want: []field{{"v", Int, int64(1)}}},
		{name: "three times", line: `m v=1,w=t,v=2i,v=3u`, want: []field{{"w", Bool, true}, {"v", Uint, uint64(3)}}},
		{name: "escaped keys", line: `m a\ b=1,a\ b=2`, want: []field{{"a b", Float, 2.0}}},
		{name: "many fields", line: many.String(), want: manyWant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := parseAll(t, Nanosecond, tt.line+" 1\n")
			checkOutcomes(t, got, []outcome{ok(&point{Measurement: "m", Fields: tt.want, Time: 1, Line: 1})})
		})
	}
}

func TestRepeatedFieldKeysAllocs(t *testing.T) {
	// Not parallel: testing.AllocsPerRun panics while a parallel test runs.
	data := []byte(strings.Repeat("m v=1i,w=2,v=\"s\" 1\n", 10) + "m " + strings.Repeat("k=1,", 40) + "k=2 1\n")
	p := NewParser(Nanosecond)
	now := time.Now()
	parse := func() {
		p.Reset(data, now)
		for {
			if _, err := p.Next(); err != nil {
				break
			}
		}
	}
	parse()
	if got := testing.AllocsPerRun(100, parse); got > 1 {
		t.Errorf("got %v allocations per buffer, want at most 1", got)
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
