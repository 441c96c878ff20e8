package loadgen

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const sampleMetrics = `# HELP pginflux_udp_received_datagrams_total UDP datagrams read from the sockets.
# TYPE pginflux_udp_received_datagrams_total counter
pginflux_udp_received_datagrams_total 12345
# HELP pginflux_ingest_dropped_datagrams_total Datagrams dropped because the queue to the parsers was full.
# TYPE pginflux_ingest_dropped_datagrams_total counter
pginflux_ingest_dropped_datagrams_total{transport="udp"} 7
pginflux_parse_lines_total{transport="udp"} 1.2345e+06
pginflux_parse_rejected_lines_total{reason="nul_byte",transport="udp"} 1
pginflux_parse_rejected_lines_total{reason="syntax",transport="udp"} 2
pginflux_parse_rejected_lines_total{reason="out_of_range",transport="udp"} 0
pginflux_sink_dropped_rows_total{reason="rejected"} 3
pginflux_sink_dropped_rows_total{reason="a \"quoted} value\\"} 4
pginflux_sink_written_rows_total 1.2e+06 1700000000000

pginflux_sink_batch_duration_seconds_bucket{le="+Inf"} 10
go_gc_duration_seconds{quantile="0.5"} NaN
`

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	got, err := ParseMetrics(strings.NewReader(sampleMetrics))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"pginflux_udp_received_datagrams_total":       12345,
		"pginflux_ingest_dropped_datagrams_total":     7,
		"pginflux_parse_lines_total":                  1234500,
		"pginflux_parse_rejected_lines_total":         3,
		"pginflux_sink_dropped_rows_total":            7,
		"pginflux_sink_written_rows_total":            1200000,
		"pginflux_sink_batch_duration_seconds_bucket": 10,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
	if v, ok := got["go_gc_duration_seconds"]; !ok || !math.IsNaN(v) {
		t.Errorf("go_gc_duration_seconds: got %v, %v, want NaN", v, ok)
	}
}

func TestParseMetricsErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"novalue\n",
		"x{a=\"b\" 1\n",
		"x{a=\"b}\"\n",
		"x 1 2 3\n",
		"x one\n",
		"{a=\"b\"} 1\n",
	} {
		if _, err := ParseMetrics(strings.NewReader(in)); err == nil {
			t.Errorf("ParseMetrics(%q): no error", in)
		}
	}
}

func TestScrape(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, sampleMetrics)
	}))
	defer srv.Close()
	m, err := Scrape(t.Context(), srv.Client(), srv.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if m["pginflux_udp_received_datagrams_total"] != 12345 {
		t.Errorf("got %v", m)
	}
	if _, err := Scrape(t.Context(), srv.Client(), srv.URL+"/nothing"); err == nil {
		t.Error("no error for a 404")
	}
}
