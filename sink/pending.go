package sink

import "sync"

// pendingLimit bounds the rows a Sink holds, from the moment a Batcher
// takes a row to the moment it is committed, rejected or dropped. A
// producer over the limit hands its open batches to the writers and waits
// until they have made room: everything between the socket and PostgreSQL
// has a limit, and while PostgreSQL falls behind it is the datagram queue in
// front of the parsers that fills and drops, counted.
type pendingLimit struct {
	max int64

	mu   sync.Mutex
	cond *sync.Cond
	n    int64 // guarded by mu
}

func newPendingLimit(max int64) *pendingLimit {
	p := &pendingLimit{max: max}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// add counts one more pending row and reports whether the limit is now
// exceeded.
func (p *pendingLimit) add() bool {
	p.mu.Lock()
	p.n++
	over := p.n > p.max
	p.mu.Unlock()
	return over
}

// addN counts n more pending rows without waiting (rows replayed from the
// spool, which were counted out when spooled).
func (p *pendingLimit) addN(n int) {
	p.mu.Lock()
	p.n += int64(n)
	p.mu.Unlock()
}

// wait blocks while the limit is exceeded, unless stop reports true (the
// sink is abandoning its work).
func (p *pendingLimit) wait(stop func() bool) {
	p.mu.Lock()
	for p.n > p.max && !stop() {
		p.cond.Wait()
	}
	p.mu.Unlock()
}

// done counts n rows as no longer pending.
func (p *pendingLimit) done(n int) {
	p.mu.Lock()
	p.n -= int64(n)
	wake := p.n <= p.max
	p.mu.Unlock()
	if wake {
		p.cond.Broadcast()
	}
}

// wakeAll lets every waiter look at stop again. Broadcasting under the
// lock means a waiter has either not yet checked stop, or is waiting.
func (p *pendingLimit) wakeAll() {
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
}
