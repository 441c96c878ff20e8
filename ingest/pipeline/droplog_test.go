package pipeline

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// syncBuffer is a log destination safe for the watcher goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// TestDropLog: one line when drops start, none while they go on, one with
// the total when they stop.
func TestDropLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		p := &Pipeline{cfg: Config{Transport: "udp", QueueSize: 8}, log: slog.New(slog.NewTextHandler(&out, nil)), stop: make(chan struct{})}
		p.watch.Go(func() { p.watchDrops(time.Second) })

		p.dropped.Add(3)
		time.Sleep(time.Second)
		synctest.Wait()
		p.dropped.Add(4)
		time.Sleep(time.Second)
		synctest.Wait()
		time.Sleep(time.Second) // a period without drops
		synctest.Wait()
		close(p.stop)
		p.watch.Wait()

		got := out.lines()
		if len(got) != 2 || !strings.Contains(got[0], "dropping datagrams") || !strings.Contains(got[0], "dropped=3") ||
			!strings.Contains(got[1], "stopped dropping datagrams") || !strings.Contains(got[1], "dropped=7") {
			t.Errorf("got log\n%s", strings.Join(got, "\n"))
		}
	})
}
