package loadgen

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

var testBase = time.Date(2026, 1, 2, 3, 4, 5, 678_912_345, time.UTC)

func mustWorkload(t testing.TB, name string, hosts, series int) *Workload {
	t.Helper()
	w, err := NewWorkload(name, hosts, series)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// parsedLine is a line as line-protocol v2 reads it.
type parsedLine struct {
	measurement string
	tags        [][2]string
	fields      []string
	values      []lineprotocol.Value
	time        time.Time
}

func parseLines(t *testing.T, data []byte) []parsedLine {
	t.Helper()
	var out []parsedLine
	dec := lineprotocol.NewDecoderWithBytes(data)
	for dec.Next() {
		var p parsedLine
		m, err := dec.Measurement()
		if err != nil {
			t.Fatalf("line %d: %v", len(out)+1, err)
		}
		p.measurement = string(m)
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				t.Fatalf("line %d: %v", len(out)+1, err)
			}
			if k == nil {
				break
			}
			p.tags = append(p.tags, [2]string{string(k), string(v)})
		}
		for {
			k, v, err := dec.NextField()
			if err != nil {
				t.Fatalf("line %d: %v", len(out)+1, err)
			}
			if k == nil {
				break
			}
			p.fields = append(p.fields, string(k))
			p.values = append(p.values, v)
		}
		ts, err := dec.Time(lineprotocol.Nanosecond, time.Time{})
		if err != nil {
			t.Fatalf("line %d: %v", len(out)+1, err)
		}
		if ts.IsZero() {
			t.Fatalf("line %d has no timestamp", len(out)+1)
		}
		p.time = ts
		out = append(out, p)
	}
	return out
}

func TestLinesDistinctAndValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		workload      string
		hosts, series int
		stamps        string
		group         int // lines sharing a timestamp
		interval      time.Duration
	}{
		{name: "cpu", workload: "cpu", hosts: 3, series: 4, group: 4},
		{name: "cpu one series", workload: "cpu", hosts: 1, series: 1, group: 1},
		{name: "mix", workload: "mix", hosts: 2, series: 3, group: 3 + 1 + 3 + 3},
		{name: "cpu, a timestamp a round", workload: "cpu", hosts: 3, series: 4, stamps: StampRound, group: 12},
		{name: "mix, a timestamp a line", workload: "mix", hosts: 2, series: 3, stamps: StampLine, group: 1},
		{name: "cpu, every 10s", workload: "cpu", hosts: 3, series: 4, group: 4, interval: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := mustWorkload(t, tt.workload, tt.hosts, tt.series).WithInterval(tt.interval)
			if err != nil {
				t.Fatal(err)
			}
			if tt.stamps != "" {
				if w, err = w.WithStamps(tt.stamps); err != nil {
					t.Fatal(err)
				}
			}
			g := NewGenerator(w, testBase, 0, 1)
			const n = 5000
			var all []byte
			seen := make(map[string]bool, n)
			for range n {
				start := len(all)
				all = g.AppendLine(all)
				line := string(all[start:])
				if seen[line] {
					t.Fatalf("line repeated: %q", line)
				}
				seen[line] = true
				if len(line) > w.MaxLineLen() {
					t.Fatalf("line of %d bytes, MaxLineLen %d: %q", len(line), w.MaxLineLen(), line)
				}
			}
			lines := parseLines(t, all)
			if len(lines) != n {
				t.Fatalf("parsed %d lines, want %d", len(lines), n)
			}
			var row Row
			points := make(map[string]bool, n) // series and time
			for seq, p := range lines {
				at := seq
				wantTime := testBase.Truncate(time.Microsecond)
				if tt.interval > 0 {
					at = seq % len(w.Series)
					wantTime = wantTime.Add(time.Duration(seq/len(w.Series)) * tt.interval)
				}
				wantTime = wantTime.Add(time.Duration(at-at%tt.group) * SeqStride)
				if !p.time.Equal(wantTime) {
					t.Fatalf("line %d: time %v, want %v", seq, p.time, wantTime)
				}
				g.Row(uint64(seq), &row)
				point := fmt.Sprint(p.measurement, p.tags, p.time.UnixNano())
				if points[point] {
					t.Fatalf("line %d: a second line of point %s", seq, point)
				}
				points[point] = true
				checkLine(t, seq, &p, &row)
				if !time.Unix(0, row.UnixNano).Equal(wantTime) {
					t.Fatalf("row %d: time %v, want %v", seq, time.Unix(0, row.UnixNano), wantTime)
				}
			}
		})
	}
}

