package sink

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/plural"
	"github.com/pginflux/pginflux/sink/schema"
)

// attempt writes rows lo..hi-1 of b in one transaction, with the values
// that did not fit their columns going to the rejected table in the same
// transaction. PostgreSQL applies it whole or not at all, and nothing a
// failed attempt may have committed is written twice by the next: a table
// with a point key merges a point written again into its row; any other
// table gets a commit marker in the same transaction, looked up before a
// retry whose previous attempt may have committed (see commitMarked).
func (s *Sink) attempt(ctx context.Context, w *writerState, b *batch, lo, hi int) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire a connection: %w", err)
	}
	defer conn.Release()

	if b.mark != nil {
		full, partial, err := s.replayed(ctx, conn.Conn(), b.mark, lo, hi)
		switch {
		case err != nil:
			return err
		case full:
			// Written before a crash or stop: not again.
			s.settled(hi - lo)
			return nil
		case partial:
			return errPartlyReplayed
		}
	}

	var (
		rows          []byte
		n             = hi - lo // rows as encoded, once points are merged
		copySQL       string
		target, ident string
		names         []string
		point         bool // the table has a point key
		dead          [][]deadLetter
	)
	switch {
	case b.rejected:
		t, err := s.catalog.RejectedTable(ctx, conn.Conn())
		if err != nil {
			return err
		}
		rows, copySQL, target = b.rowBytes(lo, hi), t.CopySQL, t.Name
	case s.cfg.Storage == StorageColumns:
		t := s.catalog.CachedTyped(b.measurement)
		var cols []*schema.Column
		if t != nil {
			cols = t.ColumnsFor(b.keys)
		}
		if t == nil || t.NeedsDDL(b.keys, cols, s.cfg.MaxColumns) {
			if t, err = s.catalog.EnsureTyped(ctx, conn.Conn(), b.measurement, b.keys); err != nil {
				return err
			}
			cols = t.ColumnsFor(b.keys)
		}
		if err := s.ensurePartitions(ctx, conn.Conn(), b, lo, hi, t.Name); err != nil {
			return err
		}
		var pts *pointPlan
		if t.Point {
			if err := s.planPoints(ctx, conn.Conn(), &w.pts, b, lo, hi, t.Name, t.TimeType); err != nil {
				return err
			}
			pts, n = &w.pts, w.pts.rows
		} else {
			s.catalog.NoKey(t.Name)
		}
		encodeTyped(&w.enc, b, lo, hi, t, cols, pts)
		rows, copySQL, target, ident, dead, names, point = w.enc.rows, w.enc.copySQL, t.Name, t.Ident, w.enc.dead, w.enc.names, t.Point
	default:
		t, err := s.catalog.Lookup(ctx, conn.Conn(), b.measurement)
		if err != nil {
			return err
		}
		if err := s.ensurePartitions(ctx, conn.Conn(), b, lo, hi, t.Name); err != nil {
			return err
		}
		if t.Point {
			if err := s.planPoints(ctx, conn.Conn(), &w.pts, b, lo, hi, t.Name, schema.Type{OID: schema.OIDTimestamptz, Typmod: -1}); err != nil {
				return err
			}
			encodeJSONBPoints(&w.enc, b, lo, hi, &w.pts, t.Ident)
			rows, copySQL, n, names = w.enc.rows, w.enc.copySQL, w.pts.rows, w.enc.names
		} else {
			s.catalog.NoKey(t.Name)
			rows, copySQL, names = b.rowBytes(lo, hi), t.CopySQL, jsonbNames
		}
		target, ident, point = t.Name, t.Ident, t.Point
	}

	w.dl = w.dl[:0]
	ndead := 0
	if s.rejectedName != "" {
		for _, ds := range dead {
			for i := range ds {
				w.dl = appendDeadLetter(w.dl, &ds[i])
				ndead++
			}
		}
	}

	// What a point key does not make idempotent (rows of a table without
	// one, rejected values) carries a commit marker, and a retry after an
	// attempt that may have committed looks for it first. A replayed
	// spool record has a marker of its own.
	marked := (!point || ndead > 0) && b.mark == nil
	if b.mark == nil && b.commitID == 0 {
		b.commitID = rand.Int64N(1<<63-1) + 1
	}
	if b.mark == nil && b.uncertain && b.marked {
		done, err := s.catalog.CommitMarked(ctx, conn.Conn(), b.commitID, lo, hi)
		if err != nil {
			return err
		}
		if done {
			s.log.Info("a batch whose commit was not confirmed had committed; not writing it again", "table", target, "rows", hi-lo)
			s.committed(b, lo, hi, dead)
			s.countRejected(b, dead)
			return nil
		}
	}
	if marked {
		if err := s.catalog.CommitsReady(ctx, conn.Conn()); err != nil {
			return err
		}
		marked = !s.catalog.CommitsOff()
		// From now on a failure may come after this attempt's commit.
		b.marked = b.marked || marked
	}
	var rt *schema.Table
	if ndead > 0 {
		if rt, err = s.catalog.RejectedTable(ctx, conn.Conn()); err != nil {
			return err
		}
	}

	var sc *upsertStreak
	upsert := false
	staged := false // rows of a table without a point key go through INSERT (see isRemoteCopyError)
	if point {
		sc = s.streakOf(target)
		upsert = sc.useUpsert()
	}
	for {
		if point && !upsert && ndead == 0 && b.mark == nil {
			// The fast path: one COPY, no transaction of our own.
			err = copyRows(ctx, conn.Conn().PgConn(), copySQL, rows, n)
			if err != nil {
				err = fmt.Errorf("copy %s into %s: %w", plural.Count(n, "row"), target, err)
			}
		} else {
			err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if upsert {
					if err := upsertRows(ctx, tx, ident, names, rows, n, s.cfg.Storage != StorageColumns); err != nil {
						return err
					}
				} else if staged {
					if err := insertRows(ctx, tx, ident, names, rows, n); err != nil {
						return err
					}
				} else if err := copyRows(ctx, tx.Conn().PgConn(), copySQL, rows, n); err != nil {
					return fmt.Errorf("copy %s into %s: %w", plural.Count(n, "row"), target, err)
				}
				if ndead > 0 {
					if err := copyRows(ctx, tx.Conn().PgConn(), rt.CopySQL, w.dl, ndead); err != nil {
						return fmt.Errorf("copy %s into %s: %w", plural.Count(ndead, "row"), rt.Name, err)
					}
				}
				if m := b.mark; m != nil {
					_, err := tx.Exec(ctx, "INSERT INTO "+pgx.Identifier{s.cfg.Schema, schema.MarkerTable}.Sanitize()+
						" (spool, segment, record, lo, hi) VALUES ($1, $2, $3, $4, $5)", m.spool, m.segment, m.item, lo+m.base, hi+m.base)
					return err
				}
				if marked {
					return s.catalog.MarkCommit(ctx, tx, b.commitID, lo, hi)
				}
				return nil
			})
		}
		if err != nil && point && !upsert && (isUniqueViolation(err) || isRemoteCopyError(err)) {
			// Some point is there already: merge into it. On Citus that
			// is a COPY's XX000, as is any error of a worker: the merge
			// is an INSERT, whose errors keep their SQLSTATE.
			upsert = true
			if isUniqueViolation(err) {
				sc.collided() // an XX000 may be anything: no streak of upserts for it
			}
			continue
		}
		if err != nil && !point && !staged && !b.rejected && isRemoteCopyError(err) {
			// Citus lost the SQLSTATE of a worker's error: write the rows
			// again with INSERT, whose errors keep it, so that a row
			// refused for its values is told from a worker gone.
			staged = true
			continue
		}
		break
	}
	if err != nil {
		return err
	}
	if lost := s.cfg.Seams.CommitLost; lost != nil && lost() {
		return fmt.Errorf("the connection broke before the commit was confirmed (test): %w", io.ErrUnexpectedEOF)
	}
	if point && !upsert {
		sc.fastOK()
	}
	if merged := hi - lo - n; point && merged > 0 {
		s.metrics.MergedRows.Add(float64(merged)) // counted once committed
	}
	if upsert {
		s.metrics.UpsertBatches.Inc()
	}
	if b.mark != nil {
		s.metrics.ReplayedRows.Add(float64(hi - lo))
	}
	s.committed(b, lo, hi, dead)
	s.countRejected(b, dead)
	if !b.rejected && w.enc.overflowed > 0 && s.cfg.Storage == StorageColumns {
		s.metrics.OverflowValues.Add(float64(w.enc.overflowed))
	}
	return nil
}

