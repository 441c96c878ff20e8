package tcp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/testcert"
)

// recorder is a ConnHandler factory that keeps what every connection
// delivered.
type recorder struct {
	mu     sync.Mutex
	conns  []*recConn
	opened chan *recConn
	// block, when not nil, makes every Lines call wait for it to close.
	block chan struct{}
}

type recConn struct {
	r      *recorder
	src    netip.AddrPort
	lines  bytes.Buffer // every Lines chunk, back to back
	chunks int
	long   []longLine
	closed chan struct{}
}

type longLine struct {
	prefix string
	size   int64
}

func newRecorder() *recorder { return &recorder{opened: make(chan *recConn, 100)} }

func (r *recorder) open(src netip.AddrPort) ConnHandler {
	c := &recConn{r: r, src: src, closed: make(chan struct{})}
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	r.opened <- c
	return c
}

func (c *recConn) Lines(lines []byte, _ time.Time) {
	if c.r.block != nil {
		<-c.r.block
	}
	if len(lines) == 0 {
		panic("empty chunk")
	}
	// Every chunk is whole lines: it ends in a newline, except a last
	// line at the sender's close.
	c.r.mu.Lock()
	c.lines.Write(lines)
	c.chunks++
	c.r.mu.Unlock()
}

func (c *recConn) LongLine(prefix []byte, size int64, _ time.Time) {
	c.r.mu.Lock()
	c.long = append(c.long, longLine{string(prefix), size})
	c.r.mu.Unlock()
}

func (c *recConn) Close() { close(c.closed) }

func (c *recConn) text() string {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	return c.lines.String()
}

func (c *recConn) longLines() []longLine {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	return append([]longLine(nil), c.long...)
}

// listen starts a TCP listener on a free port; stop ends Run and waits
// for it.
func listen(t *testing.T, cfg Config, r *recorder) (l *Listener, m *Metrics, stop func()) {
	t.Helper()
	cfg.Address = "127.0.0.1:0"
	m = NewMetrics(nil)
	ctx, cancel := context.WithCancel(t.Context())
	l, err := Listen(ctx, cfg, r.open, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return within 20s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return l, m, stop
}

func waitClosed(t *testing.T, c *recConn) {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the connection was not closed within 20s")
	}
}

func nextConn(t *testing.T, r *recorder) *recConn {
	t.Helper()
	select {
	case c := <-r.opened:
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("no connection was opened within 20s")
		return nil
	}
}

// TestTCPLines: lines sent in pieces that cut them anywhere arrive whole,
// in order; the last line needs no newline when the sender closes.
func TestTCPLines(t *testing.T) {
	r := newRecorder()
	l, m, _ := listen(t, Config{MaxLineSize: 1024}, r)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&want, "m,host=h%d v=%di %d\n", i%7, i, i)
	}
	want.WriteString("last v=1i")
	data := []byte(want.String())
	for len(data) > 0 {
		n := min(len(data), 1+len(data)%97)
		if _, err := c.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	c.Close()
	rc := nextConn(t, r)
	waitClosed(t, rc)
	if got := rc.text(); got != want.String() {
		t.Fatalf("got %d bytes, want %d; the first difference at %d", len(got), want.Len(), firstDiff(got, want.String()))
	}
	if rc.src.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("got source %v, want 127.0.0.1", rc.src)
	}
	if got := testutil.ToFloat64(m.closed[closedByClient]); got != 1 {
		t.Errorf("closed by client: got %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Bytes); got != float64(want.Len()) {
		t.Errorf("bytes: got %v, want %d", got, want.Len())
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestTCPLongLine: a line over the limit is skipped to its newline and
// reported with its size; the lines around it arrive, and the connection
// goes on. The buffer grows for lines longer than it starts with.
func TestTCPLongLine(t *testing.T) {
	const maxLine = 100 << 10 // above the initial buffer
	r := newRecorder()
	l, _, _ := listen(t, Config{MaxLineSize: maxLine}, r)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fits := "fits v=\"" + strings.Repeat("y", maxLine-len("fits v=\"\"")) + "\"" // exactly maxLine bytes
	long := "long v=\"" + strings.Repeat("x", 3*maxLine) + "\""
	send := "before v=1i\n" + fits + "\n" + long + "\nafter v=2i\n" + long + "\r\nend v=3i\n"
	go func() {
		c.Write([]byte(send))
		c.Close()
	}()
	rc := nextConn(t, r)
	waitClosed(t, rc)
	if got, want := rc.text(), "before v=1i\n"+fits+"\nafter v=2i\nend v=3i\n"; got != want {
		t.Errorf("got lines of %d bytes, want %d", len(got), len(want))
	}
	got := rc.longLines()
	if len(got) != 2 {
		t.Fatalf("got %d long lines, want 2", len(got))
	}
	for i, ll := range got {
		wantSize := int64(len(long))
		if i == 1 {
			wantSize++ // the CR counts: it is not the line end
		}
		if ll.size != wantSize || ll.prefix != long[:LongLinePrefix] {
			t.Errorf("long line %d: got size %d prefix %q..., want %d and the line's first %d bytes", i, ll.size, ll.prefix[:20], wantSize, LongLinePrefix)
		}
	}
}

// TestTCPLongLineAtClose: a long line cut by the sender's close is still
// reported.
func TestTCPLongLineAtClose(t *testing.T) {
	r := newRecorder()
	l, _, _ := listen(t, Config{MaxLineSize: 300}, r)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ok v=1i\n" + strings.Repeat("z", 1000)))
	c.Close()
	rc := nextConn(t, r)
	waitClosed(t, rc)
	if got := rc.text(); got != "ok v=1i\n" {
		t.Errorf("got %q", got)
	}
	if got := rc.longLines(); len(got) != 1 || got[0].size != 1000 || len(got[0].prefix) != 301 {
		t.Errorf("got %+v, want one line of 1000 bytes with the 301 bytes that filled the buffer", got)
	}
}

// TestTCPIdleTimeout: a connection that sends nothing is closed after the
// idle timeout; its incomplete line is counted.
func TestTCPIdleTimeout(t *testing.T) {
	r := newRecorder()
	l, m, _ := listen(t, Config{MaxLineSize: 1024, IdleTimeout: 200 * time.Millisecond}, r)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("done v=1i\nhalf v="))
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d bytes, %v; want EOF when pginflux closes", n, err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
	rc := nextConn(t, r)
	waitClosed(t, rc)
	if got := rc.text(); got != "done v=1i\n" {
		t.Errorf("got %q", got)
	}
	if got := testutil.ToFloat64(m.closed[closedIdle]); got != 1 {
		t.Errorf("closed idle: got %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Incomplete); got != 1 {
		t.Errorf("incomplete lines: got %v, want 1", got)
	}
}

// TestTCPMaxConnections: one connection over the limit is closed at once
// and counted; the others are served.
func TestTCPMaxConnections(t *testing.T) {
	r := newRecorder()
	l, m, _ := listen(t, Config{MaxLineSize: 1024, MaxConnections: 2}, r)
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		nextConn(t, r)
	}
	extra, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection over the limit was not closed")
	}
	if got := testutil.ToFloat64(m.Refused); got != 1 {
		t.Errorf("refused: got %v, want 1", got)
	}
	// Room again once one closes.
	conns[0].Close()
	r.mu.Lock()
	first := r.conns[0]
	r.mu.Unlock()
	waitClosed(t, first)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("again v=1i\n"))
	c.Close()
	rc := nextConn(t, r)
	waitClosed(t, rc)
	if got := rc.text(); got != "again v=1i\n" {
		t.Errorf("got %q", got)
	}
}

