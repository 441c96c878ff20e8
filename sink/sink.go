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
// other error the rows are held (in the spool, spool*.go, when there is
// one) and retried until they can be written.
package sink

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/plural"
	"github.com/pginflux/pginflux/sink/schema"
)

// Storage modes: how tags and fields are laid out in a table.
const (
	StorageJSONB   = "jsonb"   // time, tags jsonb, fields jsonb
	StorageColumns = "columns" // time, one column per tag and field
)

// Config configures a Sink.
type Config struct {
	Schema        string
	Storage       string        // StorageJSONB or StorageColumns
	BatchSize     int           // rows per COPY at most
	FlushInterval time.Duration // longest a row waits in an open batch
	Writers       int           // connections writing in parallel
	// UintType is the type of new columns for unsigned fields: "numeric"
	// (exact) or "bigint" (values above 2^63-1 are conflicts).
	UintType string
	// MaxColumns bounds the columns of a table (dropped ones included, as
	// PostgreSQL counts them); keys beyond go to its overflow column.
	MaxColumns int
	// RejectedTable is the table in Schema for lines, rows and values that
	// could not be stored; "" counts them and keeps nothing.
	RejectedTable string
	// MaxPendingRows bounds the rows taken in and not yet committed,
	// rejected or dropped; producers wait while it is reached.
	MaxPendingRows int
	// CreateTableSQL, when not nil, runs after pginflux creates a table, in
	// the same transaction (see schema.ParseTemplate).
	CreateTableSQL *template.Template
	// PartitionBy makes new tables partitioned by range of time: "day",
	// "week", "month", or "" for plain tables.
	PartitionBy string
	// Retention drops pginflux's partitions wholly older than this; 0
	// keeps them.
	Retention time.Duration
	// WriteMode is how the tables pginflux creates are keyed: WriteMerge
	// (the default; one row per point) or WriteAppend.
	WriteMode string
	// Seams lets a test reach inside one sink; zero in production.
	Seams Seams
}

// Seams are hooks for tests, set per Sink through Config.Seams: tests that
// set them can run in parallel. Every field is nil (or false) in
// production.
type Seams struct {
	// SeriesHash replaces the hash that proposes a tag set's series id,
	// to force collisions.
	SeriesHash func(tagsJSON []byte) int64
	// NoFastRow makes every row of columns storage take the general
	// encoding path, to compare fastRow with it.
	NoFastRow bool
	// CommitLost is asked after each attempt that committed; true makes
	// the attempt fail as if the connection broke before the commit was
	// confirmed.
	CommitLost func() bool
	// SpoolWrite writes a record's bytes to a spool segment in place of
	// f.Write, to fail as a full disk would.
	SpoolWrite func(f *os.File, p []byte) (int, error)
	// Replayed is called after each replayed spool record; true stops the
	// replay there, as a crash would.
	Replayed func(segment, item int64) bool
}

// catalogConfig is what the schema layer needs of c.
func (c Config) catalogConfig() schema.Config {
	return schema.Config{
		Schema:         c.Schema,
		MaxColumns:     c.MaxColumns,
		UintType:       c.UintType,
		RejectedTable:  c.RejectedTable,
		CreateTableSQL: c.CreateTableSQL,
		PartitionBy:    c.PartitionBy,
		Merge:          c.WriteMode != WriteAppend,
		SeriesHash:     c.Seams.SeriesHash,
	}
}

// Validate reports settings of c that cannot work together, in words a
// user can act on; nil when there are none (see schema.Validate). A sink
// made with such a Config creates no table.
func (c Config) Validate() error { return schema.Validate(c.PartitionBy, c.CreateTableSQL) }