// checkLine checks that line seq, parsed as p, says what row does.
func checkLine(t *testing.T, seq int, p *parsedLine, row *Row) {
	t.Helper()
	m := row.Series.Measurement
	if p.measurement != m.Name || len(p.tags) != len(m.TagKeys) || len(p.fields) != len(m.Fields) {
		t.Fatalf("line %d: got %s with %d tags, %d fields; want %s with %d, %d",
			seq, p.measurement, len(p.tags), len(p.fields), m.Name, len(m.TagKeys), len(m.Fields))
	}
	for i, tag := range p.tags {
		if tag[0] != m.TagKeys[i] || tag[1] != row.Series.TagValues[i] {
			t.Fatalf("line %d: tag %d is %s=%s, want %s=%s", seq, i, tag[0], tag[1], m.TagKeys[i], row.Series.TagValues[i])
		}
	}
	for i, f := range m.Fields {
		v := p.values[i]
		switch {
		case p.fields[i] != f.Name:
			t.Fatalf("line %d: field %d is %s, want %s", seq, i, p.fields[i], f.Name)
		case f.Kind == Float && (v.Kind() != lineprotocol.Float || v.FloatV() != row.Values[i].F):
			t.Fatalf("line %d: %s = %v, want float %v", seq, f.Name, v, row.Values[i].F)
		case f.Kind == Int && (v.Kind() != lineprotocol.Int || v.IntV() != row.Values[i].I):
			t.Fatalf("line %d: %s = %v, want int %v", seq, f.Name, v, row.Values[i].I)
		}
	}
}

func TestCPULines(t *testing.T) {
	t.Parallel()
	w := mustWorkload(t, "cpu", 10, 10)
	g := NewGenerator(w, time.Now(), 0, 1)
	var all []byte
	const n = 10000
	for range n {
		all = g.AppendLine(all)
	}
	for i, p := range parseLines(t, all) {
		if p.measurement != "cpu" || len(p.tags) != 2 || p.tags[0][0] != "cpu" || p.tags[1][0] != "host" {
			t.Fatalf("line %d: %s with tags %v, want cpu with tags cpu, host", i, p.measurement, p.tags)
		}
		if len(p.values) != 10 {
			t.Fatalf("line %d: %d fields, want 10", i, len(p.values))
		}
		for j, v := range p.values {
			if v.Kind() != lineprotocol.Float || v.FloatV() < 0 || v.FloatV() >= 100 {
				t.Fatalf("line %d: field %s = %v, want a float percentage", i, p.fields[j], v)
			}
		}
	}
	// Telegraf's cpu lines are about 267 bytes.
	if avg := len(all) / n; avg < 250 || avg > 285 {
		t.Errorf("average cpu line is %d bytes, want about 267", avg)
	}
}

func TestAppendDatagram(t *testing.T) {
	t.Parallel()
	w := mustWorkload(t, "mix", 3, 5)
	tests := []struct {
		name     string
		maxLines int
		maxSize  int
	}{
		{name: "one line each", maxLines: 1, maxSize: 65000},
		{name: "ten lines", maxLines: 10, maxSize: 65000},
		{name: "size bound", maxLines: 100, maxSize: 1500},
		{name: "just the longest line", maxLines: 10, maxSize: w.MaxLineLen()},
		{name: "odd size", maxLines: 7, maxSize: 1234},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGenerator(w, testBase, 3, 2)
			ref := NewGenerator(w, testBase, 3, 2)
			var want, got []byte
			var buf []byte
			lines := 0
			for lines < 3000 {
				var n int
				buf, n = g.AppendDatagram(buf[:0], tt.maxLines, tt.maxSize)
				switch {
				case n == 0:
					t.Fatal("no line in a datagram")
				case n > tt.maxLines:
					t.Fatalf("%d lines in a datagram, want at most %d", n, tt.maxLines)
				case len(buf) > tt.maxSize:
					t.Fatalf("datagram of %d bytes, want at most %d", len(buf), tt.maxSize)
				case buf[len(buf)-1] != '\n':
					t.Fatalf("datagram ends inside a line: %q", buf[max(0, len(buf)-40):])
				case bytes.Count(buf, []byte("\n")) != n:
					t.Fatalf("datagram holds %d lines, AppendDatagram said %d", bytes.Count(buf, []byte("\n")), n)
				}
				if len(parseLines(t, buf)) != n {
					t.Fatalf("datagram does not parse into %d lines", n)
				}
				got = append(got, buf...)
				for range n {
					want = ref.AppendLine(want)
				}
				lines += n
			}
			// Datagrams are the line sequence cut at line boundaries.
			if !bytes.Equal(got, want) {
				t.Fatal("datagrams do not add up to the line sequence")
			}
		})
	}
}

