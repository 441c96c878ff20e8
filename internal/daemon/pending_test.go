package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestWriteAnsweredWhilePendingFull: a write request whose rows meet
// --max-pending-rows while PostgreSQL takes nothing (a table locked by
// someone else) is answered 503 within the commit timeout (5 s), not held
// until the table is free; and a second request meanwhile is not stuck
// behind the first. Once the lock goes, the rows added before the answer
// land, and sending the request again (as the 503 asks) stores every
// point once.
func TestWriteAnsweredWhilePendingFull(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--max-pending-rows", "20", "--batch-size", "5").Base
	if a := post(t, nil, base+"/write", []byte("cpu,host=h0 v=0i 1\n")); a.code != http.StatusNoContent {
		t.Fatalf("first write: %d %s", a.code, a.body)
	}

	ctx := t.Context()
	locker, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(context.Background())
	if _, err := locker.Exec(ctx, "LOCK TABLE "+pgx.Identifier{schema, "cpu"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	var body strings.Builder
	for i := range 200 {
		fmt.Fprintf(&body, "cpu,host=h%d v=%di %d\n", i, i, 1000+i)
	}
	type result struct {
		a       answer
		elapsed time.Duration
	}
	answers := make(chan result, 2)
	for range 2 {
		go func() {
			start := time.Now()
			a := post(t, nil, base+"/write", []byte(body.String()))
			answers <- result{a, time.Since(start)}
		}()
	}
	for range 2 {
		select {
		case r := <-answers:
			// 503 after the commit timeout, or at once when the sink
			// was full already (the early check).
			if r.a.code != http.StatusServiceUnavailable || r.elapsed > 15*time.Second {
				t.Errorf("while the table is locked: %d after %v (%s), want 503 within the 5 s commit timeout", r.a.code, r.elapsed, r.a.body)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a write request was not answered within 30 s while the writers could not commit")
		}
	}
	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Held rows land; then the request again, as the 503 asks: every
	// point once (merge mode).
	for deadline := time.Now().Add(30 * time.Second); ; {
		a := post(t, nil, base+"/write", []byte(body.String()))
		if a.code == http.StatusNoContent {
			break
		}
		if a.code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("the request again: %d %s", a.code, a.body)
		}
		time.Sleep(100 * time.Millisecond) // the held rows are being written
	}
	pollRows(t, pool, "SELECT count(*)::text || ' ' || count(DISTINCT (time, series_id))::text FROM "+pgx.Identifier{schema, "cpu"}.Sanitize(), "201 201")
}
