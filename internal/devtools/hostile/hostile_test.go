package hostile

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/loadgen"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, v string
		want    time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "3", 3 * time.Second},
		{"spaces", " 1 ", time.Second},
		{"negative", "-4", 0},
		{"huge", "99999999999999", 24 * time.Hour},
		{"date", now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{"past date", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseRetryAfter(tc.v, now); got != tc.want {
				t.Errorf("ParseRetryAfter(%q): got %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

func TestAnswerWait(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		a    answer
		want time.Duration
	}{
		{"no Retry-After", answer{status: 503}, DefaultRetryAfter},
		{"Retry-After", answer{status: 429, retryAfter: 2 * time.Second}, 2 * time.Second},
		{"too long", answer{status: 503, retryAfter: time.Hour}, MaxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.wait(); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	var o Outcomes
	o.add("503", "first")
	o.add("413", "too large")
	o.add("503", "second")
	o.add(NoAnswer, "")
	if got, want := o.String(), "503×2 413×1 no answer×1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := o.Samples["503"]; got != "first" {
		t.Errorf("sample of 503: got %q, want the first, %q", got, "first")
	}
	if _, ok := o.Samples[NoAnswer]; ok {
		t.Errorf("empty sample kept: %q", o.Samples[NoAnswer])
	}
	if o.Only("503") {
		t.Error("Only(503) with other outcomes: got true")
	}
	var one Outcomes
	one.add("413", "")
	if !one.Only("413") || one.Only("204") {
		t.Errorf("Only on %v: wrong", one.String())
	}
	if (&Outcomes{}).Only("204") {
		t.Error("Only on no outcomes: got true")
	}
}

// TestRefusesRemote: no scenario sends anything beyond this machine.
func TestRefusesRemote(t *testing.T) {
	t.Parallel()
	const remote = "192.0.2.1" // TEST-NET-1
	ctx := t.Context()
	for name, run := range map[string]func() error{
		"bombs":   func() error { _, err := Bombs(ctx, "http://"+remote+":8086", 1, 1); return err },
		"big":     func() error { _, err := BigBodies(ctx, "http://"+remote+":8086", 1, 1, 1); return err },
		"slow":    func() error { _, err := SlowClients(ctx, "http://"+remote+":8086", 1, time.Second); return err },
		"tcpline": func() error { _, err := LongTCPLine(ctx, remote+":8094", 100); return err },
		"udp":     func() error { _, err := UDPLoad(ctx, remote+":8089", 1, time.Second); return err },
	} {
		if err := run(); !errors.Is(err, loadgen.ErrRemote) {
			t.Errorf("%s to %s: got %v, want loadgen.ErrRemote", name, remote, err)
		}
	}
}

// TestBounds: counts and sizes out of bounds are refused before anything
// is sent.
func TestBounds(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const base = "http://127.0.0.1:1"
	for name, run := range map[string]func() error{
		"no bombs":        func() error { _, err := Bombs(ctx, base, 0, 1); return err },
		"too many bombs":  func() error { _, err := Bombs(ctx, base, MaxClients+1, 1); return err },
		"bomb too big":    func() error { _, err := Bombs(ctx, base, 1, MaxBombSize+1); return err },
		"no lines":        func() error { _, err := BigBodies(ctx, base, 1, 0, 1); return err },
		"no attempts":     func() error { _, err := BigBodies(ctx, base, 1, 1, 0); return err },
		"no slow time":    func() error { _, err := SlowClients(ctx, base, 1, 0); return err },
		"line too short":  func() error { _, err := LongTCPLine(ctx, "127.0.0.1:1", 3); return err },
		"no UDP rate":     func() error { _, err := UDPLoad(ctx, "127.0.0.1:1", 0, time.Second); return err },
		"not HTTP":        func() error { _, err := Bombs(ctx, "ftp://127.0.0.1:1", 1, 1); return err },
		"slow over HTTPS": func() error { _, err := SlowClients(ctx, "https://127.0.0.1:1", 1, time.Second); return err },
	} {
		if err := run(); err == nil {
			t.Errorf("%s: got nil, want an error", name)
		}
	}
}
