package sink

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pginflux/pginflux/sink/schema"
)

// The failure policy, in one place: no row is dropped for a reason that is
// not its own.
//
//   - A row PostgreSQL refuses for its own values (a data exception, class
//     22; a constraint, class 23; a trigger raising an error, class P0; a
//     value too large to index) is isolated by halving its batch and goes
//     to the rejected table; every other row lands.
//   - A table that cannot be written as pginflux lays tables out (a jsonb
//     table without its columns, a failed --create-table-sql) sends its
//     rows to the rejected table, replayable, and says so once.
//   - Everything else — the server gone or restarting, authentication, a
//     missing privilege, a read-only database, a full disk, a table, column
//     or the rejected table dropped or changed behind pginflux's back —
//     holds the rows: they wait (in memory, or in the spool when there is
//     one) and are retried with capped backoff, forever, while the reason
//     is logged every downLogEvery, shown by Blocked (and so /readyz and
//     HTTP's 503) and counted by SQLSTATE class. A missing or changed table
//     is looked up again first. The only way rows are given up is the
//     shutdown timeout an operator sets (counted as abandoned).
//   - Citus reports every error a worker raises during a COPY as XX000,
//     its SQLSTATE lost; the rows are written again with INSERT, whose
//     errors keep theirs, and sorted by that one (see isRemoteCopyError).

// errClass sorts a failed write by what can be done about it.
type errClass int

const (
	errHold      errClass = iota // hold the rows and retry after a pause
	errData                      // some row's values were refused: split
	errUndefined                 // a table, column or schema went away: look again, then hold
	errMismatch                  // the table cannot hold pginflux's rows: rejected table
	errTooBig                    // the batch is over a server limit: split, hold a single row
)

// writeRange writes rows lo..hi-1 of b, retrying and splitting as errors
// demand; it returns when every row is written, rejected, held in the
// spool or abandoned at shutdown, or when the whole batch is parked (see
// park). refreshed says the table was looked at again already for this
// batch.
func (s *Sink) writeRange(w *writerState, b *batch, lo, hi int, refreshed bool) (parked bool) {
	whole := b.parkable && lo == 0 && hi == b.rows()
	first := 1
	if whole {
		first, b.attempts = b.attempts+1, 0 // back from parking
	}
	for attempt := first; ; attempt++ {
		err := s.attempt(s.abandon, w, b, lo, hi)
		if err == nil {
			s.writing(b)
			return false
		}
		if errors.Is(err, errPartlyReplayed) {
			s.writeHalves(w, b, lo, hi, refreshed)
			return false
		}
		if s.abandon.Err() != nil {
			if b.mark != nil {
				w.replayFailed = true
			}
			if !s.spoolRows(b, lo, hi) {
				s.abandonRows(b, lo, hi)
			}
			return false
		}
		s.metrics.CopyErrors.WithLabelValues(sqlstateClass(err)).Inc()
		switch s.settle(w, b, lo, hi, &refreshed, err, attempt) {
		case retryNow:
			continue
		case settledAll:
			return false
		}
		if gone, parked := s.hold(w, b, lo, hi, err, whole, attempt); gone {
			return parked
		}
	}
}

// writeHalves writes rows lo..hi-1 of b as two ranges, each on its own.
func (s *Sink) writeHalves(w *writerState, b *batch, lo, hi int, refreshed bool) {
	mid := lo + (hi-lo)/2
	s.writeRange(w, b, lo, mid, refreshed)
	s.writeRange(w, b, mid, hi, refreshed)
}

// verdict is what settle decided for rows whose write failed.
type verdict int

const (
	holdRows   verdict = iota // hold them, and retry after a pause (see hold)
	retryNow                  // retry at once
	settledAll                // every row is written or rejected now
)

