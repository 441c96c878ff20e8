package daemon_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// Operating pginflux: its metrics, /ping, /healthz and /readyz, and
// reloading its configuration.

// TestMetricsEndToEnd sends good and bad lines and finds the counters
// moved by exactly what was sent.
func TestMetricsEndToEnd(t *testing.T) {
	t.Parallel()
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
	daemontest.WaitMetric(t, base, "pginflux_sink_written_rows_total", nil, value(before, "pginflux_sink_written_rows_total", nil)+float64(good))
	after := daemontest.Scrape(t, base)
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

func TestPing(t *testing.T) {
	t.Parallel()
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

// TestReadiness stops PostgreSQL under a running pginflux: /readyz turns
// 503 with the reason and back to 200 once the server is back, while
// /healthz stays 200.
func TestReadiness(t *testing.T) {
	t.Parallel()
	cluster, _, schema := ownServer(t)
	base := daemontest.Config{ConnString: cluster.ConnString("postgres")}.Start(t, schema).Base
	waitStatus(t, base+"/readyz", http.StatusOK, "")
	keepRunning(t, cluster)
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	body := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable, "")
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
	if body := waitStatus(t, base+"/readyz", http.StatusOK, ""); body != "ok\n" {
		t.Errorf("got body %q, want ok", body)
	}
}

// TestClientHealthDown: with PostgreSQL unreachable, the v2 client's
// Health is an error carrying the reason (503, status "fail"), Ready too,
// while Ping still answers.
func TestClientHealthDown(t *testing.T) {
	t.Parallel()
	p := daemontest.Config{ConnString: daemontest.Unreachable}.Start(t, "unused")
	client := influxdb2.NewClient(p.Base, "")
	defer client.Close()
	if ok, err := client.Ping(t.Context()); !ok || err != nil {
		t.Errorf("Ping: got %v, %v, want true", ok, err)
	}
	if h, err := client.Health(t.Context()); err == nil || !strings.Contains(err.Error(), "postgresql: database unreachable: ") {
		t.Errorf("Health: got %+v, %v, want the reason", h, err)
	}
	if rd, err := client.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "unavailable: not ready: database unreachable: ") {
		t.Errorf("Ready: got %+v, %v, want the reason", rd, err)
	}
}

// TestReload changes settings in the file PGINFLUX_CONFIG_FILE names
// and reloads, as SIGHUP does: the batch size and log level change at once,
// a setting that needs a restart is named, and a broken file changes
// nothing.
func TestReload(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	file := filepath.Join(t.TempDir(), "pginflux.env")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is written before a reload: no batch fills, none gets old.
	write("# pginflux settings\nPGINFLUX_BATCH_SIZE=100000\nPGINFLUX_FLUSH_INTERVAL=1h\nPGINFLUX_LOG_LEVEL=warn\n")
	getenv := func(k string) string {
		if k == config.FileEnv {
			return file
		}
		return ""
	}
	p := daemontest.Config{Getenv: getenv}.Start(t, schema, "--udp-readers", "1", "--parsers", "1")
	base, logs := p.Base, p.Log
	// Reload is what SIGHUP does (TestSIGHUPReloads in package main).
	hup := p.Reload

	table := pgx.Identifier{schema, "reload"}.Sanitize()
	line := func(i int) string {
		return fmt.Sprintf("reload,host=a v=%di %d", i, 1_700_000_000_000_000_000+int64(i)*1000)
	}

	daemontest.Send(t, p.UDP, line(1), line(2), line(3))
	daemontest.WaitMetric(t, base, "pginflux_parse_lines_total", map[string]string{"transport": "udp"}, 3)
	if strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("info lines logged at level warn:\n%s", logs)
	}

	write("PGINFLUX_BATCH_SIZE=5\nPGINFLUX_FLUSH_INTERVAL=1h\nPGINFLUX_LOG_LEVEL=debug\nPGINFLUX_WRITERS=3\n")
	if err := hup(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	logs.WaitFor(t, `msg="setting changed" setting=log-level old=WARN new=DEBUG`)
	logs.WaitFor(t, `msg="setting changed" setting=batch-size old=100000 new=5`)
	logs.WaitFor(t, `level=WARN msg="changed settings need a restart to take effect; running on with their old values" settings=writers`)
	// The open batch of 3 rows fills at the new size of 5.
	daemontest.Send(t, p.UDP, line(4), line(5))
	daemontest.WaitRows(t, pool, table, 5)
	// Debug lines show now.
	daemontest.Send(t, p.UDP, "reload,host=a v=")
	logs.WaitFor(t, `level=DEBUG msg="rejected a line"`)

	// A broken file: an error, and the settings stay.
	write("PGINFLUX_BATCH_SIZE=five\n")
	if err := hup(); err == nil || !strings.Contains(err.Error(), "PGINFLUX_BATCH_SIZE") {
		t.Errorf("reload of a bad value: got %v, want an error naming PGINFLUX_BATCH_SIZE", err)
	}
	write("PGINFLUX_BATCH_SIZE 5\n")
	if err := hup(); err == nil || !strings.Contains(err.Error(), "line 1: not KEY=VALUE") {
		t.Errorf("reload of a bad line: got %v, want an error naming the line", err)
	}
	logs.WaitFor(t, `level=ERROR msg="cannot reload the configuration; running on with the current one"`)
	daemontest.Send(t, p.UDP, line(6), line(7), line(8), line(9), line(10))
	daemontest.WaitRows(t, pool, table, 10)
	p.Stop(t)
}
