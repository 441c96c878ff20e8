// Package budget is pginflux's one memory budget: the bytes that every
// buffer of received data draws from — the datagram queue, the rows
// between parsing and commit, HTTP requests and TCP connections, whole
// bodies kept for an all-or-nothing write — so that what clients send,
// however much and however fast, is bounded by one number (--max-memory).
//
// Each kind of buffer draws through an Account, which names it in the
// metrics. Two ways to draw:
//
//   - Admit, for what can be refused before anything is read (a request,
//     a datagram): it takes the bytes only if they fit, within the share
//     left to admission (Admittable) so that rows already received always
//     find room;
//   - Take, for what is already in hand (a parsed row): it always takes,
//     and says whether the budget is now spent; the caller then waits
//     (Wait) until other buffers give bytes back.
package budget

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// admitShare is the part of the budget that Admit may fill, in
// quarters: the rest is kept for rows already received, so that what
// admitted requests and queued datagrams hold can never keep their own
// rows from being added and written.
const admitShare = 3

// Budget is a memory budget in bytes. A nil *Budget is no budget: every
// draw fits. Safe for concurrent use.
type Budget struct {
	max  atomic.Int64
	used atomic.Int64

	mu       sync.Mutex
	cond     *sync.Cond
	accounts []*Account
	wakers   []func()
}

// New returns a budget of max bytes.
func New(max int64) *Budget {
	b := &Budget{}
	b.max.Store(max)
	b.cond = sync.NewCond(&b.mu)
	return b
}

// Max returns the budget's size in bytes, 0 for no budget.
func (b *Budget) Max() int64 {
	if b == nil {
		return 0
	}
	return b.max.Load()
}

// SetMax changes the budget's size; waiters look again.
func (b *Budget) SetMax(max int64) {
	b.max.Store(max)
	b.wakeAll()
}

// Used returns the bytes drawn now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Spent reports whether more is drawn than the budget holds.
func (b *Budget) Spent() bool { return b != nil && b.used.Load() > b.max.Load() }

// OnFree registers f, called (without locks held) whenever bytes are given
// back while the budget was spent: a waiter of its own kind, such as a
// sink's producers waiting for room, looks again.
func (b *Budget) OnFree(f func()) {
	b.mu.Lock()
	b.wakers = append(b.wakers, f)
	b.mu.Unlock()
}

// Wait blocks while the budget is spent, until ctx ends or stop reports
// true.
func (b *Budget) Wait(ctx context.Context, stop func() bool) {
	if b == nil {
		return
	}
	if ctx.Done() != nil {
		defer context.AfterFunc(ctx, b.wakeAll)()
	}
	b.mu.Lock()
	for b.Spent() && ctx.Err() == nil && (stop == nil || !stop()) {
		b.cond.Wait()
	}
	b.mu.Unlock()
}

func (b *Budget) wakeAll() {
	b.mu.Lock()
	b.cond.Broadcast()
	wakers := b.wakers
	b.mu.Unlock()
	for _, f := range wakers {
		f()
	}
}

// Account is one kind of buffer's draw on a budget. A nil *Account, or
// one of a nil budget, draws nothing and always fits. Safe for concurrent
// use.
type Account struct {
	b       *Budget
	name    string
	used    atomic.Int64
	refused atomic.Int64
}

// Account returns the account of the buffers called name (a metric label:
// "udp_queue", "rows", "http", "tcp"), the same one for the same name.
func (b *Budget) Account(name string) *Account {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.accounts {
		if a.name == name {
			return a
		}
	}
	a := &Account{b: b, name: name}
	b.accounts = append(b.accounts, a)
	return a
}

// Admit takes n bytes if they fit in the share of the budget left to
// admission, and reports whether it did; a refusal is counted.
func (a *Account) Admit(n int64) bool {
	if a == nil {
		return true
	}
	limit := a.b.max.Load() / 4 * admitShare
	if a.b.used.Add(n) > limit {
		a.b.used.Add(-n)
		a.refused.Add(1)
		return false
	}
	a.used.Add(n)
	return true
}

// Admittable reports whether n bytes would be admitted now.
func (a *Account) Admittable(n int64) bool {
	return a == nil || a.b.used.Load()+n <= a.b.max.Load()/4*admitShare
}

// Take takes n bytes, whether they fit or not, and reports whether the
// budget is now spent: the caller should then wait (Budget.Wait) before
// taking more.
func (a *Account) Take(n int64) (spent bool) {
	if a == nil {
		return false
	}
	a.used.Add(n)
	return a.b.used.Add(n) > a.b.max.Load()
}

// Give gives back n bytes taken or admitted.
func (a *Account) Give(n int64) {
	if a == nil || n == 0 {
		return
	}
	a.used.Add(-n)
	if a.b.used.Add(-n)+n > a.b.max.Load()/4*admitShare {
		// It was spent, or near: whoever waits may go on.
		a.b.wakeAll()
	}
}

// Budget returns the budget drawn on (nil for none).
func (a *Account) Budget() *Budget {
	if a == nil {
		return nil
	}
	return a.b
}

// Collector returns the budget's metrics: its size, and the bytes drawn
// and the refusals by account.
func (b *Budget) Collector() prometheus.Collector { return collector{b} }

var (
	maxDesc = prometheus.NewDesc("pginflux_memory_budget_bytes",
		"The memory budget (--max-memory) that every buffer of received data draws from.", nil, nil)
	usedDesc = prometheus.NewDesc("pginflux_memory_used_bytes",
		"Bytes drawn from the memory budget, by buffer: udp_queue (datagrams waiting for a parser), rows (rows between parsing and commit), http (write requests being read), http_whole (bodies kept whole for accept_partial=false), tcp (connections being read).",
		[]string{"buffer"}, nil)
	refusedDesc = prometheus.NewDesc("pginflux_memory_refused_total",
		"Draws refused because the memory budget was spent: a datagram dropped, a write request answered 429/503 before its body was read.",
		[]string{"buffer"}, nil)
)

type collector struct{ b *Budget }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- maxDesc
	ch <- usedDesc
	ch <- refusedDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(maxDesc, prometheus.GaugeValue, float64(c.b.max.Load()))
	c.b.mu.Lock()
	accounts := c.b.accounts
	c.b.mu.Unlock()
	for _, a := range accounts {
		ch <- prometheus.MustNewConstMetric(usedDesc, prometheus.GaugeValue, float64(a.used.Load()), a.name)
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(a.refused.Load()), a.name)
	}
}