// settle does what the class of err calls for with rows lo..hi-1 of b: a
// row refused for its values is isolated (halving the range) and
// rejected; a table that cannot hold the rows sends them to the rejected
// table; a range over a server limit is halved; a table or schema that
// went away is looked up again. Anything else holds the rows.
func (s *Sink) settle(w *writerState, b *batch, lo, hi int, refreshed *bool, err error, attempt int) verdict {
	n := hi - lo
	if s.cfg.DeniedRefuses && isDenied(err) {
		s.deny(b, lo, hi, err)
		return settledAll
	}
	if isNotSupported(err) && w.prep.point && attempt < 3 {
		// PostgreSQL takes no COPY into a table under row-level
		// security (feature_not_supported): its points are merged
		// through INSERT (the upsert), whose rows the policies check one
		// by one. Should INSERT not do either, the rows are held.
		s.streakOf(w.prep.target).collided()
		return retryNow
	}
	class, schemaGone := classify(err)
	switch class {
	case errData:
		if !*refreshed && !b.rejected {
			// A column whose type someone changed looks like bad data:
			// look at the table again before blaming rows.
			*refreshed = true
			s.forget(b.measurement, false)
			return retryNow
		}
		if n == 1 {
			s.refuse(w, b, lo, ReasonRefused, err)
			return settledAll
		}
		// Halve until the refused rows stand alone; the others land.
		s.writeHalves(w, b, lo, hi, true)
		return settledAll
	case errMismatch:
		s.mismatch(w, b, lo, hi, err)
		return settledAll
	case errTooBig:
		if n > 1 {
			// Smaller transactions may pass the limit (TimescaleDB's rows
			// decompressed per transaction, say); a single row that does
			// not is held like any other.
			s.writeHalves(w, b, lo, hi, *refreshed)
			return settledAll
		}
	case errUndefined:
		// Whatever went away is looked up (or made) again.
		s.forget(b.measurement, schemaGone)
		s.catalog.ForgetOwn()
		if attempt == 1 {
			return retryNow
		}
	}
	return holdRows
}

// mismatch sends rows lo..hi-1 of b, whose table cannot be created or
// cannot hold them, to the rejected table, saying so once per
// measurement.
func (s *Sink) mismatch(w *writerState, b *batch, lo, hi int, err error) {
	reason := ReasonTableMismatch
	if errors.Is(err, schema.ErrCreateFailed) {
		reason = ReasonCreateFailed
	}
	if _, seen := s.mismatched.LoadOrStore(b.measurement, struct{}{}); !seen {
		attrs := []any{"measurement", b.measurement, "reason", reason, "err", err}
		if hint := s.createHint(err); hint != "" {
			attrs = append(attrs, "hint", hint)
		}
		s.log.Error("cannot create or write into the table; its rows go to the rejected table (fix the table or --create-table-sql, then restart pginflux)", attrs...)
	}
	for r := lo; r < hi; r++ {
		s.refuse(w, b, r, reason, err)
	}
}

// hold keeps rows lo..hi-1 of b, whose write failed for a reason that is
// not theirs: a replayed batch stays in the spool, another goes to the
// spool when there is room, a whole batch whose table alone is in trouble
// is parked, and the rest wait here for the next attempt. gone says the
// rows left this writer (parked says how); false, that the pause is over
// and the caller retries.
func (s *Sink) hold(w *writerState, b *batch, lo, hi int, err error, whole bool, attempt int) (gone, parked bool) {
	// The commit may have happened before a connection broke, which the
	// next attempt checks.
	b.uncertain = true
	s.blocked(b, err)
	if b.mark != nil {
		// Replayed rows stay in the spool; the replayer tries again later.
		s.settled(hi - lo)
		w.replayFailed = true
		return true, false
	}
	// A batch whose commit marker is still to be looked up stays in
	// memory: spooled, it would be written again by the replay if the
	// commit had happened.
	if !b.marked && s.spoolRows(b, lo, hi) {
		return true, false
	}
	if whole && !schema.IsTemporary(err) && s.park(b, attempt) {
		// This table's trouble: the writer goes on with others.
		return true, true
	}
	s.metrics.Retries.Inc()
	if !s.pause(attempt) {
		s.abandonRows(b, lo, hi)
		return true, false
	}
	return false, false
}

// keyHint is said when a table template fails with 0A000 in merge mode:
// the way Citus refuses to distribute a table by a column its unique key
// (the point key) lacks.
const keyHint = "if --create-table-sql distributes the table with Citus: in --write-mode merge every table pginflux makes has the key (time, series_id), and Citus distributes a table only by a column that each of its unique keys includes (SQLSTATE 0A000): " +
	"distribute by series_id (a series stays on one shard) or by time; or create this table yourself, distributed as you like, without that key (pginflux writes such a table in append mode); or run pginflux with --write-mode append. " +
	"Then send the rows in the rejected table again (docs/tables.md: The rejected table)"

