package sink

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/pginflux/pginflux/internal/budget"
)

// pendingLimit bounds the rows a Sink holds, from the moment a Batcher
// takes a row to the moment it is committed, rejected or dropped. A
// producer over the limit hands its open batches to the writers and waits
// until they have made room: everything between the socket and PostgreSQL
// has a limit, and while PostgreSQL falls behind it is the datagram queue in
// front of the parsers that fills and drops, counted.
//
// Counting is atomic, since it happens for every row; the mutex and the
// condition only serve producers that wait.
type pendingLimit struct {
	n, max atomic.Int64
	mem    *budget.Budget // spent: over the limit too

	mu   sync.Mutex
	cond *sync.Cond
}

func newPendingLimit(max int64) *pendingLimit {
	p := &pendingLimit{}
	p.max.Store(max)
	p.cond = sync.NewCond(&p.mu)
	return p
}

// add counts one more pending row and reports whether the limit is now
// exceeded.
func (p *pendingLimit) add() bool { return p.n.Add(1) > p.max.Load() }

// addN counts n more pending rows without waiting (rows replayed from the
// spool, which were counted out when spooled).
func (p *pendingLimit) addN(n int) { p.n.Add(int64(n)) }

// full reports whether the limit is reached, or the memory budget spent.
func (p *pendingLimit) full() bool { return p.n.Load() >= p.max.Load() || p.mem.Spent() }

// setMax changes the limit; waiters look again.
func (p *pendingLimit) setMax(max int64) {
	p.max.Store(max)
	p.wakeAll()
}

// wait blocks while the limit is exceeded, unless stop reports true (the
// sink is abandoning its work) or ctx ends.
func (p *pendingLimit) wait(ctx context.Context, stop func() bool) {
	if ctx.Done() != nil {
		defer context.AfterFunc(ctx, p.wakeAll)()
	}
	p.mu.Lock()
	for (p.n.Load() > p.max.Load() || p.mem.Spent()) && !stop() && ctx.Err() == nil {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// done counts n rows as no longer pending.
func (p *pendingLimit) done(n int) {
	if p.n.Add(-int64(n)) <= p.max.Load() {
		p.wakeAll()
	}
}

// wakeAll lets every waiter look again. Broadcasting under the lock means
// a waiter has either not yet checked its condition, or is waiting.
func (p *pendingLimit) wakeAll() {
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
}

// batchQueue holds the batches handed to the writers, in order. It has no
// bound of its own: the rows it holds count in pendingLimit, so producers
// hand batches over without waiting for a writer while the pending rows
// are below --max-pending-rows (a writer retrying through an outage does
// not stop the parsers before that), and wait in pendingLimit beyond.
// Safe for concurrent use.
type batchQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []*batch
	head   int
	closed bool
}

// push adds b at the end.
func (q *batchQueue) push(b *batch) {
	q.mu.Lock()
	q.items = append(q.items, b)
	q.mu.Unlock()
	q.cond.Signal()
}

// pop takes the first batch, waiting for one; false once the queue is
// closed and empty.
func (q *batchQueue) pop() (*batch, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.closed {
		q.cond.Wait()
	}
	if q.head == len(q.items) {
		return nil, false
	}
	b := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return b, true
}

// close lets the writers end once the queue is empty.
func (q *batchQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}
