package loadgen

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestSendHTTP: over HTTP, every line is POSTed once, gzipped when asked,
// and only requests answered 204 count as sent.
func TestSendHTTP(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]bool{}
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil || r.Header.Get("Content-Encoding") != "gzip" {
			http.Error(w, "not gzip", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(zr)
		mu.Lock()
		defer mu.Unlock()
		requests++
		if requests == 3 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		for _, l := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			if seen[string(l)] {
				t.Errorf("line sent twice: %s", l)
			}
			seen[string(l)] = true
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	res, err := Send(t.Context(), SendConfig{
		Workload: mustWorkload(t, "cpu", 2, 2), Base: time.Now(), Lines: 1000, Duration: 10 * time.Second,
		Senders: 2, LinesPerDatagram: 100, MaxDatagramSize: 8192,
		HTTPURL: srv.URL + "/write", Gzip: true, HTTPClient: srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Lines != 900 || res.FailedLines != 100 || res.FailedDatagrams != 1 || len(seen) != 900 || requests != 10 {
		t.Errorf("sent %d lines, failed %d in %d requests; server took %d lines in %d requests; want 900, 100 in 1, 900 in 10",
			res.Lines, res.FailedLines, res.FailedDatagrams, len(seen), requests)
	}
}
