package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pginflux/pginflux/internal/plural"
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
		t, err := s.catalog.rejectedTable(ctx, conn.Conn())
		if err != nil {
			return err
		}
		rows, copySQL, target = b.rowBytes(lo, hi), t.copySQL, t.name
	case s.cfg.Storage == StorageColumns:
		t := s.catalog.cachedTyped(b.measurement)
		var cols []*column
		if t != nil {
			cols = t.columnsFor(b.keys)
		}
		if t == nil || t.needsDDL(b.keys, cols, s.cfg.MaxColumns) {
			if t, err = s.catalog.ensureTyped(ctx, conn.Conn(), b.measurement, b.keys); err != nil {
				return err
			}
			cols = t.columnsFor(b.keys)
		}
		if err := s.ensurePartitions(ctx, conn.Conn(), b, lo, hi, t.name); err != nil {
			return err
		}
		var pts *pointPlan
		if t.point {
			if err := s.planPoints(ctx, conn.Conn(), &w.pts, b, lo, hi, t.name, t.timeType); err != nil {
				return err
			}
			pts, n = &w.pts, w.pts.rows
		} else {
			s.catalog.noKey(t.name)
		}
		encodeTyped(&w.enc, b, lo, hi, t, cols, pts)
		rows, copySQL, target, ident, dead, names, point = w.enc.rows, w.enc.copySQL, t.name, t.ident, w.enc.dead, w.enc.names, t.point
	default:
		t, err := s.catalog.lookup(ctx, conn.Conn(), b.measurement)
		if err != nil {
			return err
		}
		if err := s.ensurePartitions(ctx, conn.Conn(), b, lo, hi, t.name); err != nil {
			return err
		}
		if t.point {
			if err := s.planPoints(ctx, conn.Conn(), &w.pts, b, lo, hi, t.name, colType{oid: oidTimestamptz, typmod: -1}); err != nil {
				return err
			}
			encodeJSONBPoints(&w.enc, b, lo, hi, &w.pts, t.ident)
			rows, copySQL, n, names = w.enc.rows, w.enc.copySQL, w.pts.rows, w.enc.names
		} else {
			s.catalog.noKey(t.name)
			rows, copySQL, names = b.rowBytes(lo, hi), t.copySQL, jsonbNames
		}
		target, ident, point = t.name, t.ident, t.point
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
		done, err := s.catalog.commitMarked(ctx, conn.Conn(), b.commitID, lo, hi)
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
		if err := s.catalog.commitsReady(ctx, conn.Conn()); err != nil {
			return err
		}
		marked = !s.catalog.commitsOff.Load()
		// From now on a failure may come after this attempt's commit.
		b.marked = b.marked || marked
	}
	var rt *table
	if ndead > 0 {
		if rt, err = s.catalog.rejectedTable(ctx, conn.Conn()); err != nil {
			return err
		}
	}

	var sc *seriesCache
	upsert := false
	staged := false // rows of a table without a point key go through INSERT (see isRemoteCopyError)
	if point {
		sc = s.catalog.seriesOf(target)
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
					if err := copyRows(ctx, tx.Conn().PgConn(), rt.copySQL, w.dl, ndead); err != nil {
						return fmt.Errorf("copy %s into %s: %w", plural.Count(ndead, "row"), rt.name, err)
					}
				}
				if m := b.mark; m != nil {
					_, err := tx.Exec(ctx, "INSERT INTO "+pgx.Identifier{s.cfg.Schema, markerTable}.Sanitize()+
						" (spool, segment, record, lo, hi) VALUES ($1, $2, $3, $4, $5)", m.spool, m.segment, m.item, lo+m.base, hi+m.base)
					return err
				}
				if marked {
					return s.catalog.markCommit(ctx, tx, b.commitID, lo, hi)
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
	if testHookCommitLost != nil && testHookCommitLost() {
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

// testHookCommitLost, when set, is asked after each attempt that
// committed; true makes the attempt fail as if the connection broke before
// the commit was confirmed.
var testHookCommitLost func() bool

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

// useUpsert reports whether the next batch of the table should merge
// through a staging table straight away.
func (sc *seriesCache) useUpsert() bool {
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
func (sc *seriesCache) collided() {
	streak := min(max(sc.streak.Load()*2, minUpsertStreak), maxUpsertStreak)
	sc.streak.Store(streak)
	sc.upsertsLeft.Store(streak)
}

// fastOK notes a COPY that hit no existing point.
func (sc *seriesCache) fastOK() { sc.streak.Store(0) }

// commitTable holds a marker of each committed batch of a table without a
// point key, for a day, so that a retry after a connection lost during
// the commit can tell whether the commit happened.
const commitTable = "pginflux_commits"

// commitKeep is how long commit markers are kept, and cleanEvery how often
// old ones are deleted.
const (
	commitKeep       = 24 * time.Hour
	commitCleanEvery = 10 * time.Minute
)

// commitsReady makes the commit marker table, once, and deletes old
// markers every commitCleanEvery. Writers that come meanwhile wait for the
// one making it.
func (c *catalog) commitsReady(ctx context.Context, conn *pgx.Conn) error {
	now := time.Now().UnixNano()
	if last := c.commitsCleaned.Load(); last != 0 && now-last < int64(commitCleanEvery) {
		return nil
	}
	c.commitsMu.Lock()
	defer c.commitsMu.Unlock()
	last := c.commitsCleaned.Load()
	if last != 0 && now-last < int64(commitCleanEvery) {
		return nil // another writer did it meanwhile
	}
	ident := pgx.Identifier{c.schema, commitTable}.Sanitize()
	if last != 0 {
		if _, err := conn.Exec(ctx, "DELETE FROM "+ident+" WHERE committed < now() - $1::interval", strconv.Itoa(int(commitKeep.Seconds()))+" seconds"); err != nil {
			c.log.Debug("could not delete old commit markers", "err", err)
		}
		c.commitsCleaned.Store(now)
		return nil
	}
	if err := c.ready(ctx, conn); err != nil {
		return err
	}
	usable := false
	_, err := c.createOwn(ctx, conn, commitTable, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, commitDDL(ident))
		return err
	})
	if err == nil {
		err = conn.QueryRow(ctx, "SELECT has_table_privilege($1, 'SELECT, INSERT')", ident).Scan(&usable)
	}
	if isInsufficientPrivilege(err) {
		err, usable = nil, false
	}
	if err != nil {
		return err
	}
	if !usable {
		c.commitsOff.Store(true)
		c.log.Warn("cannot create or use the commit marker table; without it, a batch of a table without a point key retried after a connection lost during its commit may be written twice (create it as in the README, Least privilege)",
			"schema", c.schema, "table", commitTable)
	}
	c.commitsCleaned.Store(now)
	return nil
}

// commitDDL makes the commit marker table.
func commitDDL(ident string) string {
	return "CREATE TABLE IF NOT EXISTS " + ident +
		" (batch bigint NOT NULL, lo int NOT NULL, hi int NOT NULL, committed timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (batch, lo, hi))"
}

// isInsufficientPrivilege reports SQLSTATE 42501.
func isInsufficientPrivilege(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// markCommit records, in tx, that rows lo..hi-1 of batch id are committed.
func (c *catalog) markCommit(ctx context.Context, tx pgx.Tx, id int64, lo, hi int) error {
	_, err := tx.Exec(ctx, "INSERT INTO "+pgx.Identifier{c.schema, commitTable}.Sanitize()+" (batch, lo, hi) VALUES ($1, $2, $3)", id, lo, hi)
	return err
}

// commitMarked reports whether rows lo..hi-1 of batch id were committed
// by an earlier attempt.
func (c *catalog) commitMarked(ctx context.Context, conn *pgx.Conn, id int64, lo, hi int) (bool, error) {
	// Looked up before commitsReady could delete old markers.
	var done bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{c.schema, commitTable}.Sanitize()+
		" WHERE batch = $1 AND lo <= $2 AND hi >= $3)", id, lo, hi).Scan(&done)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return false, nil // no marker table: no marker
	}
	if err != nil {
		return false, fmt.Errorf("look up commit markers: %w", err)
	}
	return done, nil
}
