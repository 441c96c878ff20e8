package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pginflux/pginflux/internal/plural"
	"github.com/pginflux/pginflux/parse"
)

// Ticket follows the rows of one request (an HTTP /write, say) to their
// end: committed in their table, kept in the rejected table, or lost.
// Rows of many tickets share batches; each ticket only waits for its own.
// Safe for concurrent use.
type Ticket struct {
	mu       sync.Mutex
	rows     int // added and not yet settled
	sealed   bool
	done     chan struct{}
	rejected int // settled into the rejected table
	lost     int // dropped for good
	lostWhy  string
}

// ErrPermissionDenied: PostgreSQL refused rows of the ticket for a
// privilege the sink's role lacks (see Config.DeniedRefuses).
var ErrPermissionDenied = errors.New("permission denied")

// deniedPrefix starts the drop reason of rows refused so, in a ticket.
const deniedPrefix = "denied: "

// NewTicket returns a ticket with no rows.
func NewTicket() *Ticket { return &Ticket{done: make(chan struct{})} }

func (t *Ticket) add() {
	t.mu.Lock()
	t.rows++
	t.mu.Unlock()
}

// settle counts one row as ended: rejected says it went to the rejected
// table, lost (a drop reason) that it is gone.
func (t *Ticket) settle(rejected bool, lost string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows--
	switch {
	case lost != "":
		t.lost++
		t.lostWhy = lost
	case rejected:
		t.rejected++
	}
	if t.sealed && t.rows == 0 {
		close(t.done)
	}
}

// Seal says no more rows will be added; Wait can end from now on.
func (t *Ticket) Seal() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sealed {
		return
	}
	t.sealed = true
	if t.rows == 0 {
		close(t.done)
	}
}