// TestTCPStop: when the context ends, every connection hands over the
// complete lines it was sent, those still in the kernel's buffers while
// the handler held the connection up included, and is closed; an
// incomplete last line is dropped and counted.
func TestTCPStop(t *testing.T) {
	r := newRecorder()
	r.block = make(chan struct{})
	m := NewMetrics(nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	l, err := Listen(ctx, Config{Address: "127.0.0.1:0", MaxLineSize: 1024, IdleTimeout: time.Hour}, r.open, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()

	const conns = 5
	want := make(map[string]bool)
	for i := range conns {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var b strings.Builder
		for j := range 2000 {
			fmt.Fprintf(&b, "stop,c=%d v=%di\n", i, j)
		}
		want[b.String()] = true
		// Small enough for the socket buffers: the write returns while
		// the handler holds the connection up.
		if _, err := c.Write([]byte(b.String() + "cut v=")); err != nil {
			t.Fatal(err)
		}
		nextConn(t, r)
	}
	cancel()
	close(r.block)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of its context ending")
	}
	r.mu.Lock()
	got := append([]*recConn(nil), r.conns...)
	r.mu.Unlock()
	for _, rc := range got {
		if text := rc.text(); !want[text] {
			t.Errorf("connection from %v: got %d bytes, not all that was sent", rc.src, len(text))
		}
	}
	if n := testutil.ToFloat64(m.Incomplete); n != conns {
		t.Errorf("incomplete lines: got %v, want %d", n, conns)
	}
	if n := testutil.ToFloat64(m.closed[closedByShutdown]); n != conns {
		t.Errorf("closed by shutdown: got %v, want %d", n, conns)
	}
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
		c.Close()
		t.Error("still accepting after Run returned")
	}
}

// TestTCPTLS: lines over TLS.
func TestTCPTLS(t *testing.T) {
	server, client := testcert.Config(t)
	r := newRecorder()
	l, _, _ := listen(t, Config{MaxLineSize: 1024, TLS: server}, r)
	c, err := tls.Dial("tcp", l.Addr().String(), client)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("tls v=1i\ntls v=2i\n"))
	c.Close()
	rc := nextConn(t, r)
	waitClosed(t, rc)
	if got := rc.text(); got != "tls v=1i\ntls v=2i\n" {
		t.Errorf("got %q", got)
	}

	// A client that does not speak TLS is closed.
	plain, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte("plain v=1i\n"))
	rc = nextConn(t, r)
	waitClosed(t, rc)
	if got := rc.text(); got != "" {
		t.Errorf("got %q from a client without TLS", got)
	}
}

func TestListenTCPFails(t *testing.T) {
	r := newRecorder()
	l, _, _ := listen(t, Config{}, r)
	_, err := Listen(t.Context(), Config{Address: l.Addr().String()}, r.open, NewMetrics(nil), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "listen on tcp") {
		t.Fatalf("got %v, want the port in use", err)
	}
}

// TestTCPStopRightAfterConnect: a connection made and written to just
// before the stop, perhaps not yet accepted, is still read.
func TestTCPStopRightAfterConnect(t *testing.T) {
	for i := range 10 {
		r := newRecorder()
		ctx, cancel := context.WithCancel(t.Context())
		l, err := Listen(ctx, Config{Address: "127.0.0.1:0", MaxLineSize: 1024}, r.open, NewMetrics(nil), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- l.Run(ctx) }()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("late v=1i\n")); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		c.Close()
		r.mu.Lock()
		conns := append([]*recConn(nil), r.conns...)
		r.mu.Unlock()
		if len(conns) != 1 || conns[0].text() != "late v=1i\n" {
			t.Fatalf("round %d: got %d connections, want the one with its line", i, len(conns))
		}
	}
}
