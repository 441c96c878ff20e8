package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/loadgen"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// bench runs "pginflux bench" with args as run does, and returns its
// output.
func bench(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runCommand(t.Context(), append([]string{"bench"}, args...), func(string) string { return "" }, nil, &stdout, &stderr)
	if testing.Verbose() {
		t.Logf("stderr:\n%s", stderr.String())
	}
	return stdout.String(), err
}

// warmUp sends pginflux at addr (writing into schema, read through pool)
// a few lines of bench's workload and waits until they are stored: the
// tables and columns made, so that the rows of the runs measured after
// arrive at once. Bench counts a run's rows as settled once their count
// has not changed for 2 seconds; pginflux making its tables on a busy
// machine can take longer than that to store the first row.
func warmUp(t *testing.T, addr string, pool *pgxpool.Pool, schema string) {
	t.Helper()
	if _, err := bench(t, "--address", addr, "--database-url", pgtest.ConnString(t), "--schema", schema,
		"--lines", "100", "--rate", "1000", "--metrics-url", "", "--settle", "0s"); err != nil {
		t.Fatalf("bench to warm up: %v", err)
	}
	daemontest.WaitRows(t, pool, pgx.Identifier{schema, "cpu"}.Sanitize(), 100)
}

// TestBenchEndToEnd sends 5,000 lines through the real pginflux path and
// finds every one stored, and pginflux's counters agreeing, with a report
// every second while sending.
func TestBenchEndToEnd(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema)
	metricsURL := p.Base + "/metrics"
	warmUp(t, p.UDP.String(), pool, schema)
	// Counted once the rows are committed: before the run's first look.
	daemontest.WaitMetric(t, p.Base, "pginflux_sink_written_rows_total", nil, 100)

	out, err := bench(t,
		"--address", p.UDP.String(),
		"--database-url", pgtest.ConnString(t),
		"--schema", schema,
		"--lines", "5000",
		"--rate", "5000",
		"--settle", "30s",
		"--metrics-url", metricsURL,
		"--pid", strconv.Itoa(os.Getpid()),
		"--report-every", "1s",
		"--json")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	var got benchOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	r := got.Run
	if r == nil || r.Stored == nil {
		t.Fatalf("no run or no stored counts in %s", out)
	}
	if r.Sent.Lines != 5000 || r.Stored.Rows != 5000 || r.Stored.Lost != 0 || !r.Stored.Settled {
		t.Errorf("sent %d, stored %d, lost %d, settled %v; want 5000, 5000, 0, true",
			r.Sent.Lines, r.Stored.Rows, r.Stored.Lost, r.Stored.Settled)
	}
	if r.Stored.Tables["cpu"] != 5000 {
		t.Errorf("tables: got %v, want cpu 5000", r.Stored.Tables)
	}
	if r.Pginflux == nil || r.Pginflux.Error != "" {
		t.Fatalf("no pginflux counters: %+v", r.Pginflux)
	}
	for name, want := range map[string]float64{
		"pginflux_udp_received_datagrams_total": float64(r.Sent.Datagrams),
		"pginflux_parse_lines_total":            5000,
		"pginflux_sink_written_rows_total":      5000,
		"pginflux_sink_dropped_rows_total":      0,
	} {
		if v := r.Pginflux.Counters[name]; v != want {
			t.Errorf("%s: got %v, want %v", name, v, want)
		}
	}
	if p := r.Process; p == nil || p.Source != "/proc/"+strconv.Itoa(os.Getpid()) || p.MaxRSS <= 0 || p.HWM <= 0 {
		t.Errorf("process: got %+v, want RSS and HWM from /proc", p)
	}
	if s := r.Server; s == nil || s.Fsync == "" || s.Durable != s.ServerInfo.Durable() {
		t.Errorf("server: got %+v, want its durability settings", s)
	} else if s.PID > 0 && s.CPU <= 0 {
		t.Errorf("server: postmaster %d found but no CPU time measured: %+v", s.PID, s)
	}
	// About a second of sending: one interval, or two when the last,
	// cut short, was long enough to count.
	var intervalLines int64
	for _, iv := range r.Intervals {
		intervalLines += iv.Lines
		if iv.Pginflux == nil || iv.RSS <= 0 {
			t.Errorf("interval %+v lacks pginflux's counters or RSS", iv)
		}
	}
	if len(r.Intervals) == 0 || r.Intervals[0].Rate <= 0 || intervalLines > r.Sent.Lines {
		t.Errorf("intervals: got %+v, want at least one, the first at a positive rate, %d lines in all at most", r.Intervals, r.Sent.Lines)
	}
	// A second run counts only its own rows; without --pid, pginflux's
	// memory comes from its process metrics.
	out, err = bench(t, "--address", p.UDP.String(), "--database-url", pgtest.ConnString(t),
		"--schema", schema, "--lines", "1000", "--rate", "20000", "--metrics-url", metricsURL)
	if err != nil {
		t.Fatalf("second bench: %v", err)
	}
	for _, want := range []string{"sent        1,000 lines", "stored      1,000 rows (cpu 1,000)", "lost        0 lines", "process     pginflux (metrics): RSS up to", "server      PostgreSQL "} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchRefusesRemoteTargets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{name: "udp", args: []string{"--address", "192.0.2.1:8089"}},
		{name: "database", args: []string{"--database-url", "postgres://u@192.0.2.1/db"}},
		{name: "metrics", args: []string{"--metrics-url", "http://192.0.2.1:8086/metrics"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bench(t, append(tt.args, "--lines", "10")...)
			var usage usageError
			if !errors.As(err, &usage) || !errors.Is(err, loadgen.ErrRemote) {
				t.Errorf("got %v, want a usage error wrapping ErrRemote", err)
			}
		})
	}
}

func TestBenchFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PGINFLUX_BENCH_RATE": "1234", "PGINFLUX_BENCH_WORKLOAD": "mix", "DATABASE_URL": "postgres://x@127.0.0.1/db"}
	f, err := parseBenchFlags([]string{"--workload", "cpu"}, func(k string) string { return env[k] }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if f.rate != 1234 || f.workload != "cpu" || f.databaseURL != "postgres://x@127.0.0.1/db" {
		t.Errorf("got rate %v, workload %s, database %q; want 1234 from the environment, cpu from the flag, DATABASE_URL",
			f.rate, f.workload, f.databaseURL)
	}
	_, err = parseBenchFlags([]string{"--find-max", "--rate", "-1", "--storage", "jsonb,nope", "--senders", "0", "--report-every", "500ms"},
		func(string) string { return "" }, &bytes.Buffer{})
	for _, want := range []string{"--rate -1", "--storage: \"nope\"", "--senders 0", "--report-every 500ms", "need --database-url"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestBenchCeilingAndFindMax runs a small ceiling, then a search of at
// most two steps, and gets the ratio of the two. What the search finds
// is the machine's speed, which is no test's verdict: a busy machine may
// starve the sender below a step's rate, which ends the search (or makes
// the first step the best); the test checks the search's bookkeeping
// whatever the steps achieved.
func TestBenchCeilingAndFindMax(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--http-address", "")
	warmUp(t, p.UDP.String(), pool, schema)
	out, err := bench(t,
		"--address", p.UDP.String(),
		"--database-url", pgtest.ConnString(t),
		"--schema", schema,
		"--metrics-url", "",
		"--ceiling", "--lines", "2000", "--storage", "columns,jsonb",
		"--find-max", "--rate", "1000", "--step-duration", "1s", "--max-steps", "2",
		"--json")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	var got benchOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	if c := got.Ceiling; c == nil || len(c.Variants) != 8 || c.Variants[0].Storage != "columns" || c.Variants[0].Rows != 2000 {
		t.Fatalf("ceiling: got %+v, want 8 variants of 2000 rows, columns first", c)
	}
	f := got.FindMax
	if f == nil || len(f.Steps) == 0 || len(f.Steps) > 2 {
		t.Fatalf("find-max: got %+v, want 1 or 2 steps", f)
	}
	if len(f.Steps) == 1 && !strings.HasPrefix(f.Reason, "the sender reached only") {
		t.Errorf("find-max stopped after one step because %q, want it to go on unless the sender fell short", f.Reason)
	}
	best, bestRate := 0, 0.0
	for i, s := range f.Steps {
		if s.Stored == nil || s.Stored.Lost != 0 || s.Stored.Rows != s.Sent.Lines || s.Sent.Lines == 0 {
			t.Errorf("step %d: sent %d, stored %+v; want every line stored", i+1, s.Sent.Lines, s.Stored)
		}
		// Each step's rate is the last one's × 1.25 (--factor) while
		// nothing is lost.
		if want := 1000 * math.Pow(1.25, float64(i)); s.TargetRate != want {
			t.Errorf("step %d: target rate %v, want %v", i+1, s.TargetRate, want)
		}
		if s.Sent.Rate > bestRate {
			best, bestRate = i+1, s.Sent.Rate
		}
	}
	if f.BestStep != best || f.BestRate != bestRate {
		t.Errorf("best step %d at %v lines/s, want step %d at %v: the fastest lossless one", f.BestStep, f.BestRate, best, bestRate)
	}
	// pginflux writes in merge mode: it is compared with the tables
	// with the point key.
	if best := got.Ceiling.Best("columns", true); got.RatioToCeiling <= 0 || best == nil || got.CeilingRate != best.Rate {
		t.Errorf("ratio %v to ceiling %v; want a ratio to the best columns rate with the point key (%+v)", got.RatioToCeiling, got.CeilingRate, best)
	}
}
