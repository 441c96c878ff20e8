package loadgen

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"
)

// udpSink is a UDP socket on a free loopback port whose datagrams a
// goroutine collects (or discards).
type udpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	data [][]byte
	keep bool
	done chan struct{}
}

// listenUDP opens a udpSink. It is made outside any synctest bubble by
// the callers: a goroutine blocked reading a socket would keep a bubble's
// clock from moving.
func listenUDP(t testing.TB, keep bool) *udpSink {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			// Room for bursts; forced when the test may (root), else
			// whatever net.core.rmem_max allows.
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
			}
		})
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &udpSink{conn: pc.(*net.UDPConn), keep: keep, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65536)
		for {
			n, err := s.conn.Read(buf)
			if err != nil {
				return
			}
			if s.keep {
				s.mu.Lock()
				s.data = append(s.data, bytes.Clone(buf[:n]))
				s.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		s.conn.Close()
		<-s.done
	})
	return s
}

func (s *udpSink) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// lines waits until the sink holds want lines (or 10 seconds passed) and
// returns every line received.
func (s *udpSink) lines(t *testing.T, want int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		var lines [][]byte
		for _, d := range s.data {
			lines = append(lines, bytes.SplitAfter(d, []byte("\n"))...)
		}
		s.mu.Unlock()
		// SplitAfter leaves an empty piece after the last newline.
		var out [][]byte
		for _, l := range lines {
			if len(l) > 0 {
				out = append(out, l)
			}
		}
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testSendConfig(t testing.TB, addr netip.AddrPort) SendConfig {
	return SendConfig{
		Address:          addr,
		Workload:         mustWorkload(t, "mix", 4, 3),
		Base:             testBase,
		Rate:             0,
		Lines:            1000,
		Duration:         time.Minute,
		Senders:          1,
		LinesPerDatagram: 10,
		MaxDatagramSize:  8192,
	}
}

func TestSendEveryLineOnce(t *testing.T) {
	t.Parallel()
	sink := listenUDP(t, true)
	cfg := testSendConfig(t, sink.addr())
	// Slow enough for the reader to keep up without a large socket buffer.
	cfg.Lines, cfg.Rate, cfg.Senders = 1003, 5000, 3
	res, err := Send(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Lines != cfg.Lines || res.FailedDatagrams != 0 || res.LastSeq != uint64(cfg.Lines) {
		t.Fatalf("got %+v, want %d lines, none failed, LastSeq %d", res, cfg.Lines, cfg.Lines)
	}
	got := sink.lines(t, int(cfg.Lines))
	if len(got) != int(cfg.Lines) {
		t.Fatalf("received %d lines, want %d", len(got), cfg.Lines)
	}
	// Every seq exactly once, whichever sender sent it.
	g := NewGenerator(cfg.Workload, cfg.Base, 0, 1)
	want := make(map[string]bool)
	for range cfg.Lines {
		want[string(g.AppendLine(nil))] = true
	}
	for _, l := range got {
		if !want[string(l)] {
			t.Fatalf("unexpected or repeated line %q", l)
		}
		delete(want, string(l))
	}
}

func TestSendBoundedByDuration(t *testing.T) {
	t.Parallel()
	sink := listenUDP(t, false)
	synctest.Test(t, func(t *testing.T) {
		cfg := testSendConfig(t, sink.addr())
		cfg.Lines, cfg.Rate, cfg.Duration, cfg.Senders = 1e9, 10000, time.Second, 2
		res, err := Send(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Lines < 9980 || res.Lines > 10020 {
			t.Errorf("sent %d lines in 1s at 10000 lines/s, want about 10000", res.Lines)
		}
		if d := res.End.Sub(res.Start); d != time.Second {
			t.Errorf("sent for %v, want 1s", d)
		}
	})
}

func TestSendToNobody(t *testing.T) {
	t.Parallel()
	// A port that was free a moment ago: the kernel answers with port
	// unreachable, and the sends after that fail with ECONNREFUSED.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	cfg := testSendConfig(t, addr)
	cfg.LinesPerDatagram = 1
	res, err := Send(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.FailedDatagrams == 0 || res.LastError == nil || res.Lines+res.FailedLines != cfg.Lines {
		t.Errorf("got %+v, want failures counted and lines + failed lines = %d", res, cfg.Lines)
	}
}

func TestSendConfigValidate(t *testing.T) {
	t.Parallel()
	cfg := SendConfig{Workload: mustWorkload(t, "cpu", 1, 1), MaxDatagramSize: 10}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error for an empty config")
	}
	for _, want := range []string{"no address", "lines 0", "duration 0", "senders 0", "lines per datagram 0", "datagram size 10"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// BenchmarkSend measures the sender alone: datagrams to a socket that
// nobody reads (the kernel drops what does not fit), as fast as possible.
func BenchmarkSend(b *testing.B) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cfg := testSendConfig(b, c.LocalAddr().(*net.UDPAddr).AddrPort())
	cfg.Workload = mustWorkload(b, "cpu", 100, 10)
	cfg.Lines = 200_000
	var lines, bytes int64
	b.ReportAllocs()
	for b.Loop() {
		res, err := Send(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		lines += res.Lines
		bytes += res.Bytes
	}
	b.SetBytes(bytes / int64(b.N))
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}
