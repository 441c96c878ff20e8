package loadgen

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// With Config.ReportEvery, a run also reads its counters every so often
// while the lines are being sent, to show how a long run changes over
// time: a backlog growing in pginflux, memory creeping up, CPU per line
// rising as the tables grow. Only cheap counters are read (pginflux's
// metrics, /proc): never a count in the database, which on tables of
// tens of millions of rows would load the server being measured.

// The pginflux metrics an interval reads besides pginfluxCounters.
const (
	queueDrops  = "pginflux_ingest_dropped_datagrams_total"
	droppedRows = "pginflux_sink_dropped_rows_total"
	pendingRows = "pginflux_sink_pending_rows" // a gauge
)

// Interval is what one period of a run's sending did; counts are deltas
// over the period. Optional parts are zero or nil when not measured.
type Interval struct {
	// Elapsed runs from the start of sending to the end of the interval;
	// Seconds is the interval's length (the last one may be shorter).
	Elapsed float64 `json:"elapsed_seconds"`
	Seconds float64 `json:"seconds"`
	Lines   int64   `json:"lines"` // sent
	Rate    float64 `json:"lines_per_second"`
	// KernelDrops are the UDP datagrams the kernel dropped for a full
	// receive buffer (RcvbufErrors, whole machine).
	KernelDrops *int64          `json:"kernel_dropped_datagrams,omitempty"`
	Pginflux    *IntervalCounts `json:"pginflux,omitempty"`
	// Lost estimates the lines lost from the counters: the datagrams the
	// kernel and pginflux's queue dropped, times the lines a datagram
	// held in the interval, plus the rows pginflux dropped, as lines.
	Lost int64 `json:"lost_lines"`
	// CPUPerLine is pginflux's CPU time per line sent, ServerCPUPerRow the
	// server's per row pginflux committed, both in µs.
	CPUPerLine      float64 `json:"cpu_us_per_line,omitempty"`
	ServerCPUPerRow float64 `json:"server_cpu_us_per_row,omitempty"`
	RSS             int64   `json:"rss_bytes,omitempty"` // pginflux's, at the end
}

// IntervalCounts are pginflux's counters over an interval.
type IntervalCounts struct {
	Committed   int64   `json:"committed_rows"`
	CommitRate  float64 `json:"rows_per_second"`
	QueueDrops  int64   `json:"queue_dropped_datagrams"`
	DroppedRows int64   `json:"dropped_rows"`
	// Pending is the rows pginflux held, not yet committed, at the end;
	// nil when it does not export pginflux_sink_pending_rows.
	Pending *int64 `json:"pending_rows,omitempty"`
}

// intervalSample is the counters at one moment of the sending; a nil part
// could not be read.
type intervalSample struct {
	at               time.Time
	lines, datagrams int64 // sent so far
	udp              *UDPStats
	metrics          map[string]float64
	cpu, serverCPU   *float64 // pginflux's, the server's
	rss              int64
}

// takeIntervalSample reads what live counted and the counters of the
// kernel, pginflux and the server. pginflux's CPU time and RSS come from
// /proc with its PID, else from the metrics scraped anyway.
func takeIntervalSample(probe *processProbe, live *LiveCounts) intervalSample {
	s := intervalSample{at: time.Now(), lines: live.Lines.Load(), datagrams: live.Datagrams.Load()}
	if u, err := ReadUDPStats(); err == nil {
		s.udp = &u
	}
	if probe.url != "" {
		s.metrics, _ = Scrape(probe.ctx, probe.client, probe.url)
	}
	if probe.server != nil && probe.server.PID > 0 {
		if c, err := ReadServerCPU(probe.server.PID); err == nil {
			s.serverCPU = &c
		}
	}
	if probe.pid > 0 {
		if c, err := ReadProcessCPU(probe.pid); err == nil {
			s.cpu = &c
		}
		if m, err := ReadMemory(probe.pid); err == nil {
			s.rss = m.RSS
		}
	} else if s.metrics != nil {
		if c, ok := s.metrics["process_cpu_seconds_total"]; ok {
			s.cpu = &c
		}
		s.rss = int64(s.metrics["process_resident_memory_bytes"])
	}
	return s
}

// newInterval returns what happened between prev and cur, in a run whose
// sending started at start and whose points are stored as rowsPerPoint
// rows each.
func newInterval(start time.Time, prev, cur intervalSample, rowsPerPoint int) Interval {
	iv := Interval{
		Elapsed: cur.at.Sub(start).Seconds(),
		Seconds: cur.at.Sub(prev.at).Seconds(),
		Lines:   cur.lines - prev.lines,
		RSS:     cur.rss,
	}
	if iv.Seconds > 0 {
		iv.Rate = float64(iv.Lines) / iv.Seconds
	}
	var dropped float64 // datagrams
	if prev.udp != nil && cur.udp != nil {
		d := cur.udp.RcvbufErrors - prev.udp.RcvbufErrors
		iv.KernelDrops = &d
		dropped += float64(d)
	}
	var lostRows float64
	if prev.metrics != nil && cur.metrics != nil {
		p := pginfluxInterval(prev.metrics, cur.metrics, iv.Seconds)
		iv.Pginflux = p
		dropped += float64(p.QueueDrops)
		lostRows = float64(p.DroppedRows) / float64(max(rowsPerPoint, 1))
		if prev.serverCPU != nil && cur.serverCPU != nil && p.Committed > 0 {
			iv.ServerCPUPerRow = 1e6 * (*cur.serverCPU - *prev.serverCPU) / float64(p.Committed)
		}
	}
	iv.Lost = int64(math.Round(dropped*linesPerDatagram(prev, cur) + lostRows))
	if prev.cpu != nil && cur.cpu != nil && iv.Lines > 0 {
		iv.CPUPerLine = 1e6 * (*cur.cpu - *prev.cpu) / float64(iv.Lines)
	}
	return iv
}

