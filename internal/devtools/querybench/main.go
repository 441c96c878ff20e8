// Command querybench measures how fast pginflux answers the InfluxQL of a
// dashboard: it writes a day of a fleet's cpu metrics through pginflux
// (-load), then times the panel queries of a system dashboard on /query,
// as Grafana sends them.
//
//	go run ./internal/devtools/querybench -url http://127.0.0.1:8086 -load
//	go run ./internal/devtools/querybench -url http://127.0.0.1:8086 -runs 5
//
// The data: -hosts hosts (host0001 ...), each with cpu0 .. cpu<-cpus - 1>
// and cpu-total, fields usage_idle, usage_user and usage_system, every
// -interval over -span ending at -end: 1,000 × 9 series every 10 s for a
// day is 77,760,000 points. Every load is bounded by -timeout, and only a
// loopback address is a target.
//
// Run pginflux with --log-level debug to see the SQL each panel runs,
// for EXPLAIN.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "querybench:", err)
		os.Exit(1)
	}
}

type options struct {
	base      string
	db        string
	hosts     int
	cpus      int
	interval  time.Duration
	span      time.Duration
	end       time.Time
	load      bool
	runs      int
	timeout   time.Duration
	batch     int
	selectOne string
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("querybench", flag.ContinueOnError)
	fs.StringVar(&o.base, "url", "http://127.0.0.1:8086", "pginflux's HTTP `address` (loopback only)")
	fs.StringVar(&o.db, "db", "telegraf", "the `database` written and queried")
	fs.IntVar(&o.hosts, "hosts", 1000, "`hosts` of the fleet")
	fs.IntVar(&o.cpus, "cpus", 8, "`cpus` a host has (and cpu-total)")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "time between a series' points")
	fs.DurationVar(&o.span, "span", 24*time.Hour, "the time the data covers")
	end := fs.String("end", "2024-01-02T00:00:00Z", "the end of the data and of the panels' range (RFC3339)")
	fs.BoolVar(&o.load, "load", false, "write the data first")
	fs.IntVar(&o.runs, "runs", 5, "times each panel runs")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound of the whole run")
	fs.IntVar(&o.batch, "batch", 20000, "lines a write request")
	fs.StringVar(&o.selectOne, "host", "host0042", "the host panels filtered by a variable show")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.end, err = time.Parse(time.RFC3339, *end); err != nil {
		return fmt.Errorf("-end: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if err := loadgen.CheckURL(ctx, net.DefaultResolver, o.base, false); err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if o.load {
		start := time.Now()
		n, err := load(ctx, o)
		if err != nil {
			return err
		}
		el := time.Since(start)
		fmt.Printf("loaded %d lines in %s (%.0f lines/s)\n", n, el.Round(time.Second), float64(n)/el.Seconds())
	}
	return panels(ctx, o)
}

// value is a deterministic value in [0, scale) for a series and a time.
func value(h, c int, t int64, field, scale int) float64 {
	x := uint64(h)*0x9E3779B97F4A7C15 ^ uint64(c)*0xC2B2AE3D27D4EB4F ^ uint64(t)*0x165667B19E3779F9 ^ uint64(field)*0x27D4EB2F165667C5
	x ^= x >> 31
	x *= 0x94D049BB133111EB
	x ^= x >> 29
	return float64(x%uint64(scale*100)) / 100
}

// lines appends the lines of every series at time t (seconds).
func lines(b []byte, o options, h int, t int64) []byte {
	for c := 0; c <= o.cpus; c++ {
		cpu := fmt.Sprintf("cpu%d", c)
		if c == o.cpus {
			cpu = "cpu-total"
		}
		b = fmt.Appendf(b, "cpu,cpu=%s,host=host%04d usage_idle=%g,usage_user=%g,usage_system=%g %d\n",
			cpu, h, 50+value(h, c, t, 0, 50), value(h, c, t, 1, 30), value(h, c, t, 2, 10), t)
	}
	return b
}

