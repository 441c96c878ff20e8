// Package importer loads files of line protocol into PostgreSQL through
// the same parser and sink as the daemon: it is pginflux import.
//
// One goroutine reads the inputs in order, decompressing gzip, and cuts
// them into chunks of whole lines; parser goroutines, each with its own
// parse.Parser and sink.Batcher, turn the chunks into rows; the sink
// writes them with COPY. Memory is bounded: a few chunks per parser wait
// in a queue, and the sink holds at most its MaxPendingRows, so that the
// parsers, then the reader, wait while PostgreSQL catches up.
//
// Lines the parser rejects go to the rejected table, with the input's name
// and line number in their detail; a rejected line is data, not a failure.
// The sections of an `influx_inspect export` are understood (see
// exportState).
package importer

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// Defaults of Config.
const (
	// DefaultChunkSize is the usual size of the chunks parsers take: large
	// enough that handing one over costs nothing next to parsing it.
	DefaultChunkSize = 1 << 20
	// DefaultMaxLineSize is the longest line taken; a longer one is
	// rejected (too_long) with its first bytes kept.
	DefaultMaxLineSize = 64 << 20
	// DefaultMaxSchemas bounds the sinks open at once with SchemaFromDB;
	// an export naming more databases closes the one used least recently
	// (its rows are written first) when it needs a new one.
	DefaultMaxSchemas = 8
)

// ReasonTooLong is the rejected table's reason for a line over the
// MaxLineSize.
const ReasonTooLong = "too_long"

// ReasonReservedName is the reason for a line whose measurement has the
// rejected table's name (see sink.ReasonReservedName).
const ReasonReservedName = sink.ReasonReservedName

// Config configures an Importer.
type Config struct {
	// Sink configures the sinks. Sink.Schema is where lines go, except
	// with SchemaFromDB after a CONTEXT-DATABASE line.
	Sink      sink.Config
	Precision parse.Precision
	// Parsers is the number of goroutines parsing; 0 is GOMAXPROCS.
	Parsers int
	// ChunkSize is the usual size of a chunk in bytes; 0 is
	// DefaultChunkSize.
	ChunkSize int
	// MaxLineSize is the longest line in bytes; 0 is DefaultMaxLineSize.
	MaxLineSize int
	// SchemaFromDB writes the lines after "# CONTEXT-DATABASE: name" into
	// schema name, as the HTTP write path does with db=.
	SchemaFromDB bool
	// MaxSchemas bounds the sinks open at once; 0 is DefaultMaxSchemas.
	MaxSchemas int
	// DryRun parses everything and writes nothing: Result.Plans says what
	// writing would create.
	DryRun bool
}

// Importer imports inputs through sinks on one pool. Create it with New
// and call Run once; Progress may be called from any goroutine meanwhile.
type Importer struct {
	pool    *pgxpool.Pool
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *sink.Metrics

	started atomic.Int64 // Unix nanoseconds; 0 before Run
	total   atomic.Int64 // bytes of all inputs; -1 when unknown
	read    atomic.Int64 // raw bytes read
	lines   atomic.Int64 // lines parsed or rejected
	input   atomic.Pointer[string]

	mu          sync.Mutex
	dryRejected map[string]int64 // by reason, in a dry run (nothing reaches a sink)
}