// committed counts rows lo..hi-1 of b as committed and ends their tickets;
// dead says which of them have values in the rejected table.
func (s *Sink) committed(b *batch, lo, hi int, dead [][]deadLetter) {
	n := hi - lo
	s.settled(n)
	if len(b.tickets) > 0 {
		for r := lo; r < hi; r++ {
			if t := b.ticket(r); t != nil {
				// A row with values in the rejected table counts as
				// rejected: the request hears of it.
				t.settle(b.rejected || (dead != nil && len(dead[r-lo]) > 0), "")
			}
		}
	}
	if b.rejected {
		return
	}
	s.metrics.RowsWritten.Add(float64(n))
	s.metrics.BatchesWritten.Inc()
	if oldest := b.origins[0].Received; !oldest.IsZero() {
		s.metrics.Latency.Observe(time.Since(oldest).Seconds())
	}
}

// countRejected counts the values of committed rows that went to the
// rejected table.
func (s *Sink) countRejected(b *batch, dead [][]deadLetter) {
	if b.rejected {
		return
	}
	for _, ds := range dead {
		for i := range ds {
			s.metrics.Rejected.WithLabelValues(ds[i].reason).Inc()
		}
	}
}

// Upserts after a collision: a table whose batches keep hitting points
// that are there already (a sender splitting its points over several
// lines, say) skips the COPY that would fail, for a streak of batches
// that doubles while collisions go on.
const (
	minUpsertStreak = 4
	maxUpsertStreak = 32
)

