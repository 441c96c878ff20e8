package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The pginflux counters a run reports, as deltas over the run.
var pginfluxCounters = []string{
	"pginflux_udp_received_datagrams_total",
	"pginflux_ingest_dropped_datagrams_total",
	"pginflux_parse_lines_total",
	"pginflux_parse_rejected_lines_total",
	"pginflux_sink_written_rows_total",
	"pginflux_sink_dropped_rows_total",
}

// ParseMetrics reads the Prometheus text exposition format and returns,
// for every metric name, the sum of its samples over all label sets
// (pginflux_sink_dropped_rows_total summed over its reasons, say).
// Comments and blank lines are skipped. It is a small parser for the
// few counters a benchmark needs, not a validating one: a line it cannot
// read is an error.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	out := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		out[name] += value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

// parseSample reads `name{label="value",...} value [timestamp]`.
func parseSample(line string) (string, float64, error) {
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return "", 0, fmt.Errorf("no value in %q", line)
	}
	name, rest := line[:end], line[end:]
	if rest[0] == '{' {
		n, err := labelsEnd(rest)
		if err != nil {
			return "", 0, fmt.Errorf("%w in %q", err, line)
		}
		rest = rest[n+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return "", 0, fmt.Errorf("want a value and perhaps a timestamp after the name in %q", line)
	}
	v, err := strconv.ParseFloat(f[0], 64) // also NaN, +Inf, -Inf
	if err != nil {
		return "", 0, fmt.Errorf("bad value %q in %q", f[0], line)
	}
	return name, v, nil
}

// labelsEnd returns the index of the '}' closing the label set that s
// starts with, skipping quoted values with their escapes (\\, \", \n).
func labelsEnd(s string) (int, error) {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i, nil
		}
	}
	return 0, fmt.Errorf("unterminated label set")
}

// Scrape fetches url and parses it with ParseMetrics.
func Scrape(ctx context.Context, client *http.Client, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	m, err := ParseMetrics(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return m, nil
}
