package sink

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/plural"
	"github.com/pginflux/pginflux/sink/schema"
)

// attempt writes rows lo..hi-1 of b in one transaction, with the values
// that did not fit their columns going to the rejected table in the same
// transaction. PostgreSQL applies it whole or not at all, and nothing a
// failed attempt may have committed is written twice by the next: a table
// with a point key merges a point written again into its row; any other
// table gets a commit marker in the same transaction, looked up before a
// retry whose previous attempt may have committed (see
// schema.Catalog.CommitMarked).
//
// The steps: prepare the rows (find or make their table, encode them for
// it), prepare the commit (dead letters, the commit marker), apply them,
// and count what was applied.
func (s *Sink) attempt(ctx context.Context, w *writerState, b *batch, lo, hi int) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire a connection: %w", err)
	}
	defer conn.Release()

	if b.mark != nil {
		if done, err := s.skipReplayed(ctx, conn.Conn(), b, lo, hi); done || err != nil {
			return err
		}
	}
	if err := s.prepare(ctx, conn.Conn(), w, b, lo, hi); err != nil {
		return err
	}
	if done, err := s.prepareCommit(ctx, conn.Conn(), w, b, lo, hi); done || err != nil {
		return err
	}
	upsert, err := s.apply(ctx, conn, w, b, lo, hi)
	if err != nil {
		return err
	}
	return s.applied(w, b, lo, hi, upsert)
}

// prepared is a range of a batch made ready to send by prepare and
// prepareCommit: its rows in final binary COPY form and where they go. It
// lives in the writer's state (writerState.prep) and refers to the
// batch's and the writer's buffers: valid until the writer's next attempt.
type prepared struct {
	rows          []byte
	n             int // rows as encoded, once points are merged
	copySQL       string
	target, ident string   // the table's name, and its name quoted with the schema
	names         []string // the COPY's columns, quoted
	point         bool     // the table has a point key
	nanos         bool     // which includes schema.NanosColumn
	streak        *upsertStreak
	dead          [][]deadLetter // values of each row that go to the rejected table

	ndead    int           // dead letters encoded in writerState.dl
	rejected *schema.Table // where they go, when there are any
	marked   bool          // the transaction writes a commit marker

	// subres: of the rows merged, those that were points apart in
	// nanoseconds (see countSubresolution); timeUnit: the microseconds
	// the time column keeps as one, when subres > 0.
	subres   int
	timeUnit int64
}

// prepare makes rows lo..hi-1 of b ready to send, in w.prep: it finds or
// makes their table (its columns, partitions and series ids too) and
// encodes the rows for it.
func (s *Sink) prepare(ctx context.Context, conn *pgx.Conn, w *writerState, b *batch, lo, hi int) error {
	w.prep = prepared{n: hi - lo}
	switch {
	case b.rejected:
		t, err := s.catalog.RejectedTable(ctx, conn)
		if err != nil {
			return err
		}
		p := &w.prep
		p.rows, p.copySQL, p.target = b.rowBytes(lo, hi), t.CopySQL, t.Name
		return nil
	case s.cfg.Storage == StorageColumns:
		return s.prepareTyped(ctx, conn, w, b, lo, hi)
	default:
		return s.prepareJSONB(ctx, conn, w, b, lo, hi)
	}
}

// prepareTyped is prepare in columns storage: the table gets a column for
// each key that can have one, and the compact rows are encoded for it.
func (s *Sink) prepareTyped(ctx context.Context, conn *pgx.Conn, w *writerState, b *batch, lo, hi int) error {
	p := &w.prep
	t := s.catalog.CachedTyped(b.measurement)
	var cols []*schema.Column
	if t != nil {
		cols = t.ColumnsFor(b.keys)
	}
	if t == nil || t.NeedsDDL(b.keys, cols, s.cfg.MaxColumns) {
		var err error
		if t, err = s.catalog.EnsureTyped(ctx, conn, b.measurement, b.keys); err != nil {
			return err
		}
		cols = t.ColumnsFor(b.keys)
	}
	if err := s.ensurePartitions(ctx, conn, b, lo, hi, t.Name); err != nil {
		return err
	}
	var pts *pointPlan
	if t.Point {
		if err := s.planPoints(ctx, conn, &w.pts, b, lo, hi, t.Name, t.TimeType, t.Nanos); err != nil {
			return err
		}
		pts, p.n, p.subres = &w.pts, w.pts.rows, w.pts.subres
		if p.subres > 0 {
			p.timeUnit = t.TimeType.TimeUnit()
		}
	} else {
		s.catalog.NoKey(t.Name)
	}
	encodeTyped(&w.enc, b, lo, hi, t, cols, pts)
	p.rows, p.copySQL, p.target, p.ident, p.dead, p.names, p.point = w.enc.rows, w.enc.copySQL, t.Name, t.Ident, w.enc.dead, w.enc.names, t.Point
	p.nanos = t.Nanos
	return nil
}

