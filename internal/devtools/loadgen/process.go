package loadgen

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// processProbe reads pginflux's memory and CPU time: from /proc when its
// PID is known, else from the process_* metrics of its /metrics (the
// Prometheus process collector), which have no high-water mark.
type processProbe struct {
	pid    int
	ctx    context.Context
	client *http.Client
	url    string
	// server is the PostgreSQL server whose processes' CPU time is read
	// with pginflux's; nil or PID 0 for none.
	server *ServerInfo
}

func (p *processProbe) enabled() bool { return p.pid > 0 || p.url != "" }

func (p *processProbe) source() string {
	if p.pid > 0 {
		return "/proc/" + strconv.Itoa(p.pid)
	}
	return "metrics"
}

// every is how often the sampler looks: a /proc read is cheap, a scrape
// costs pginflux a little.
func (p *processProbe) every() time.Duration {
	if p.pid > 0 {
		return 100 * time.Millisecond
	}
	return 500 * time.Millisecond
}

func (p *processProbe) scrape(name string) (float64, error) {
	m, err := Scrape(p.ctx, p.client, p.url)
	if err != nil {
		return 0, err
	}
	v, ok := m[name]
	if !ok {
		return 0, errors.New(p.url + " has no " + name)
	}
	return v, nil
}

// cpu returns the CPU seconds the process has used.
func (p *processProbe) cpu() (float64, error) {
	if p.pid > 0 {
		return ReadProcessCPU(p.pid)
	}
	return p.scrape("process_cpu_seconds_total")
}

// memory returns the process's RSS, and its HWM when read from /proc.
func (p *processProbe) memory() (Memory, error) {
	if p.pid > 0 {
		return ReadMemory(p.pid)
	}
	rss, err := p.scrape("process_resident_memory_bytes")
	return Memory{RSS: int64(rss)}, err
}

// sampler polls a process's RSS while a run goes on, to report the most
// it used.
type sampler struct {
	stopc chan struct{}
	done  chan struct{}
	max   int64
}

func startSampler(probe *processProbe) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	if !probe.enabled() {
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(probe.every())
		defer t.Stop()
		for {
			if m, err := probe.memory(); err == nil {
				s.max = max(s.max, m.RSS)
			}
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the largest RSS seen.
func (s *sampler) stop() int64 {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
	return s.max
}
