package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The ways Ceiling writes rows.
const (
	MethodPgx    = "pgx CopyFrom"         // rows as [][]any, encoded by pgx
	MethodBinary = "binary COPY, encoded" // rows pre-encoded in COPY's binary format, sent with pgconn
	// Binary COPY into tables with pginflux's point key (a series_id
	// column and PRIMARY KEY (time, series_id)), as merge mode writes:
	// the rows in the order they were sent, or each COPY's sorted by key.
	MethodKeyArrival = "binary COPY, point key, rows as sent"
	MethodKeySorted  = "binary COPY, point key, rows sorted by key"
)

// ceilingMethods are the ways Ceiling writes each storage, in order.
var ceilingMethods = []string{MethodPgx, MethodBinary, MethodKeyArrival, MethodKeySorted}

// keyed reports whether method writes into tables with the point key.
func keyed(method string) bool { return method == MethodKeyArrival || method == MethodKeySorted }

// MaxCeilingRows bounds the rows Ceiling builds in memory before writing
// them (a few hundred bytes each).
const MaxCeilingRows = 10_000_000

// scratchComment marks a schema as Ceiling's own, so that it never drops
// a schema it did not make.
const scratchComment = "pginflux bench --ceiling scratch schema; dropped when the run ends"

// CeilingConfig configures Ceiling.
type CeilingConfig struct {
	Database *pgx.ConnConfig
	// Schema is created for the run and dropped with everything in it
	// afterwards. A schema of that name that Ceiling did not make is an
	// error, never dropped.
	Schema    string
	Workload  *Workload
	Rows      int64
	Storages  []string // StorageJSONB, StorageColumns
	Writers   int      // connections writing in parallel
	BatchSize int      // rows per COPY
	Duration  time.Duration
	Progress  io.Writer // nil for none
}

// CeilingResult is the rate of every way of writing the rows.
type CeilingResult struct {
	Schema    string           `json:"schema"`
	Rows      int64            `json:"rows"`
	Writers   int              `json:"writers"`
	BatchSize int              `json:"batch_size"`
	Variants  []CeilingVariant `json:"variants"`
	// Server is the server's durability settings, nil when unknown.
	Server *ServerUsage `json:"server,omitempty"`
}

