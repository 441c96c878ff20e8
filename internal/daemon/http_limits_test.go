package daemon_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/ingest/httpapi"
	"github.com/pginflux/pginflux/internal/daemon"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// The bounds of HTTP writes: what a client is answered while pginflux
// holds --max-pending-rows rows or the commit timeout passes, while it
// stops, and the memory slow clients may take.

// TestWriteSaturated: while the sink holds --max-pending-rows rows not yet
// committed, a request is refused before its body is read: 429 for v2
// clients, 503 for v1 clients (Telegraf's influxdb output drops a batch
// answered 4xx), both with Retry-After. The request holding the rows gets
// its 204 once they are committed.
func TestWriteSaturated(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema, "--flush-interval", "1h", "--max-pending-rows", "1").Base
	if a := post(t, nil, base+"/write", []byte("sat v=1i 1000\n")); a.code != http.StatusNoContent {
		t.Fatalf("got %d %q", a.code, a.body)
	}
	release := lockTable(t, pool, schema, "sat")
	held := make(chan answer, 1)
	go func() { a, _ := tryPost(t.Context(), nil, base+"/write", []byte("sat v=2i 2000\n")); held <- a }()
	daemontest.WaitMetric(t, base, "pginflux_sink_pending_rows", nil, 1)

	a := post(t, nil, base+"/api/v2/write?bucket=b", []byte("sat v=3i 3000\n"))
	if a.code != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" || !strings.Contains(a.body, `"code":"too many requests"`) {
		t.Errorf("v2: got %d %v %q, want 429 with Retry-After", a.code, a.header.Get("Retry-After"), a.body)
	}
	a = post(t, nil, base+"/write?db=d", []byte("sat v=3i 3000\n"))
	if a.code != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "1" || !strings.Contains(a.message(t), "--max-pending-rows (1)") {
		t.Errorf("v1: got %d %v %q, want 503 with Retry-After", a.code, a.header.Get("Retry-After"), a.body)
	}
	release()
	select {
	case a := <-held:
		if a.code != http.StatusNoContent {
			t.Errorf("the held request: got %d %q, want 204", a.code, a.body)
		}
	case <-time.After(daemontest.Patience):
		t.Fatalf("the held request got no answer within %v of the lock's release", daemontest.Patience)
	}
	if n := count(t, pool, schema, "sat", ""); n != 2 {
		t.Errorf("got %d rows, want 2 (the refused requests wrote nothing)", n)
	}
}

// TestWriteAnsweredWhilePendingFull: a write request whose rows meet
// --max-pending-rows while PostgreSQL takes nothing (a table locked by
// someone else) is answered 503 at the commit timeout, not held until the
// table is free; and a second request meanwhile is not stuck behind the
// first. Once the lock goes, the rows added before the answer land, and
// sending the request again (as the 503 asks) stores every point once.
func TestWriteAnsweredWhilePendingFull(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	// pginflux's own commit timeout: what happens when it passes is the
	// test.
	p := daemontest.Config{Options: daemon.Options{CommitTimeout: httpapi.DefaultCommitTimeout}}.Start(t, schema,
		"--max-pending-rows", "20", "--batch-size", "5")
	base := p.Base
	// The table, made over UDP: no commit timeout to meet.
	daemontest.Send(t, p.UDP, "cpu,host=h0 v=0i 1\n")
	table := pgx.Identifier{schema, "cpu"}.Sanitize()
	daemontest.WaitRows(t, pool, table, 1)
	release := lockTable(t, pool, schema, "cpu")

	var body strings.Builder
	for i := range 200 {
		fmt.Fprintf(&body, "cpu,host=h%d v=%di %d\n", i, i, 1000+i)
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			a, err := tryPost(t.Context(), nil, base+"/write", []byte(body.String()))
			if err != nil {
				a.body = err.Error()
			}
			answers <- a
		}()
	}
	for range 2 {
		select {
		case a := <-answers:
			// 503 after the commit timeout, or at once when the sink
			// was full already (the early check); the table is still
			// locked.
			if a.code != http.StatusServiceUnavailable {
				t.Errorf("while the table is locked: got %d (%s), want 503", a.code, a.body)
			}
		case <-time.After(httpapi.DefaultCommitTimeout + daemontest.Patience):
			t.Fatalf("a write request was not answered within the commit timeout and %v while the writers could not commit", daemontest.Patience)
		}
	}
	release()
	// Held rows land; then the request again, as the 503 asks: every
	// point once (merge mode).
	for deadline := time.Now().Add(daemontest.Patience); ; {
		a := post(t, nil, base+"/write", []byte(body.String()))
		if a.code == http.StatusNoContent {
			break
		}
		if a.code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("the request again: %d %s", a.code, a.body)
		}
		time.Sleep(100 * time.Millisecond) // as the client's retry would
	}
	pollRows(t, pool, "SELECT count(*)::text || ' ' || count(DISTINCT (time, series_id))::text FROM "+table, "201 201")
}

