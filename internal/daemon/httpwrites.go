package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/ingest/httpapi"
	"github.com/pginflux/pginflux/ingest/pipeline"
	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/sink"
)

// httpWrites is what /write, /api/v2/write and /api/v3/write_lp write
// through, and what /query asks about them (catalog.go): a shared
// batcher on the sink of --schema, and with --schema-from-db one sink and
// batcher more for each other schema a request names, made on first use.
// It is made before the HTTP server, which serves before the sink exists:
// until open it answers that pginflux is starting, and once stopping
// begins that it is stopping. Safe for concurrent use.
type httpWrites struct {
	cfg        config.Config
	maxSchemas int // with --schema-from-db, the default one included
	metrics    *pipeline.StreamMetrics
	reads      *budget.Account // requests' read buffers
	whole      *budget.Account // bodies kept whole (accept_partial=false)
	log        *slog.Logger

	mu       sync.Mutex
	state    writesState
	pool     *pgxpool.Pool
	sinkCfg  sink.Config
	sinkM    *sink.Metrics
	schemas  map[string]*schemaWrites // by schema and role (sinkKey), --schema's included
	roles    map[string]*pgxpool.Pool // a pool for each credential's role, its connections that role
	inflight sync.WaitGroup           // Write calls under way; Add only under mu while open
}

// sinkKey names where the writes of a schema by a role go ("" for
// pginflux's own role).
func sinkKey(schema, role string) string { return schema + "\x00" + role }

type writesState int

const (
	writesStarting writesState = iota
	writesOpen
	writesStopping
)

// schemaWrites is where the writes into one schema, as one role, go.
type schemaWrites struct {
	schema string
	role   string // "" for pginflux's own
	sink   *sink.Sink
	own    bool // made by httpWrites, which closes it
	shared *sink.Shared
	stream *pipeline.Stream
}

// newHTTPWrites returns the writes of a pginflux with configuration cfg,
// answering "starting" until open, or nil when HTTP is disabled. Its
// metrics go to reg.
func newHTTPWrites(cfg config.Config, maxSchemas int, reg prometheus.Registerer, mem *budget.Budget, log *slog.Logger) *httpWrites {
	if cfg.HTTPAddress == "" {
		return nil
	}
	return &httpWrites{cfg: cfg, maxSchemas: maxSchemas, metrics: pipeline.NewStreamMetrics(reg, "http"), reads: mem.Account("http"), whole: mem.Account("http_whole"),
		log: log, schemas: make(map[string]*schemaWrites)}
}

// open starts taking writes into s, the sink of --schema, made from
// sinkCfg with metrics m; sinks of other schemas are made the same way on
// pool. A nil w (HTTP disabled) does nothing.
func (w *httpWrites) open(pool *pgxpool.Pool, s *sink.Sink, sinkCfg sink.Config, m *sink.Metrics) {
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.state != writesStarting {
		w.mu.Unlock()
		return
	}
	w.pool, w.sinkCfg, w.sinkM = pool, sinkCfg, m
	w.schemas[sinkKey(w.cfg.Schema, "")] = w.newSchema(w.cfg.Schema, "", s, false)
	w.state = writesOpen
	w.mu.Unlock()
}

func (w *httpWrites) newSchema(schema, role string, s *sink.Sink, own bool) *schemaWrites {
	sh := s.NewShared()
	return &schemaWrites{schema: schema, role: role, sink: s, own: own, shared: sh, stream: pipeline.NewStream(pipeline.StreamConfig{
		Transport:     "http",
		MaxLineSize:   w.cfg.MaxLineSize,
		RejectedTable: w.cfg.RejectedTable,
		ReadMemory:    w.reads,
		WholeMemory:   w.whole,
	}, sh, w.metrics, w.log)}
}

// setLimits applies a reload to the sinks of other schemas, made and to be
// made. A nil w does nothing.
func (w *httpWrites) setLimits(batchSize int, flushInterval time.Duration, maxPendingRows int) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sinkCfg.BatchSize, w.sinkCfg.FlushInterval, w.sinkCfg.MaxPendingRows = batchSize, flushInterval, maxPendingRows
	for _, sw := range w.schemas {
		if sw.own {
			sw.sink.SetLimits(batchSize, flushInterval, maxPendingRows)
		}
	}
}

