package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/plural"
)

// quiet is how long the row count must stay the same after sending for
// the run to count as settled; longer than pginflux's default
// --flush-interval (1s), the longest a row waits in an open batch.
const quiet = 2 * time.Second

// Config configures Run.
type Config struct {
	Send SendConfig
	// Database is where pginflux writes; nil skips the verification.
	Database *pgx.ConnConfig
	Schema   string
	// Settle bounds the wait, after sending, for the rows to be stored.
	Settle time.Duration
	// Truncate empties the workload's tables before the run.
	Truncate bool
	// MetricsURL is pginflux's /metrics; "" skips its counters.
	MetricsURL string
	HTTPClient *http.Client // for MetricsURL; nil: a client dialing loopback only
	// PID is pginflux's process, for its memory and CPU time from /proc;
	// when 0, they come from pginflux's process_* metrics if MetricsURL
	// is set (without VmHWM).
	PID int
	// Progress receives a line as each phase starts; nil for none.
	Progress io.Writer
	// RowsPerPoint is how many rows pginflux stores for a point sent: 1
	// (the default), or Workload.Split for a pginflux in append mode that
	// stores each line of a split point as a row of its own.
	RowsPerPoint int
	// ReportEvery, when more than 0, reads the counters this often while
	// the lines are being sent and reports each interval in Progress and
	// in the Result's Intervals.
	ReportEvery time.Duration
}

// Result is what one run sent, what arrived, and what the machine and
// pginflux counted meanwhile. Optional parts are nil when not measured.
type Result struct {
	Workload         string  `json:"workload"`
	Series           int     `json:"series"`
	Address          string  `json:"address"`
	TargetRate       float64 `json:"target_rate"` // lines/s; 0: as fast as possible
	Senders          int     `json:"senders"`
	LinesPerDatagram int     `json:"lines_per_datagram"`

	Sent Sent `json:"sent"`
	// FirstTime and LastTime bound the timestamps of the run's lines.
	FirstTime time.Time `json:"first_time"`
	LastTime  time.Time `json:"last_time"`

	Stored   *Stored         `json:"stored,omitempty"`
	Kernel   *UDPStats       `json:"kernel_udp,omitempty"` // deltas over the run, whole machine
	Pginflux *PginfluxCounts `json:"pginflux,omitempty"`
	Process  *ProcessUsage   `json:"process,omitempty"`
	Server   *ServerUsage    `json:"server,omitempty"`
	Machine  *MachineUsage   `json:"machine,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
	// Intervals are the periods of Config.ReportEvery while sending.
	Intervals []Interval `json:"intervals,omitempty"`

	// pginflux's CPU time until the rows settled, for fill.
	runCPU     float64
	haveRunCPU bool
}

// Sent is what the senders handed to the kernel.
type Sent struct {
	Lines           int64   `json:"lines"`
	Datagrams       int64   `json:"datagrams"`
	Bytes           int64   `json:"bytes"`
	FailedDatagrams int64   `json:"failed_datagrams"`
	FailedLines     int64   `json:"failed_lines"`
	LastError       string  `json:"last_error,omitempty"`
	Seconds         float64 `json:"seconds"`
	Rate            float64 `json:"lines_per_second"`
	// CPUCores is the CPU time of this process (the senders, and the
	// kernel's loopback delivery done on their behalf) per second of
	// sending; 0 when unknown.
	CPUCores float64 `json:"cpu_cores"`
}

// Stored is what PostgreSQL holds of the run.
type Stored struct {
	Rows   int64            `json:"rows"`
	Tables map[string]int64 `json:"tables"`
	Lost   int64            `json:"lost"` // lines sent minus rows stored
	// Settled is true when the count stopped changing (or reached the
	// lines sent) before the settle time ran out.
	Settled bool `json:"settled"`
	// Seconds runs from the first send to when the last row was seen.
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rows_per_second"`
}

// PginfluxCounts are deltas of pginflux's counters over the run, each
// summed over its labels.
type PginfluxCounts struct {
	Counters map[string]float64 `json:"counters,omitempty"`
	Error    string             `json:"error,omitempty"` // why there are none
}

