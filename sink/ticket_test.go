package sink

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

// TestSharedTickets: concurrent requests share batches, each waits for its
// own rows only, and a lone request does not wait for the flush interval
// (an hour here): the last producer out hands the batches over.
func TestSharedTickets(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 2, RejectedTable: "pginflux_rejected"}, NewMetrics(nil), quiet)
	sh := s.NewShared()
	var wg sync.WaitGroup
	for k := range 4 {
		wg.Go(func() {
			tk := NewTicket()
			pr := sh.Begin()
			for i := range 100 {
				pr.Add(dbtest.Line(t, fmt.Sprintf("req,k=k%d v=%di %d", k, i, (k*100+i+1)*1000)), origin, tk)
			}
			if k == 3 {
				pr.Add(dbtest.Line(t, `req,k=k3 v="oops" 999999000`), origin, tk)
			}
			pr.End()
			tk.Seal()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			rejected, err := tk.Wait(ctx)
			if err != nil {
				t.Errorf("request %d: %v", k, err)
				return
			}
			if want := map[bool]int{true: 1, false: 0}[k == 3]; rejected != want {
				t.Errorf("request %d: got %d rejected, want %d", k, rejected, want)
			}
			// Committed means visible now.
			var n int
			if err := pool.QueryRow(t.Context(), fmt.Sprintf(`SELECT count(*) FROM %q.req WHERE k = 'k%d'`, schema, k)).Scan(&n); err != nil {
				t.Error(err)
			} else if n != 100+map[bool]int{true: 1, false: 0}[k == 3] {
				t.Errorf("request %d: got %d rows visible after Wait", k, n)
			}
		})
	}
	wg.Wait()
	sh.Close()
	closeSink(t, s)
}

// TestTicketLost: rows that are abandoned make Wait fail.
func TestTicketLost(t *testing.T) {
	t.Parallel()
	pool := pgtest.Unreachable(t)
	s := New(pool, Config{Schema: "x", BatchSize: 10, FlushInterval: time.Hour, Writers: 1}, NewMetrics(nil), quiet)
	sh := s.NewShared()
	tk := NewTicket()
	pr := sh.Begin()
	for i := range 5 {
		pr.Add(pt("lost", 1, int64(i)), origin, tk)
	}
	pr.End()
	tk.Seal()
	if full, down := s.Saturated(); full {
		t.Errorf("got full %v down %v, want not full", full, down)
	}
	dbtest.WaitFor(t, func() bool { _, down := s.Saturated(); return down })
	s.Abandon()
	if _, err := tk.Wait(t.Context()); err == nil {
		t.Error("got no error for abandoned rows")
	}
	sh.Close()
	s.Close(t.Context())
}

// TestTicketEmpty: a request without rows is done at once.
func TestTicketEmpty(t *testing.T) {
	t.Parallel()
	tk := NewTicket()
	tk.Seal()
	if _, err := tk.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestSetLimits: a smaller batch size set while running takes effect for
// the open batch: it is handed over with the next line of another point.
func TestSetLimits(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1}, NewMetrics(nil), quiet)
	b := s.NewBatcher()
	s.SetLimits(5, 0, 0)
	for i := range 6 {
		b.Add(pt("reloaded", 1, int64(i)*1000), origin)
	}
	dbtest.WaitFor(t, func() bool { return dbtest.TryCount(t, pool, schema, "reloaded") == 5 })
	b.Flush()
	closeSink(t, s)
}

// TestProducerStopsWhenContextEnds: a turn whose context has ended (a
// request past its commit timeout) is told so by the first Add that finds
// the sink at --max-pending-rows, instead of adding row after row past
// the limit, each handed over as a batch of its own.
func TestProducerStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	s := New(pgtest.Unreachable(t), Config{Schema: "s", Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1,
		MaxPendingRows: 10, RejectedTable: "pginflux_rejected"}, NewMetrics(nil), quiet)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the database is unreachable: abandon at once
		s.Close(ctx)
	})
	sh := s.NewShared()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	pr := sh.BeginContext(ctx)
	added := 0
	var err error
	for i := range 1000 {
		added++
		if err = pr.Add(dbtest.Line(t, fmt.Sprintf("m v=%di %d", i, (i+1)*1000)), origin, nil); err != nil {
			break
		}
	}
	pr.End()
	sh.Close()
	if err != context.Canceled || added != 11 {
		t.Errorf("Add returned %v after %d rows, want context.Canceled at the 11th (the limit is 10)", err, added)
	}
}