// Wait blocks until every row of the sealed ticket has ended, or ctx does.
// It returns how many rows went to the rejected table, and an error when
// any row was lost or ctx ended first.
func (t *Ticket) Wait(ctx context.Context) (rejected int, err error) {
	select {
	case <-t.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if why, ok := strings.CutPrefix(t.lostWhy, deniedPrefix); ok && t.lost > 0 {
		return t.rejected, fmt.Errorf("%w: %s not written: %s", ErrPermissionDenied, plural.Of(t.lost, "row was", "rows were"), why)
	}
	if t.lost > 0 {
		return t.rejected, fmt.Errorf("%s not written (%s)", plural.Of(t.lost, "row was", "rows were"), t.lostWhy)
	}
	return t.rejected, nil
}

// settleRows ends the tickets of rows lo..hi-1 of b.
func (b *batch) settleRows(lo, hi int, rejected bool, lost string) {
	if len(b.tickets) == 0 {
		return
	}
	for r := lo; r < hi; r++ {
		if i := b.rowTicket[r]; i >= 0 {
			b.tickets[i].settle(rejected, lost)
		}
	}
}

// addTicket records the ticket of the row just added (nil for none). A row
// moved from another batch (moved) was counted by its ticket already.
func (b *batch) addTicket(t *Ticket, moved bool) {
	if t == nil {
		if len(b.tickets) > 0 {
			b.rowTicket = append(b.rowTicket, -1)
		}
		return
	}
	if len(b.tickets) == 0 {
		// Rows added before the first ticket have none.
		for range b.rows() - 1 {
			b.rowTicket = append(b.rowTicket, -1)
		}
	}
	if n := len(b.tickets); n == 0 || b.tickets[n-1] != t {
		b.tickets = append(b.tickets, t)
	}
	if !moved {
		t.add()
	}
	b.rowTicket = append(b.rowTicket, int32(len(b.tickets)-1))
}

// ticket returns the ticket of row r, or nil.
func (b *batch) ticket(r int) *Ticket {
	if len(b.tickets) == 0 || b.rowTicket[r] < 0 {
		return nil
	}
	return b.tickets[b.rowTicket[r]]
}

// Shared is a Batcher for many concurrent producers, such as HTTP requests
// and TCP connections, with group commit: open batches are handed to the
// writers as soon as no producer is adding rows (or when full, or after
// the flush interval), so that a lone request waits for its commit only,
// while concurrent ones share batches. Safe for concurrent use.
type Shared struct {
	mu     sync.Mutex
	bt     *Batcher
	active int
	stop   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
}

// NewShared returns a Shared batcher writing through s. Close it before
// the sink.
func (s *Sink) NewShared() *Shared {
	sh := &Shared{bt: s.NewBatcher(), stop: make(chan struct{})}
	sh.wg.Go(func() {
		tick := time.NewTicker(s.FlushCheckEvery())
		defer tick.Stop()
		for {
			select {
			case now := <-tick.C:
				sh.mu.Lock()
				sh.bt.FlushDue(now)
				sh.mu.Unlock()
				tick.Reset(s.FlushCheckEvery())
			case <-sh.stop:
				return
			}
		}
	})
	return sh
}

// Producer is one producer's turn at a Shared batcher (a request, or what
// a connection read at once). Not safe for concurrent use.
type Producer struct {
	sh  *Shared
	ctx context.Context
}

// Begin starts a turn. Every Begin needs its End.
func (sh *Shared) Begin() *Producer { return sh.BeginContext(context.Background()) }

// BeginContext starts a turn whose waits for room (while the sink holds
// --max-pending-rows rows) end with ctx: Add and Reject then return at
// once, having added their row, and the caller, seeing ctx ended, stops.
// Every BeginContext needs its End.
func (sh *Shared) BeginContext(ctx context.Context) *Producer {
	sh.mu.Lock()
	sh.active++
	sh.mu.Unlock()
	return &Producer{sh: sh, ctx: ctx}
}

// Add adds p, following it with t (nil for none); p is not retained.
// While the sink holds its limit of rows it waits, without holding up the
// other producers' turns. It returns the turn's context's error when that
// wait was cut short (p is added all the same): the caller should stop
// adding.
func (pr *Producer) Add(p *parse.Point, o Origin, t *Ticket) error {
	pr.sh.mu.Lock()
	over := pr.sh.bt.addRow(p, o, t)
	return pr.room(over)
}

// Reject records a line that cannot be stored as a row (see
// Batcher.Reject); it returns what Add returns.
func (pr *Producer) Reject(line []byte, measurement, reason, detail string, o Origin) error {
	pr.sh.mu.Lock()
	over := pr.sh.bt.rejectRow(line, measurement, reason, detail, o)
	return pr.room(over)
}

// room ends an Add or Reject, with the Shared's lock held: over the limit,
// it hands the open batches over, lets the lock go, and waits. A turn
// whose context has ended neither hands over (End will) nor waits.
func (pr *Producer) room(over bool) error {
	if !over {
		pr.sh.mu.Unlock()
		return nil
	}
	if err := pr.ctx.Err(); err != nil {
		pr.sh.mu.Unlock()
		return err
	}
	pr.sh.bt.Flush()
	pr.sh.mu.Unlock()
	pr.sh.bt.s.waitRoom(pr.ctx)
	return pr.ctx.Err()
}

// End ends the turn; the last producer out hands every open batch over.
func (pr *Producer) End() {
	sh := pr.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.active--
	if sh.active == 0 {
		sh.bt.Flush()
	}
}

// Close hands over what is open and stops the flush ticker. No producer may
// be active.
func (sh *Shared) Close() {
	if sh.closed.Swap(true) {
		return
	}
	close(sh.stop)
	sh.wg.Wait()
	sh.mu.Lock()
	sh.bt.Flush()
	sh.mu.Unlock()
}

// Saturated reports whether the sink holds its limit of pending rows, and
// whether the database is known to be unreachable: a transport that can
// say "try later" (HTTP 429/503) should.
func (s *Sink) Saturated() (full, databaseDown bool) {
	full = s.limit.full()
	// With room in the spool, rows are safe while the database is away.
	spoolRoom := s.spool != nil && s.spool.Bytes() < s.spool.MaxBytes()
	return full, s.down.Load() && !spoolRoom
}