// prepareJSONB is prepare in jsonb storage: the rows are in final form
// already, unless the rows of a point are to be made one.
func (s *Sink) prepareJSONB(ctx context.Context, conn *pgx.Conn, w *writerState, b *batch, lo, hi int) error {
	p := &w.prep
	t, err := s.catalog.Lookup(ctx, conn, b.measurement)
	if err != nil {
		return err
	}
	if err := s.ensurePartitions(ctx, conn, b, lo, hi, t.Name); err != nil {
		return err
	}
	if t.Point {
		if err := s.planPoints(ctx, conn, &w.pts, b, lo, hi, t.Name, schema.Type{OID: schema.OIDTimestamptz, Typmod: -1}, t.Nanos); err != nil {
			return err
		}
		encodeJSONBPoints(&w.enc, b, lo, hi, &w.pts, t.Ident)
		p.rows, p.copySQL, p.n, p.names = w.enc.rows, w.enc.copySQL, w.pts.rows, w.enc.names
		p.subres, p.timeUnit = w.pts.subres, 1
	} else {
		s.catalog.NoKey(t.Name)
		p.rows, p.copySQL, p.names = b.rowBytes(lo, hi), t.CopySQL, jsonbNames
	}
	p.target, p.ident, p.point, p.nanos = t.Name, t.Ident, t.Point, t.Nanos
	return nil
}

// prepareCommit encodes the dead letters of w.prep (into w.dl) and decides
// whether its transaction carries a commit marker. What a point key does
// not make idempotent (rows of a table without one, rejected values)
// carries one, and a retry after an attempt that may have committed looks
// for it first: done says that attempt had committed, and the rows are
// counted as committed now. A replayed spool record has a marker of its
// own.
func (s *Sink) prepareCommit(ctx context.Context, conn *pgx.Conn, w *writerState, b *batch, lo, hi int) (done bool, err error) {
	p := &w.prep
	w.dl = w.dl[:0]
	if s.rejectedName != "" {
		for _, ds := range p.dead {
			for i := range ds {
				w.dl = appendDeadLetter(w.dl, &ds[i])
				p.ndead++
			}
		}
	}
	p.marked = (!p.point || p.ndead > 0) && b.mark == nil
	if b.mark == nil && b.commitID == 0 {
		b.commitID = rand.Int64N(1<<63-1) + 1
	}
	if b.mark == nil && b.uncertain && b.marked {
		done, err := s.catalog.CommitMarked(ctx, conn, b.commitID, lo, hi)
		if err != nil {
			return false, err
		}
		if done {
			s.log.Info("a batch whose commit was not confirmed had committed; not writing it again", "table", p.target, "rows", hi-lo)
			s.committed(b, lo, hi, p.dead)
			s.countRejected(b, p.dead)
			return true, nil
		}
	}
	if p.marked {
		if err := s.catalog.CommitsReady(ctx, conn); err != nil {
			return false, err
		}
		p.marked = !s.catalog.CommitsOff()
		// From now on a failure may come after this attempt's commit.
		b.marked = b.marked || p.marked
	}
	if p.ndead > 0 {
		if p.rejected, err = s.catalog.RejectedTable(ctx, conn); err != nil {
			return false, err
		}
	}
	return false, nil
}