func TestAppendDatagramTooSmall(t *testing.T) {
	t.Parallel()
	w := mustWorkload(t, "cpu", 1, 1)
	g := NewGenerator(w, testBase, 0, 1)
	b, n := g.AppendDatagram(nil, 10, 20)
	if n != 0 || len(b) != 0 || g.Next() != 0 {
		t.Fatalf("got %d lines (%q), next %d; want none and next 0", n, b, g.Next())
	}
}

func TestGeneratorStride(t *testing.T) {
	t.Parallel()
	// Two generators interleaving seqs make the lines of one.
	w := mustWorkload(t, "cpu", 2, 2)
	one := NewGenerator(w, testBase, 0, 1)
	even, odd := NewGenerator(w, testBase, 0, 2), NewGenerator(w, testBase, 1, 2)
	for i := range 100 {
		want := string(one.AppendLine(nil))
		g := even
		if i%2 == 1 {
			g = odd
		}
		if got := string(g.AppendLine(nil)); got != want {
			t.Fatalf("seq %d: got %q, want %q", i, got, want)
		}
	}
}

// TestIntervalTooShort: rounds closer than their lines are refused.
func TestIntervalTooShort(t *testing.T) {
	t.Parallel()
	w := mustWorkload(t, "cpu", 1000, 9)
	if _, err := w.WithInterval(8 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "shorter than a round of 9000 series") {
		t.Errorf("8ms for 9,000 series: got %v, want it refused", err)
	}
	if _, err := w.WithInterval(10 * time.Second); err != nil {
		t.Errorf("10s: %v", err)
	}
}

func TestNewWorkload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		hosts, series int
		wantSeries    int
		wantErr       string
	}{
		{name: "cpu", hosts: 10, series: 8, wantSeries: 80},
		{name: "mix", hosts: 2, series: 3, wantSeries: 2 * (3 + 1 + 3 + 3)},
		{name: "nope", hosts: 1, series: 1, wantErr: "unknown workload"},
		{name: "cpu", hosts: 0, series: 1, wantErr: "at least 1"},
	}
	for _, tt := range tests {
		w, err := NewWorkload(tt.name, tt.hosts, tt.series)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewWorkload(%s, %d, %d): got %v, want an error with %q", tt.name, tt.hosts, tt.series, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(w.Series) != tt.wantSeries {
			t.Errorf("NewWorkload(%s, %d, %d): %d series, want %d", tt.name, tt.hosts, tt.series, len(w.Series), tt.wantSeries)
		}
	}
}

func BenchmarkAppendDatagram(b *testing.B) {
	for _, name := range Workloads {
		b.Run(name, func(b *testing.B) {
			w := mustWorkload(b, name, 100, 10)
			g := NewGenerator(w, time.Now(), 0, 1)
			buf := make([]byte, 0, 8192)
			lines, size := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				var n int
				buf, n = g.AppendDatagram(buf[:0], 10, 8192)
				lines += n
				size += len(buf)
			}
			b.SetBytes(int64(size / b.N))
			b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// TestSplitPoints: with a split workload each point is sent as that many
// lines of one series and time, whose fields are the point's, in order.
func TestSplitPoints(t *testing.T) {
	t.Parallel()
	whole := mustWorkload(t, "cpu", 2, 3)
	split := whole.SplitInto(3)
	base := time.Now()
	var a, b []byte
	ga, gb := NewGenerator(whole, base, 0, 1), NewGenerator(split, base, 0, 1)
	for range 50 {
		a = ga.AppendLine(a)
		b = gb.AppendLine(b)
	}
	points, lines := parseLines(t, a), parseLines(t, b)
	if len(lines) != 3*len(points) {
		t.Fatalf("got %d lines for %d points, want 3 a point", len(lines), len(points))
	}
	for i, p := range points {
		var fields []string
		for _, l := range lines[3*i : 3*i+3] {
			if l.measurement != p.measurement || fmt.Sprint(l.tags) != fmt.Sprint(p.tags) || !l.time.Equal(p.time) {
				t.Fatalf("point %d: a line of %s %v at %v, want %s %v at %v", i, l.measurement, l.tags, l.time, p.measurement, p.tags, p.time)
			}
			if len(l.fields) < 3 {
				t.Errorf("point %d: a line of %d fields, want 3 or 4", i, len(l.fields))
			}
			fields = append(fields, l.fields...)
		}
		if fmt.Sprint(fields) != fmt.Sprint(p.fields) {
			t.Errorf("point %d: fields %v, want %v", i, fields, p.fields)
		}
	}
	if max := split.MaxLineLen(); max < len(b)/50 {
		t.Errorf("MaxLineLen %d is below a point's %d bytes", max, len(b)/50)
	}
}