// CeilingVariant is one storage layout written one way.
type CeilingVariant struct {
	Storage string `json:"storage"`
	Method  string `json:"method"`
	// PointKey: the tables have pginflux's point key, as merge mode
	// makes them; the rate to compare merge mode with.
	PointKey bool    `json:"point_key"`
	Rows     int64   `json:"rows"`
	Bytes    int64   `json:"bytes,omitempty"` // of COPY data, for the binary method
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"rows_per_second"`
	// Complete is false when Duration ran out before every row was
	// written; the rate is still that of the rows written.
	Complete bool `json:"complete"`
	// ServerCPUPerRow is the CPU time of all the server's processes
	// while the rows were written, per row, in µs; 0 when its processes
	// cannot be seen.
	ServerCPUPerRow float64 `json:"server_cpu_us_per_row,omitempty"`
}

// Best returns the fastest variant of storage into tables with the point
// key (pointKey) or without, or nil.
func (c *CeilingResult) Best(storage string, pointKey bool) *CeilingVariant {
	var best *CeilingVariant
	for i := range c.Variants {
		v := &c.Variants[i]
		if v.Storage == storage && v.PointKey == pointKey && (best == nil || v.Rate > best.Rate) {
			best = v
		}
	}
	return best
}

// Ceiling writes cfg.Rows rows of cfg.Workload, the same rows the sender
// sends as lines, straight from memory into PostgreSQL with COPY: for
// every storage layout, through pgx's CopyFrom and as hand-encoded binary
// COPY into tables without a key (append mode's), and as binary COPY into
// tables with the point key (merge mode's), the rows as sent and sorted
// by the key. Building the rows is not timed; each variant starts on
// empty tables and is bounded by cfg.Duration. No ingester that writes
// into the same server and tables can beat the fastest rate.
func Ceiling(ctx context.Context, cfg CeilingConfig) (*CeilingResult, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	dbcfg := cfg.Database.Copy()
	if _, ok := dbcfg.RuntimeParams["application_name"]; !ok {
		dbcfg.RuntimeParams["application_name"] = "pginflux-bench-ceiling"
	}
	admin, err := pgx.ConnectConfig(ctx, dbcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	schema := pgx.Identifier{cfg.Schema}.Sanitize()
	if err := createScratch(ctx, admin, cfg.Schema); err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			progress(cfg.Progress, "could not drop scratch schema %s: %v", cfg.Schema, err)
		}
	}()

	conns := make([]*pgx.Conn, cfg.Writers)
	for i := range conns {
		if conns[i], err = pgx.ConnectConfig(ctx, dbcfg); err != nil {
			return nil, fmt.Errorf("connect writer %d: %w", i+1, err)
		}
		defer conns[i].Close(context.WithoutCancel(ctx))
	}

	res := &CeilingResult{Schema: cfg.Schema, Rows: cfg.Rows, Writers: cfg.Writers, BatchSize: cfg.BatchSize}
	if info, err := InspectServer(ctx, cfg.Database); err == nil {
		res.Server = &ServerUsage{ServerInfo: *info, Durable: info.Durable()}
	} else {
		progress(cfg.Progress, "ceiling: cannot read the server's settings: %v", err)
	}
	r := &ceilingRun{cfg: cfg, admin: admin, conns: conns, server: res.Server, base: time.Now()}
	for _, storage := range cfg.Storages {
		tables, err := r.createTables(ctx, storage, false)
		if err != nil {
			return nil, err
		}
		keyTables, err := r.createTables(ctx, storage, true)
		if err != nil {
			return nil, err
		}
		for _, method := range ceilingMethods {
			into := tables
			if keyed(method) {
				into = keyTables
			}
			v, err := r.variant(ctx, storage, method, into)
			if err != nil {
				return nil, err
			}
			res.Variants = append(res.Variants, v)
			progress(cfg.Progress, "ceiling: %s, %s: %d rows in %.2fs = %.0f rows/s", storage, method, v.Rows, v.Seconds, v.Rate)
		}
	}
	return res, nil
}

// check tells what is missing or too large in cfg.
func (cfg *CeilingConfig) check() error {
	if cfg.Rows < 1 || cfg.Writers < 1 || cfg.BatchSize < 1 || cfg.Duration <= 0 || len(cfg.Storages) == 0 {
		return fmt.Errorf("ceiling: need rows (%d), writers (%d), batch size (%d), duration (%v) and storages (%v)",
			cfg.Rows, cfg.Writers, cfg.BatchSize, cfg.Duration, cfg.Storages)
	}
	if cfg.Rows > MaxCeilingRows {
		return fmt.Errorf("ceiling: %d rows are more than the %d that may be built in memory", cfg.Rows, MaxCeilingRows)
	}
	for _, s := range cfg.Storages {
		if !slices.Contains(Storages, s) {
			return fmt.Errorf("unknown storage %q; storages: %s", s, strings.Join(Storages, ", "))
		}
	}
	return nil
}

// ceilingRun is one run of Ceiling, once connected and the scratch schema
// made.
type ceilingRun struct {
	cfg    CeilingConfig
	admin  *pgx.Conn   // for DDL
	conns  []*pgx.Conn // the writers
	server *ServerUsage
	base   time.Time // of the rows' timestamps

	noCheckpoint bool // CHECKPOINT was refused (it needs pg_checkpoint)
}

// createTables creates the tables of every measurement in storage, with
// the point key or without, and returns their quoted names.
func (r *ceilingRun) createTables(ctx context.Context, storage string, pointKey bool) ([]string, error) {
	ms := r.cfg.Workload.Measurements
	tables := make([]string, len(ms))
	for i, m := range ms {
		tables[i] = pgx.Identifier{r.cfg.Schema, tableOf(m, storage, pointKey)}.Sanitize()
		names, types := columnsOf(m, storage, pointKey)
		cols := make([]string, len(names))
		for j := range names {
			cols[j] = pgx.Identifier{names[j]}.Sanitize() + " " + types[j]
		}
		if pointKey {
			cols = append(cols, "PRIMARY KEY (time, series_id)")
		}
		if _, err := r.admin.Exec(ctx, "CREATE TABLE "+tables[i]+" ("+strings.Join(cols, ", ")+")"); err != nil {
			return nil, fmt.Errorf("create table %s: %w", tables[i], err)
		}
	}
	return tables, nil
}

// variant writes the rows into tables, emptied first, in storage by
// method, and measures it.
func (r *ceilingRun) variant(ctx context.Context, storage, method string, tables []string) (CeilingVariant, error) {
	cfg := r.cfg
	for _, t := range tables {
		if _, err := r.admin.Exec(ctx, "TRUNCATE "+t); err != nil {
			return CeilingVariant{}, fmt.Errorf("truncate %s: %w", t, err)
		}
	}
	progress(cfg.Progress, "ceiling: building %d %s rows for %s", cfg.Rows, storage, method)
	batches, size := buildBatches(cfg, storage, method, r.base)
	// Every variant starts just after a checkpoint, so that none pays for
	// the one an earlier variant's WAL brought on, and each writes the
	// same full-page images (the first change of a page after one).
	if _, err := r.admin.Exec(ctx, "CHECKPOINT"); err != nil && !r.noCheckpoint {
		r.noCheckpoint = true
		progress(cfg.Progress, "ceiling: cannot run CHECKPOINT (%v): the variants may pay for each other's checkpoints", err)
	}
	progress(cfg.Progress, "ceiling: writing them with %d connections", cfg.Writers)
	cpu0, ok0 := r.serverCPU()
	v, err := writeBatches(ctx, r.conns, batches, cfg.Duration)
	if err != nil {
		return CeilingVariant{}, fmt.Errorf("ceiling %s, %s: %w", storage, method, err)
	}
	if cpu1, ok1 := r.serverCPU(); ok0 && ok1 && v.Rows > 0 {
		v.ServerCPUPerRow = 1e6 * (cpu1 - cpu0) / float64(v.Rows)
	}
	v.Storage, v.Method, v.PointKey = storage, method, keyed(method)
	if method == MethodBinary {
		v.Bytes = size
	}
	v.Complete = v.Rows == cfg.Rows
	return v, nil
}

// serverCPU returns the CPU seconds of the server's processes so far, and
// false when they cannot be read.
func (r *ceilingRun) serverCPU() (float64, bool) {
	if r.server == nil || r.server.PID == 0 {
		return 0, false
	}
	c, err := ReadServerCPU(r.server.PID)
	return c, err == nil
}

// createScratch creates the scratch schema, first dropping one left by an
// earlier, interrupted run (recognised by its comment).
func createScratch(ctx context.Context, conn *pgx.Conn, name string) error {
	ident := pgx.Identifier{name}.Sanitize()
	var comment *string
	err := conn.QueryRow(ctx, "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1", name).Scan(&comment)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return fmt.Errorf("look for schema %s: %w", name, err)
	case comment == nil || *comment != scratchComment:
		return fmt.Errorf("schema %s exists and was not made by pginflux bench; choose another --schema (the ceiling uses <schema>_ceiling)", name)
	default:
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+ident+" CASCADE"); err != nil {
			return fmt.Errorf("drop leftover schema %s: %w", name, err)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
		return fmt.Errorf("create schema %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "COMMENT ON SCHEMA "+ident+" IS '"+scratchComment+"'"); err != nil {
		return fmt.Errorf("comment on schema %s: %w", name, err)
	}
	return nil
}

// writeBatches writes batches over conns in parallel, starting no batch
// once limit has passed, and returns the rows written and the time taken.
func writeBatches(ctx context.Context, conns []*pgx.Conn, batches []*ceilingBatch, limit time.Duration) (CeilingVariant, error) {
	queue := make(chan *ceilingBatch, len(batches))
	for _, b := range batches {
		queue <- b
	}
	close(queue)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var rows atomic.Int64
	var errOnce sync.Once
	var firstErr error
	start := time.Now()
	deadline := start.Add(limit)
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Go(func() {
			for b := range queue {
				if ctx.Err() != nil || time.Now().After(deadline) {
					return
				}
				var err error
				if b.data != nil {
					_, err = conn.PgConn().CopyFrom(ctx, bytes.NewReader(b.data), b.sql)
				} else {
					_, err = conn.CopyFrom(ctx, b.table, b.columns, pgx.CopyFromRows(b.rows))
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("copy into %s: %w", b.table.Sanitize(), err) })
					cancel()
					return
				}
				rows.Add(b.n)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return CeilingVariant{}, firstErr
	}
	secs := time.Since(start).Seconds()
	return CeilingVariant{Rows: rows.Load(), Seconds: secs, Rate: float64(rows.Load()) / secs}, nil
}
