package hostile

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSlowClients: clients refused at once get their answer, the others
// are still trickling when their time is up; normal writes go on
// meanwhile.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > 1<<20 {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil || !strings.HasPrefix(string(b), ProbeMeasurement+",") {
			return // a slow client's time ran out
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	start := time.Now()
	r, err := SlowClients(t.Context(), srv.URL, 20, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v for 1.5 s of slow clients", took)
	}
	if r.Outcomes.Counts["413"] != 10 || r.Outcomes.Counts[Unanswered] != 10 {
		t.Errorf("outcomes: got %v, want 413×10 (the greedy ones) and %s×10", r.Outcomes.String(), Unanswered)
	}
	if r.Probes.Counts["204"] < 1 || !r.Probes.Only("204") {
		t.Errorf("probes: got %v, want only 204s", r.Probes.String())
	}
	// 10 honest clients for at least a second, 8 bytes a tick of at most
	// a second, plus every head.
	if r.BytesSent < 20*80+10*8 {
		t.Errorf("sent %d bytes, want more", r.BytesSent)
	}
}

func TestSlowBody(t *testing.T) {
	t.Parallel()
	b := string(slowBody(5))
	if n := strings.Count(b, "\n"); n != slowLines || !strings.HasPrefix(b, SlowMeasurement+",client=5 v=0i ") {
		t.Errorf("body of %d lines starting %q", n, b[:40])
	}
}