// UseSpool makes the sink keep on disk, in dir, the batches PostgreSQL
// cannot take for now (a temporary error) or that the shutdown timeout
// would abandon, up to maxBytes, and replay them, each once, when it can:
// what is spooled already when it opens is replayed too. Call it once,
// right after New.
func (s *Sink) UseSpool(dir string, maxBytes int64) error {
	sp, err := openSpool(dir, maxBytes)
	if err != nil {
		return err
	}
	sp.write = s.cfg.Seams.SpoolWrite
	s.spool = sp
	s.metrics.SpoolBytes.Set(float64(sp.size))
	s.maintenance.Go(s.replay)
	if sp.size > 0 {
		s.log.Info("spool holds batches from before; replaying them", "spool", dir, "bytes", sp.size)
		sp.wake <- struct{}{}
	}
	return nil
}

// DefaultMaxPendingRows is the default of Config.MaxPendingRows: about
// 50 MiB of Telegraf cpu lines.
const DefaultMaxPendingRows = 200_000

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

	spool           *spool // nil without --spool-dir
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
		idle:         newIdleBatches(),

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
	for range cfg.Writers {
		s.wg.Go(s.writer)
	}
	if s.catalog.Partitions() != nil {
		s.maintenance.Go(s.maintain)
	}
	return s
}

// maintainEvery is how often partitions are made ahead and old ones
// dropped; the first round comes maintainFirst after the start (rows make
// the partitions they need themselves meanwhile).
const (
	maintainEvery = 10 * time.Minute
	maintainFirst = time.Minute
)

// maintain runs partition upkeep until the sink closes.
func (s *Sink) maintain() {
	wait := time.NewTimer(maintainFirst)
	defer wait.Stop()
	for {
		select {
		case <-wait.C:
		case <-s.maintenanceCtx.Done():
			return
		}
		s.maintainOnce(time.Now())
		wait.Reset(maintainEvery)
	}
}

// maintainOnce makes partitions ahead and drops the expired ones, logging
// what it did; errors are logged and retried at the next round.
func (s *Sink) maintainOnce(now time.Time) {
	ctx, cancel := context.WithTimeout(s.maintenanceCtx, time.Minute)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		s.log.Debug("partition upkeep: no connection", "err", err)
		return
	}
	defer conn.Release()
	if err := s.catalog.Ready(ctx, conn.Conn()); err != nil {
		s.log.Debug("partition upkeep: schema not ready", "err", err)
		return
	}
	parts := s.catalog.Partitions()
	if err := parts.LoadPartitioned(ctx, conn.Conn()); err != nil {
		s.log.Warn("partition upkeep failed", "err", err)
		return
	}
	dropped, err := parts.Maintain(ctx, conn.Conn(), now, s.cfg.Retention)
	for _, d := range dropped {
		s.log.Info("partition dropped by retention", "schema", s.cfg.Schema, "partition", d, "retention", s.cfg.Retention)
	}
	if err != nil {
		s.log.Warn("partition upkeep failed", "err", err)
	}
}

// DefaultMaxColumns is the default of Config.MaxColumns: well below
// PostgreSQL's 1600, which dropped columns count toward too.
const DefaultMaxColumns = 1000

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
	enc encoded
	pts pointPlan
	dl  []byte
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

// drop gives up rows lo..hi-1 of b for good.
func (s *Sink) drop(b *batch, lo, hi int, reason string) {
	n := hi - lo
	s.dropped.Add(int64(n))
	s.metrics.RowsDropped.WithLabelValues(reason).Add(float64(n))
	s.settled(n)
	b.settleRows(lo, hi, false, reason)
}

// settled counts n rows as committed, rejected or dropped: no longer
// pending.
func (s *Sink) settled(n int) {
	s.metrics.PendingRows.Sub(float64(n))
	s.limit.done(n)
}

func (s *Sink) abandonRows(b *batch, lo, hi int) {
	if b.mark != nil {
		// Still in the spool, to be replayed at the next start.
		s.settled(hi - lo)
		return
	}
	s.drop(b, lo, hi, DropAbandoned)
	s.abandonedRows.Add(int64(hi - lo))
}

