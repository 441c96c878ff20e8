// Package sink writes parsed points into PostgreSQL: one table per
// measurement in a schema, rows batched per table and written with binary
// COPY by a fixed number of writer goroutines.
//
// Producers (parsers) each own a Batcher, which encodes rows as they come
// and hands full or old batches to the writers; the rows between a
// Batcher and their commit are bounded (Config.MaxPendingRows). Tables,
// columns and partitions are made by package schema, as rows need them. A
// table with a point key holds one row per point (merge.go); the
// writer (write.go) merges a batch's lines of one point in memory and
// COPYs, falling back to INSERT ... ON CONFLICT for a batch that hits
// stored points. The failure policy (policy.go): rows PostgreSQL refuses
// for their own values are isolated into the rejected table; for any
// other error the rows are held (in the spool, package spool, when there is
// one) and retried until they can be written.
package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/plural"
	"github.com/pginflux/pginflux/sink/schema"
	"github.com/pginflux/pginflux/sink/spool"
)

// UseSpool makes the sink keep on disk, in dir, the batches PostgreSQL
// cannot take for now (a temporary error) or that the shutdown timeout
// would abandon, up to maxBytes, and replay them, each once, when it can:
// what is spooled already when it opens is replayed too. Call it once,
// right after New.
func (s *Sink) UseSpool(dir string, maxBytes int64) error {
	sp, err := spool.Open(dir, maxBytes, spool.Options{Write: s.cfg.Seams.SpoolWrite})
	if err != nil {
		return err
	}
	s.spool = sp
	s.metrics.SpoolBytes.Set(float64(sp.Bytes()))
	s.maintenance.Go(s.replay)
	if n := sp.Bytes(); n > 0 {
		s.log.Info("spool holds batches from before; replaying them", "spool", dir, "bytes", n)
	}
	return nil
}

// Sink writes batches of rows into PostgreSQL. Create it with New; it
// writes until Close. Its methods are safe for concurrent use; the Batchers
// it makes are not.
type Sink struct {
	pool         *pgxpool.Pool
	cfg          Config
	metrics      *Metrics
	log          *slog.Logger
	catalog      *schema.Catalog
	rejectedName string

	queue batchQueue
	wg    sync.WaitGroup
	limit *pendingLimit

	idle *idleBatches

	streaksMu sync.Mutex
	streaks   map[string]*upsertStreak // by table name

	spool           *spool.Spool // nil without --spool-dir
	maintenance     sync.WaitGroup
	maintenanceCtx  context.Context
	stopMaintenance context.CancelFunc

	// What SetLimits may change while running.
	batchSize     atomic.Int64
	flushInterval atomic.Int64 // nanoseconds

	// abandon ends every database call when the shutdown timeout passes.
	abandon       context.Context
	stopAbandon   context.CancelFunc
	abandonedRows atomic.Int64
	dropped       atomic.Int64 // rows lost for good, all reasons

	parking     parking     // batches of a table whose rows are held (see park.go)
	down        atomic.Bool // the database takes no rows (see held.go)
	blockedBy   atomic.Pointer[blockedReason]
	heldMu      sync.Mutex
	heldTables  map[string]error // measurement (or the rejected table) -> why its rows are held
	holding     atomic.Bool      // some rows are held: logged
	lastDownLog atomic.Int64     // unix nanoseconds
	downTemp    atomic.Bool      // the last logged reason was a temporary one
	rejectLog   logLimiter
	spoolLog    logLimiter
	mismatched  sync.Map // measurement -> struct{}: logged once
	// subresolutionLogs: table -> *subresolutionLog (see subresolution.go).
	subresolutionLogs sync.Map
}