// TestWriteWhileStopping: once stopping begins, /write answers 503, while
// a request under way gets its 204 when its rows are committed, /metrics
// answers, and pginflux exits once all is written.
func TestWriteWhileStopping(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--flush-interval", "1h")
	base := p.Base
	if a := post(t, nil, base+"/write", []byte("stopping v=1i 1000\n")); a.code != http.StatusNoContent {
		t.Fatalf("got %d %q", a.code, a.body)
	}
	release := lockTable(t, pool, schema, "stopping")
	held := make(chan answer, 1)
	go func() { a, _ := tryPost(t.Context(), nil, base+"/write", []byte("stopping v=2i 2000\n")); held <- a }()
	daemontest.WaitMetric(t, base, "pginflux_sink_pending_rows", nil, 1)
	go p.Close() // as SIGTERM; p.Stop below waits for it
	var poll daemontest.Poller
	for deadline := time.Now().Add(daemontest.Patience); ; poll.Sleep() {
		a := post(t, nil, base+"/write", []byte("late v=1i 1\n"))
		if a.code == http.StatusServiceUnavailable && strings.Contains(a.message(t), "stopping") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d %q after %v, want 503: stopping", a.code, a.body, daemontest.Patience)
		}
	}
	if resp, _ := daemontest.Get(t, http.MethodGet, base+"/metrics"); resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics while stopping: got %s", resp.Status)
	}
	release()
	if a := <-held; a.code != http.StatusNoContent {
		t.Errorf("the request under way: got %d %q, want 204", a.code, a.body)
	}
	p.Stop(t)
	if n := count(t, pool, schema, "stopping", ""); n != 2 {
		t.Errorf("got %d rows, want 2", n)
	}
}

// slowClients is how many clients TestSlowClientsMemory opens at once.
const slowClients = 1000

// TestSlowClientsMemory: 1,000 clients that declare a 32 MiB body and
// send it a few bytes at a time do not take a pginflux with its default
// limits past 200 MiB of memory (its peak RSS, VmHWM, as a process of its
// own). Before, each such request reserved its declared length.
func TestSlowClientsMemory(t *testing.T) {
	t.Parallel()
	if raceEnabled {
		t.Skip("the race detector multiplies a process's memory: run without -race to measure pginflux's")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to measure memory")
	}
	_, schema := pgtest.Schema(t)
	for _, flags := range [][]string{nil, {"--http-max-writes", "2000", "--http-max-connections", "4096"}} {
		t.Run(strings.Join(append([]string{"defaults"}, flags...), " "), func(t *testing.T) {
			t.Parallel()
			child := daemontest.StartChild(t, append([]string{"--database-url", pgtest.ConnString(t), "--schema", schema,
				"--udp-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0"}, flags...)...)
			addr := strings.TrimPrefix(child.Base(t), "http://")
			pid := child.Cmd.Process.Pid
			var answered, refused atomic.Int64
			var wg sync.WaitGroup
			for range slowClients {
				wg.Go(func() {
					c, err := net.DialTimeout("tcp", addr, 10*time.Second)
					if err != nil {
						refused.Add(1)
						return
					}
					defer c.Close()
					fmt.Fprintf(c, "POST /write HTTP/1.1\r\nHost: pginflux\r\nContent-Length: %d\r\n\r\n", 32<<20)
					// A line every 200 ms for 3 s: a slow client, not a
					// silent one.
					for i := range 15 {
						c.SetWriteDeadline(time.Now().Add(time.Second))
						if _, err := fmt.Fprintf(c, "slow,client=%p v=%di %d\n", c, i, 1000*(i+1)); err != nil {
							answered.Add(1)
							return
						}
						time.Sleep(200 * time.Millisecond) // the client's own pace
					}
				})
			}
			wg.Wait()
			hwm, rss := procMemory(t, pid)
			t.Logf("%d slow clients: peak RSS %d MiB, RSS now %d MiB; %d cut off or answered early, %d not connected",
				slowClients, hwm>>20, rss>>20, answered.Load(), refused.Load())
			if hwm > 200<<20 {
				t.Errorf("peak RSS %d MiB, want at most 200 MiB", hwm>>20)
			}
		})
	}
}

// procMemory returns the peak and current resident memory of process pid,
// in bytes.
func procMemory(t *testing.T, pid int) (hwm, rss int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			hwm = kb << 10
		case "VmRSS:":
			rss = kb << 10
		}
	}
	return hwm, rss
}
