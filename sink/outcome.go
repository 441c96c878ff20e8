package sink

import "time"

// What becomes of rows that leave a writer: committed, refused (to the
// rejected table), spooled, dropped or abandoned. Each is settled once:
// no longer pending.

// Spooled returns how many rows this sink put in its spool, and how many
// bytes the spool holds now, rows not yet replayed: both 0 without a
// spool.
func (s *Sink) Spooled() (rows, bytes int64) {
	if s.spool == nil {
		return 0, 0
	}
	return s.spool.Stats()
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
	ok, err := s.spool.Append(encodeBatch(nil, b, lo, hi), hi-lo)
	if err != nil {
		if s.spoolLog.allow() {
			s.log.Error("cannot write to the spool; holding rows in memory (logged at most every 10s, counted in pginflux_sink_spool_append_errors_total)", "err", err)
		}
		return false
	}
	if !ok {
		if s.rejectLog.allow() {
			s.log.Warn("the spool is full; holding rows in memory instead", "bytes", s.spool.Bytes())
		}
		return false
	}
	n := hi - lo
	s.settled(n)
	b.settleRows(lo, hi, false, "")
	s.metrics.SpooledRows.Add(float64(n))
	s.metrics.SpoolBytes.Set(float64(s.spool.Bytes()))
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
