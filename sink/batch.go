package sink

import (
	"context"
	"time"

	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

// batch is rows of one table waiting to be written. It is owned by one
// Batcher until handed over, then by one writer.
//
// In jsonb storage, and for the rejected table, buf holds final binary
// COPY rows. In columns storage it holds rows in the compact form of
// typed.go, encoded for the table when written.
type batch struct {
	measurement string
	rejected    bool      // rows of the rejected table, not of a measurement
	buf         []byte    // rows, back to back
	ends        []int     // ends[i] is where row i ends in buf
	opened      time.Time // when the first row was added

	origins   []Origin // distinct origins, in order
	rowOrigin []uint32 // rowOrigin[i] indexes origins

	// Jsonb storage: each row's nanoseconds beyond its microsecond, which
	// its encoded row does not keep; empty while they are all 0 (see
	// appendJSONB).
	subMicros []uint16

	// Columns storage: the batch's tag and field keys.
	keys     []schema.BatchKey
	tagIDs   map[string]uint32
	fieldIDs map[string]uint32
	lastSeq  []uint32 // key ids of the last line, in its order

	// mark names the spool record the batch was replayed from, or nil.
	mark *spoolMark

	// full says the batch has its rows, and waits only for the next line
	// that is not of lastPoint (see Batcher.add).
	full      bool
	lastPoint pointID

	// commitID names the batch in commit markers (see commitTable), once
	// it has been tried; marked says an attempt wrote a marker in its
	// transaction, and uncertain that an attempt failed in a way that may
	// have come after its commit: the next one looks for the marker.
	commitID  int64
	marked    bool
	uncertain bool
	// parkable says a writer took the batch from the queue, where it can
	// go back while its table's rows are held; attempts is how many times
	// it was tried then (see park).
	parkable bool
	attempts int

	// charged is what the batch's buffers have drawn from the memory
	// budget (see Sink.charge).
	charged int64

	// Tickets of the rows, when any row has one (see Ticket).
	tickets   []*Ticket
	rowTicket []int32 // rowTicket[i] indexes tickets, or -1
}

// idleBatches keeps a sink's batches for reuse, a few: after a burst (an
// outage, an overload) the batches it held go back to the garbage
// collector instead of pinning their buffers, as a sync.Pool would until
// enough allocation makes the collector run. Safe for concurrent use.
type idleBatches struct {
	ch  chan *batch
	mem *budget.Account // given back what a batch drew
}

func newIdleBatches(mem *budget.Account) *idleBatches {
	return &idleBatches{ch: make(chan *batch, 16), mem: mem}
}

// get returns an empty batch.
func (ib *idleBatches) get() *batch {
	select {
	case b := <-ib.ch:
		return b
	default:
		return new(batch)
	}
}

func (b *batch) rows() int { return len(b.ends) }

// rowBytes returns the encoded rows lo..hi-1.
func (b *batch) rowBytes(lo, hi int) []byte {
	start := 0
	if lo > 0 {
		start = b.ends[lo-1]
	}
	return b.buf[start:b.ends[hi-1]]
}

func (b *batch) origin(row int) Origin { return b.origins[b.rowOrigin[row]] }

func (b *batch) addOrigin(o Origin) {
	if n := len(b.origins); n == 0 || b.origins[n-1] != o {
		b.origins = append(b.origins, o)
	}
	b.rowOrigin = append(b.rowOrigin, uint32(len(b.origins)-1))
}

// maxPooledBatch keeps an outsized batch (a burst of huge lines) from
// pinning its memory among the idle ones.
const maxPooledBatch = 8 << 20

// put empties b and keeps it for reuse, unless outsized or enough are
// kept already.
func (ib *idleBatches) put(b *batch) {
	ib.mem.Give(b.charged)
	b.charged = 0
	if cap(b.buf) > maxPooledBatch {
		return
	}
	b.measurement, b.rejected, b.mark = "", false, nil
	b.commitID, b.marked, b.uncertain = 0, false, false
	b.parkable, b.attempts = false, 0
	b.full = false
	b.buf = b.buf[:0]
	b.ends = b.ends[:0]
	clear(b.origins)
	b.origins = b.origins[:0]
	b.rowOrigin = b.rowOrigin[:0]
	b.subMicros = b.subMicros[:0]
	b.keys = b.keys[:0]
	b.lastSeq = b.lastSeq[:0]
	clear(b.tagIDs)
	clear(b.fieldIDs)
	clear(b.tickets)
	b.tickets = b.tickets[:0]
	b.rowTicket = b.rowTicket[:0]
	select {
	case ib.ch <- b:
	default:
	}
}

// Batcher gathers rows per table for one producer and hands full or old
// batches to the sink's writers. It is not safe for concurrent use: each
// producer goroutine (a parser) owns one, and every producer must Flush its
// Batcher before the sink is closed.
type Batcher struct {
	s        *Sink
	open     map[string]*batch // by measurement
	rejected *batch            // lines for the rejected table
}

// NewBatcher returns a Batcher that writes through s.
func (s *Sink) NewBatcher() *Batcher {
	return &Batcher{s: s, open: make(map[string]*batch)}
}

// Add encodes p into the batch of its measurement's table; p is not
// retained. A batch that reaches the batch size is handed to the writers
// at once. While the sink holds --max-pending-rows rows, Add waits: that
// wait is the backpressure that makes a producer's own queue fill up.
func (bt *Batcher) Add(p *parse.Point, o Origin) {
	if bt.addRow(p, o, nil) {
		bt.waitRoom(context.Background())
	}
}

// addRow is Add without the wait: it reports whether the sink now holds
// more than its limit of rows, when the caller must call waitRoom (or
// hand its batches over and wait itself).
func (bt *Batcher) addRow(p *parse.Point, o Origin, t *Ticket) (over bool) {
	if bt.s.rejectedName != "" && string(p.Measurement) == bt.s.rejectedName {
		var lw lineWriter
		return bt.rejectRow(pointLine(&lw, p), string(p.Measurement), ReasonReservedName,
			"the measurement has the name of the rejected table", o)
	}
	b, ok := bt.open[string(p.Measurement)]
	if ok && b.full && (b.rows() >= 2*int(bt.s.batchSize.Load()) || !b.lastPoint.is(p)) {
		// Full, and p starts another point: hand it over.
		delete(bt.open, b.measurement)
		bt.s.submit(b)
		ok = false
	}
	if !ok {
		b = bt.s.idle.get()
		b.measurement = string(p.Measurement)
		b.opened = time.Now()
		bt.open[b.measurement] = b
	}
	if bt.s.cfg.Storage == StorageColumns {
		b.appendTypedRow(p)
	} else {
		b.appendJSONB(p)
	}
	b.ends = append(b.ends, len(b.buf))
	b.addOrigin(o)
	b.addTicket(t, false)
	spent := bt.s.charge(b)
	if !b.full && b.rows() >= int(bt.s.batchSize.Load()) {
		// Handed over with the next line that is not of this point: the
		// lines of a point (a sender splitting a wide point) stay in one
		// batch, merged in memory, rather than make the next batch hit
		// a point already stored.
		b.full = true
		b.lastPoint = pointOf(p)
	}
	return bt.pending() || spent
}

// charge draws the growth of b's buffers since the last charge from the
// memory budget, and reports whether the budget is now spent. Buffers
// grow by doubling, so this draws seldom.
func (s *Sink) charge(b *batch) (spent bool) {
	n := int64(cap(b.buf)) + 8*int64(cap(b.ends)) + 4*int64(cap(b.rowOrigin)+cap(b.rowTicket)) + 2*int64(cap(b.subMicros))
	if n > b.charged {
		spent = s.cfg.Memory.Take(n - b.charged)
		b.charged = n
	}
	return spent || s.limit.mem.Spent()
}

// pointID tells the point of a line apart from the next ones: its time
// (as stored, in microseconds) and a hash of its tags in line order. Two
// lines of one point in another tag order look like two points, which
// costs a merge in PostgreSQL, never a wrong row.
type pointID struct {
	micros int64
	tags   uint64
}

func pointOf(p *parse.Point) pointID {
	h := uint64(14695981039346656037) // FNV-1a
	for i := range p.Tags {
		for _, s := range [2][]byte{p.Tags[i].Key, p.Tags[i].Value} {
			for _, c := range s {
				h = (h ^ uint64(c)) * 1099511628211
			}
			h = (h ^ 0xff) * 1099511628211
		}
	}
	return pointID{floorMicros(p.Time), h}
}

func (id pointID) is(p *parse.Point) bool {
	return floorMicros(p.Time) == id.micros && pointOf(p) == id
}

// pending counts the row just added, and reports whether the sink now
// holds more than its limit of rows.
func (bt *Batcher) pending() bool {
	bt.s.metrics.PendingRows.Inc()
	return bt.s.limit.add()
}

// waitRoom hands over what this Batcher holds, so that the writers can
// make room, and waits while the sink holds its limit of rows, or until
// ctx ends or the sink abandons its work.
func (bt *Batcher) waitRoom(ctx context.Context) {
	bt.Flush()
	bt.s.waitRoom(ctx)
}

// waitRoom waits while the sink holds its limit of rows, or until ctx ends
// or the sink abandons its work.
func (s *Sink) waitRoom(ctx context.Context) {
	s.limit.wait(ctx, func() bool { return s.abandon.Err() != nil })
}

// Reject records a line that cannot be stored as a row (it did not parse,
// say) in the rejected table, and counts it by reason. line is copied.
// Without a rejected table it is only counted.
func (bt *Batcher) Reject(line []byte, measurement, reason, detail string, o Origin) {
	if bt.rejectRow(line, measurement, reason, detail, o) {
		bt.waitRoom(context.Background())
	}
}

// rejectRow is Reject without the wait (see addRow).
func (bt *Batcher) rejectRow(line []byte, measurement, reason, detail string, o Origin) (over bool) {
	bt.s.metrics.Rejected.WithLabelValues(reason).Inc()
	if bt.s.rejectedName == "" {
		return false
	}
	b := bt.rejected
	if b == nil {
		b = bt.s.idle.get()
		b.rejected = true
		b.opened = time.Now()
		bt.rejected = b
	}
	b.buf = appendDeadLetter(b.buf, &deadLetter{origin: o, measurement: measurement, reason: reason, detail: detail, line: line})
	b.ends = append(b.ends, len(b.buf))
	b.addOrigin(o)
	b.addTicket(nil, false)
	spent := bt.s.charge(b)
	if b.rows() >= int(bt.s.batchSize.Load()) {
		bt.rejected = nil
		bt.s.submit(b)
	}
	return bt.pending() || spent
}

// FlushDue hands over the batches that were opened a flush interval or
// more before now, and the full ones.
func (bt *Batcher) FlushDue(now time.Time) {
	for m, b := range bt.open {
		if b.full || now.Sub(b.opened) >= time.Duration(bt.s.flushInterval.Load()) {
			delete(bt.open, m)
			bt.s.submit(b)
		}
	}
	if b := bt.rejected; b != nil && now.Sub(b.opened) >= time.Duration(bt.s.flushInterval.Load()) {
		bt.rejected = nil
		bt.s.submit(b)
	}
}

// Flush hands over every open batch.
func (bt *Batcher) Flush() {
	for m, b := range bt.open {
		delete(bt.open, m)
		bt.s.submit(b)
	}
	if b := bt.rejected; b != nil {
		bt.rejected = nil
		bt.s.submit(b)
	}
}

// pointLine writes p as a line of line protocol.
func pointLine(lw *lineWriter, p *parse.Point) []byte {
	lw.start(string(p.Measurement))
	for i := range p.Tags {
		lw.tag(p.Tags[i].Key, p.Tags[i].Value)
	}
	for i := range p.Fields {
		f := &p.Fields[i]
		lw.field(i == 0, f.Key, value{kind: f.Kind, num: f.Num, str: f.Str})
	}
	return lw.end(p.Time)
}
