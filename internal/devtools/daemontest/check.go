package daemontest

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Helpers of end-to-end tests: sending, waiting for rows, reading metrics.

// Send sends each datagram to addr over UDP, from one socket.
func Send(t testing.TB, addr net.Addr, datagrams ...string) {
	t.Helper()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range datagrams {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
}

// WaitRows polls until table has want rows, failing the test when it
// has more, or fewer and their count has not changed for Patience (rows
// still arriving, however slowly, are no failure).
func WaitRows(t testing.TB, pool *pgxpool.Pool, table string, want int) {
	t.Helper()
	var got int
	var poll Poller
	stall := NewStall()
	for {
		err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&got)
		if err == nil && got >= want {
			if got > want {
				t.Fatalf("%s has %d rows, want %d", table, got, want)
			}
			return
		}
		if stall.Stalled(got) {
			t.Fatalf("%s has had %d rows for %v, want %d", table, got, Patience, want)
		}
		poll.Sleep()
	}
}

// Poller paces a wait's looks at what it waits for: 10 ms apart at
// first, then half as long again each time, up to 250 ms, so that a short
// wait is short and a long one costs the machine (and the other tests)
// little. The zero value is ready; not safe for concurrent use.
type Poller struct{ d time.Duration }

// Sleep sleeps until the next look.
func (p *Poller) Sleep() {
	p.d = min(max(p.d+p.d/2, 10*time.Millisecond), 250*time.Millisecond)
	time.Sleep(p.d)
}

// Stall tells a wait that makes no progress: the value waited on has not
// changed for Patience. The zero value is not ready; use NewStall. Not
// safe for concurrent use.
type Stall struct {
	last  any
	since time.Time
}

// NewStall returns a Stall that starts now.
func NewStall() *Stall { return &Stall{since: time.Now()} }

// Stalled reports whether v, a comparable value (a count, a string), has
// been the same for Patience; a new v starts the time again.
func (s *Stall) Stalled(v any) bool {
	if v != s.last {
		s.last, s.since = v, time.Now()
		return false
	}
	return time.Since(s.since) >= Patience
}

// Client is the HTTP client of the helpers: it gives up on an answer
// that has not come after the commit timeout and Patience, a safety net
// for a request that would otherwise wait until go test's timeout.
var Client = &http.Client{Timeout: CommitTimeout + Patience}

// Get requests url with method and returns the answer, its body read.
func Get(t testing.TB, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Client.Do(req)
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

// Scrape reads /metrics.
func Scrape(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := Get(t, http.MethodGet, base+"/metrics")
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

// Sample sums the samples of the metric name whose labels include labels;
// ok is false when there is no such sample.
func Sample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (sum float64, ok bool) {
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

// Metric returns the current value of a sample.
func Metric(t testing.TB, base, name string, labels map[string]string) float64 {
	t.Helper()
	v, _ := Sample(Scrape(t, base), name, labels)
	return v
}

// WaitMetric polls /metrics until the sample of name with labels reaches
// want (cmp >=), and returns the value seen; it fails the test once the
// value has not changed for Patience.
func WaitMetric(t testing.TB, base, name string, labels map[string]string, want float64) float64 {
	t.Helper()
	return waitMetric(t, base, name, labels, want, func(v float64) bool { return v >= want })
}

// WaitMetricIs polls /metrics until the sample of name with labels is
// want (a gauge going down, or a counter that must not pass want); it
// fails the test once the value has not changed for Patience.
func WaitMetricIs(t testing.TB, base, name string, labels map[string]string, want float64) {
	t.Helper()
	waitMetric(t, base, name, labels, want, func(v float64) bool { return v == want })
}

func waitMetric(t testing.TB, base, name string, labels map[string]string, want float64, ok func(float64) bool) float64 {
	t.Helper()
	var poll Poller
	stall := NewStall()
	for {
		v, _ := Sample(Scrape(t, base), name, labels)
		if ok(v) {
			return v
		}
		if stall.Stalled(v) {
			t.Fatalf("%s%v has been %v for %v, want %v", name, labels, v, Patience, want)
		}
		poll.Sleep()
	}
}
