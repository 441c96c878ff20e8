package pipeline

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/pgtest"
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
