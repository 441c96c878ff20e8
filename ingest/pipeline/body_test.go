package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// TestStreamBodyReads: a body read as it arrives gives the same rows, bad
// lines and line numbers however its reads cut it (a byte at a time, half
// reads, the error with the last bytes), with lines that span reads,
// lines over the line size that span many, and a last line without its
// newline; the read buffers give back what they drew from the budget.
func TestStreamBodyReads(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	log := slog.New(slog.DiscardHandler)
	s := sink.New(pool, sink.Config{Schema: schema, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1}, sink.NewMetrics(nil), log)
	sh := s.NewShared()
	mem := budget.New(64 << 20)
	reads := mem.Account("http")
	st := NewStream(StreamConfig{Transport: "http", MaxLineSize: 3000, ReadMemory: reads}, sh, NewStreamMetrics(nil, "http"), log)
	o := sink.Origin{Source: netip.MustParseAddrPort("127.0.0.1:1"), Received: time.Now()}

	var b strings.Builder
	wantBad := []int64{}
	line := int64(0)
	for i := range 3000 {
		line++
		switch {
		case i%700 == 3: // over the line size, across reads
			fmt.Fprintf(&b, "chunks,pad=%s v=1i %d\n", strings.Repeat("x", 40000), i)
			wantBad = append(wantBad, line)
		case i%500 == 7:
			b.WriteString("chunks v=\n")
			wantBad = append(wantBad, line)
		default:
			fmt.Fprintf(&b, "chunks,host=h%d v=%di %d\n", i%37, i, 1_700_000_000_000_000_000+int64(i)*1000)
		}
	}
	b.WriteString("chunks,host=last v=1i 1700000000000000000") // no newline
	body := b.String()
	wantLines := 3000 + 1 - len(wantBad)

	for i, c := range []struct {
		name string
		r    func() io.Reader
	}{
		{"whole", func() io.Reader { return strings.NewReader(body) }},
		{"a byte at a time", func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) }},
		{"half reads", func() io.Reader { return iotest.HalfReader(strings.NewReader(body)) }},
		{"EOF with data", func() io.Reader { return iotest.DataErrReader(strings.NewReader(body)) }},
	} {
		res, err := st.Write(t.Context(), c.r(), parse.Nanosecond, o, WriteOptions{})
		if err != nil || res.Lines != wantLines || res.Bad != len(wantBad) {
			t.Fatalf("%s: got %d lines, %d bad, %v; want %d and %d", c.name, res.Lines, res.Bad, err, wantLines, len(wantBad))
		}
		for j, bl := range res.Listed {
			if bl.Line != wantBad[j] {
				t.Errorf("%s: bad line %d is line %d, want %d (%s)", c.name, j, bl.Line, wantBad[j], bl.Err)
			}
		}
		var n int
		if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, "chunks"}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != wantLines { // the same points each time: merged
			t.Errorf("%s (write %d): got %d rows, want %d", c.name, i+1, n, wantLines)
		}
		if mem.Used() != 0 {
			t.Errorf("%s: %d bytes still drawn from the budget", c.name, mem.Used())
		}
	}

	// A read that fails: the complete lines before it are taken, the
	// error is returned wrapped.
	cut := errors.New("cut")
	res, err := st.Write(t.Context(), io.MultiReader(strings.NewReader("chunks v=1i 1\nchunks v=2i 2\nchunks v=3"), iotest.ErrReader(cut)),
		parse.Nanosecond, o, WriteOptions{})
	if !errors.Is(err, cut) || res.Lines != 2 {
		t.Errorf("a failed read: got %d lines, %v; want 2 and the read's error", res.Lines, err)
	}
	sh.Close()
	if err := s.Close(t.Context()); err != nil {
		t.Error(err)
	}
}

// TestStreamHeld: WriteOptions.Held counts a request's rows while they
// wait for their commit, and nothing once Write returns.
func TestStreamHeld(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	log := slog.New(slog.DiscardHandler)
	// The rows wait: nothing is written before an hour or 1,000 rows.
	s := sink.New(pool, sink.Config{Schema: schema, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1}, sink.NewMetrics(nil), log)
	sh := s.NewShared()
	st := NewStream(StreamConfig{Transport: "http", MaxLineSize: 1 << 10}, sh, NewStreamMetrics(nil, "http"), log)
	held := prometheus.NewGauge(prometheus.GaugeOpts{Name: "held"})
	o := sink.Origin{Source: netip.MustParseAddrPort("127.0.0.1:1"), Received: time.Now()}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := st.Write(ctx, strings.NewReader("held v=1i 1\nheld v=2i 2\nheld v=3i 3\n"), parse.Second, o, WriteOptions{Held: held})
		done <- err
	}()
	for testutil.ToFloat64(held) != 3 {
		select {
		case err := <-done:
			t.Fatalf("Write returned before its commit: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("Write cancelled before its commit returned no error")
	}
	if got := testutil.ToFloat64(held); got != 0 {
		t.Errorf("held after Write: got %v, want 0", got)
	}
	sh.Close()
	if err := s.Close(t.Context()); err != nil {
		t.Error(err)
	}
}