// columnHint is said when a table template fails with 42703 in columns
// storage: it names a column (a tag to distribute by, say) that the
// batch which made the table did not bring.
const columnHint = "--create-table-sql runs when a table is made, with a column for each key of the lines that made it: a tag the template names (to distribute by, say) must be in the first lines of every measurement, or create such tables yourself beforehand. " +
	"Then send the rows in the rejected table again (docs/tables.md: The rejected table)"

// createHint says what to do about a table template that failed, when
// pginflux knows more than the error says; else "".
func (s *Sink) createHint(err error) string {
	var pgErr *pgconn.PgError
	if !errors.Is(err, schema.ErrCreateFailed) || !errors.As(err, &pgErr) {
		return ""
	}
	switch {
	case pgErr.Code == "0A000" && s.cfg.WriteMode != WriteAppend:
		return keyHint
	case pgErr.Code == "42703" && s.cfg.Storage == StorageColumns:
		return columnHint
	}
	return ""
}

// pause sleeps before retry attempt+1: capped exponential backoff with
// jitter, so that many writers do not hammer a recovering server in step.
// It returns false when the sink is abandoning its work.
func (s *Sink) pause(attempt int) bool {
	t := time.NewTimer(backoff(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.abandon.Done():
		return false
	}
}

// backoff is the pause before attempt+1: from 25-50 ms, doubling, to
// 5-10 s, jittered.
func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt-1, 8) // 50ms .. 12.8s
	d = min(d, 10*time.Second)
	return d/2 + rand.N(d/2+1)
}

// classify sorts err by SQLSTATE first, then by pgconn's and net's own
// tests; it never looks at error strings. schemaGone reports that the whole
// schema is missing, not only a table.
func classify(err error) (class errClass, schemaGone bool) {
	if errors.Is(err, schema.ErrTableMismatch) || errors.Is(err, schema.ErrCreateFailed) {
		return errMismatch, false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42P01", // undefined_table
			"42703", // undefined_column: dropped or renamed behind our back
			"42804": // datatype_mismatch: a column's type changed
			return errUndefined, false
		case "3F000": // invalid_schema_name
			return errUndefined, true
		case "54000": // program_limit_exceeded, e.g. a value too large to index
			return errData, false
		case "53400": // configuration_limit_exceeded, e.g. TimescaleDB's tuple decompression limit
			return errTooBig, false
		}
		switch pgErr.Code[:2] {
		case "21", "22", "23", "P0": // cardinality (rows of one point twice), data, constraint, raised by a trigger
			return errData, false
		}
		return errHold, false
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	switch {
	case pgconn.SafeToRetry(err), pgconn.Timeout(err), errors.As(err, &netErr), errors.As(err, &connectErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errHold, false
	}
	return errHold, false
}

func sqlstateClass(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) >= 2 {
		return pgErr.Code[:2]
	}
	return "none"
}

// isNotSupported reports whether err is PostgreSQL's
// feature_not_supported, which a COPY into a table where row-level
// security applies raises.
func isNotSupported(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "0A000"
}

// isDenied reports whether err is PostgreSQL refusing a privilege
// (insufficient_privilege, also a row-level security policy's refusal).
func isDenied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// deny drops rows lo..hi-1 of b, which the sink's role may not write,
// telling their tickets why (see Config.DeniedRefuses).
func (s *Sink) deny(b *batch, lo, hi int, err error) {
	n := hi - lo
	s.dropped.Add(int64(n))
	s.metrics.RowsDropped.WithLabelValues(DropDenied).Add(float64(n))
	s.settled(n)
	msg := err.Error()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg = pgErr.Message
	}
	b.settleRows(lo, hi, false, deniedPrefix+msg)
	if s.rejectLog.allow() {
		s.log.Warn("PostgreSQL refused rows for a privilege the role lacks; the requests were answered 403 (logged at most every 10s, counted in pginflux_sink_dropped_rows_total{reason=\"denied\"})",
			"measurement", b.measurement, "rows", n, "err", msg)
	}
}
