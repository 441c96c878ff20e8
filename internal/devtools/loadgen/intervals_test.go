package loadgen

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestNewInterval(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := intervalSample{
		at: start.Add(60 * time.Second), lines: 9_000_000, datagrams: 900_000,
		udp:     &UDPStats{RcvbufErrors: 5},
		metrics: map[string]float64{writtenRows: 8_990_000, queueDrops: 1, droppedRows: 0, pendingRows: 900},
		cpu:     ptr(10.0), serverCPU: ptr(100.0), rss: 60 << 20,
	}
	cur := intervalSample{
		at: start.Add(120 * time.Second), lines: 18_000_000, datagrams: 1_800_000,
		udp:     &UDPStats{RcvbufErrors: 8},
		metrics: map[string]float64{writtenRows: 17_988_800, queueDrops: 3, droppedRows: 4, pendingRows: 1200},
		cpu:     ptr(18.28), serverCPU: ptr(118.9), rss: 71 << 20,
	}
	iv := newInterval(start, prev, cur, 2)
	if iv.Elapsed != 120 || iv.Seconds != 60 || iv.Lines != 9_000_000 || iv.Rate != 150_000 {
		t.Errorf("got elapsed %v, length %v, %d lines at %v/s; want 120, 60, 9000000 at 150000/s", iv.Elapsed, iv.Seconds, iv.Lines, iv.Rate)
	}
	p := iv.Pginflux
	if p == nil || p.Committed != 8_998_800 || p.CommitRate != 149_980 || p.QueueDrops != 2 || p.DroppedRows != 4 || p.Pending == nil || *p.Pending != 1200 {
		t.Fatalf("pginflux: got %+v, want 8998800 committed at 149980/s, 2 queue drops, 4 rows dropped, 1200 pending", p)
	}
	// 3 kernel and 2 queue drops of 10 lines a datagram, and 4 rows of
	// points stored as 2 rows each.
	if iv.KernelDrops == nil || *iv.KernelDrops != 3 || iv.Lost != 52 {
		t.Errorf("got kernel drops %v, lost %d; want 3, 52", iv.KernelDrops, iv.Lost)
	}
	if !near(iv.CPUPerLine, 0.92) || !near(iv.ServerCPUPerRow, 2.1) || iv.RSS != 71<<20 {
		t.Errorf("got %v µs/line, %v µs/row, RSS %d; want 0.92, 2.10, 71 MiB", iv.CPUPerLine, iv.ServerCPUPerRow, iv.RSS)
	}
	want := "t=120s sent 150000/s, committed 149980/s, lost 52 (kernel dropped 3 datagrams, queue dropped 2 datagrams, pginflux dropped 4 rows)," +
		" pginflux 0.92 µs/line, server 2.10 µs/row, RSS 71 MiB, pending 1200"
	if got := iv.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func near(a, b float64) bool { return a > b-1e-3 && a < b+1e-3 }

// An interval without pginflux's metrics, its PID or the kernel's
// counters says only what was sent.
func TestNewIntervalUnmeasured(t *testing.T) {
	start := time.Now()
	prev := intervalSample{at: start}
	cur := intervalSample{at: start.Add(2 * time.Second), lines: 3000, datagrams: 300, metrics: map[string]float64{writtenRows: 5}}
	iv := newInterval(start, prev, cur, 1)
	if iv.Pginflux != nil || iv.KernelDrops != nil || iv.Lost != 0 || iv.CPUPerLine != 0 || iv.RSS != 0 {
		t.Errorf("got %+v, want only what was sent", iv)
	}
	if got, want := iv.String(), "t=2s sent 1500/s"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Metrics without a pending gauge: no pending.
	prev.metrics = map[string]float64{writtenRows: 0}
	iv = newInterval(start, prev, cur, 1)
	if got, want := iv.String(), "t=2s sent 1500/s, committed 2/s, lost 0"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLinesPerDatagram(t *testing.T) {
	tests := []struct {
		prev, cur intervalSample
		want      float64
	}{
		{intervalSample{lines: 100, datagrams: 10}, intervalSample{lines: 160, datagrams: 20}, 6},
		{intervalSample{lines: 100, datagrams: 10}, intervalSample{lines: 100, datagrams: 10}, 10}, // nothing sent: the run's
		{intervalSample{}, intervalSample{}, 1},
	}
	for _, tt := range tests {
		if got := linesPerDatagram(tt.prev, tt.cur); got != tt.want {
			t.Errorf("linesPerDatagram(%+v, %+v) = %v, want %v", tt.prev, tt.cur, got, tt.want)
		}
	}
}

// The sampler reports an interval as each ends, and a last one up to
// its stop.
func TestIntervalSampler(t *testing.T) {
	var progress bytes.Buffer
	cfg := Config{ReportEvery: 30 * time.Millisecond, Progress: &progress}
	var sc SendConfig
	s := startIntervals(cfg, &processProbe{ctx: context.Background()}, &sc)
	if sc.Live == nil {
		t.Fatal("no live counts set for the senders")
	}
	sc.Live.add(500, 50)
	time.Sleep(100 * time.Millisecond)
	sc.Live.add(100, 10)
	ivs := s.stop()
	if len(ivs) < 2 {
		t.Fatalf("got %d intervals, want at least 2", len(ivs))
	}
	var lines int64
	for _, iv := range ivs {
		lines += iv.Lines
	}
	if lines != 600 || ivs[0].Rate <= 0 {
		t.Errorf("got %d lines in %+v, want 600, the first at a positive rate", lines, ivs)
	}
	if n := strings.Count(progress.String(), "pginflux bench: t="); n != len(ivs) {
		t.Errorf("progress has %d interval lines, want %d:\n%s", n, len(ivs), progress.String())
	}
	if startIntervals(Config{}, nil, &sc).stop() != nil {
		t.Error("intervals without ReportEvery")
	}
}
