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
)

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
	Storage string  `json:"storage"`
	Method  string  `json:"method"`
	Rows    int64   `json:"rows"`
	Bytes   int64   `json:"bytes,omitempty"` // of COPY data, for the binary method
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rows_per_second"`
	// Complete is false when Duration ran out before every row was
	// written; the rate is still that of the rows written.
	Complete bool `json:"complete"`
	// ServerCPUPerRow is the CPU time of all the server's processes
	// while the rows were written, per row, in µs; 0 when its processes
	// cannot be seen.
	ServerCPUPerRow float64 `json:"server_cpu_us_per_row,omitempty"`
}

// Best returns the fastest variant of storage, or nil.
func (c *CeilingResult) Best(storage string) *CeilingVariant {
	var best *CeilingVariant
	for i := range c.Variants {
		v := &c.Variants[i]
		if v.Storage == storage && (best == nil || v.Rate > best.Rate) {
			best = v
		}
	}
	return best
}

// Ceiling writes cfg.Rows rows of cfg.Workload, the same rows the sender
// sends as lines, straight from memory into PostgreSQL with COPY: for
// every storage layout, once through pgx's CopyFrom and once as
// hand-encoded binary COPY. Building the rows is not timed; each
// variant starts on empty tables and is bounded by cfg.Duration. No
// ingester that writes into the same server can beat the faster rate.
func Ceiling(ctx context.Context, cfg CeilingConfig) (*CeilingResult, error) {
	if cfg.Rows < 1 || cfg.Writers < 1 || cfg.BatchSize < 1 || cfg.Duration <= 0 || len(cfg.Storages) == 0 {
		return nil, fmt.Errorf("ceiling: need rows (%d), writers (%d), batch size (%d), duration (%v) and storages (%v)",
			cfg.Rows, cfg.Writers, cfg.BatchSize, cfg.Duration, cfg.Storages)
	}
	if cfg.Rows > MaxCeilingRows {
		return nil, fmt.Errorf("ceiling: %d rows are more than the %d that may be built in memory", cfg.Rows, MaxCeilingRows)
	}
	for _, s := range cfg.Storages {
		if !slices.Contains(Storages, s) {
			return nil, fmt.Errorf("unknown storage %q; storages: %s", s, strings.Join(Storages, ", "))
		}
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
	serverCPU := func() (float64, bool) {
		if res.Server == nil || res.Server.PID == 0 {
			return 0, false
		}
		c, err := ReadServerCPU(res.Server.PID)
		return c, err == nil
	}
	base := time.Now()
	for _, storage := range cfg.Storages {
		tables := make([]string, len(cfg.Workload.Measurements))
		for i, m := range cfg.Workload.Measurements {
			tables[i] = pgx.Identifier{cfg.Schema, m.Name + "_" + storage}.Sanitize()
			names, types := columnsOf(m, storage)
			cols := make([]string, len(names))
			for j := range names {
				cols[j] = pgx.Identifier{names[j]}.Sanitize() + " " + types[j]
			}
			if _, err := admin.Exec(ctx, "CREATE TABLE "+tables[i]+" ("+strings.Join(cols, ", ")+")"); err != nil {
				return nil, fmt.Errorf("create table %s: %w", tables[i], err)
			}
		}
		for _, method := range []string{MethodPgx, MethodBinary} {
			for _, t := range tables {
				if _, err := admin.Exec(ctx, "TRUNCATE "+t); err != nil {
					return nil, fmt.Errorf("truncate %s: %w", t, err)
				}
			}
			progress(cfg.Progress, "ceiling: building %d %s rows for %s", cfg.Rows, storage, method)
			batches, size := buildBatches(cfg, storage, method, base)
			progress(cfg.Progress, "ceiling: writing them with %d connections", cfg.Writers)
			cpu0, ok0 := serverCPU()
			v, err := writeBatches(ctx, conns, batches, cfg.Duration)
			if err != nil {
				return nil, fmt.Errorf("ceiling %s, %s: %w", storage, method, err)
			}
			if cpu1, ok1 := serverCPU(); ok0 && ok1 && v.Rows > 0 {
				v.ServerCPUPerRow = 1e6 * (cpu1 - cpu0) / float64(v.Rows)
			}
			v.Storage, v.Method = storage, method
			if method == MethodBinary {
				v.Bytes = size
			}
			v.Complete = v.Rows == cfg.Rows
			res.Variants = append(res.Variants, v)
			progress(cfg.Progress, "ceiling: %s, %s: %d rows in %.2fs = %.0f rows/s", storage, method, v.Rows, v.Seconds, v.Rate)
		}
	}
	return res, nil
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

// ceilingBatch is one COPY: rows for pgx, or a whole binary COPY stream.
type ceilingBatch struct {
	table   pgx.Identifier
	columns []string
	rows    [][]any
	data    []byte
	n       int64
	sql     string // for data
}

// buildBatches makes cfg.Rows rows, grouped by table into batches of at
// most cfg.BatchSize, and returns them with the bytes of binary data.
func buildBatches(cfg CeilingConfig, storage, method string, base time.Time) ([]*ceilingBatch, int64) {
	w := cfg.Workload
	g := NewGenerator(w, base, 0, 1)
	// Per-series values built once: tags JSON, or the tag values boxed.
	tagJSON := make([][]byte, len(w.Series))
	tagAny := make([][]any, len(w.Series))
	for i := range w.Series {
		s := &w.Series[i]
		tagJSON[i] = seriesJSON(s)
		if storage == StorageJSONB {
			tagAny[i] = []any{string(tagJSON[i])}
		} else {
			for _, v := range s.TagValues {
				tagAny[i] = append(tagAny[i], v)
			}
		}
	}
	open := make(map[*Measurement]*ceilingBatch)
	var batches []*ceilingBatch
	var size int64
	finish := func(b *ceilingBatch) {
		if b.data != nil {
			b.data = append(b.data, copyTrailer...)
			size += int64(len(b.data))
		}
		batches = append(batches, b)
	}
	var row Row
	for seq := range uint64(cfg.Rows) {
		g.Row(seq, &row)
		m := row.Series.Measurement
		b := open[m]
		if b == nil {
			names, _ := columnsOf(m, storage)
			b = &ceilingBatch{table: pgx.Identifier{cfg.Schema, m.Name + "_" + storage}, columns: names}
			if method == MethodBinary {
				b.data = append(make([]byte, 0, cfg.BatchSize*(w.MaxLineLen()+64)), copyHeader...)
				b.sql = "COPY " + b.table.Sanitize() + " (" + quoteAll(names) + ") FROM STDIN WITH (FORMAT binary)"
			}
			open[m] = b
		}
		si := int(seq % uint64(len(w.Series)))
		if method == MethodBinary {
			b.data = appendBinaryRow(b.data, &row, storage, tagJSON[si])
		} else {
			b.rows = append(b.rows, anyRow(&row, storage, tagAny[si]))
		}
		b.n++
		if b.n == int64(cfg.BatchSize) {
			finish(b)
			delete(open, m)
		}
	}
	for _, m := range w.Measurements {
		if b := open[m]; b != nil {
			finish(b)
		}
	}
	return batches, size
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
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
