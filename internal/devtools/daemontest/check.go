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
// has more, or fewer after 20 seconds.
func WaitRows(t testing.TB, pool *pgxpool.Pool, table string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got int
	for time.Now().Before(deadline) {
		err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&got)
		if err == nil && got >= want {
			if got > want {
				t.Fatalf("%s has %d rows, want %d", table, got, want)
			}
			return
		}
		time.Sleep(20 * time.Millisecond) // polling the database
	}
	t.Fatalf("%s has %d rows after 20s, want %d", table, got, want)
}

// Get requests url with method and returns the answer, its body read.
func Get(t testing.TB, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
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
// want (cmp >=), and returns the value seen.
func WaitMetric(t testing.TB, base, name string, labels map[string]string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, _ := Sample(Scrape(t, base), name, labels)
		if v >= want {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v is %v after 20s, want %v", name, labels, v, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
