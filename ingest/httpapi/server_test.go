package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s, err := Listen(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	return s
}

func do(t *testing.T, h http.Handler, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "pginflux_test_things_total", Help: "Things."})
	c.Add(3)
	reg.MustRegister(c)
	var notReady atomic.Pointer[error]
	s := newServer(t, Config{Registry: reg, Version: "1.2.3", Ready: func(context.Context) error {
		if p := notReady.Load(); p != nil {
			return *p
		}
		return nil
	}})
	h := s.Handler()

	tests := []struct {
		name, method, target string
		wantCode             int
		wantBody             string // substring
		wantHeader           map[string]string
	}{
		{name: "metrics", method: "GET", target: "/metrics", wantCode: 200, wantBody: "pginflux_test_things_total 3"},
		{name: "healthz", method: "GET", target: "/healthz", wantCode: 200, wantBody: "ok"},
		{name: "readyz", method: "GET", target: "/readyz", wantCode: 200, wantBody: "ok"},
		{name: "ping", method: "GET", target: "/ping", wantCode: 204,
			wantHeader: map[string]string{"X-Influxdb-Version": "pginflux-1.2.3", "X-Influxdb-Build": "OSS"}},
		{name: "ping head", method: "HEAD", target: "/ping", wantCode: 204,
			wantHeader: map[string]string{"X-Influxdb-Version": "pginflux-1.2.3", "X-Influxdb-Build": "OSS"}},
		{name: "ping verbose", method: "GET", target: "/ping?verbose=true", wantCode: 200, wantBody: `{"version":"pginflux-1.2.3"}`},
		{name: "ping post", method: "POST", target: "/ping", wantCode: 405},
		{name: "no pprof", method: "GET", target: "/debug/pprof/", wantCode: 404},
		{name: "unknown", method: "GET", target: "/nothing", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, h, tt.method, tt.target)
			if r.StatusCode != tt.wantCode {
				t.Fatalf("got status %d, want %d", r.StatusCode, tt.wantCode)
			}
			if b := body(t, r); !strings.Contains(b, tt.wantBody) {
				t.Errorf("got body %q, want it to contain %q", b, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := r.Header.Get(k); got != v {
					t.Errorf("got header %s %q, want %q", k, got, v)
				}
			}
		})
	}

	err := errors.New("database unreachable: connection refused")
	notReady.Store(&err)
	r := do(t, h, "GET", "/readyz")
	if b := body(t, r); r.StatusCode != 503 || b != "database unreachable: connection refused\n" {
		t.Errorf("got %d %q, want 503 with the reason", r.StatusCode, b)
	}
}

func TestPProf(t *testing.T) {
	s := newServer(t, Config{PProf: true})
	r := do(t, s.Handler(), "GET", "/debug/pprof/")
	if r.StatusCode != 200 || !strings.Contains(body(t, r), "goroutine") {
		t.Fatalf("got status %d, want 200 and the profile index", r.StatusCode)
	}
	r = do(t, s.Handler(), "GET", "/debug/pprof/goroutine?debug=1")
	if r.StatusCode != 200 {
		t.Fatalf("got status %d, want 200", r.StatusCode)
	}
}

func TestListenFails(t *testing.T) {
	s := newServer(t, Config{})
	_, err := Listen(Config{Address: s.Addr().String(), Registry: prometheus.NewRegistry()}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "listen on http") {
		t.Fatalf("got %v, want an error for the port in use", err)
	}
}

// TestRun serves over a real socket and stops when the context ends.
func TestRun(t *testing.T) {
	s := newServer(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); resp.StatusCode != 200 || b != "ok\n" {
		t.Errorf("got %d %q, want 200 ok", resp.StatusCode, b)
	}
	resp.Body.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of its context ending")
	}
	if _, err := http.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		t.Error("the server still answers after Run returned")
	}
}

func TestCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		fail := errors.New("down")
		check := Cache(time.Second, func(ctx context.Context) error {
			if n := calls.Add(1); n == 2 {
				return fail
			}
			return nil
		})
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // a caller that gave up must not poison the shared result
		if err := check(ctx); err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		for range 100 {
			if err := check(t.Context()); err != nil {
				t.Fatalf("got %v, want the cached nil", err)
			}
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("got %d checks within the ttl, want 1", n)
		}
		time.Sleep(time.Second)
		if err := check(t.Context()); !errors.Is(err, fail) {
			t.Fatalf("got %v, want %v after the ttl", err, fail)
		}
		time.Sleep(999 * time.Millisecond)
		if err := check(t.Context()); !errors.Is(err, fail) {
			t.Fatalf("got %v, want the cached %v", err, fail)
		}
		time.Sleep(time.Millisecond)
		if err := check(t.Context()); err != nil {
			t.Fatalf("got %v, want nil after the ttl", err)
		}
		if n := calls.Load(); n != 3 {
			t.Fatalf("got %d checks, want 3", n)
		}
	})
}