// spoolRows moves rows lo..hi-1 of b to the spool, when there is one with
// room and b does not come from it; they count as settled (a request's
// ticket too: they are safe on disk) and are replayed later.
func (s *Sink) spoolRows(b *batch, lo, hi int) bool {
	if s.spool == nil || b.mark != nil {
		return false
	}
	ok, err := s.spool.append(b, lo, hi)
	if err != nil {
		if s.spoolLog.allow() {
			s.log.Error("cannot write to the spool; holding rows in memory (logged at most every 10s, counted in pginflux_sink_spool_append_errors_total)", "err", err)
		}
		return false
	}
	if !ok {
		if s.rejectLog.allow() {
			s.log.Warn("the spool is full; holding rows in memory instead", "bytes", s.spool.bytes())
		}
		return false
	}
	n := hi - lo
	s.settled(n)
	b.settleRows(lo, hi, false, "")
	s.metrics.SpooledRows.Add(float64(n))
	s.metrics.SpoolBytes.Set(float64(s.spool.bytes()))
	return true
}

// refuse moves row r of b, which its table would not take, to the rejected
// table (or counts it as dropped when there is none, or when b holds rows
// of the rejected table itself).
func (s *Sink) refuse(w *writerState, b *batch, r int, reason string, cause error) {
	if s.rejectLog.allow() {
		s.log.Warn("a row could not be stored in its table; it goes to the rejected table (further ones are logged at most every 10s, all are counted in pginflux_sink_rejected_total)",
			"measurement", b.measurement, "reason", reason, "err", cause)
	} else {
		s.log.Debug("a row could not be stored in its table", "measurement", b.measurement, "reason", reason, "err", cause)
	}
	if b.rejected || s.rejectedName == "" {
		s.drop(b, r, r+1, reason)
		return
	}
	d := deadLetter{origin: b.origin(r), measurement: b.measurement, reason: reason, detail: cause.Error()}
	if s.cfg.Storage == StorageColumns {
		var lw lineWriter
		start := 0
		if r > 0 {
			start = b.ends[r-1]
		}
		ts, vals := decodeTypedRow(b.buf[start:b.ends[r]], nil)
		d.line = rowLine(&lw, b, vals, ts, -1)
	} else {
		d.line = jsonbRowLine(b.measurement, b.rowBytes(r, r+1))
	}
	rb := s.idle.get()
	rb.rejected = true
	if m := b.mark; m != nil {
		// Replayed: the row's marker goes with its rejected row, so that
		// a replay after a crash does not reject it twice.
		rb.mark = &spoolMark{spool: m.spool, segment: m.segment, item: m.item, base: m.base + r}
	}
	rb.buf = appendDeadLetter(rb.buf, &d)
	rb.ends = append(rb.ends, len(rb.buf))
	rb.addOrigin(d.origin)
	rb.addTicket(b.ticket(r), true)
	// The row stays pending as the rejected table's row.
	s.writeRange(w, rb, 0, 1, true)
	s.metrics.Rejected.WithLabelValues(reason).Inc()
	s.idle.put(rb)
}

// ensurePartitions makes the partitions rows lo..hi-1 of b need.
func (s *Sink) ensurePartitions(ctx context.Context, conn *pgx.Conn, b *batch, lo, hi int, table string) error {
	p := s.catalog.Partitions()
	if p == nil {
		return nil
	}
	return p.Ensure(ctx, conn, table, rowPeriods(p, b, lo, hi, s.cfg.Storage == StorageColumns))
}

// rowPeriods returns the distinct period starts (see schema.Partitions)
// of rows lo..hi-1 of b.
func rowPeriods(p *schema.Partitions, b *batch, lo, hi int, columns bool) []time.Time {
	seen := map[int64]bool{}
	var out []time.Time
	for r := lo; r < hi; r++ {
		start := 0
		if r > 0 {
			start = b.ends[r-1]
		}
		var t time.Time
		if columns {
			t = time.Unix(0, int64(binary.BigEndian.Uint64(b.buf[start:])))
		} else {
			// int16 count | int32 8 | int64 microseconds since 2000
			micros := int64(binary.BigEndian.Uint64(b.buf[start+6:])) + pgEpochMicros
			t = time.UnixMicro(micros)
		}
		s := p.Start(t)
		if !seen[s.Unix()] {
			seen[s.Unix()] = true
			out = append(out, s)
		}
	}
	return out
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