// beginStop makes every request from now on answer that pginflux is
// stopping; those under way go on. A nil w does nothing.
func (w *httpWrites) beginStop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.state = writesStopping
	w.mu.Unlock()
}

// stop waits for the requests under way, then hands what their batchers
// hold to the sinks and closes the sinks it made, abandoning what they
// still hold when ctx ends. The sink of --schema is left to its owner.
// A nil w does nothing.
func (w *httpWrites) stop(ctx context.Context) error {
	if w == nil {
		return nil
	}
	w.beginStop()
	w.inflight.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, sw := range w.schemas {
		sw.shared.Close()
		if !sw.own {
			continue
		}
		abandon := context.AfterFunc(ctx, sw.sink.Abandon)
		if err := sw.sink.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("schema %s: %w", sw.schema, err))
		}
		abandon()
	}
	for _, p := range w.roles {
		p.Close()
	}
	return errors.Join(errs...)
}

// schemaLocked returns where writes for database db, by a credential of
// role ("" for none), go, making its sink when it is new. w.mu is held.
func (w *httpWrites) schemaLocked(db, role string) (*schemaWrites, error) {
	switch w.state {
	case writesStarting:
		return nil, fmt.Errorf("%w: pginflux is starting", httpapi.ErrUnavailable)
	case writesStopping:
		return nil, fmt.Errorf("%w: pginflux is stopping", httpapi.ErrUnavailable)
	}
	schema := w.cfg.Schema
	if w.cfg.SchemaFromDB && db != "" {
		schema = db
	}
	if sw := w.schemas[sinkKey(schema, role)]; sw != nil {
		return sw, nil
	}
	if err := validSchema(schema); err != nil {
		return nil, fmt.Errorf("%w: database %q cannot name a schema (--schema-from-db): %v", httpapi.ErrInvalid, db, err)
	}
	if len(w.schemas) >= w.maxSchemas {
		return nil, fmt.Errorf("%w: database %q would be schema number %d, and pginflux writes into at most %d (--schema-from-db)",
			httpapi.ErrInvalid, db, len(w.schemas)+1, w.maxSchemas)
	}
	cfg := w.sinkCfg
	cfg.Schema = schema
	pool, log := w.pool, w.log.With("schema", schema)
	if role != "" {
		var err error
		if pool, err = w.rolePoolLocked(role); err != nil {
			return nil, err
		}
		cfg.DeniedRefuses = true
		log = log.With("role", role)
	}
	s := sink.New(pool, cfg, w.sinkM, log)
	sw := w.newSchema(schema, role, s, true)
	w.schemas[sinkKey(schema, role)] = sw
	log.Info("writing into another schema, or as another role (--schema-from-db, --auth-file)", "schemas", len(w.schemas))
	return sw, nil
}

// validSchema checks what PostgreSQL takes as a schema name.
func validSchema(s string) error {
	switch {
	case len(s) > 63:
		return errors.New("longer than PostgreSQL's 63 bytes")
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("holds a NUL byte")
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.HasPrefix(strings.ToLower(s), "pg_"):
		return errors.New("names starting with pg_ are PostgreSQL's")
	}
	return nil
}

// Admit answers 503 while starting or stopping, or while the database is
// down, 429 (or 503, for v1 clients) while the sink of the request's
// schema holds its limit of rows, and 400 for a schema that cannot be.
func (w *httpWrites) Admit(db string, c *auth.Credential) error {
	w.mu.Lock()
	sw, err := w.schemaLocked(db, c.Role)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	full, down := sw.sink.Saturated()
	switch {
	case down:
		return fmt.Errorf("%w: %s; pginflux keeps retrying", httpapi.ErrUnavailable, heldReason(sw.sink))
	case full:
		return fmt.Errorf("%w: pginflux holds --max-pending-rows (%d) rows not yet committed", httpapi.ErrFull, w.cfg.MaxPendingRows)
	}
	return nil
}

