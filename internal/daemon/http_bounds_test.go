package daemon_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pginflux/pginflux/ingest/httpapi"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// answerBound is how long a /write may take to be answered once its body
// is in: the commit timeout, and room for a slow test machine.
const answerBound = httpapi.DefaultCommitTimeout + 5*time.Second

// TestWriteAnsweredWhileDatabaseDown: with PostgreSQL stopped for real,
// every /write is answered within the commit timeout: 503 with
// Retry-After when its rows can be neither committed nor spooled (no
// spool, or a full one), 204 when they are spooled.
func TestWriteAnsweredWhileDatabaseDown(t *testing.T) {
	cluster := pgtest.Cluster(t)
	for _, tc := range []struct {
		name      string
		spool     string // "", "room" or "full"
		downFirst bool   // PostgreSQL is down before pginflux starts
		want      int
	}{
		{"no spool", "", false, http.StatusServiceUnavailable},
		{"spool with room", "room", false, http.StatusNoContent},
		{"full spool", "full", true, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, schema := pgtest.Schema(t)
			keepRunning(t, cluster)
			// Rows held at the stop are given up after a second.
			extra := []string{"--shutdown-timeout", "1s"}
			if tc.spool != "" {
				dir := t.TempDir()
				extra = append(extra, "--spool-dir", dir, "--spool-max-size", "1MiB")
				if tc.spool == "full" {
					// What an earlier run left, more than the spool may hold.
					if err := os.WriteFile(filepath.Join(dir, "seg-00000000000000000001-00112233aabbccdd"), make([]byte, 2<<20), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tc.downFirst {
				if err := cluster.Stop(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			base := daemontest.Start(t, schema, append([]string{"--flush-interval", "1h"}, extra...)...).Base
			if !tc.downFirst {
				if a := post(t, nil, base+"/write", []byte("bound v=0i 1000\n")); a.code != http.StatusNoContent {
					t.Fatalf("before the stop: got %d %q", a.code, a.body)
				}
				if err := cluster.Stop(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			for i, target := range []string{"/write", "/api/v2/write", "/write"} {
				start := time.Now()
				a := post(t, nil, base+target, fmt.Appendf(nil, "bound v=%di %d\n", i+1, (i+2)*1000))
				took := time.Since(start)
				t.Logf("%s: %d after %v: %s", target, a.code, took.Round(time.Millisecond), strings.TrimSpace(a.body))
				if took > answerBound {
					t.Errorf("%s: answered after %v, more than %v", target, took, answerBound)
				}
				if a.code != tc.want {
					t.Errorf("%s: got %d %q, want %d", target, a.code, a.body, tc.want)
				}
				if a.code == http.StatusServiceUnavailable && a.header.Get("Retry-After") == "" {
					t.Errorf("%s: 503 without Retry-After", target)
				}
			}
		})
	}
}

// slowClients is how many clients TestSlowClientsMemory opens at once.
const slowClients = 1000

// TestSlowClientsMemory: 1,000 clients that declare a 32 MiB body and
// send it a few bytes at a time do not take a pginflux with its default
// limits past 200 MiB of memory (its peak RSS, VmHWM, as a process of its
// own). Before, each such request reserved its declared length.
func TestSlowClientsMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to measure memory")
	}
	_, schema := pgtest.Schema(t)
	for _, flags := range [][]string{nil, {"--http-max-writes", "2000", "--http-max-connections", "4096"}} {
		t.Run(strings.Join(append([]string{"defaults"}, flags...), " "), func(t *testing.T) {
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
			if raceEnabled {
				t.Log("the race detector is on: its memory is not pginflux's; not checked")
			} else if hwm > 200<<20 {
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