// load writes the data in gzipped requests, two at a time.
func load(ctx context.Context, o options) (int, error) {
	g, ctx := errgroup.WithContext(ctx)
	bodies := make(chan []byte, 2)
	for range 2 {
		g.Go(func() error {
			for body := range bodies {
				if err := write(ctx, o, body); err != nil {
					return err
				}
			}
			return nil
		})
	}
	n := 0
	g.Go(func() error {
		defer close(bodies)
		var raw []byte
		flush := func() error {
			var z bytes.Buffer
			w := gzip.NewWriter(&z)
			_, _ = w.Write(raw)
			_ = w.Close()
			raw = raw[:0]
			select {
			case bodies <- z.Bytes():
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		step := int64(o.interval / time.Second)
		for t := o.end.Add(-o.span).Unix(); t < o.end.Unix(); t += max(step, 1) {
			for h := 1; h <= o.hosts; h++ {
				raw = lines(raw, o, h, t)
				n += o.cpus + 1
				if n%o.batch < o.cpus+1 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if len(raw) > 0 {
			return flush()
		}
		return nil
	})
	return n, g.Wait()
}

func write(ctx context.Context, o options, body []byte) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.base+"/write?precision=s&db="+url.QueryEscape(o.db), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNoContent:
			return nil
		case (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests) && attempt < 100:
			time.Sleep(time.Second)
		default:
			return fmt.Errorf("write: %s %s", resp.Status, msg)
		}
	}
}

// panel is one query of a dashboard.
type panel struct{ name, q string }

// dashboard is the panels of a system dashboard over the day, as Grafana
// sends them ($timeFilter as epoch milliseconds, $__interval 1m).
func dashboard(o options) []panel {
	tf := fmt.Sprintf("time >= %dms and time <= %dms", o.end.Add(-o.span).UnixMilli(), o.end.UnixMilli()-1)
	last := fmt.Sprintf("time >= %dms and time <= %dms", o.end.Add(-5*time.Minute).UnixMilli(), o.end.UnixMilli()-1)
	h := o.selectOne
	return []panel{
		{"mean by host, every host (the issue's panel)", `SELECT mean("usage_idle") FROM "cpu" WHERE ("cpu" = 'cpu-total') AND ` + tf + ` GROUP BY time(1m), "host" fill(null)`},
		{"mean by host, every host, all cpus", `SELECT mean("usage_idle") FROM "cpu" WHERE ` + tf + ` GROUP BY time(1m), "host" fill(null)`},
		{"mean by host, one host ($host)", `SELECT mean("usage_idle") FROM "cpu" WHERE ("host" =~ /^` + h + `$/ AND "cpu" = 'cpu-total') AND ` + tf + ` GROUP BY time(1m), "host" fill(null)`},
		{"user and system by cpu, one host", `SELECT mean("usage_user") AS "user", mean("usage_system") AS "system" FROM "cpu" WHERE ("host" =~ /^` + h + `$/) AND ` + tf + ` GROUP BY time(1m), "cpu" fill(null)`},
		{"singlestat: last idle, one host", `SELECT last("usage_idle") FROM "cpu" WHERE ("host" =~ /^` + h + `$/ AND "cpu" = 'cpu-total') AND ` + last},
		{"max user over the day, ten hosts", `SELECT max("usage_user") FROM "cpu" WHERE ("host" =~ /^host000[0-9]$/ AND "cpu" = 'cpu-total') AND ` + tf + ` GROUP BY time(5m), "host" fill(none)`},
		{"variable: SHOW TAG VALUES host", `SHOW TAG VALUES FROM "cpu" WITH KEY = "host"`},
	}
}

// panels times each panel o.runs times and prints min, median and max.
func panels(ctx context.Context, o options) error {
	fmt.Printf("%-46s %9s %9s %9s %7s %9s %8s\n", "panel", "min", "median", "max", "series", "points", "MB")
	for _, p := range dashboard(o) {
		var times []time.Duration
		var series, points, size int
		for range o.runs {
			start := time.Now()
			s, n, b, err := query(ctx, o, p.q)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			times = append(times, time.Since(start))
			series, points, size = s, n, b
		}
		slices.Sort(times)
		fmt.Printf("%-46s %9s %9s %9s %7d %9d %8.1f\n", p.name, ms(times[0]), ms(times[len(times)/2]), ms(times[len(times)-1]), series, points, float64(size)/1e6)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/1e6) }

// query runs q as Grafana does and counts what came back.
func query(ctx context.Context, o options, q string) (series, points, size int, err error) {
	u := o.base + "/query?" + url.Values{"db": {o.db}, "q": {q}, "epoch": {"ms"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, 0, err
	}
	var a struct {
		Results []struct {
			Series []struct{ Values [][]json.RawMessage }
			Error  string
		}
		Error string
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %.200s", resp.Status, body)
	}
	if a.Error != "" || len(a.Results) != 1 || a.Results[0].Error != "" {
		return 0, 0, 0, errors.New(strings.TrimSpace(a.Error + " " + fmt.Sprint(a.Results)))
	}
	for _, s := range a.Results[0].Series {
		series++
		points += len(s.Values)
	}
	return series, points, len(body), nil
}
