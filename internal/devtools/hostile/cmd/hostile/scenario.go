package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/hostile"
	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

// report is one scenario's outcome.
type report struct {
	Scenario string  `json:"scenario"`
	Seconds  float64 `json:"seconds"`
	// RSSBefore is pginflux's RSS when the scenario started, PeakRSS its
	// highest during it (bytes; 0 without -pid).
	RSSBefore int64 `json:"rss_before_bytes,omitempty"`
	PeakRSS   int64 `json:"peak_rss_bytes,omitempty"`
	// RejectedLines is how much pginflux_parse_rejected_lines_total (all
	// reasons and transports) rose during the scenario; -1 when it could
	// not be read.
	RejectedLines float64 `json:"rejected_lines"`

	Bombs   *hostile.BombsResult     `json:"bombs,omitempty"`
	Big     *hostile.BigBodiesResult `json:"big,omitempty"`
	Slow    *hostile.SlowResult      `json:"slow,omitempty"`
	TCPLine *hostile.TCPLineResult   `json:"tcpline,omitempty"`
	UDP     *hostile.UDPResult       `json:"udp,omitempty"`
}

// rejectedMetric is the counter of lines pginflux rejected.
const rejectedMetric = "pginflux_parse_rejected_lines_total"

// runScenario waits for pginflux's memory to settle, resets its peak,
// runs scenario name within o.timeout, and reports.
func runScenario(ctx context.Context, o *options, name string) (*report, error) {
	r := &report{Scenario: name, RejectedLines: -1}
	if o.pid > 0 {
		rss, err := settle(ctx, o.pid, o.settle)
		if err != nil {
			return nil, err
		}
		if err := hostile.ResetPeak(o.pid); err != nil {
			return nil, err
		}
		r.RSSBefore = rss
	}
	rejected0, scraped := rejected(ctx, o.http)
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var err error
	switch name {
	case "bombs":
		r.Bombs, err = hostile.Bombs(sctx, o.http, o.bombs, o.bombSize)
	case "big":
		r.Big, err = hostile.BigBodies(sctx, o.http, o.clients, o.lines, o.attempts)
	case "slow":
		r.Slow, err = hostile.SlowClients(sctx, o.http, o.slow, min(o.slowFor, o.timeout))
	case "tcpline":
		r.TCPLine, err = hostile.LongTCPLine(sctx, o.tcp, o.lineSize)
	case "all":
		err = runAll(sctx, o, r)
	default:
		err = fmt.Errorf("unknown scenario %q", name)
	}
	if err != nil {
		return nil, err
	}
	r.Seconds = time.Since(start).Seconds()
	if o.pid > 0 {
		if r.PeakRSS, err = hostile.PeakRSS(o.pid); err != nil {
			return nil, err
		}
	}
	if rejected1, ok := rejected(ctx, o.http); ok && scraped {
		r.RejectedLines = rejected1 - rejected0
	}
	return r, nil
}

// runAll runs bombs, big, slow and tcpline at once, with UDP load until
// they end.
func runAll(ctx context.Context, o *options, r *report) error {
	var wg sync.WaitGroup
	errs := make([]error, 5)
	wg.Go(func() { r.Bombs, errs[0] = hostile.Bombs(ctx, o.http, o.bombs, o.bombSize) })
	wg.Go(func() { r.Big, errs[1] = hostile.BigBodies(ctx, o.http, o.clients, o.lines, o.attempts) })
	wg.Go(func() { r.Slow, errs[2] = hostile.SlowClients(ctx, o.http, o.slow, min(o.slowFor, o.timeout)) })
	wg.Go(func() { r.TCPLine, errs[3] = hostile.LongTCPLine(ctx, o.tcp, o.lineSize) })
	udpCtx, stopUDP := context.WithCancel(ctx)
	defer stopUDP()
	var udp sync.WaitGroup
	if o.udp != "" {
		udp.Go(func() { r.UDP, errs[4] = hostile.UDPLoad(udpCtx, o.udp, o.udpRate, o.timeout) })
	}
	wg.Wait()
	stopUDP()
	udp.Wait()
	return errors.Join(errs...)
}

// settle waits, at most max, until the RSS of process pid has not fallen
// by more than a MiB in two seconds, and returns it.
func settle(ctx context.Context, pid int, most time.Duration) (int64, error) {
	deadline := time.Now().Add(most)
	var last int64 = -1
	for {
		m, err := loadgen.ReadMemory(pid)
		if err != nil {
			return 0, err
		}
		if (last >= 0 && last-m.RSS < 1<<20) || time.Now().After(deadline) {
			return m.RSS, nil
		}
		last = m.RSS
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for memory to settle: %w", ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// rejected scrapes pginflux's rejected lines, saying whether it could.
func rejected(ctx context.Context, base string) (float64, bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DialContext: loadgen.LoopbackDialer().DialContext}}
	defer client.CloseIdleConnections()
	m, err := loadgen.Scrape(ctx, client, base+"/metrics")
	if err != nil {
		return 0, false
	}
	return m[rejectedMetric], true
}
