package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/parse"
)

// fakeWriter records what the server hands it and answers what it is
// told. (The tests of package main write into PostgreSQL; these look at
// HTTP alone.)
type fakeWriter struct {
	mu       sync.Mutex
	admitErr error
	result   WriteResult
	writeErr error
	got      []written
}

// written is a request the fakeWriter took, and its body as read.
type written struct {
	WriteRequest
	Data []byte
}

func (f *fakeWriter) Admit(string, *auth.Credential) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.admitErr
}

func (f *fakeWriter) Write(_ context.Context, req *WriteRequest) (WriteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := io.ReadAll(req.Body)
	if err != nil {
		return WriteResult{}, fmt.Errorf("read the body: %w", err)
	}
	r := *req
	r.Body = nil
	f.got = append(f.got, written{r, data})
	return f.result, f.writeErr
}

func (f *fakeWriter) last(t *testing.T) written {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("nothing was written")
	}
	return f.got[len(f.got)-1]
}

func writeServer(t *testing.T, cfg Config) (*Server, *fakeWriter) {
	t.Helper()
	f := &fakeWriter{}
	cfg.Writer = f
	return newServer(t, cfg), f
}

type req struct {
	method, target string
	body           []byte
	header         map[string]string
}

func (r req) do(t *testing.T, h http.Handler) (*http.Response, string) {
	t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	hr := httptest.NewRequest(method, r.target, bytes.NewReader(r.body))
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	resp := rec.Result()
	return resp, body(t, resp)
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestWriteBody: the body reaches the Writer as sent, plain or gzip, with
// the precision, database and client of the request.
func TestWriteBody(t *testing.T) {
	s, f := writeServer(t, Config{})
	lines := []byte("cpu,host=a v=1 1\ncpu,host=b v=2 2\n")
	for _, c := range []struct {
		name, target, enc string
		body              []byte
		wantDB            string
		wantPrec          parse.Precision
	}{
		{"v1 plain", "/write?db=telegraf", "", lines, "telegraf", parse.Nanosecond},
		{"v1 gzip", "/write?db=telegraf&rp=autogen&precision=s", "gzip", gzipped(t, lines), "telegraf", parse.Second},
		{"v1 identity", "/write?precision=u", "identity", lines, "", parse.Microsecond},
		{"v1 n", "/write?precision=n", "", lines, "", parse.Nanosecond},
		{"v1 m", "/write?precision=m", "", lines, "", parse.Minute},
		{"v1 h", "/write?precision=h", "", lines, "", parse.Hour},
		{"v2 gzip", "/api/v2/write?org=o&bucket=b1&precision=ms", "GZIP", gzipped(t, lines), "b1", parse.Millisecond},
		{"v2 us", "/api/v2/write?bucket=b2&precision=us", "", lines, "b2", parse.Microsecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := req{target: c.target, body: c.body, header: map[string]string{"Content-Encoding": c.enc}}.do(t, s.Handler())
			if resp.StatusCode != http.StatusNoContent || b != "" {
				t.Fatalf("got %s %q, want 204", resp.Status, b)
			}
			got := f.last(t)
			if !bytes.Equal(got.Data, lines) || got.DB != c.wantDB || got.Precision != c.wantPrec {
				t.Errorf("got body %q db %q precision %v, want %q %q %v", got.Data, got.DB, got.Precision, lines, c.wantDB, c.wantPrec)
			}
			if got.Received.IsZero() || !got.Source.IsValid() {
				t.Errorf("got received %v source %v", got.Received, got.Source)
			}
		})
	}
}

// v1Error and v2Error are the two dialects of error bodies.
type v1Error struct {
	Error string `json:"error"`
}

type v2Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    int64  `json:"line"`
}