// ProcessUsage is pginflux's memory during the run (until the rows
// settled) and its CPU time while the lines were being sent.
type ProcessUsage struct {
	PID    int    `json:"pid,omitempty"`
	Source string `json:"source"` // "/proc/PID" or "metrics"
	// MaxRSS is the largest VmRSS sampled during the run, HWM the
	// process's VmHWM (highest RSS since it started) at the end.
	MaxRSS   int64   `json:"max_rss_bytes"`
	HWM      int64   `json:"hwm_bytes"`
	CPU      float64 `json:"cpu_seconds"` // while sending
	CPUCores float64 `json:"cpu_cores"`   // CPU seconds per second of sending
	// RunCPU is the CPU time from the start of sending until the rows
	// settled, CPUPerLine that divided by the rows stored, in µs; 0 when
	// unknown (no database to count the rows in).
	RunCPU     float64 `json:"run_cpu_seconds,omitempty"`
	CPUPerLine float64 `json:"cpu_us_per_line,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// ServerUsage is the PostgreSQL server's durability settings and, when
// its processes can be seen, the CPU time they used from the start of
// sending until the rows settled (all of the server's processes:
// backends, WAL writer, checkpointer, autovacuum, and the counting
// queries of the verification).
type ServerUsage struct {
	ServerInfo
	Durable   bool    `json:"durable"`
	CPU       float64 `json:"cpu_seconds,omitempty"`
	CPUPerRow float64 `json:"cpu_us_per_row,omitempty"`
}

// MachineUsage is how busy all CPUs were while the lines were being sent.
type MachineUsage struct {
	BusyCores float64 `json:"busy_cores"`
	Cores     float64 `json:"cores"`
}

// Run sends cfg.Send's lines and then, when a database is configured,
// waits up to cfg.Settle for them to be stored and counts them. Problems
// measuring the side counters become warnings in the Result; the error is
// for a run that could not be made or verified.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	sc := cfg.Send
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	r := &Result{
		Workload:         sc.Workload.Name,
		Series:           len(sc.Workload.Series),
		Address:          sc.Address.String(),
		TargetRate:       sc.Rate,
		Senders:          sc.Senders,
		LinesPerDatagram: sc.LinesPerDatagram,
	}
	store, server, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if store != nil {
		defer store.Close(context.WithoutCancel(ctx))
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DialContext: LoopbackDialer().DialContext}}
	}

	// The probe goes on after a cancelled ctx, to the end of the settling.
	probe := &processProbe{pid: cfg.PID, ctx: context.WithoutCancel(ctx), client: client, url: cfg.MetricsURL, server: server}
	before := takeSnapshot(ctx, cfg, client, probe, r)
	sampler := startSampler(probe)

	progress(cfg.Progress, "sending %s lines to %s at %s for at most %v or %d lines",
		sc.Workload.Name, sc.Address, rateString(sc.Rate), sc.Duration, sc.Lines)
	intervals := startIntervals(cfg, probe, &sc)
	selfCPU, selfErr := ReadProcessCPU(os.Getpid())
	sent, err := Send(ctx, sc)
	if err != nil {
		intervals.stop()
		sampler.stop()
		return nil, err
	}
	// CPU use is measured while sending, when the load is on; the last
	// interval's reading comes after, not to count in it.
	sendEnd := takeCPU(probe)
	r.Intervals = intervals.stop()
	r.noteSent(sc, sent, selfCPU, selfErr == nil)

	// What was sent is verified even when ctx ended the sending early
	// (Ctrl-C): the wait is bounded by cfg.Settle.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Settle+time.Minute)
	defer cancel()
	if store != nil {
		progress(cfg.Progress, "sent %d lines in %.2fs (%.0f lines/s); waiting up to %v for the rows", sent.Lines, r.Sent.Seconds, r.Sent.Rate, cfg.Settle)
		var settledCPU cpuSnapshot
		mark := func() { settledCPU = takeCPU(probe) }
		st, err := settle(ctx, cfg, client, store, sent, r.FirstTime, r.LastTime, before.metrics, mark)
		if err != nil {
			sampler.stop()
			return nil, err
		}
		r.Stored = st
		if !st.Settled {
			r.warn("rows were still arriving when --settle (%v) ran out: the loss reported is not final", cfg.Settle)
		}
		r.fillPerRow(probe, before.cpuSnapshot, settledCPU)
	}
	usage := sampler.stop()
	after := takeSnapshot(ctx, cfg, client, probe, r)
	r.fill(cfg, probe, before, sendEnd, after, usage)
	return r, nil
}

// openStore reads the settings of cfg.Database and opens the store that
// counts the rows there, emptied first if cfg.Truncate; it returns a nil
// Store without a database. The caller closes the Store.
func openStore(ctx context.Context, cfg Config) (*Store, *ServerInfo, error) {
	if cfg.Database == nil {
		return nil, nil, nil
	}
	server, err := InspectServer(ctx, cfg.Database)
	if err != nil {
		return nil, nil, err
	}
	store, err := OpenStore(ctx, cfg.Database, cfg.Schema, cfg.Send.Workload.MeasurementNames())
	if err != nil {
		return nil, nil, err
	}
	if cfg.Truncate {
		if err := store.Truncate(ctx); err != nil {
			store.Close(context.WithoutCancel(ctx))
			return nil, nil, err
		}
	}
	return store, server, nil
}

// noteSent records what the senders did: sent, at the rate it was, with
// the CPU this process used since selfCPU (when selfOK), the warnings it
// calls for, and the timestamps of the lines.
func (r *Result) noteSent(sc SendConfig, sent *SendResult, selfCPU float64, selfOK bool) {
	r.Sent = Sent{
		Lines: sent.Lines, Datagrams: sent.Datagrams, Bytes: sent.Bytes,
		FailedDatagrams: sent.FailedDatagrams, FailedLines: sent.FailedLines,
		Seconds: sent.Seconds(), Rate: float64(sent.Lines) / sent.Seconds(),
	}
	if c, err := ReadProcessCPU(os.Getpid()); err == nil && selfOK {
		r.Sent.CPUCores = (c - selfCPU) / sent.Seconds()
	}
	if sent.LastError != nil {
		r.Sent.LastError = sent.LastError.Error()
		r.warn("%s could not be sent (%v): is pginflux listening on %s?", plural.Count(sent.FailedDatagrams, "datagram"), sent.LastError, sc.Address)
	}
	if sc.Rate > 0 && sent.Lines < sc.Lines && r.Sent.Rate < 0.95*sc.Rate {
		r.warn("sent %.0f lines/s, below the %.0f asked: the sender (or the machine) cannot keep up; try --senders", r.Sent.Rate, sc.Rate)
	}
	gen := NewGenerator(sc.Workload, sc.Base, 0, 1)
	r.FirstTime = gen.Time(0)
	r.LastTime = gen.Time(max(sent.LastSeq, 1) - 1)
}

// warn adds a warning to the Result.
func (r *Result) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// progress writes a line about the run to w, when there is one.
func progress(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "pginflux bench: "+format+"\n", args...)
	}
}

// rateString says a target rate of lines per second.
func rateString(rate float64) string {
	if rate <= 0 {
		return "full speed"
	}
	return fmt.Sprintf("%.0f lines/s", rate)
}