// New returns an Importer writing through pool. The sinks count into a
// registry of the importer's own, read for progress and the result.
func New(pool *pgxpool.Pool, cfg Config, log *slog.Logger) *Importer {
	if cfg.Parsers <= 0 {
		cfg.Parsers = runtime.GOMAXPROCS(0)
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.MaxLineSize <= 0 {
		cfg.MaxLineSize = DefaultMaxLineSize
	}
	if cfg.MaxSchemas <= 0 {
		cfg.MaxSchemas = DefaultMaxSchemas
	}
	reg := prometheus.NewRegistry()
	im := &Importer{pool: pool, cfg: cfg, log: log, reg: reg, metrics: sink.NewMetrics(reg), dryRejected: make(map[string]int64)}
	im.total.Store(-1)
	return im
}

// Progress is a snapshot of an import under way.
type Progress struct {
	Input   string        // the input being read
	Read    int64         // raw bytes read (compressed, for gzip)
	Total   int64         // raw bytes of all inputs; -1 when unknown (standard input)
	Lines   int64         // lines parsed or rejected
	Rows    int64         // rows committed
	Elapsed time.Duration // since Run started
}

// Progress returns where the import is. Safe for concurrent use.
func (im *Importer) Progress() Progress {
	p := Progress{Read: im.read.Load(), Total: im.total.Load(), Lines: im.lines.Load(), Rows: int64(counterValue(im.metrics.RowsWritten))}
	if s := im.input.Load(); s != nil {
		p.Input = *s
	}
	if st := im.started.Load(); st != 0 {
		p.Elapsed = time.Since(time.Unix(0, st))
	}
	return p
}

// Result is what an import did.
type Result struct {
	Inputs int   // inputs read, whole or in part
	Bytes  int64 // raw bytes read
	// Lines counts lines of line protocol, parsed or rejected; comments,
	// blank lines and an export's DDL section are not lines.
	Lines    int64
	Rows     int64            // rows committed
	Rejected map[string]int64 // lines, rows and values rejected, by reason
	// Dropped counts rows lost for good, by reason (sink.DropPermanentError,
	// sink.DropAbandoned, and refused or table_mismatch when there is no
	// rejected table).
	Dropped        map[string]int64
	TablesCreated  int64
	ColumnsCreated int64
	Schemas        []string // written to (or planned), sorted
	Databases      []string // named by CONTEXT-DATABASE lines, in order of appearance
	DDLLines       int64    // lines of DDL sections skipped
	Elapsed        time.Duration
	Plans          []SchemaPlan // DryRun only
}

// SchemaPlan is what writing would do in one schema.
type SchemaPlan struct {
	Schema string
	Exists bool
	Tables []sink.PlannedTable
}

// Run imports inputs in order and returns when everything read has been
// written, or ctx ended (then what the sinks hold is abandoned), or rows
// could not be written for good. A file that cannot be read stops the
// import after what was read of it is written. The Result is filled in
// either way.
func (im *Importer) Run(ctx context.Context, inputs []Input) (Result, error) {
	start := time.Now()
	im.started.Store(start.UnixNano())
	total := int64(0)
	for _, in := range inputs {
		if in.Size < 0 {
			total = -1
			break
		}
		total += in.Size
	}
	im.total.Store(total)

	// stop ends when ctx does or rows are lost for good; the sinks then
	// abandon what they hold.
	stop, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watched := make(chan struct{})
	var watcher sync.WaitGroup
	if !im.cfg.DryRun {
		watcher.Go(func() { im.watchDrops(stop, cancel, watched) })
	}

	queue := make(chan work, 2*im.cfg.Parsers)
	var parsers sync.WaitGroup
	for range im.cfg.Parsers {
		parsers.Go(func() { im.parse(stop, queue) })
	}
	r := &reader{im: im, queue: queue, stop: stop, dests: make(map[string]*dest), schemas: make(map[string]bool)}
	var readErr error
	read := 0
	for _, in := range inputs {
		read++
		if readErr = r.read(in); readErr != nil {
			break
		}
	}
	close(queue)
	parsers.Wait()
	close(watched)
	watcher.Wait()
	closeErr := r.closeAll()

	res := im.result(r, read, start)
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("interrupted: %w", context.Cause(ctx))
	case stop.Err() != nil:
		return res, context.Cause(stop)
	case readErr != nil:
		return res, readErr
	case closeErr != nil:
		return res, closeErr
	case res.Dropped[sink.DropPermanentError] > 0:
		return res, errPermanent(res.Dropped[sink.DropPermanentError])
	}
	return res, nil
}

// result is what the import did, once the reader and the parsers are done
// and the sinks closed: inputs of them read (whole or in part), from
// start.
func (im *Importer) result(r *reader, inputs int, start time.Time) Result {
	res := Result{
		Inputs:         inputs,
		Bytes:          im.read.Load(),
		Lines:          im.lines.Load(),
		Rows:           int64(counterValue(im.metrics.RowsWritten)),
		Dropped:        vecValues(im.reg, "pginflux_sink_dropped_rows_total"),
		TablesCreated:  int64(counterValue(im.metrics.TablesCreated)),
		ColumnsCreated: int64(counterValue(im.metrics.ColumnsCreated)),
		Databases:      r.databases,
		DDLLines:       r.ddlLines,
		Plans:          r.plans,
	}
	if im.cfg.DryRun {
		im.mu.Lock()
		res.Rejected = im.dryRejected
		im.mu.Unlock()
	} else {
		res.Rejected = vecValues(im.reg, "pginflux_sink_rejected_total")
	}
	for s := range r.schemas {
		res.Schemas = append(res.Schemas, s)
	}
	slices.Sort(res.Schemas)
	res.Elapsed = time.Since(start)
	return res
}

// errPermanent is the error of an import that lost n rows for good.
func errPermanent(n int64) error {
	return fmt.Errorf("%s could not be written: PostgreSQL kept refusing with an error that retrying does not fix (see the log above)", plural(n, "row"))
}

// watchDrops ends the import as soon as rows are lost for good: the
// database is failing in a way no retry fixes, and going on would only
// lose more.
func (im *Importer) watchDrops(stop context.Context, cancel context.CancelCauseFunc, done <-chan struct{}) {
	permanent := im.metrics.RowsDropped.WithLabelValues(sink.DropPermanentError)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-stop.Done():
			return
		case <-t.C:
			if n := int64(counterValue(permanent)); n > 0 {
				cancel(errPermanent(n))
				return
			}
		}
	}
}

// counterValue reads a counter of the importer's own registry.
func counterValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// vecValues returns the non-zero values of a counter with one label, by
// the label's value.
func vecValues(reg prometheus.Gatherer, name string) map[string]int64 {
	out := make(map[string]int64)
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := int64(m.GetCounter().GetValue()); v > 0 && len(m.GetLabel()) > 0 {
				out[m.GetLabel()[0].GetValue()] += v
			}
		}
	}
	return out
}
