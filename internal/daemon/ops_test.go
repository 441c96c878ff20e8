package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// startOps is start with HTTP on a free loopback port; it returns the
// base URL of the HTTP server too.
func startOps(t *testing.T, schema string, extra ...string) (*pginflux, string) {
	t.Helper()
	httpAddr := make(chan net.Addr, 1)
	testHookHTTPListening = func(a net.Addr) { httpAddr <- a }
	t.Cleanup(func() { testHookHTTPListening = nil })
	p := start(t, schema, append([]string{"--http-address", "127.0.0.1:0"}, extra...)...)
	select {
	case a := <-httpAddr:
		return p, "http://" + a.String()
	default:
		t.Fatal("pginflux listens on UDP but did not report its HTTP address")
		return nil, ""
	}
}

func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// scrape reads /metrics.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := get(t, http.MethodGet, base+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: got %s, want 200", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// sample sums the samples of the metric name whose labels include labels;
// ok is false when there is no such sample.
func sample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (sum float64, ok bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		ok = true
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return sum, ok
}

// TestMetricsEndToEnd sends good and bad lines and finds the counters
// moved by exactly what was sent.
func TestMetricsEndToEnd(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	p, base := startOps(t, schema)

	for _, name := range []string{"pginflux_build_info", "pginflux_pg_pool_total_conns", "pginflux_pg_pool_acquires_total",
		"pginflux_udp_kernel_dropped_datagrams_total", "go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := sample(scrape(t, base), name, nil); !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	before := scrape(t, base)
	udp := map[string]string{"transport": "udp"}
	value := func(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		v, _ := sample(mfs, name, labels)
		return v
	}

	const datagrams, goodPerDatagram = 20, 5
	bad := []string{"opsm", "opsm,host=x v=", "opsm v=1i 12x"} // no fields, no value, bad timestamp
	var sent []string
	for i := range datagrams {
		var b strings.Builder
		for j := range goodPerDatagram {
			n := i*goodPerDatagram + j
			fmt.Fprintf(&b, "opsm,host=h%d v=%di %d\n", j, n, 1_700_000_000_000_000_000+int64(n)*1000)
		}
		if i < len(bad) {
			b.WriteString(bad[i] + "\n")
		}
		sent = append(sent, b.String())
	}
	send(t, p.addr, sent...)
	good := datagrams * goodPerDatagram
	waitRows(t, pool, pgx.Identifier{schema, "opsm"}.Sanitize(), good)

	// The rows are committed; the counter follows right after.
	var after map[string]*dto.MetricFamily
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after = scrape(t, base)
		written := value(after, "pginflux_sink_written_rows_total", nil) - value(before, "pginflux_sink_written_rows_total", nil)
		if written >= float64(good) || time.Now().After(deadline) {
			break
		}
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pginflux_udp_received_datagrams_total", nil, datagrams},
		{"pginflux_parse_lines_total", udp, float64(good)},
		{"pginflux_parse_rejected_lines_total", udp, float64(len(bad))},
		{"pginflux_ingest_dropped_datagrams_total", udp, 0},
		{"pginflux_udp_kernel_dropped_datagrams_total", nil, 0},
		{"pginflux_sink_written_rows_total", nil, float64(good)},
	} {
		if got := value(after, c.name, c.labels) - value(before, c.name, c.labels); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	p.stop(t)
}

// waitStatus polls url until it answers want, and returns the last body.
func waitStatus(t *testing.T, url string, want int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, body := get(t, http.MethodGet, url)
		if resp.StatusCode == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: got %s %q after 20s, want %d", url, resp.Status, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadiness stops PostgreSQL under a running pginflux: /readyz turns
// 503 with the reason and back to 200 once the server is back, while
// /healthz stays 200.
func TestReadiness(t *testing.T) {
	_, schema := pgtest.Schema(t)
	cluster := pgtest.Cluster(t)
	_, base := startOps(t, schema)
	waitStatus(t, base+"/readyz", http.StatusOK)

	// Registered after start's cleanup, so it runs before it: the server is
	// back before pginflux stops and the schema is dropped, and for the
	// other tests, even when this one fails.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := cluster.Start(ctx); err != nil {
			t.Errorf("start PostgreSQL again: %v", err)
		}
	})
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	body := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable)
	t.Logf("/readyz: %s", body)
	if !strings.HasPrefix(body, "database unreachable: ") {
		t.Errorf("got body %q, want the reason", body)
	}
	if resp, _ := get(t, http.MethodGet, base+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: got %s while PostgreSQL is down, want 200", resp.Status)
	}

	if err := cluster.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if body := waitStatus(t, base+"/readyz", http.StatusOK); body != "ok\n" {
		t.Errorf("got body %q, want ok", body)
	}
}

