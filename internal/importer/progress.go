package importer

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Terminal reports whether w is a terminal, and its width in columns.
func Terminal(w io.Writer) (ok bool, width int) {
	f, isFile := w.(*os.File)
	if !isFile {
		return false, 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return false, 0
	}
	return true, int(ws.Col)
}

// How often progress is shown.
const (
	BarInterval   = 200 * time.Millisecond
	PlainInterval = 5 * time.Second
)

// Reporter shows an import's progress on a writer, standard error: a line
// redrawn in place (with \r) on a terminal, or a plain line every so often
// elsewhere. The log may share the writer through Write, which clears the
// bar before each log line. Safe for concurrent use.
type Reporter struct {
	w        io.Writer
	bar      bool
	width    int
	every    time.Duration
	progress func() Progress

	mu    sync.Mutex
	drawn int // length of the bar on the current line; 0 when none

	stop chan struct{}
	done chan struct{}
}

// NewReporter returns a Reporter of progress on w: a bar width columns
// wide redrawn every BarInterval when bar is set, else a plain line every
// every. Call Start, then Stop.
func NewReporter(w io.Writer, bar bool, width int, every time.Duration) *Reporter {
	if width <= 0 {
		width = 100
	}
	if bar {
		every = BarInterval
	}
	return &Reporter{w: w, bar: bar, width: width, every: every, stop: make(chan struct{}), done: make(chan struct{})}
}

// Start shows what progress returns until Stop. Call it once.
func (r *Reporter) Start(progress func() Progress) {
	r.progress = progress
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.show(r.progress())
			}
		}
	}()
}

// Stop stops showing progress; a bar is drawn a last time, complete, and
// its line ended.
func (r *Reporter) Stop() {
	close(r.stop)
	<-r.done
	if r.bar {
		r.show(r.progress())
		r.mu.Lock()
		if r.drawn > 0 {
			io.WriteString(r.w, "\n")
			r.drawn = 0
		}
		r.mu.Unlock()
	}
}

// Write writes p (a log line) on a line of its own.
func (r *Reporter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clear()
	return r.w.Write(p)
}

func (r *Reporter) clear() {
	if r.drawn > 0 {
		io.WriteString(r.w, "\r"+strings.Repeat(" ", r.drawn)+"\r")
		r.drawn = 0
	}
}

func (r *Reporter) show(p Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.bar {
		fmt.Fprintln(r.w, PlainLine(p))
		return
	}
	line := BarLine(p, r.width-1)
	pad := max(r.drawn-len(line), 0)
	io.WriteString(r.w, "\r"+line+strings.Repeat(" ", pad))
	r.drawn = len(line)
}

// BarLine is the progress bar, at most width bytes (when width allows):
//
//	[########------------]  42.0%  1.2 GiB of 2.8 GiB  8,123,456 lines  523,456 lines/s  ETA 1m52s
func BarLine(p Progress, width int) string {
	rate := perSecond(p.Lines, p.Elapsed)
	if p.Total <= 0 {
		return fmt.Sprintf("%s  %s lines  %s lines/s  %s", Bytes(p.Read), Count(p.Lines), Count(rate), Duration(p.Elapsed))
	}
	frac := min(float64(p.Read)/float64(p.Total), 1)
	text := fmt.Sprintf(" %5.1f%%  %s of %s  %s lines  %s lines/s  ETA %s",
		100*frac, Bytes(p.Read), Bytes(p.Total), Count(p.Lines), Count(rate), eta(p))
	barWidth := min(width-len(text)-2, 30)
	if barWidth < 10 {
		return strings.TrimSpace(text)
	}
	done := int(frac * float64(barWidth))
	return "[" + strings.Repeat("#", done) + strings.Repeat("-", barWidth-done) + "]" + text
}

// PlainLine is a line of progress for a log or a file.
func PlainLine(p Progress) string {
	var b strings.Builder
	b.WriteString("pginflux import: ")
	if p.Total > 0 {
		fmt.Fprintf(&b, "%.1f%% of %s read", 100*min(float64(p.Read)/float64(p.Total), 1), Bytes(p.Total))
	} else {
		fmt.Fprintf(&b, "%s read", Bytes(p.Read))
	}
	if p.Input != "" {
		fmt.Fprintf(&b, " (now %s)", p.Input)
	}
	fmt.Fprintf(&b, ", %s lines, %s rows written, %s lines/s", Count(p.Lines), Count(p.Rows), Count(perSecond(p.Lines, p.Elapsed)))
	if p.Total > 0 {
		fmt.Fprintf(&b, ", ETA %s", eta(p))
	}
	return b.String()
}

// eta is the time left at the average rate so far.
func eta(p Progress) string {
	if p.Read <= 0 || p.Elapsed <= 0 {
		return "?"
	}
	left := max(p.Total-p.Read, 0)
	return Duration(time.Duration(float64(p.Elapsed) * float64(left) / float64(p.Read)))
}

func perSecond(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// Count formats n with thousands separators: 1,234,567.
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Bytes formats a size in binary units: 812 B, 1.5 KiB, 45.2 MiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 3 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGT"[i])
}

// Duration formats d for people: 0.4s, 12s, 2m05s, 1h02m03s.
func Duration(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm%02ds", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}