// pginfluxInterval returns the differences of pginflux's counters between
// two scrapes seconds apart, and its pending rows at the second.
func pginfluxInterval(prev, cur map[string]float64, seconds float64) *IntervalCounts {
	delta := func(name string) int64 { return int64(math.Round(cur[name] - prev[name])) }
	p := &IntervalCounts{
		Committed:   delta(writtenRows),
		QueueDrops:  delta(queueDrops),
		DroppedRows: delta(droppedRows),
	}
	if seconds > 0 {
		p.CommitRate = float64(p.Committed) / seconds
	}
	if v, ok := cur[pendingRows]; ok {
		n := int64(math.Round(v))
		p.Pending = &n
	}
	return p
}

// linesPerDatagram is how many lines a datagram held on average between
// prev and cur, or since the start when nothing was sent in between; 1
// when nothing was sent at all.
func linesPerDatagram(prev, cur intervalSample) float64 {
	switch {
	case cur.datagrams > prev.datagrams:
		return float64(cur.lines-prev.lines) / float64(cur.datagrams-prev.datagrams)
	case cur.datagrams > 0:
		return float64(cur.lines) / float64(cur.datagrams)
	}
	return 1
}

// String describes iv in a line, leaving out what was not measured:
// "t=60s sent 150000/s, committed 149980/s, lost 0, pginflux 0.92 µs/line,
// server 2.10 µs/row, RSS 71 MiB, pending 1200".
func (iv Interval) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%.0fs sent %.0f/s", iv.Elapsed, iv.Rate)
	p := iv.Pginflux
	if p != nil {
		fmt.Fprintf(&b, ", committed %.0f/s", p.CommitRate)
	}
	if iv.KernelDrops != nil || p != nil {
		fmt.Fprintf(&b, ", lost %d", iv.Lost)
	}
	if iv.Lost > 0 {
		b.WriteString(" (" + iv.lossCauses() + ")")
	}
	if iv.CPUPerLine > 0 {
		fmt.Fprintf(&b, ", pginflux %.2f µs/line", iv.CPUPerLine)
	}
	if iv.ServerCPUPerRow > 0 {
		fmt.Fprintf(&b, ", server %.2f µs/row", iv.ServerCPUPerRow)
	}
	if iv.RSS > 0 {
		fmt.Fprintf(&b, ", RSS %.0f MiB", float64(iv.RSS)/(1<<20))
	}
	if p != nil && p.Pending != nil {
		fmt.Fprintf(&b, ", pending %d", *p.Pending)
	}
	return b.String()
}

// lossCauses says which counters the lines lost come from.
func (iv Interval) lossCauses() string {
	var parts []string
	if iv.KernelDrops != nil && *iv.KernelDrops > 0 {
		parts = append(parts, fmt.Sprintf("kernel dropped %d datagrams", *iv.KernelDrops))
	}
	if p := iv.Pginflux; p != nil && p.QueueDrops > 0 {
		parts = append(parts, fmt.Sprintf("queue dropped %d datagrams", p.QueueDrops))
	}
	if p := iv.Pginflux; p != nil && p.DroppedRows > 0 {
		parts = append(parts, fmt.Sprintf("pginflux dropped %d rows", p.DroppedRows))
	}
	return strings.Join(parts, ", ")
}

// intervalSampler reads the counters every Config.ReportEvery while the
// lines are being sent, and writes a line about each interval to the
// run's progress as it ends.
type intervalSampler struct {
	stopc     chan struct{}
	done      chan struct{}
	intervals []Interval
}

// startIntervals returns nil when cfg.ReportEvery is 0. Else it sets
// sc.Live, for the senders to count in, takes the first sample at once,
// before the sending starts, and the others every cfg.ReportEvery until
// stop.
func startIntervals(cfg Config, probe *processProbe, sc *SendConfig) *intervalSampler {
	if cfg.ReportEvery <= 0 {
		return nil
	}
	live := &LiveCounts{}
	sc.Live = live
	s := &intervalSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	every := cfg.ReportEvery
	first := takeIntervalSample(probe, live)
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		last := first // the start of the last interval reported
		for prev := first; ; {
			stopped := false
			select {
			case <-t.C:
			case <-s.stopc:
				stopped = true
			}
			cur := takeIntervalSample(probe, live)
			// A last interval cut short by the end of the sending is its
			// own unless too short for its rates to mean anything: then
			// it is added to the one before, so that no count is lost.
			switch n := len(s.intervals); {
			case !stopped || cur.at.Sub(prev.at) >= every/10 || n == 0:
				iv := newInterval(first.at, prev, cur, cfg.RowsPerPoint)
				s.intervals = append(s.intervals, iv)
				progress(cfg.Progress, "%s", iv)
				last = prev
			default:
				s.intervals[n-1] = newInterval(first.at, last, cur, cfg.RowsPerPoint)
			}
			if stopped {
				return
			}
			prev = cur
		}
	}()
	return s
}

// stop ends the sampling, with a last interval up to now, and returns the
// intervals; nil s has none.
func (s *intervalSampler) stop() []Interval {
	if s == nil {
		return nil
	}
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
	return s.intervals
}
