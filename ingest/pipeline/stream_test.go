package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

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
			res, err := st.Write(ctx, strings.NewReader(c.body), parse.Nanosecond, sink.Origin{Source: netip.MustParseAddrPort("127.0.0.1:1"), Received: time.Now()}, WriteOptions{})
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
			if res.Lines != c.wantLines || res.Bad != wantBad || len(res.Listed) != wantBad {
				t.Errorf("got %d lines, %d bad and %d listed, want %d and %d", res.Lines, res.Bad, len(res.Listed), c.wantLines, wantBad)
			}
		})
	}
	if got := testutil.ToFloat64(m.tooLong); got != 5 {
		t.Errorf("got %v too long, want 5", got)
	}
	sh.Close()
	s.Close(t.Context())
}

// TestStreamOptions: AllOrNothing stores nothing of a body with a bad
// line, not even the bad line, and all of one without; NoWait returns
// before the commit, and the rows come; a body of many bad lines lists
// MaxListed of them.
func TestStreamOptions(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	log := slog.New(slog.DiscardHandler)
	s := sink.New(pool, sink.Config{Schema: schema, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1, RejectedTable: "rej"}, sink.NewMetrics(nil), log)
	sh := s.NewShared()
	st := NewStream(StreamConfig{Transport: "http", MaxLineSize: 1 << 10, RejectedTable: "rej"}, sh, NewStreamMetrics(nil, "http"), log)
	o := sink.Origin{Source: netip.MustParseAddrPort("127.0.0.1:1"), Received: time.Now()}
	count := func(table string) int {
		t.Helper()
		var n int
		err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&n)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	res, err := st.Write(t.Context(), strings.NewReader("whole v=1i 1\nwhole v= 2\nwhole v=3i 3\n"), parse.Second, o, WriteOptions{AllOrNothing: true})
	if err != nil || res.Lines != 0 || res.Bad != 1 || len(res.Listed) != 1 || res.Listed[0].Line != 2 {
		t.Fatalf("all or nothing, a bad line: got %+v, %v, want line 2 bad and nothing added", res, err)
	}
	if n, r := count("whole"), count("rej"); n != 0 || r != 0 {
		t.Errorf("all or nothing, a bad line: got %d rows and %d rejected, want none", n, r)
	}
	res, err = st.Write(t.Context(), strings.NewReader("whole v=1i 1\nwhole v=3i 3\n"), parse.Second, o, WriteOptions{AllOrNothing: true})
	if err != nil || res.Lines != 2 || res.Bad != 0 {
		t.Fatalf("all or nothing, good lines: got %+v, %v", res, err)
	}
	if n := count("whole"); n != 2 {
		t.Errorf("all or nothing, good lines: got %d rows, want 2", n)
	}

	res, err = st.Write(t.Context(), strings.NewReader("nowait v=1i 1\nnowait v=2i 2\n"), parse.Second, o, WriteOptions{NoWait: true})
	if err != nil || res.Lines != 2 {
		t.Fatalf("no wait: got %+v, %v", res, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for count("nowait") != 2 {
		if time.Now().After(deadline) {
			t.Fatal("no wait: the rows were not written within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	body := strings.Repeat("many v=\n", MaxListed+5)
	res, err = st.Write(t.Context(), strings.NewReader(body), parse.Second, o, WriteOptions{})
	if err != nil || res.Bad != MaxListed+5 || len(res.Listed) != MaxListed || res.Listed[MaxListed-1].Line != MaxListed {
		t.Errorf("many bad lines: got %d bad, %d listed, %v", res.Bad, len(res.Listed), err)
	}
	sh.Close()
	if err := s.Close(t.Context()); err != nil {
		t.Error(err)
	}
}
