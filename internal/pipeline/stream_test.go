package pipeline

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// details is a slog.Handler that keeps the detail of every rejected line.
type details struct {
	mu  sync.Mutex
	got []string
}

func (d *details) Enabled(context.Context, slog.Level) bool { return true }
func (d *details) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "detail" {
			d.mu.Lock()
			d.got = append(d.got, a.Value.String())
			d.mu.Unlock()
		}
		return true
	})
	return nil
}
func (d *details) WithAttrs([]slog.Attr) slog.Handler { return d }
func (d *details) WithGroup(string) slog.Handler      { return d }

// TestStreamLineNumbers: lines over the line size are cut out of a request
// wherever they are, and every bad line is named by its line number in the
// whole body. (Rows go to a sink that drops them at once, and the
// request's context is cancelled, so that Write does not wait for them.)
func TestStreamLineNumbers(t *testing.T) {
	pool := pgtest.Unreachable(t)
	d := &details{}
	log := slog.New(d)
	s := sink.New(pool, sink.Config{Schema: "x", BatchSize: 1000, FlushInterval: time.Hour, Writers: 1, RejectedTable: "rej"}, sink.NewMetrics(nil), log)
	// Drop every batch at once rather than retry: nothing waits here.
	s.Abandon()
	sh := s.NewShared()
	m := NewStreamMetrics(nil, "http")
	st := NewStream(StreamConfig{Transport: "http", MaxLineSize: 20, RejectedTable: "rej"}, sh, m, log)
	long := strings.Repeat("x", 21)
	for _, c := range []struct {
		name      string
		body      string
		wantLines int
		want      []string // details, in order
	}{
		{"short body", "m v=1i\nm v=\n", 1, []string{"line 2: syntax: column 5: field value has unrecognized type"}},
		{"exactly the size", "m,t=aaaaaaaa v=1234i\nm v=\r\nm,t=aaaaaaaa v=1234i", 2, []string{"line 2: syntax: column 5: field value has unrecognized type"}},
		{"long first and last", long + "\nm v=1i\n" + long, 1, []string{
			"line 1: the line has 21 bytes, more than --max-line-size (20); its first 21 bytes are kept",
			"line 3: the line has 21 bytes, more than --max-line-size (20); its first 21 bytes are kept"}},
		{"long in a row, CRLF", "m v=1i\r\n" + long + "\r\n" + long + "\r\nm v=\r\nm v=2i\r\n", 2, []string{
			"line 2: the line has 21 bytes, more than --max-line-size (20); its first 21 bytes are kept",
			"line 3: the line has 21 bytes, more than --max-line-size (20); its first 21 bytes are kept",
			"line 4: syntax: column 5: field value has unrecognized type"}},
		{"bad after long", "m v=1i\n\n# comment\n" + long + "\nm v=\nrej v=1i\nm v=3i\n", 2, []string{
			"line 4: the line has 21 bytes, more than --max-line-size (20); its first 21 bytes are kept",
			"line 5: syntax: column 5: field value has unrecognized type"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.mu.Lock()
			d.got = nil
			d.mu.Unlock()
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			res, err := st.Write(ctx, []byte(c.body), parse.Nanosecond, sink.Origin{Source: netip.MustParseAddrPort("127.0.0.1:1"), Received: time.Now()})
			if err == nil {
				t.Error("got no error for the cancelled request")
			}
			d.mu.Lock()
			got := d.got
			d.mu.Unlock()
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got details\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			wantBad := len(c.want) + strings.Count(c.body, "rej v=")
			if res.Lines != c.wantLines || res.Bad != wantBad {
				t.Errorf("got %d lines and %d bad, want %d and %d", res.Lines, res.Bad, c.wantLines, wantBad)
			}
		})
	}
	if got := testutil.ToFloat64(m.tooLong); got != 5 {
		t.Errorf("got %v too long, want 5", got)
	}
	sh.Close()
	s.Close(t.Context())
}
