package budget

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestBudget: admission fills three quarters of the budget and refuses
// beyond, counted; what is in hand is always taken, and says when the
// budget is spent; a waiter goes on once enough is given back, and so do
// the wakers; the metrics say all of it.
func TestBudget(t *testing.T) {
	t.Parallel()
	b := New(1000)
	queue, rows := b.Account("udp_queue"), b.Account("rows")
	if b.Account("rows") != rows {
		t.Error("a second account of one name")
	}
	if !queue.Admit(700) || queue.Admit(100) || !queue.Admittable(50) || queue.Admittable(51) {
		t.Errorf("admission: used %d, want 700 and 750 the most admitted", b.Used())
	}
	if spent := rows.Take(200); spent || b.Spent() {
		t.Error("900 of 1000 taken: spent")
	}
	var woken atomic.Int32
	b.OnFree(func() { woken.Add(1) })
	if spent := rows.Take(200); !spent || !b.Spent() {
		t.Error("1100 of 1000 taken: not spent")
	}
	done := make(chan struct{})
	go func() {
		b.Wait(context.Background(), nil)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Wait returned while the budget was spent")
	case <-time.After(50 * time.Millisecond):
	}
	rows.Give(400)
	<-done
	if woken.Load() == 0 {
		t.Error("giving back did not wake the wakers")
	}

	want := `
# HELP pginflux_memory_refused_total Draws refused because the memory budget was spent: a datagram dropped, a write request answered 429/503 before its body was read.
# TYPE pginflux_memory_refused_total counter
pginflux_memory_refused_total{buffer="rows"} 0
pginflux_memory_refused_total{buffer="udp_queue"} 1
# HELP pginflux_memory_budget_bytes The memory budget (--max-memory) that every buffer of received data draws from.
# TYPE pginflux_memory_budget_bytes gauge
pginflux_memory_budget_bytes 1000
`
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pginflux_memory_refused_total", "pginflux_memory_budget_bytes"); err != nil {
		t.Error(err)
	}
	if got := rows.used.Load(); got != 0 {
		t.Errorf("rows used: got %v, want 0", got)
	}
	queue.Give(700)
	if b.Used() != 0 {
		t.Errorf("all given back: %d used", b.Used())
	}

	// A waiter whose context ends goes on.
	rows.Take(2000)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	b.Wait(ctx, nil)
	rows.Give(2000)
}

// TestNoBudget: a nil budget and its accounts draw nothing and always fit.
func TestNoBudget(t *testing.T) {
	t.Parallel()
	var b *Budget
	a := b.Account("rows")
	if !a.Admit(1<<40) || a.Take(1<<40) || b.Spent() || b.Used() != 0 || b.Max() != 0 || a.Budget() != nil {
		t.Error("a nil budget drew something")
	}
	a.Give(1 << 40)
	b.Wait(context.Background(), nil)
}
