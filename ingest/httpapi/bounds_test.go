package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/internal/auth"
)

// stuckWriter takes a request, reads its body, and waits, as a sink whose
// database is away does, until ctx ends or release is closed.
type stuckWriter struct {
	entered chan struct{}
	release chan struct{}
}

func (w *stuckWriter) Admit(string, *auth.Credential) error { return nil }

func (w *stuckWriter) Write(ctx context.Context, req *WriteRequest) (WriteResult, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return WriteResult{}, fmt.Errorf("read the body: %w", err)
	}
	if req.CommitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.CommitTimeout)
		defer cancel()
	}
	select {
	case <-ctx.Done():
		return WriteResult{}, ctx.Err()
	case <-w.release:
		return WriteResult{Lines: 1}, nil
	}
}

func serve(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s := newServer(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s, "http://" + s.Addr().String()
}

// TestCommitTimeout: a request whose rows are not stored within the
// commit timeout is answered 503 with Retry-After, not left hanging.
func TestCommitTimeout(t *testing.T) {
	w := &stuckWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := newServer(t, Config{Writer: w, CommitTimeout: 100 * time.Millisecond})
	resp, body := req{target: "/write", body: []byte("m v=1\n")}.do(t, s.Handler())
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "not committed within 100ms") {
		t.Errorf("got %d %v %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// TestMaxWrites: a write request beyond --http-max-writes is answered
// "try later" before its body is read: 503 for v1, 429 for v2.
func TestMaxWrites(t *testing.T) {
	w := &stuckWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := newServer(t, Config{Writer: w, MaxWrites: 1})
	first := make(chan int, 1)
	go func() {
		resp, _ := req{target: "/write", body: []byte("m v=1\n")}.do(t, s.Handler())
		first <- resp.StatusCode
	}()
	<-w.entered
	for target, want := range map[string]int{"/write": http.StatusServiceUnavailable, "/api/v2/write": http.StatusTooManyRequests} {
		resp, body := req{target: target, body: []byte("m v=1\n")}.do(t, s.Handler())
		if resp.StatusCode != want || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "--http-max-writes") {
			t.Errorf("%s: got %d %v %q, want %d with Retry-After", target, resp.StatusCode, resp.Header.Get("Retry-After"), body, want)
		}
	}
	close(w.release)
	if code := <-first; code != http.StatusNoContent {
		t.Errorf("the first request: got %d, want 204", code)
	}
	// Its slot is free again.
	w.release = make(chan struct{})
	close(w.release)
	if resp, body := (req{target: "/write", body: []byte("m v=1\n")}).do(t, s.Handler()); resp.StatusCode != http.StatusNoContent {
		t.Errorf("after: got %d %q", resp.StatusCode, body)
	}
}

// TestSlowBody: a body that has not arrived within the body timeout is
// answered 408, and the request's slot freed.
func TestSlowBody(t *testing.T) {
	w := &stuckWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	_, base := serve(t, Config{Writer: w, BodyTimeout: 200 * time.Millisecond, MaxWrites: 1})
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 32 MiB declared, a few bytes sent.
	fmt.Fprintf(c, "POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nm v=1\n", 32<<20)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "did not arrive within 200ms") {
		t.Errorf("got %d %q, want 408", resp.StatusCode, body)
	}
	close(w.release)
	r, err := http.Post(base+"/write", "text/plain", strings.NewReader("m v=1\n"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNoContent {
		t.Errorf("the next request: got %d, want 204 (its slot free)", r.StatusCode)
	}
}

// TestMaxConnections: a connection beyond --http-max-connections is
// closed at once and counted; one is taken again once another closes.
func TestMaxConnections(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, base := serve(t, Config{Registry: reg, MaxConnections: 2})
	addr := strings.TrimPrefix(base, "http://")
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// The server takes connections in order: once the second is
	// served, both hold their slots.
	fmt.Fprintf(held[1], "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(held[1]), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the second connection: %v %v", resp, err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("the third connection read %d bytes, want it closed", n)
	}
	if got := counter(t, reg, "pginflux_http_refused_connections_total"); got != 1 {
		t.Errorf("got %v refused connections, want 1", got)
	}
	held[0].Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection taken after one closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // the server notices the close
	}
}

// counter returns the value of the counter called name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
