package importer

import (
	"bytes"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestFormats(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ got, want string }{
		{Count(0), "0"},
		{Count(999), "999"},
		{Count(1000), "1,000"},
		{Count(1234567), "1,234,567"},
		{Count(-1234), "-1,234"},
		{Bytes(812), "812 B"},
		{Bytes(1536), "1.5 KiB"},
		{Bytes(45 << 20), "45.0 MiB"},
		{Bytes(3 << 30), "3.0 GiB"},
		{Duration(400 * time.Millisecond), "0.4s"},
		{Duration(12 * time.Second), "12s"},
		{Duration(125 * time.Second), "2m05s"},
		{Duration(3723 * time.Second), "1h02m03s"},
		{plural(1, "row"), "1 row"},
		{plural(1000, "row"), "1,000 rows"},
		{plural(2, "line, row or value"), "2 lines, rows or values"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestBarLine(t *testing.T) {
	t.Parallel()
	p := Progress{Read: 50 << 20, Total: 200 << 20, Lines: 1_000_000, Elapsed: 2 * time.Second}
	tests := []struct {
		name  string
		p     Progress
		width int
		want  string
	}{
		{"known size", p, 100, "[######------------------]  25.0%  50.0 MiB of 200.0 MiB  1,000,000 lines  500,000 lines/s  ETA 6.0s"},
		{"too narrow for a bar", p, 60, "25.0%  50.0 MiB of 200.0 MiB  1,000,000 lines  500,000 lines/s  ETA 6.0s"},
		{"unknown size", Progress{Read: 50 << 20, Total: -1, Lines: 1_000_000, Elapsed: 2 * time.Second}, 100, "50.0 MiB  1,000,000 lines  500,000 lines/s  2.0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BarLine(tt.p, tt.width); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
			if got := BarLine(tt.p, tt.width); len(got) > tt.width && strings.HasPrefix(got, "[") {
				t.Errorf("%d bytes wide, more than %d", len(got), tt.width)
			}
		})
	}
	if got, want := PlainLine(Progress{Input: "a.lp", Read: 50 << 20, Total: 200 << 20, Lines: 1_000_000, Rows: 900_000, Elapsed: 2 * time.Second}),
		"pginflux import: 25.0% of 200.0 MiB read (now a.lp), 1,000,000 lines, 900,000 rows written, 500,000 lines/s, ETA 6.0s"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestReporterBar: the bar is redrawn in place, a log line clears it and
// takes a line of its own, and Stop draws the bar complete and ends its
// line.
func TestReporterBar(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		r := NewReporter(&out, true, 100, 0)
		var lines int64
		r.Start(func() Progress {
			lines += 10
			return Progress{Read: lines, Total: 20, Lines: lines, Elapsed: time.Second}
		})
		time.Sleep(BarInterval + BarInterval/2) // one draw: 10 lines
		r.Write([]byte("level=WARN msg=x\n"))
		r.Stop() // 20 lines
		bar10 := BarLine(Progress{Read: 10, Total: 20, Lines: 10, Elapsed: time.Second}, 99)
		bar20 := BarLine(Progress{Read: 20, Total: 20, Lines: 20, Elapsed: time.Second}, 99)
		want := "\r" + bar10 + "\r" + strings.Repeat(" ", len(bar10)) + "\r" + "level=WARN msg=x\n" + "\r" + bar20 + "\n"
		if out.String() != want {
			t.Errorf("got  %q\nwant %q", out.String(), want)
		}
	})
}

// TestReporterPlain: away from a terminal, a plain line every interval.
func TestReporterPlain(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		r := NewReporter(&out, false, 0, PlainInterval)
		r.Start(func() Progress { return Progress{Read: 1, Total: -1, Lines: 1, Elapsed: time.Second} })
		time.Sleep(2*PlainInterval + time.Second)
		r.Stop()
		line := PlainLine(Progress{Read: 1, Total: -1, Lines: 1, Elapsed: time.Second}) + "\n"
		if out.String() != line+line {
			t.Errorf("got %q, want two of %q", out.String(), line)
		}
	})
}