// New starts cfg.Writers writers on pool.
func New(pool *pgxpool.Pool, cfg Config, m *Metrics, log *slog.Logger) *Sink {
	cfg.Writers = max(cfg.Writers, 1)
	cfg.BatchSize = max(cfg.BatchSize, 1)
	if cfg.Storage == "" {
		cfg.Storage = StorageColumns
	}
	if cfg.UintType == "" {
		cfg.UintType = "numeric"
	}
	if cfg.WriteMode == "" {
		cfg.WriteMode = WriteMerge
	}
	if cfg.MaxColumns <= 1 || cfg.MaxColumns > schema.MaxAttributes-1 {
		cfg.MaxColumns = DefaultMaxColumns
	}
	if cfg.MaxPendingRows <= 0 {
		cfg.MaxPendingRows = DefaultMaxPendingRows
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sink{
		pool:         pool,
		cfg:          cfg,
		metrics:      m,
		log:          log,
		catalog:      schema.New(cfg.catalogConfig(), m.Metrics, log),
		rejectedName: cfg.RejectedTable,
		limit:        newPendingLimit(int64(cfg.MaxPendingRows)),
		streaks:      make(map[string]*upsertStreak),
		idle:         newIdleBatches(cfg.Memory),

		abandon:     ctx,
		stopAbandon: cancel,
		rejectLog:   logLimiter{every: 10 * time.Second},
		spoolLog:    logLimiter{every: 10 * time.Second},
	}
	s.queue.cond = sync.NewCond(&s.queue.mu)
	s.maintenanceCtx, s.stopMaintenance = context.WithCancel(ctx)
	s.batchSize.Store(int64(cfg.BatchSize))
	s.flushInterval.Store(int64(cfg.FlushInterval))
	context.AfterFunc(ctx, s.limit.wakeAll)
	if mem := cfg.Memory.Budget(); mem != nil {
		s.limit.mem = mem
		mem.OnFree(s.limit.wakeAll)
	}
	for range cfg.Writers {
		s.wg.Go(s.writer)
	}
	if s.catalog.Partitions() != nil {
		s.maintenance.Go(s.maintain)
	}
	return s
}

// Close waits until every batch handed over has been written. When ctx ends
// first, the sink abandons what is still pending (see Abandon) and the
// error says how many rows that was. Every Batcher must have been flushed,
// and none may be used after Close.
func (s *Sink) Close(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.Abandon)
	defer stop()
	s.stopMaintenance()
	s.maintenance.Wait()
	s.unparkAll()
	s.queue.close()
	s.wg.Wait()
	s.stopAbandon()
	if n := s.Abandoned(); n > 0 {
		return fmt.Errorf("shutdown timeout passed: %s not written", plural.Of(n, "row was", "rows were"))
	}
	return nil
}

// SetLimits changes, while the sink runs, the batch size, the flush
// interval and the limit of pending rows (a value of 0 keeps the current
// one), as a reload of the configuration (SIGHUP) does. Batches already
// open follow the new values from their next row or flush check.
func (s *Sink) SetLimits(batchSize int, flushInterval time.Duration, maxPendingRows int) {
	if batchSize > 0 {
		s.batchSize.Store(int64(batchSize))
	}
	if flushInterval > 0 {
		s.flushInterval.Store(int64(flushInterval))
	}
	if maxPendingRows > 0 {
		s.limit.setMax(int64(maxPendingRows))
	}
}

// Abandon makes the writers give up: the COPY under way is cancelled, and
// that batch and every one handed over later is dropped and counted as
// abandoned instead of written. Producers waiting at the pending limit
// go on. Call it when the shutdown timeout passes.
func (s *Sink) Abandon() { s.stopAbandon() }

// Dropped returns how many rows were lost for good so far, for any reason
// (abandoned ones included).
func (s *Sink) Dropped() int64 { return s.dropped.Load() }

// FlushCheckEvery is how often a producer should call FlushDue: often
// enough for the flush interval, even after a reload shortened it.
func (s *Sink) FlushCheckEvery() time.Duration {
	return min(max(time.Duration(s.flushInterval.Load())/4, time.Millisecond), time.Second)
}

// Abandoned returns how many rows were dropped because of Abandon.
func (s *Sink) Abandoned() int64 { return s.abandonedRows.Load() }

func (s *Sink) submit(b *batch) {
	s.queue.push(b)
}

// writerState is what one writer reuses from batch to batch.
type writerState struct {
	prep prepared
	enc  encoded
	pts  pointPlan
	dl   []byte
	// replayFailed says a replayed batch could not be written now: its
	// segment stays, to be replayed later.
	replayFailed bool
}

// newWriterState returns what a writer (or the replayer) reuses.
func (s *Sink) newWriterState() *writerState {
	w := new(writerState)
	w.enc.noFastRow = s.cfg.Seams.NoFastRow
	return w
}

func (s *Sink) writer() {
	w := s.newWriterState()
	for {
		b, ok := s.queue.pop()
		if !ok {
			return
		}
		start := time.Now()
		b.parkable = true
		if s.writeRange(w, b, 0, b.rows(), false) {
			continue // parked: back in the queue later
		}
		s.metrics.BatchDuration.Observe(time.Since(start).Seconds())
		s.idle.put(b)
	}
}

// copyRows sends one binary COPY of n encoded rows. PostgreSQL may report
// fewer: a BEFORE trigger that returns NULL takes a row out (to put it
// elsewhere, as trigger-routed partitioning does). That is the table's
// own doing, not a failure: retrying would write the others again.
func copyRows(ctx context.Context, pc *pgconn.PgConn, copySQL string, rows []byte, n int) error {
	r := io.MultiReader(bytes.NewReader(copyHeader), bytes.NewReader(rows), bytes.NewReader(copyTrailer))
	tag, err := pc.CopyFrom(ctx, r, copySQL)
	if err != nil {
		return err
	}
	if got := tag.RowsAffected(); got > int64(n) {
		return fmt.Errorf("COPY took %d rows of %d", got, n)
	}
	return nil
}

// logLimiter lets one log line through per period. Safe for concurrent use.
type logLimiter struct {
	every time.Duration
	last  atomic.Int64
}

func (l *logLimiter) allow() bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	return now-last >= int64(l.every) && l.last.CompareAndSwap(last, now)
}