func decode[T any](t *testing.T, resp *http.Response, b string) T {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("got Content-Type %q, want JSON", ct)
	}
	var v T
	dec := json.NewDecoder(strings.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

func TestWriteErrors(t *testing.T) {
	s, f := writeServer(t, Config{MaxBody: 1024})
	h := s.Handler()
	for _, c := range []struct {
		name      string
		r         req
		admit     error
		result    WriteResult
		writeErr  error
		wantCode  int
		wantMsg   string // substring
		wantRetry string
		wantLine  int64 // v2's line
	}{
		{name: "bad precision v1", r: req{target: "/write?precision=x"}, wantCode: 400, wantMsg: `invalid precision "x"`},
		{name: "v1 precision in v2", r: req{target: "/api/v2/write?precision=h"}, wantCode: 400, wantMsg: "want ns, us, ms or s"},
		{name: "too large", r: req{target: "/write", body: bytes.Repeat([]byte("a"), 1025)}, wantCode: 413, wantMsg: "more than --http-max-body (1024 bytes)"},
		{name: "exactly the limit", r: req{target: "/write", body: bytes.Repeat([]byte("a"), 1024)}, wantCode: 204},
		{name: "gzip bomb", r: req{target: "/api/v2/write", body: gzipped(t, bytes.Repeat([]byte("a"), 1<<20)),
			header: map[string]string{"Content-Encoding": "gzip"}}, wantCode: 413, wantMsg: "after decompression"},
		{name: "not gzip", r: req{target: "/write", body: []byte("cpu v=1"), header: map[string]string{"Content-Encoding": "gzip"}}, wantCode: 400, wantMsg: "not gzip"},
		{name: "cut gzip", r: req{target: "/write", body: gzipped(t, []byte("cpu v=1\n"))[:15], header: map[string]string{"Content-Encoding": "gzip"}}, wantCode: 400, wantMsg: "not valid gzip"},
		{name: "deflate", r: req{target: "/write", header: map[string]string{"Content-Encoding": "br"}}, wantCode: 415, wantMsg: `"br"`},
		{name: "full v1", r: req{target: "/write"}, admit: fmt.Errorf("%w: busy", ErrFull), wantCode: 503, wantMsg: "busy", wantRetry: "1"},
		{name: "full v2", r: req{target: "/api/v2/write"}, admit: fmt.Errorf("%w: busy", ErrFull), wantCode: 429, wantMsg: "busy", wantRetry: "1"},
		{name: "down v2", r: req{target: "/api/v2/write"}, admit: fmt.Errorf("%w: db down", ErrUnavailable), wantCode: 503, wantMsg: "db down", wantRetry: "5"},
		{name: "bad db", r: req{target: "/write?db=pg_x"}, admit: fmt.Errorf("%w: no such schema", ErrInvalid), wantCode: 400, wantMsg: "no such schema"},
		{name: "lost", r: req{target: "/write", body: []byte("m v=1")}, writeErr: fmt.Errorf("2 rows were not written (abandoned)"), wantCode: 500, wantMsg: "rows were not written: 2 rows"},
		{name: "stopping mid-write", r: req{target: "/write", body: []byte("m v=1")}, writeErr: fmt.Errorf("%w: stopping", ErrUnavailable), wantCode: 503, wantRetry: "5"},
		{name: "partial v1", r: req{target: "/write", body: []byte("x")},
			result:   WriteResult{Lines: 2, BadLines: 1, Listed: []BadLine{{Line: 3, Text: "cpu,host=a usage=", Err: "syntax: column 18: expected field value"}}, KeptIn: "m.pginflux_rejected"},
			wantCode: 400, wantMsg: "partial write: unable to parse 'cpu,host=a usage=' at line 3: syntax: column 18: expected field value; 1 of 3 lines rejected (kept in m.pginflux_rejected)"},
		{name: "all bad v2", r: req{target: "/api/v2/write", body: []byte("x")},
			result:   WriteResult{BadLines: 2, Listed: []BadLine{{Line: 1, Text: "x", Err: "syntax: ..."}, {Line: 2, Text: "y", Err: "syntax: ..."}}},
			wantCode: 400, wantMsg: "unable to parse 'x' at line 1: syntax: ...\nunable to parse 'y' at line 2: syntax: ...; 2 of 2 lines rejected (not kept: --rejected-table is empty)", wantLine: 1},
		{name: "more than listed v1", r: req{target: "/write", body: []byte("x")},
			result:   WriteResult{Lines: 1, BadLines: 3, Listed: []BadLine{{Line: 2, Text: "x", Err: "e"}}},
			wantCode: 400, wantMsg: "partial write: unable to parse 'x' at line 2: e\n(and 2 more); 3 of 4 lines rejected"},
		{name: "conflicts", r: req{target: "/write", body: []byte("x")},
			result:   WriteResult{Lines: 5, Rejected: 2, KeptIn: "m.r"},
			wantCode: 400, wantMsg: "partial write: 2 rows written with values their columns cannot hold (type conflicts), or refused whole by PostgreSQL; those values and rows are kept in m.r"},
		{name: "get", r: req{method: "GET", target: "/write"}, wantCode: 405},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.mu.Lock()
			f.admitErr, f.result, f.writeErr = c.admit, c.result, c.writeErr
			f.mu.Unlock()
			resp, b := c.r.do(t, h)
			if resp.StatusCode != c.wantCode {
				t.Fatalf("got %s %q, want %d", resp.Status, b, c.wantCode)
			}
			if got := resp.Header.Get("Retry-After"); got != c.wantRetry {
				t.Errorf("got Retry-After %q, want %q", got, c.wantRetry)
			}
			if c.wantCode == 204 || c.wantCode == 405 {
				return
			}
			var msg string
			if strings.HasPrefix(c.r.target, "/api/v2/") {
				e := decode[v2Error](t, resp, b)
				if e.Code != v2Codes[c.wantCode] || resp.Header.Get("X-Platform-Error-Code") != e.Code {
					t.Errorf("got code %q, want %q", e.Code, v2Codes[c.wantCode])
				}
				msg = e.Message
				if e.Line != c.wantLine {
					t.Errorf("got line %d, want %d", e.Line, c.wantLine)
				}
			} else {
				msg = decode[v1Error](t, resp, b).Error
				if got := resp.Header.Get("X-Influxdb-Error"); got != headerSafe(msg) {
					t.Errorf("got X-Influxdb-Error %q, want the message", got)
				}
			}
			if !strings.Contains(msg, c.wantMsg) {
				t.Errorf("got message %q, want it to contain %q", msg, c.wantMsg)
			}
		})
	}
	reqs := testutil.ToFloat64(s.wm.Requests.WithLabelValues("v1", "413")) + testutil.ToFloat64(s.wm.Requests.WithLabelValues("v2", "413"))
	if reqs != 2 {
		t.Errorf("got %v requests counted with 413, want 2", reqs)
	}
}

