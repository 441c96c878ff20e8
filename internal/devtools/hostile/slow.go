package hostile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

// Measurements of SlowClients: the slow clients' lines, and the probes'.
const (
	SlowMeasurement  = "hostile_slow"
	ProbeMeasurement = "hostile_probe"
)

// Slow clients' pace and bodies.
const (
	// slowChunk is what a slow client sends at each tick.
	slowChunk = 8
	// slowLines is the lines of an honest slow client's body (about
	// 3 KiB); a greedy one declares slowGreedyLength instead.
	slowLines        = 64
	slowGreedyLength = 32 << 20
	// answerWait is how long a slow client that sent its whole body waits
	// for the answer.
	answerWait = 10 * time.Second
	// probeEvery is how often a normal write is sent while slow clients
	// are open; probeAttempts how many times a probe honours Retry-After.
	probeEvery    = 500 * time.Millisecond
	probeAttempts = 3
)

// SlowResult is what SlowClients did.
type SlowResult struct {
	Clients  int      `json:"clients"`
	Seconds  float64  `json:"seconds"`
	Outcomes Outcomes `json:"outcomes"` // of the slow clients
	// BytesSent is what the slow clients sent in all, headers included.
	BytesSent int64 `json:"bytes_sent"`
	// Probes are the normal writes (one line, each with up to 3 attempts
	// honouring Retry-After) sent every 500 ms while the slow clients were
	// open: their last answers.
	Probes              Outcomes `json:"probes"`
	ProbeSlowestSeconds float64  `json:"probe_slowest_seconds"` // first attempt to last answer
}

// SlowClients opens n connections to base at once, each a POST /write
// whose body is trickled: 8 bytes every 100 ms to 1 s (by client), of
// whole lines of SlowMeasurement. Even clients declare an honest body of
// about 3 KiB, odd ones a 32 MiB body they never finish. Each stops at
// its answer or after dur, when it closes its connection. Meanwhile, once
// every client has connected, a normal one-line write of ProbeMeasurement
// is sent every 500 ms: whether pginflux still serves others.
func SlowClients(ctx context.Context, base string, n int, dur time.Duration) (*SlowResult, error) {
	if err := checkBase(ctx, base); err != nil {
		return nil, err
	}
	if err := checkClients("slow clients", n); err != nil {
		return nil, err
	}
	if dur <= 0 || dur > time.Hour {
		return nil, fmt.Errorf("duration %v: want more than 0, at most an hour", dur)
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", base, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("slow clients speak plain HTTP, not %s", u.Scheme)
	}
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(dur))
	defer cancel()
	type end struct {
		outcome, sample string
		sent            int64
	}
	ends := make([]end, n)
	var opened, wg sync.WaitGroup
	opened.Add(n)
	for i := range ends {
		wg.Go(func() {
			e := &ends[i]
			e.outcome, e.sample, e.sent = slowClient(ctx, u.Host, i, opened.Done)
		})
	}
	opened.Wait()
	r := &SlowResult{Clients: n}
	r.Probes, r.ProbeSlowestSeconds = probe(ctx, base, int(dur/probeEvery)+1)
	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	for _, e := range ends {
		r.Outcomes.add(e.outcome, e.sample)
		r.BytesSent += e.sent
	}
	return r, nil
}

// slowClient is client i: it connects to addr, calls opened once its
// request's head is sent (or it failed), trickles its body until ctx ends,
// and returns its outcome and how many bytes it sent.
func slowClient(ctx context.Context, addr string, i int, opened func()) (outcome, sample string, sent int64) {
	d := loadgen.LoopbackDialer()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		opened()
		return DialFailed, err.Error(), 0
	}
	defer c.Close()
	body := slowBody(i)
	length := int64(len(body))
	if i%2 == 1 {
		length = slowGreedyLength
	}
	head := fmt.Sprintf("POST /write?db=%s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n",
		SlowMeasurement, addr, length)
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	m, err := io.WriteString(c, head)
	sent += int64(m)
	opened()
	answered := readAnswer(c)
	if err != nil {
		return wait(c, answered, time.Second, sent)
	}
	tick := time.NewTicker(time.Duration(1+i%10) * 100 * time.Millisecond)
	defer tick.Stop()
	for off, bodySent := 0, int64(0); bodySent < length; {
		select {
		case a := <-answered:
			return a.outcome, a.sample, sent
		case <-ctx.Done():
			return wait(c, answered, 0, sent)
		case <-tick.C:
		}
		if off == len(body) {
			off = 0 // a greedy client goes on with the same lines
		}
		k := min(slowChunk, len(body)-off, int(length-bodySent))
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		m, err := c.Write(body[off : off+k])
		off, bodySent, sent = off+m, bodySent+int64(m), sent+int64(m)
		if err != nil {
			return wait(c, answered, time.Second, sent)
		}
	}
	return wait(c, answered, answerWait, sent)
}

// slowAnswer is what a slow client read back.
type slowAnswer struct{ outcome, sample string }

// readAnswer reads the answer on c in a goroutine of its own, which ends
// when c is closed or its read deadline passes.
func readAnswer(c net.Conn) <-chan slowAnswer {
	ch := make(chan slowAnswer, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		switch {
		case err == nil:
			b, _ := io.ReadAll(io.LimitReader(resp.Body, sampleLen+1))
			resp.Body.Close()
			ch <- slowAnswer{strconv.Itoa(resp.StatusCode), string(b)}
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
			ch <- slowAnswer{Cut, err.Error()}
		default:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				ch <- slowAnswer{Unanswered, ""}
				return
			}
			ch <- slowAnswer{Cut, err.Error()}
		}
	}()
	return ch
}

// wait waits up to d for the answer on c, then ends its reader.
func wait(c net.Conn, answered <-chan slowAnswer, d time.Duration, sent int64) (string, string, int64) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	a := <-answered
	return a.outcome, a.sample, sent
}

// slowBody returns client i's honest body: slowLines lines of
// SlowMeasurement.
func slowBody(i int) []byte {
	var b []byte
	for j := range slowLines {
		b = fmt.Appendf(b, "%s,client=%d v=%di %d\n", SlowMeasurement, i, j, bigTime+int64(j)*1000)
	}
	return b
}

// probe sends up to n one-line writes to base, one every probeEvery until
// ctx ends, each with up to probeAttempts attempts, and returns their last
// answers and the longest a probe took.
func probe(ctx context.Context, base string, n int) (Outcomes, float64) {
	client := newClient(1)
	defer client.CloseIdleConnections()
	var o Outcomes
	var slowest float64
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for k := range n {
		line := []byte(fmt.Sprintf("%s,probe=%d v=1i %d\n", ProbeMeasurement, k, time.Now().UnixNano()))
		start := time.Now()
		var a answer
		for attempt := 1; attempt <= probeAttempts; attempt++ {
			a = post(ctx, client, base+"/write", bytes.NewReader(line), int64(len(line)))
			if !a.retryable() || attempt == probeAttempts || !sleep(ctx, a.wait()) {
				break
			}
		}
		if ctx.Err() != nil && a.retryable() {
			return o, slowest // its attempts cut short by the end of the run
		}
		o.add(a.outcome(), a.sample)
		slowest = max(slowest, time.Since(start).Seconds())
		select {
		case <-ctx.Done():
			return o, slowest
		case <-tick.C:
		}
	}
	return o, slowest
}