// apply sends w.prep: on the fast path (a table with a point key, nothing
// else to write) one COPY and no transaction of its own, else one
// transaction (see applyTx). A COPY that hits stored points is merged
// into them instead (upsert); rows whose COPY lost the SQLSTATE of its
// error (Citus) are inserted instead, to learn it.
func (s *Sink) apply(ctx context.Context, conn *pgxpool.Conn, w *writerState, b *batch, lo, hi int) (upsert bool, err error) {
	p := &w.prep
	staged := false // rows of a table without a point key go through INSERT (see isRemoteCopyError)
	if p.point {
		p.streak = s.streakOf(p.target)
		upsert = p.streak.useUpsert()
	}
	for {
		if p.point && !upsert && p.ndead == 0 && b.mark == nil {
			err = copyRows(ctx, conn.Conn().PgConn(), p.copySQL, p.rows, p.n)
			if err != nil {
				err = fmt.Errorf("copy %s into %s: %w", plural.Count(p.n, "row"), p.target, err)
			}
		} else {
			err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				return s.applyTx(ctx, tx, w, b, lo, hi, upsert, staged)
			})
		}
		if err != nil && p.point && !upsert && (isUniqueViolation(err) || isRemoteCopyError(err)) {
			// Some point is there already: merge into it. On Citus that
			// is a COPY's XX000, as is any error of a worker: the merge
			// is an INSERT, whose errors keep their SQLSTATE.
			upsert = true
			if isUniqueViolation(err) {
				p.streak.collided() // an XX000 may be anything: no streak of upserts for it
			}
			continue
		}
		if err != nil && !p.point && !staged && !b.rejected && isRemoteCopyError(err) {
			// Citus lost the SQLSTATE of a worker's error: write the rows
			// again with INSERT, whose errors keep it, so that a row
			// refused for its values is told from a worker gone.
			staged = true
			continue
		}
		return upsert, err
	}
}

// applyTx writes w.prep in tx: its rows (merged into stored points when
// upsert, inserted when staged, else copied), its dead letters, and its
// spool or commit marker.
func (s *Sink) applyTx(ctx context.Context, tx pgx.Tx, w *writerState, b *batch, lo, hi int, upsert, staged bool) error {
	p := &w.prep
	switch {
	case upsert:
		if err := upsertRows(ctx, tx, p.ident, p.names, p.rows, p.n, s.cfg.Storage != StorageColumns, p.nanos); err != nil {
			return err
		}
	case staged:
		if err := insertRows(ctx, tx, p.ident, p.names, p.rows, p.n); err != nil {
			return err
		}
	default:
		if err := copyRows(ctx, tx.Conn().PgConn(), p.copySQL, p.rows, p.n); err != nil {
			return fmt.Errorf("copy %s into %s: %w", plural.Count(p.n, "row"), p.target, err)
		}
	}
	if p.ndead > 0 {
		if err := copyRows(ctx, tx.Conn().PgConn(), p.rejected.CopySQL, w.dl, p.ndead); err != nil {
			return fmt.Errorf("copy %s into %s: %w", plural.Count(p.ndead, "row"), p.rejected.Name, err)
		}
	}
	if m := b.mark; m != nil {
		_, err := tx.Exec(ctx, "INSERT INTO "+pgx.Identifier{s.cfg.Schema, schema.MarkerTable}.Sanitize()+
			" (spool, segment, record, lo, hi) VALUES ($1, $2, $3, $4, $5)", m.spool, m.segment, m.item, lo+m.base, hi+m.base)
		return err
	}
	if p.marked {
		return s.catalog.MarkCommit(ctx, tx, b.commitID, lo, hi)
	}
	return nil
}

// applied counts what an attempt that committed wrote: rows committed,
// merged and replayed, values rejected or put in the overflow column.
func (s *Sink) applied(w *writerState, b *batch, lo, hi int, upsert bool) error {
	if lost := s.cfg.Seams.CommitLost; lost != nil && lost() {
		return fmt.Errorf("the connection broke before the commit was confirmed (test): %w", io.ErrUnexpectedEOF)
	}
	p := &w.prep
	if p.point && !upsert {
		p.streak.fastOK()
	}
	if merged := hi - lo - p.n; p.point && merged > 0 {
		s.metrics.MergedRows.Add(float64(merged)) // counted once committed
		if p.subres > 0 {
			s.mergedSubresolution(p.target, p.subres, p.timeUnit)
		}
	}
	if upsert {
		s.metrics.UpsertBatches.Inc()
	}
	if b.mark != nil {
		s.metrics.ReplayedRows.Add(float64(hi - lo))
	}
	s.committed(b, lo, hi, p.dead)
	s.countRejected(b, p.dead)
	if !b.rejected && w.enc.overflowed > 0 && s.cfg.Storage == StorageColumns {
		s.metrics.OverflowValues.Add(float64(w.enc.overflowed))
	}
	return nil
}
