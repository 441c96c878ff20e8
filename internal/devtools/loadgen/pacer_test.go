package loadgen

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// pace sends datagrams of per lines through p until ctx ends, as a sender
// does, and returns the lines sent in each window of the given width.
func pace(ctx context.Context, p *Pacer, per int, window time.Duration, windows int) (total int, counts []int) {
	counts = make([]int, windows)
	start := time.Now()
	for {
		due, err := p.Wait(ctx, per)
		if err != nil {
			return total, counts
		}
		n := max(due/per, 1) * per
		p.Take(n)
		total += n
		if i := int(time.Since(start) / window); i < windows {
			counts[i] += n
		}
	}
}

func TestPacerRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		rate     float64
		per      int
		duration time.Duration
	}{
		{name: "20k lines/s in datagrams of 10", rate: 20000, per: 10, duration: time.Second},
		{name: "250k lines/s in datagrams of 10", rate: 250000, per: 10, duration: time.Second},
		{name: "1 line/s", rate: 1, per: 1, duration: 10 * time.Second},
		{name: "slower than one datagram per lag window", rate: 100, per: 10, duration: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), tt.duration)
				defer cancel()
				p := NewPacer(tt.rate, DefaultSlice)
				total, _ := pace(ctx, p, tt.per, time.Second, 1)
				want := int(tt.rate * tt.duration.Seconds())
				if total < want-tt.per || total > want+tt.per {
					t.Errorf("sent %d lines in %v, want %d (± one datagram)", total, tt.duration, want)
				}
			})
		})
	}
}

func TestPacerSmooth(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		const rate, window = 50000, 10 * time.Millisecond
		_, counts := pace(ctx, NewPacer(rate, DefaultSlice), 10, window, 100)
		// Lines go out once per slice: a window may gain or lose a
		// slice's worth at its edges.
		want, slack := int(rate*window.Seconds()), int(rate*DefaultSlice.Seconds())+10
		for i, n := range counts {
			if n < want-slack || n > want+slack {
				t.Errorf("window %d: %d lines, want %d ± %d", i, n, want, slack)
			}
		}
	})
}

func TestPacerLagCap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := NewPacer(1000, DefaultSlice)
		time.Sleep(time.Second) // a sender descheduled for a second
		due, err := p.Wait(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if limit := int(1000 * maxLag.Seconds()); due > limit {
			t.Errorf("after falling 1s behind, %d lines due at once, want at most %d", due, limit)
		}
	})
}

func TestPacerUnlimited(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := NewPacer(0, DefaultSlice)
		start := time.Now()
		for range 1000 {
			n, err := p.Wait(t.Context(), 10)
			if err != nil || n != 10 {
				t.Fatalf("got %d, %v; want 10, nil", n, err)
			}
			p.Take(n)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("an unlimited pacer waited %v", d)
		}
	})
}

func TestPacerCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		p := NewPacer(1, time.Second)
		p.Take(100) // nothing due for 100s
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		start := time.Now()
		if _, err := p.Wait(ctx, 1); err != context.Canceled {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("returned after %v, want 1s (when cancelled)", d)
		}
	})
}
