package pipeline

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/ingest/udp"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// TestQueueBytes: a datagram that would take the queue past its bytes is
// dropped and counted at once, whatever the count of datagrams.
func TestQueueBytes(t *testing.T) {
	pool := pgtest.Unreachable(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := sink.New(pool, sink.Config{Schema: "x", BatchSize: 1000, FlushInterval: time.Hour, Writers: 1}, sink.NewMetrics(nil), quiet)
	m := NewMetrics(nil, "udp")
	p := New(Config{Transport: "udp", QueueSize: 100, QueueBytes: 1000, Parsers: 1, Precision: parse.Nanosecond, FlushInterval: time.Hour}, s, m, quiet)
	src := netip.MustParseAddrPort("127.0.0.1:1")
	p.Handle([]byte(strings.Repeat("x", 2000)), src, time.Now())
	p.Handle([]byte("m v=1 1\n"), src, time.Now())
	p.Close()
	if got := testutil.ToFloat64(m.QueueDropped); got != 1 {
		t.Errorf("got %v dropped, want 1", got)
	}
	if got := testutil.ToFloat64(m.Lines); got != 1 {
		t.Errorf("got %v lines, want 1", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s.Close(ctx)
}

func TestClasses(t *testing.T) {
	tests := []struct{ n, want int }{
		{0, 256}, {1, 256}, {256, 256}, {257, 384}, {384, 384}, {385, 512},
		{2700, 3072}, {27000, 32768}, {65536, 65536}, {64 * 65536, 64 * 65536},
	}
	for _, tt := range tests {
		c := classOf(tt.n)
		if c < 0 || classSize(c) != tt.want {
			t.Errorf("classOf(%d) = %d of size %d, want size %d", tt.n, c, classSize(max(c, 0)), tt.want)
		}
		if c > 0 && classSize(c-1) >= tt.n {
			t.Errorf("classOf(%d) = %d, but class %d holds it too", tt.n, c, c-1)
		}
	}
	if c := classOf(13 << 20); c != -1 {
		t.Errorf("classOf(13 MiB) = %d, want -1 (larger than a read can be)", c)
	}
}

// queueOnly is a Pipeline without parsers, to look at its queue.
func queueOnly(size int, bytes int64) *Pipeline {
	return &Pipeline{cfg: Config{Transport: "udp", QueueSize: size, QueueBytes: bytes}, metrics: NewMetrics(nil, "udp"), queue: make(chan *packet, size)}
}

func datagrams(sizes ...int) []udp.Datagram {
	var dgs []udp.Datagram
	for i, n := range sizes {
		dgs = append(dgs, udp.Datagram{Data: []byte(strings.Repeat(string(rune('a'+i)), n)), Src: netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(i))})
	}
	return dgs
}

// TestHandleBatch: a read's datagrams travel in one packet holding them
// back to back; what does not fit, in datagrams or in bytes of buffer
// capacity, is dropped and counted.
func TestHandleBatch(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		bytes      int64
		sizes      []int
		wantKept   int
		wantBuffer int // capacity counted in the queue
	}{
		{name: "all fit", size: 10, bytes: 1 << 20, sizes: []int{100, 200, 300}, wantKept: 3, wantBuffer: 768},
		{name: "datagram bound", size: 2, bytes: 1 << 20, sizes: []int{100, 200, 300}, wantKept: 2, wantBuffer: 384},
		{name: "byte bound counts capacity", size: 10, bytes: 512, sizes: []int{100, 200, 300}, wantKept: 2, wantBuffer: 384},
		{name: "nothing fits", size: 10, bytes: 200, sizes: []int{300}, wantKept: 0, wantBuffer: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := queueOnly(tt.size, tt.bytes)
			dgs := datagrams(tt.sizes...)
			now := time.Now()
			p.HandleBatch(dgs, now)
			if got, want := testutil.ToFloat64(p.metrics.QueueDropped), float64(len(dgs)-tt.wantKept); got != want {
				t.Errorf("dropped: got %v, want %v", got, want)
			}
			if got := p.queued.Load(); got != int64(tt.wantBuffer) {
				t.Errorf("queued bytes: got %d, want %d", got, tt.wantBuffer)
			}
			if got := p.queuedDgs.Load(); got != int64(tt.wantKept) {
				t.Errorf("queued datagrams: got %d, want %d", got, tt.wantKept)
			}
			if tt.wantKept == 0 {
				if len(p.queue) != 0 {
					t.Errorf("%d packets queued, want none", len(p.queue))
				}
				return
			}
			pk := <-p.queue
			if len(pk.ends) != tt.wantKept || !pk.received.Equal(now) {
				t.Fatalf("packet of %d datagrams received %v, want %d, %v", len(pk.ends), pk.received, tt.wantKept, now)
			}
			start := 0
			for i, end := range pk.ends {
				if string(pk.buf[start:end]) != string(dgs[i].Data) || pk.srcs[i] != dgs[i].Src {
					t.Errorf("datagram %d: got %d bytes from %v, want %d from %v", i, end-start, pk.srcs[i], len(dgs[i].Data), dgs[i].Src)
				}
				start = end
			}
			p.release(pk)
			if p.queued.Load() != 0 || p.queuedDgs.Load() != 0 {
				t.Errorf("after release: %d bytes, %d datagrams queued; want none", p.queued.Load(), p.queuedDgs.Load())
			}
		})
	}
}

// TestHandleBatchParses: every line of every datagram of a batch is
// parsed.
func TestHandleBatchParses(t *testing.T) {
	pool := pgtest.Unreachable(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := sink.New(pool, sink.Config{Schema: "x", BatchSize: 1000, FlushInterval: time.Hour, Writers: 1}, sink.NewMetrics(nil), quiet)
	m := NewMetrics(nil, "udp")
	p := New(Config{Transport: "udp", QueueSize: 100, QueueBytes: 1 << 20, Parsers: 2, Precision: parse.Nanosecond, FlushInterval: time.Hour}, s, m, quiet)
	src := netip.MustParseAddrPort("127.0.0.1:1")
	// The last line of a datagram needs no newline: datagrams are parsed
	// one by one, never run together.
	p.HandleBatch([]udp.Datagram{{Data: []byte("m v=1 1\nm v=2 2"), Src: src}, {Data: []byte("m v=3 3\n"), Src: src}, {Data: []byte("m v=4 4"), Src: src}}, time.Now())
	p.Close()
	if got := testutil.ToFloat64(m.Lines); got != 4 {
		t.Errorf("got %v lines, want 4", got)
	}
	if got := testutil.ToFloat64(m.QueueDropped); got != 0 {
		t.Errorf("got %v dropped, want 0", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s.Close(ctx)
}

// BenchmarkHandleBatch measures the hand-off of a read of cpu-sized
// datagrams to a parser, by the number of datagrams the read returned:
// copying them into one packet and taking it off the queue. It allocates
// nothing. "1" is also the cost of Handle.
func BenchmarkHandleBatch(b *testing.B) {
	for _, n := range []int{1, 3, 10, 32} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			p := queueOnly(1024, 1<<30)
			sizes := make([]int, n)
			for i := range sizes {
				sizes[i] = 2700
			}
			dgs := datagrams(sizes...)
			now := time.Now()
			b.ReportAllocs()
			b.SetBytes(int64(n) * 2700)
			for b.Loop() {
				p.HandleBatch(dgs, now)
				p.release(<-p.queue)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/datagram")
		})
	}
}
