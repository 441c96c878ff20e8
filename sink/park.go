package sink

import (
	"sync"
	"time"
)

// A batch whose rows PostgreSQL refuses for a reason of its table's (a
// privilege, a setting: not the database away, see held.go) is parked
// rather than retried in place: its writer goes on with other batches,
// and the batch goes back to the writers' queue after the backoff. So one
// table's trouble holds that table's rows, not every table's behind them.
// Parked rows stay pending (--max-pending-rows) and their tickets wait.
//
// At Close every parked batch goes back to the queue at once, before the
// queue closes, and from then on nothing is parked: held rows are retried
// in place until written or, at the shutdown timeout, spooled or
// abandoned and counted, as before.
type parking struct {
	mu      sync.Mutex
	closing bool
	timers  map[*batch]*time.Timer
}

// park hands b back to the queue after the pause for its attempt, and
// reports whether it did; false once the sink is closing.
func (s *Sink) park(b *batch, attempt int) bool {
	p := &s.parking
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	if p.timers == nil {
		p.timers = make(map[*batch]*time.Timer)
	}
	b.attempts = attempt
	p.timers[b] = time.AfterFunc(backoff(attempt), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, ok := p.timers[b]; ok {
			delete(p.timers, b)
			s.queue.push(b)
		}
	})
	s.metrics.Retries.Inc()
	return true
}

// unparkAll stops parking and hands every parked batch back to the queue
// now. Call it before the queue closes.
func (s *Sink) unparkAll() {
	p := &s.parking
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closing = true
	for b, t := range p.timers {
		t.Stop()
		s.queue.push(b)
	}
	clear(p.timers)
}