// Write adds the request's lines to its schema's batcher and waits for
// their commit.
func (w *httpWrites) Write(ctx context.Context, req *httpapi.WriteRequest) (httpapi.WriteResult, error) {
	w.mu.Lock()
	sw, err := w.schemaLocked(req.DB, req.Credential.Role)
	if err != nil {
		w.mu.Unlock()
		return httpapi.WriteResult{}, err
	}
	w.inflight.Add(1)
	w.mu.Unlock()
	defer w.inflight.Done()

	ctx, stop := whileStorable(ctx, sw.sink)
	defer stop()
	res, err := sw.stream.Write(ctx, req.Body, req.Precision, sink.Origin{Source: req.Source, Received: req.Received},
		pipeline.WriteOptions{NoWait: req.NoWait, AllOrNothing: req.AllOrNothing, CommitTimeout: req.CommitTimeout, Held: req.Held})
	if errors.Is(err, sink.ErrPermissionDenied) {
		err = fmt.Errorf("%w: PostgreSQL refused the rows of role %q: %w", httpapi.ErrForbidden, sw.role, err)
	}
	if errors.Is(err, pipeline.ErrNoMemory) {
		err = fmt.Errorf("%w: %w", httpapi.ErrFull, err)
	}
	if err != nil && errors.Is(context.Cause(ctx), errNotStorable) {
		err = fmt.Errorf("%w: %s, and the rows cannot be spooled; pginflux holds them and keeps retrying, and may still write them", httpapi.ErrUnavailable, heldReason(sw.sink))
	}
	out := httpapi.WriteResult{
		Lines:    res.Lines,
		Rejected: res.Rejected,
		BadLines: res.Bad,
		Listed:   make([]httpapi.BadLine, len(res.Listed)),
	}
	for i, b := range res.Listed {
		out.Listed[i] = httpapi.BadLine{Line: b.Line, Text: string(b.Text), Err: b.Err}
	}
	if w.cfg.RejectedTable != "" && !(req.AllOrNothing && res.Bad > 0) {
		out.KeptIn = sw.schema + "." + w.cfg.RejectedTable
	}
	return out, err
}

// heldReason says why s holds rows, for a 503: the database unreachable,
// or what PostgreSQL answered (a privilege, a setting, a lock).
func heldReason(s *sink.Sink) string {
	if err := s.Blocked(); err != nil {
		return "PostgreSQL does not take rows now (" + err.Error() + ")"
	}
	return "PostgreSQL does not take rows now"
}

// errNotStorable ends a request's wait when its rows can be neither
// committed nor spooled for now.
var errNotStorable = errors.New("the database is down and nothing can be spooled")

// storableEvery is how often a waiting request looks at the sink.
const storableEvery = 50 * time.Millisecond

// whileStorable returns ctx, ended with cause errNotStorable as soon as s
// reports the database down with no room in a spool, so that a request
// hears 503 at once rather than at the commit timeout. Call stop when
// done.
func whileStorable(ctx context.Context, s *sink.Sink) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(storableEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if _, down := s.Saturated(); down {
					cancel(errNotStorable)
					return
				}
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// rolePoolLocked returns the pool whose connections are role's, making it
// when it is new: pginflux's pool's settings, each connection set to the
// role (SET ROLE) as it is made, so that every statement of the sinks on
// it — COPY, INSERT, CREATE TABLE — runs with the role's privileges, and
// the tables it creates are the role's. pginflux's own role must be a
// member of it. w.mu is held.
func (w *httpWrites) rolePoolLocked(role string) (*pgxpool.Pool, error) {
	if p := w.roles[role]; p != nil {
		return p, nil
	}
	cfg := w.pool.Config()
	set := "SET ROLE " + pgx.Identifier{role}.Sanitize()
	after := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if after != nil {
			if err := after(ctx, c); err != nil {
				return err
			}
		}
		if _, err := c.Exec(ctx, set); err != nil {
			return fmt.Errorf("set role %s: %w", role, err)
		}
		return nil
	}
	cfg.MaxConns = int32(w.cfg.Writers + 2)
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: a pool for role %q: %v", httpapi.ErrUnavailable, role, err)
	}
	if w.roles == nil {
		w.roles = make(map[string]*pgxpool.Pool)
	}
	w.roles[role] = p
	return p, nil
}
