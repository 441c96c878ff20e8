package sink

import (
	"sync"
	"sync/atomic"
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

// full reports whether the limit is reached.
func (p *pendingLimit) full() bool { return p.n.Load() >= p.max.Load() }

// setMax changes the limit; waiters look again.
func (p *pendingLimit) setMax(max int64) {
	p.max.Store(max)
	p.wakeAll()
}

// wait blocks while the limit is exceeded, unless stop reports true (the
// sink is abandoning its work).
func (p *pendingLimit) wait(stop func() bool) {
	p.mu.Lock()
	for p.n.Load() > p.max.Load() && !stop() {
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