func TestWriteAuth(t *testing.T) {
	const token = "s3cret-token"
	s, _ := writeServer(t, Config{Token: token})
	h := s.Handler()
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	for _, c := range []struct {
		name, target, auth string
		want               int
	}{
		{"none v1", "/write", "", 401},
		{"none v2", "/api/v2/write", "", 401},
		{"wrong token", "/api/v2/write", "Token nope", 401},
		{"longer token", "/write", "Token " + token + "x", 401},
		{"prefix of token", "/write", "Bearer " + token[:5], 401},
		{"wrong password", "/write", basic("telegraf", "nope"), 401},
		{"wrong p", "/write?u=telegraf&p=nope", "", 401},
		{"empty token", "/write", "Token ", 401},
		{"token", "/api/v2/write", "Token " + token, 204},
		{"token v1", "/write", "Token " + token, 204},
		{"bearer", "/write", "Bearer " + token, 204},
		{"basic", "/write", basic("telegraf", token), 204},
		{"p", "/write?u=telegraf&p=" + token, "", 204},
		{"query none", "/query?q=CREATE+DATABASE+x", "", 401},
		{"query basic", "/query?q=CREATE+DATABASE+x", basic("telegraf", token), 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := req{target: c.target, header: map[string]string{"Authorization": c.auth}}.do(t, h)
			if resp.StatusCode != c.want {
				t.Fatalf("got %s %q, want %d", resp.Status, b, c.want)
			}
			if c.want == 401 && strings.Contains(b, token) {
				t.Errorf("the answer %q holds the token", b)
			}
		})
	}
	// Without a token, nothing is asked.
	s2, _ := writeServer(t, Config{})
	if resp, b := (req{target: "/api/v2/write", header: map[string]string{"Authorization": "Token anything"}}).do(t, s2.Handler()); resp.StatusCode != 204 {
		t.Errorf("without --http-token: got %s %q, want 204", resp.Status, b)
	}
}

// TestNoWriter: without a Writer, none of the write endpoints is served.
func TestNoWriter(t *testing.T) {
	s := newServer(t, Config{})
	for _, target := range []string{"/write", "/api/v2/write", "/api/v3/write_lp", "/query"} {
		if r := do(t, s.Handler(), "POST", target); r.StatusCode != 404 {
			t.Errorf("POST %s: got %d, want 404", target, r.StatusCode)
		}
	}
}

// TestWriteMetricsRegistered: the write metrics are on the server's
// registry.
func TestWriteMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, _ := writeServer(t, Config{Registry: reg})
	req{target: "/write"}.do(t, s.Handler())
	n, err := testutil.GatherAndCount(reg, "pginflux_http_write_requests_total", "pginflux_http_write_duration_seconds")
	if err != nil || n != 2 {
		t.Errorf("got %d series, %v; want 2", n, err)
	}
}

// TestBodyTooLargeForReader: an oversized body in a stream without a
// length is cut at the limit.
func TestBodyTooLargeForReader(t *testing.T) {
	s, _ := writeServer(t, Config{MaxBody: 2048})
	hr := httptest.NewRequest("POST", "/write", io.MultiReader(strings.NewReader(strings.Repeat("m v=1\n", 1000))))
	hr.ContentLength = -1
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, hr)
	if rec.Code != 413 {
		t.Errorf("got %d, want 413", rec.Code)
	}
}
