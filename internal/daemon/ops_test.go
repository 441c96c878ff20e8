package daemon_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestMetricsEndToEnd sends good and bad lines and finds the counters
// moved by exactly what was sent.
func TestMetricsEndToEnd(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema)
	base := p.Base

	for _, name := range []string{"pginflux_build_info", "pginflux_pg_pool_total_conns", "pginflux_pg_pool_acquires_total",
		"pginflux_udp_kernel_dropped_datagrams_total", "go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := daemontest.Sample(daemontest.Scrape(t, base), name, nil); !ok {
			t.Errorf("/metrics has no %s", name)
		}
	}
	before := daemontest.Scrape(t, base)
	udp := map[string]string{"transport": "udp"}
	value := func(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
		v, _ := daemontest.Sample(mfs, name, labels)
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
	daemontest.Send(t, p.UDP, sent...)
	good := datagrams * goodPerDatagram
	daemontest.WaitRows(t, pool, pgx.Identifier{schema, "opsm"}.Sanitize(), good)

	// The rows are committed; the counter follows right after.
	var after map[string]*dto.MetricFamily
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after = daemontest.Scrape(t, base)
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
	p.Stop(t)
}

// waitStatus polls url until it answers want, and returns the last body.
func waitStatus(t *testing.T, url string, want int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, body := daemontest.Get(t, http.MethodGet, url)
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
	base := daemontest.Start(t, schema).Base
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
	if resp, _ := daemontest.Get(t, http.MethodGet, base+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz: got %s while PostgreSQL is down, want 200", resp.Status)
	}

	if err := cluster.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if body := waitStatus(t, base+"/readyz", http.StatusOK); body != "ok\n" {
		t.Errorf("got body %q, want ok", body)
	}
}

func TestPing(t *testing.T) {
	_, schema := pgtest.Schema(t)
	base := daemontest.Start(t, schema).Base
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := daemontest.Get(t, method, base+"/ping")
		if resp.StatusCode != http.StatusNoContent || body != "" {
			t.Errorf("%s /ping: got %s %q, want 204 and no body", method, resp.Status, body)
		}
		if got, want := resp.Header.Get("X-Influxdb-Version"), "pginflux-"+daemontest.Version; got != want {
			t.Errorf("%s /ping: got X-Influxdb-Version %q, want %q", method, got, want)
		}
		if got := resp.Header.Get("X-Influxdb-Build"); got != "OSS" {
			t.Errorf("%s /ping: got X-Influxdb-Build %q, want OSS", method, got)
		}
	}
}

// TestHTTPAddressInUse: a port that cannot be bound stops pginflux before
// anything starts.
func TestHTTPAddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := daemontest.Config{ConnString: daemontest.Unreachable}.TryStart(t, "unused", "--http-address", ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "listen on http") {
		t.Fatalf("got %v, want the HTTP address in use", err)
	}
	if strings.Contains(p.Log.String(), "transport=udp") || strings.Contains(p.Log.String(), "database reachable") {
		t.Errorf("pginflux went on after failing on its HTTP address:\n%s", p.Log)
	}
}
