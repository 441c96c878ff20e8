package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHealth: /health in InfluxDB 2's shape, 200 "pass" and 503 "fail"
// with the failing check's reason; /ready 200 with InfluxDB 2's fields,
// or 503 with an error in v2's shape.
func TestHealth(t *testing.T) {
	var down atomic.Pointer[error]
	check := func(context.Context) error {
		if p := down.Load(); p != nil {
			return *p
		}
		return nil
	}
	s := newServer(t, Config{Version: "1.2.3", Commit: "abc123", Ready: check,
		Checks: []Check{{Name: "postgresql", Check: check}, {Name: "other", Check: func(context.Context) error { return nil }}}})
	h := s.Handler()

	r := do(t, h, "GET", "/health")
	var hc healthCheck
	if err := json.Unmarshal([]byte(body(t, r)), &hc); err != nil || r.StatusCode != 200 {
		t.Fatalf("got %d, %v", r.StatusCode, err)
	}
	if hc.Name != "pginflux" || hc.Status != "pass" || hc.Version != "1.2.3" || hc.Commit != "abc123" || len(hc.Checks) != 2 || hc.Checks[0].Status != "pass" {
		t.Errorf("got %+v, want pginflux passing both checks", hc)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("got Content-Type %q", ct)
	}

	r = do(t, h, "GET", "/ready")
	var ready struct {
		Status  string    `json:"status"`
		Started time.Time `json:"started"`
		Up      string    `json:"up"`
	}
	if err := json.Unmarshal([]byte(body(t, r)), &ready); err != nil || r.StatusCode != 200 {
		t.Fatalf("/ready: got %d, %v", r.StatusCode, err)
	}
	if _, err := time.ParseDuration(ready.Up); ready.Status != "ready" || ready.Started.IsZero() || err != nil {
		t.Errorf("/ready: got %+v", ready)
	}

	err := errors.New("database unreachable: connection refused")
	down.Store(&err)
	r = do(t, h, "GET", "/health")
	hc = healthCheck{}
	if err := json.Unmarshal([]byte(body(t, r)), &hc); err != nil || r.StatusCode != 503 {
		t.Fatalf("down: got %d, %v", r.StatusCode, err)
	}
	if hc.Status != "fail" || hc.Message != "postgresql: database unreachable: connection refused" ||
		hc.Checks[0].Status != "fail" || hc.Checks[0].Message != err.Error() || hc.Checks[1].Status != "pass" {
		t.Errorf("down: got %+v", hc)
	}
	r = do(t, h, "GET", "/ready")
	var e v2Error
	if err := json.Unmarshal([]byte(body(t, r)), &e); err != nil || r.StatusCode != 503 || e.Code != "unavailable" ||
		e.Message != "not ready: database unreachable: connection refused" {
		t.Errorf("/ready down: got %d %+v, %v", r.StatusCode, e, err)
	}
	if r := do(t, h, "HEAD", "/health"); r.StatusCode != 503 || body(t, r) != "" {
		t.Errorf("HEAD /health: got %d, want 503 and no body", r.StatusCode)
	}
}

// TestPingVerbose: InfluxDB 1.x's rule, anything but "", "0" and "false"
// is verbose.
func TestPingVerbose(t *testing.T) {
	h := newServer(t, Config{Version: "1.2.3"}).Handler()
	for q, want := range map[string]int{"": 204, "?verbose=false": 204, "?verbose=0": 204, "?verbose=true": 200, "?verbose=1": 200, "?verbose=yes": 200} {
		r := do(t, h, "GET", "/ping"+q)
		if r.StatusCode != want {
			t.Errorf("/ping%s: got %d, want %d", q, r.StatusCode, want)
		}
		if b := body(t, r); want == 200 && b != `{"version":"pginflux-1.2.3"}`+"\n" {
			t.Errorf("/ping%s: got %q", q, b)
		}
	}
}

// TestCommonHeaders: every answer, of every endpoint and of none, carries
// the version headers and a request ID, the client's own when usable.
func TestCommonHeaders(t *testing.T) {
	s, _ := writeServer(t, Config{Version: "1.2.3", Token: "t"})
	h := s.Handler()
	uuid7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for _, c := range []struct{ method, target string }{
		{"GET", "/metrics"}, {"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/ping"}, {"HEAD", "/ping"},
		{"GET", "/health"}, {"GET", "/ready"}, {"POST", "/write"}, {"POST", "/api/v2/write"},
		{"POST", "/api/v3/write_lp"}, {"GET", "/query?q=SHOW+DATABASES"}, {"GET", "/nothing"},
	} {
		r := do(t, h, c.method, c.target)
		if r.Header.Get("X-Influxdb-Version") != "pginflux-1.2.3" || r.Header.Get("X-Influxdb-Build") != "OSS" {
			t.Errorf("%s %s: got version headers %q %q", c.method, c.target, r.Header.Get("X-Influxdb-Version"), r.Header.Get("X-Influxdb-Build"))
		}
		id := r.Header.Get("Request-Id")
		if !uuid7.MatchString(id) || r.Header.Get("X-Request-Id") != id || seen[id] {
			t.Errorf("%s %s: got Request-Id %q, X-Request-Id %q, want one new UUIDv7 in both", c.method, c.target, id, r.Header.Get("X-Request-Id"))
		}
		seen[id] = true
	}
	for _, c := range []struct {
		name   string
		header map[string]string
		want   string // "" for a new one
	}{
		{"x-request-id", map[string]string{"X-Request-Id": "abc-1"}, "abc-1"},
		{"request-id", map[string]string{"Request-Id": "abc-2"}, "abc-2"},
		{"x-request-id first", map[string]string{"X-Request-Id": "abc-3", "Request-Id": "abc-4"}, "abc-3"},
		{"unusable", map[string]string{"X-Request-Id": "a b"}, ""},
		{"too long", map[string]string{"X-Request-Id": strings.Repeat("a", maxRequestID+1)}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			hr := httptest.NewRequest("GET", "/ping", nil)
			for k, v := range c.header {
				hr.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, hr)
			got := rec.Header().Get("X-Request-Id")
			if (c.want == "" && !uuid7.MatchString(got)) || (c.want != "" && got != c.want) || rec.Header().Get("Request-Id") != got {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

// TestRequestIDLogged: an error answer's log line names the request.
func TestRequestIDLogged(t *testing.T) {
	var logged strings.Builder
	s, err := Listen(Config{Address: "127.0.0.1:0", Registry: prometheus.NewRegistry(), Token: "t", Writer: &fakeWriter{}},
		slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	logged.Reset()
	hr := httptest.NewRequest("POST", "/write", nil)
	hr.Header.Set("X-Request-Id", "find-me")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, hr)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(logged.String(), "request_id=find-me") {
		t.Errorf("got %d and log %q, want 401 logged with its request ID", rec.Code, logged.String())
	}
}
