package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

// TestBodyReader: a body is lines distinct in client and line number, as
// long as bodyLen says, the same read in any pieces.
func TestBodyReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ client, lines int }{{0, 1}, {3, 9}, {12, 10}, {7, 11}, {31, 1001}, {123, 20_000}} {
		t.Run(fmt.Sprintf("client %d lines %d", tc.client, tc.lines), func(t *testing.T) {
			body, err := io.ReadAll(newBodyReader(tc.client, tc.lines))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := int64(len(body)), bodyLen(tc.client, tc.lines); got != want {
				t.Errorf("body of %d bytes, bodyLen says %d", got, want)
			}
			small, err := io.ReadAll(iotest.OneByteReader(newBodyReader(tc.client, tc.lines)))
			if err != nil || !bytes.Equal(small, body) {
				t.Errorf("read a byte at a time: %d bytes (err %v), want the same %d", len(small), err, len(body))
			}
			lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
			if len(lines) != tc.lines {
				t.Fatalf("got %d lines, want %d", len(lines), tc.lines)
			}
			last := tc.lines - 1
			want := fmt.Sprintf("hostile,client=%d v=%di,f=0.5 %d", tc.client, last, bigTime+int64(last)*1000)
			if lines[last] != want {
				t.Errorf("last line: got %q, want %q", lines[last], want)
			}
		})
	}
}

// TestBigBodiesRetries: a client refused with 503 or 429 waits and sends
// its whole body again; pginflux's answer 204 ends it.
func TestBigBodiesRetries(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]int{} // first line → attempts
	var stored atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := bufio.NewScanner(r.Body)
		var first string
		lines := 0
		for sc.Scan() {
			if lines == 0 {
				first = sc.Text()
			}
			lines++
		}
		mu.Lock()
		seen[first]++
		n := seen[first]
		mu.Unlock()
		if n == 1 {
			code := http.StatusServiceUnavailable
			if r.URL.Path == "/api/v2/write" {
				code = http.StatusTooManyRequests
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, "full", code)
			return
		}
		stored.Add(int64(lines))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	r, err := BigBodies(t.Context(), srv.URL, 4, 1000, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Acknowledged != 4 || !r.Outcomes.Only("204") || r.MostAttempts != 2 {
		t.Errorf("got %d acknowledged, outcomes %v, most attempts %d; want 4, 204×4, 2", r.Acknowledged, r.Outcomes.String(), r.MostAttempts)
	}
	for _, c := range r.PerClient {
		if c.Attempts != 2 || c.WaitedSeconds != 1 || c.Seconds < 1 {
			t.Errorf("client %d: %d attempts, waited %vs, took %vs; want 2, 1s, at least 1s", c.Client, c.Attempts, c.WaitedSeconds, c.Seconds)
		}
	}
	if got := stored.Load(); got != r.WantRows || r.WantRows != 4000 {
		t.Errorf("stored %d lines, want rows %d, want 4000 both", got, r.WantRows)
	}
}

// TestBigBodiesGivesUp: a client stops after maxAttempts.
func TestBigBodiesGivesUp(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "0")
		http.Error(w, "full", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	r, err := BigBodies(t.Context(), srv.URL, 2, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Acknowledged != 0 || !r.Outcomes.Only("429") || requests.Load() != 4 {
		t.Errorf("got %d acknowledged, outcomes %v, %d requests; want 0, 429×2, 4", r.Acknowledged, r.Outcomes.String(), requests.Load())
	}
	if s := r.PerClient[0].Sample; !strings.Contains(s, "full") {
		t.Errorf("sample: got %q, want the answer's body", s)
	}
}