// upsertStreak says whether batches of a table go through a staging table
// straight away. Safe for concurrent use.
type upsertStreak struct {
	upsertsLeft, streak atomic.Int32
}

// streakOf returns the upsert streak of a table.
func (s *Sink) streakOf(table string) *upsertStreak {
	s.streaksMu.Lock()
	defer s.streaksMu.Unlock()
	st := s.streaks[table]
	if st == nil {
		st = new(upsertStreak)
		s.streaks[table] = st
	}
	return st
}

// forget drops what is known of a measurement's table, or of every table
// and the schema (see schema.Catalog.Forget).
func (s *Sink) forget(measurement string, schemaToo bool) {
	s.catalog.Forget(measurement, schemaToo)
	if schemaToo {
		s.streaksMu.Lock()
		clear(s.streaks)
		s.streaksMu.Unlock()
	}
}

// useUpsert reports whether the next batch of the table should merge
// through a staging table straight away.
func (sc *upsertStreak) useUpsert() bool {
	for {
		left := sc.upsertsLeft.Load()
		if left <= 0 {
			return false
		}
		if sc.upsertsLeft.CompareAndSwap(left, left-1) {
			return true
		}
	}
}

// collided notes a COPY that hit existing points.
func (sc *upsertStreak) collided() {
	streak := min(max(sc.streak.Load()*2, minUpsertStreak), maxUpsertStreak)
	sc.streak.Store(streak)
	sc.upsertsLeft.Store(streak)
}

// fastOK notes a COPY that hit no existing point.
func (sc *upsertStreak) fastOK() { sc.streak.Store(0) }