// TestSendCommand sends lines with "pginflux send" from arguments and from
// standard input and finds them in PostgreSQL.
func TestSendCommand(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	p, base := startOps(t, schema)
	noEnv := func(string) string { return "" }

	if err := run(t.Context(), []string{"send", "--address", p.addr.String(), "--quiet",
		"sendargs,host=a v=1i 1700000000000000000", "sendargs,host=b v=2i 1700000001000000000"}, noEnv); err != nil {
		t.Fatalf("send: %v", err)
	}
	waitRows(t, pool, pgx.Identifier{schema, "sendargs"}.Sanitize(), 2)

	const n = 500
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, "sendstdin,host=h%d v=%di %d\n", i%7, i, 1_700_000_000_000_000_000+int64(i)*1000)
	}
	var stderr bytes.Buffer
	if err := runSend(t.Context(), []string{"--address", p.addr.String(), "--max-datagram", "512"}, noEnv, &in, io.Discard, &stderr); err != nil {
		t.Fatalf("send: %v", err)
	}
	m := regexp.MustCompile(`(\d+) lines in (\d+) datagrams \((\d+) bytes\)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("got summary %q, want lines, datagrams and bytes", stderr.String())
	}
	lines, _ := strconv.Atoi(m[1])
	dgrams, _ := strconv.Atoi(m[2])
	if lines != n || dgrams < n*40/512 {
		t.Errorf("got summary %q, want %d lines in many datagrams", stderr.String(), n)
	}
	waitRows(t, pool, pgx.Identifier{schema, "sendstdin"}.Sanitize(), n)
	// The two lines from the arguments went in one datagram.
	if got, _ := sample(scrape(t, base), "pginflux_udp_received_datagrams_total", nil); int(got) != 1+dgrams {
		t.Errorf("pginflux received %v datagrams, want %d", got, 1+dgrams)
	}
	p.stop(t)
}

func TestPing(t *testing.T) {
	_, schema := pgtest.Schema(t)
	_, base := startOps(t, schema)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := get(t, method, base+"/ping")
		if resp.StatusCode != http.StatusNoContent || body != "" {
			t.Errorf("%s /ping: got %s %q, want 204 and no body", method, resp.Status, body)
		}
		if got, want := resp.Header.Get("X-Influxdb-Version"), "pginflux-"+version; got != want {
			t.Errorf("%s /ping: got X-Influxdb-Version %q, want %q", method, got, want)
		}
		if got := resp.Header.Get("X-Influxdb-Build"); got != "OSS" {
			t.Errorf("%s /ping: got X-Influxdb-Build %q, want OSS", method, got)
		}
	}
}

func TestHealthcheckCommand(t *testing.T) {
	_, schema := pgtest.Schema(t)
	_, base := startOps(t, schema)
	hostPort := strings.TrimPrefix(base, "http://")
	_, port, _ := net.SplitHostPort(hostPort)
	noEnv := func(string) string { return "" }

	for _, c := range []struct {
		name string
		args []string
		env  func(string) string
	}{
		{"url", []string{"healthcheck", "--url", base + "/healthz"}, noEnv},
		{"readyz url", []string{"healthcheck", "--url", base + "/readyz"}, noEnv},
		{"http address", []string{"healthcheck", "--http-address", ":" + port}, noEnv},
		{"environment", []string{"healthcheck"}, func(k string) string {
			if k == "PGINFLUX_HTTP_ADDRESS" {
				return hostPort
			}
			return ""
		}},
	} {
		if err := run(t.Context(), c.args, c.env); err != nil {
			t.Errorf("%s: got %v, want nil (exit 0)", c.name, err)
		}
	}

	// A closed port: exit 1 with the reason, never 2 (Docker reserves it).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{
		{"healthcheck", "--http-address", closed},
		{"healthcheck", "--url", base + "/nothing"},
	} {
		err := run(t.Context(), args, noEnv)
		var usage usageError
		if err == nil || errors.As(err, &usage) {
			t.Errorf("%v: got %v, want an error for exit status 1", args, err)
		}
	}
	err = runHealthcheck(t.Context(), []string{"--no-such-flag"}, noEnv, nil, io.Discard, io.Discard)
	var usage usageError
	if err == nil || errors.As(err, &usage) {
		t.Errorf("a bad flag: got %v, want an error for exit status 1", err)
	}
}

// TestHTTPAddressInUse: a port that cannot be bound stops pginflux before
// anything starts.
func TestHTTPAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	listening := false
	testHookListening = func(net.Addr) { listening = true }
	defer func() { testHookListening = nil }()
	err = run(t.Context(), []string{"--database-url", "host=/nonexistent", "--udp-address", "127.0.0.1:0",
		"--http-address", ln.Addr().String(), "--log-level", "error"}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "listen on http") {
		t.Fatalf("got %v, want the HTTP address in use", err)
	}
	if listening {
		t.Error("pginflux listened on UDP before failing on its HTTP address")
	}
}

// TestReadinessHidesPassword: the reason /readyz gives never holds the
// password of the connection string.
func TestReadinessHidesPassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	pool, err := pgxpool.New(t.Context(), "postgres://someone:s3cr3t-pw@"+closed+"/db?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var r readiness
	if err := r.check(t.Context()); err == nil || !strings.Contains(err.Error(), "not listening") {
		t.Errorf("before listening: got %v, want not listening", err)
	}
	r.pool.Store(pool)
	r.listening.Store(true)
	err = r.check(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "database unreachable: ") {
		t.Fatalf("got %v, want database unreachable", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("the reason %q holds the password", err)
	}
}

func TestHealthzURL(t *testing.T) {
	for _, c := range []struct{ addr, want, wantErr string }{
		{addr: ":8086", want: "http://127.0.0.1:8086/healthz"},
		{addr: "0.0.0.0:9000", want: "http://127.0.0.1:9000/healthz"},
		{addr: "[::]:9000", want: "http://127.0.0.1:9000/healthz"},
		{addr: "[::1]:9000", want: "http://[::1]:9000/healthz"},
		{addr: "10.1.2.3:9000", want: "http://10.1.2.3:9000/healthz"},
		{addr: "localhost:http", want: "http://localhost:80/healthz"},
		{addr: "", wantErr: "HTTP is disabled"},
		{addr: "8086", wantErr: "not host:port"},
	} {
		got, err := healthzURL(c.addr)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("healthzURL(%q): got %q, %v; want an error containing %q", c.addr, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("healthzURL(%q): got %q, %v; want %q", c.addr, got, err, c.want)
		}
	}
}
