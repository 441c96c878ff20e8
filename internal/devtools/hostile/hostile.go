// Package hostile plays hostile and careless clients against a running
// pginflux on this machine, to measure what they cost it: gzip bombs
// (Bombs), many big bodies at once (BigBodies), slow clients
// (SlowClients), an over-long TCP line (LongTCPLine), UDP load beside them
// (UDPLoad), and the peak resident memory of pginflux's process (PeakRSS,
// ResetPeak).
//
// It is a development tool. Every target must be a loopback address
// (loadgen's guards), and every scenario is bounded: in clients, in
// attempts, and in time (its ctx, and a timeout per request). The
// scenarios report what happened; they judge nothing, which is for the
// caller (the tests of internal/daemon, or a person reading the report of
// cmd/hostile).
//
// The scenarios are safe to run at once; each result is the caller's.
package hostile

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

// Bounds of every scenario.
const (
	// MaxClients is the most clients (requests or connections) a scenario
	// runs at once.
	MaxClients = 10_000
	// RequestTimeout bounds one HTTP request, from its start to the end of
	// its answer, whatever ctx allows.
	RequestTimeout = 2 * time.Minute
	// MaxRetryAfter is the longest Retry-After a client honours; a longer
	// one is waited for this long.
	MaxRetryAfter = time.Minute
	// DefaultRetryAfter is how long a client waits after a 429 or a 503
	// without Retry-After (or with 0), or after a request that got no
	// answer.
	DefaultRetryAfter = time.Second
	// sampleLen is how much of an answer's body, or of an error, Outcomes
	// keeps.
	sampleLen = 200
)

// Outcome names other than HTTP statuses.
const (
	// NoAnswer: the request failed without an HTTP answer (the
	// connection was refused, reset or timed out).
	NoAnswer = "no answer"
	// Cut: a slow client's connection was closed by pginflux without an
	// answer.
	Cut = "cut"
	// Unanswered: a slow client had no answer when its time was up.
	Unanswered = "unanswered"
	// DialFailed: a slow client could not connect.
	DialFailed = "dial failed"
)

// Outcomes counts what clients got, by outcome: an HTTP status ("204",
// "413") or one of NoAnswer, Cut, Unanswered, DialFailed. It is filled
// after the clients end and is not safe for concurrent use.
type Outcomes struct {
	Counts map[string]int `json:"counts"`
	// Samples holds, for each outcome, the first answer's body or the
	// first error's text, cut to a few hundred bytes.
	Samples map[string]string `json:"samples,omitempty"`
}

// add counts one outcome, keeping sample when it is the first of its
// kind.
func (o *Outcomes) add(outcome, sample string) {
	if o.Counts == nil {
		o.Counts, o.Samples = make(map[string]int), make(map[string]string)
	}
	o.Counts[outcome]++
	if _, ok := o.Samples[outcome]; !ok && sample != "" {
		o.Samples[outcome] = cut(sample)
	}
}

// Only says whether every outcome is outcome (and there is at least one).
func (o *Outcomes) Only(outcome string) bool {
	return len(o.Counts) == 1 && o.Counts[outcome] > 0
}

// String lists the counts, most frequent first: "413×60 no answer×4".
func (o *Outcomes) String() string {
	keys := make([]string, 0, len(o.Counts))
	for k := range o.Counts {
		keys = append(keys, k)
	}
	// Few keys: insertion sort by count, then name.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && less(o.Counts, keys[j], keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, o.Counts[k])
	}
	return strings.Join(parts, " ")
}

func less(counts map[string]int, a, b string) bool {
	if counts[a] != counts[b] {
		return counts[a] > counts[b]
	}
	return a < b
}

func cut(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > sampleLen {
		return s[:sampleLen] + "..."
	}
	return s
}

// answer is one HTTP request's end.
type answer struct {
	status     int           // 0: no answer
	retryAfter time.Duration // from Retry-After, when status is 429 or 503
	sample     string        // the start of the body, or the error
	took       time.Duration
}

// outcome names a.
func (a answer) outcome() string {
	if a.status == 0 {
		return NoAnswer
	}
	return strconv.Itoa(a.status)
}

// retryable says whether a client should send the request again: it was
// refused for now (429, 503) or got no answer.
func (a answer) retryable() bool {
	return a.status == 0 || a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable
}

// wait is how long a client waits before sending again.
func (a answer) wait() time.Duration {
	if a.retryAfter > 0 {
		return min(a.retryAfter, MaxRetryAfter)
	}
	return DefaultRetryAfter
}

// newClient returns an HTTP client that dials loopback addresses only
// and keeps up to conns connections open.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         loadgen.LoopbackDialer().DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
		},
		Timeout: RequestTimeout,
	}
}

// checkBase refuses a base URL that is not http(s) on a loopback address.
func checkBase(ctx context.Context, base string) error {
	if err := loadgen.CheckURL(ctx, net.DefaultResolver, base, false); err != nil {
		return fmt.Errorf("check target: %w", err)
	}
	return nil
}

// checkClients refuses a count of clients out of 1..MaxClients.
func checkClients(what string, n int) error {
	if n < 1 || n > MaxClients {
		return fmt.Errorf("%s %d: want 1..%d", what, n, MaxClients)
	}
	return nil
}

// post sends one request of body (length bytes) to url with the given
// headers (name, value pairs), and reads the start of its answer.
func post(ctx context.Context, client *http.Client, url string, body io.Reader, length int64, headers ...string) answer {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return answer{sample: err.Error()}
	}
	req.ContentLength = length
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{sample: err.Error(), took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, sampleLen+1))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	a := answer{status: resp.StatusCode, sample: string(b), took: time.Since(start)}
	if a.retryable() {
		a.retryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return a
}

// ParseRetryAfter reads a Retry-After header: seconds (at most a day), or
// an HTTP date (relative to now). It returns 0 for an empty or unreadable
// one.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(min(max(s, 0), 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// sleep waits d or until ctx ends, and says whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// loopbackHostPort checks that address is host:port on a loopback
// address, resolving a name.
func loopbackHostPort(ctx context.Context, address string) error {
	if _, err := loadgen.ResolveUDP(ctx, net.DefaultResolver, address, false); err != nil {
		// ResolveUDP checks the host and the port; a TCP port is the same
		// number.
		return fmt.Errorf("check target: %w", err)
	}
	return nil
}

// checkSize refuses a size out of 1..most.
func checkSize(what string, size, most int64) error {
	if size < 1 || size > most {
		return fmt.Errorf("%s %d: want 1..%d", what, size, most)
	}
	return nil
}
