package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/sink/schema"
	"github.com/pginflux/pginflux/sink/spool"
)

// spoolMark names the record a replayed batch came from.
type spoolMark struct {
	spool         string
	segment, item int64
	// base is the record's row where the batch's row 0 is: 0, or the row
	// a refused row came from when it goes to the rejected table alone.
	base int
}

// errPartlyReplayed says part of a replayed record's rows were written
// before (a crash while its batch was being split): split it the same way
// and write only what is missing.
var errPartlyReplayed = errors.New("part of the spool record was replayed before")

// replayed looks up the markers of rows lo..hi-1 of a replayed record:
// full when exactly that range was written, partial when some range
// inside it was.
func (s *Sink) replayed(ctx context.Context, conn *pgx.Conn, m *spoolMark, lo, hi int) (full, partial bool, err error) {
	var exact, inner int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE lo = $4 AND hi = $5), count(*) FROM `+
		pgx.Identifier{s.cfg.Schema, schema.MarkerTable}.Sanitize()+
		` WHERE spool = $1 AND segment = $2 AND record = $3 AND lo >= $4 AND hi <= $5`,
		m.spool, m.segment, m.item, lo+m.base, hi+m.base).Scan(&exact, &inner)
	if err != nil {
		return false, false, fmt.Errorf("look up replayed spool records: %w", err)
	}
	return exact > 0, inner > 0, nil
}

// skipReplayed looks up the markers of rows lo..hi-1 of a replayed batch
// b: done when exactly they were written before (a crash or a stop), and
// they are settled now; errPartlyReplayed when some of them were.
func (s *Sink) skipReplayed(ctx context.Context, conn *pgx.Conn, b *batch, lo, hi int) (done bool, err error) {
	full, partial, err := s.replayed(ctx, conn, b.mark, lo, hi)
	switch {
	case err != nil:
		return false, err
	case full:
		s.settled(hi - lo)
		return true, nil
	case partial:
		return false, errPartlyReplayed
	}
	return false, nil
}

// Replay is exactly once: each record is written in one transaction with a
// row in the marker table (pginflux_spool) naming the spool and segment
// (spool.Spool.MarkerKey), the segment's number, the record and the row
// range; a record whose marker exists is skipped. A segment is deleted once
// every record of it is written and it read back whole, and its markers
// only after that, so a crash at any point leaves either the segment and
// its markers (nothing is replayed twice) or neither.

// spoolRecord is one record of a segment, decoded.
type spoolRecord struct {
	index int64
	b     *batch
}

// readRecords returns the records of segment g, decoded: a record that
// does not decode is as bad as one whose checksum fails (see
// spool.Spool.Read).
func readRecords(sp *spool.Spool, g spool.Segment) ([]spoolRecord, error) {
	var out []spoolRecord
	err := sp.Read(g, func(index int64, payload []byte) error {
		b, err := decodeBatch(payload)
		if err != nil {
			return err
		}
		out = append(out, spoolRecord{index: index, b: b})
		return nil
	})
	return out, err
}

// replay writes what the spool holds whenever something was spooled, and
// every few seconds, until the sink closes.
func (s *Sink) replay() {
	s.spool.CountAppendErrors(s.metrics.SpoolAppendErrors)
	w := s.newWriterState()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.spool.Wake():
		case <-tick.C:
		case <-s.maintenanceCtx.Done():
			return
		}
		if s.spool.Bytes() == 0 {
			continue
		}
		if err := s.replayAll(w); err != nil {
			s.log.Warn("spool replay stopped; trying again later", "err", err)
		}
		s.metrics.SpoolBytes.Set(float64(s.spool.Bytes()))
	}
}

// replayAll writes every closed segment, oldest first, deleting each once
// all its records are written, then its markers. A corrupt segment is
// written up to the damage and set aside, never deleted.
func (s *Sink) replayAll(w *writerState) error {
	ctx := s.maintenanceCtx
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	err = s.catalog.MarkersReady(ctx, conn.Conn())
	conn.Release()
	if err != nil {
		return fmt.Errorf("prepare the spool's marker table: %w", err)
	}
	segs, err := s.spool.ClosedSegments()
	if err != nil {
		return err
	}
	for _, g := range segs {
		// A segment's records are held while they are written: they draw
		// from the memory budget, and the replay waits while it is spent.
		s.limit.mem.Wait(ctx, func() bool { return s.abandon.Err() != nil })
		recs, readErr := readRecords(s.spool, g)
		held := recordsMemory(recs)
		s.cfg.Memory.Take(held)
		stop, err := s.replaySegment(ctx, w, g, recs, readErr)
		s.cfg.Memory.Give(held)
		if stop || err != nil {
			return err
		}
	}
	return nil
}

// recordsMemory is what a segment's records hold, as batches.
func recordsMemory(recs []spoolRecord) int64 {
	var n int64
	for _, r := range recs {
		n += int64(cap(r.b.buf)) + 8*int64(cap(r.b.ends))
	}
	return n
}

// replaySegment writes the records read from segment g (up to readErr,
// when it is damaged), then removes it or sets it aside; stop says the
// replay should stop here for now.
func (s *Sink) replaySegment(ctx context.Context, w *writerState, g spool.Segment, recs []spoolRecord, readErr error) (stop bool, err error) {
	if readErr != nil && !errors.Is(readErr, spool.ErrCorrupt) {
		return true, readErr
	}
	key := s.spool.MarkerKey(g)
	w.replayFailed = false
	for _, r := range recs {
		if ctx.Err() != nil || w.replayFailed {
			return true, nil
		}
		r.b.mark = &spoolMark{spool: key, segment: g.Seq, item: r.index}
		n := r.b.rows()
		s.metrics.PendingRows.Add(float64(n))
		s.limit.addN(n)
		s.writeRange(w, r.b, 0, n, false)
		if crash := s.cfg.Seams.Replayed; crash != nil && crash(g.Seq, r.index) {
			return true, nil // a crash, for tests: nothing after this happens
		}
	}
	if ctx.Err() != nil || w.replayFailed || s.abandon.Err() != nil {
		return true, nil
	}
	if readErr != nil {
		// Its markers stay: should the operator mend the file and
		// put it back, what was written is not written again.
		s.metrics.SpoolCorruptSegments.Inc()
		to, err := s.spool.Quarantine(g)
		if err != nil {
			return true, fmt.Errorf("set a corrupt spool segment aside: %w (%w)", err, readErr)
		}
		s.log.Error("a spool segment is damaged: the records before the damage were written, the rest were not; the file is kept for inspection",
			"file", to, "records_written", len(recs), "err", readErr)
		return false, nil
	}
	if err := s.spool.Remove(g); err != nil {
		return true, fmt.Errorf("remove replayed spool segment: %w", err)
	}
	// Only now: a crash before this leaves markers of a deleted
	// segment, which no other segment can match (its tag is its
	// own), so they are harmless.
	if c, err := s.pool.Acquire(ctx); err == nil {
		_, err = c.Exec(ctx, "DELETE FROM "+pgx.Identifier{s.cfg.Schema, schema.MarkerTable}.Sanitize()+
			" WHERE spool = $1 AND segment = $2", key, g.Seq)
		c.Release()
		if err != nil {
			s.log.Debug("could not delete the markers of a replayed segment", "err", err)
		}
	}
	s.log.Info("replayed a spool segment", "segment", g.Name(), "records", len(recs))
	return false, nil
}
