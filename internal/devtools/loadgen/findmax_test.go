package loadgen

import (
	"testing"
	"time"
)

func TestSearch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		start     float64
		threshold float64 // highest lossless rate
	}{
		{name: "above the start", start: 50000, threshold: 80000},
		{name: "below the start", start: 50000, threshold: 12345},
		{name: "at the start", start: 50000, threshold: 50000},
		{name: "far above", start: 1000, threshold: 2_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := search{factor: 1.25, precision: 0.05}
			rate := tt.start
			for step := 1; ; step++ {
				if step > 60 {
					t.Fatalf("no end after 60 steps (lo %v, hi %v)", s.lo, s.hi)
				}
				next, done := s.next(rate, rate <= tt.threshold)
				if done {
					break
				}
				rate = next
			}
			if s.lo > tt.threshold || s.hi <= tt.threshold || s.hi > s.lo*1.05 {
				t.Errorf("ended with lossless %v, lossy %v; want them within 5%% around %v", s.lo, s.hi, tt.threshold)
			}
		})
	}
}

func TestSearchNothingWorks(t *testing.T) {
	t.Parallel()
	s := search{factor: 1.25, precision: 0.05}
	rate := 50000.0
	for steps := 0; ; steps++ {
		if steps > 100 {
			t.Fatal("no end")
		}
		next, done := s.next(rate, false)
		if done {
			break
		}
		if next >= rate {
			t.Fatalf("rate went from %v to %v after a loss", rate, next)
		}
		rate = next
	}
	if s.lo != 0 {
		t.Errorf("lossless rate %v, want none", s.lo)
	}
}

func TestLossless(t *testing.T) {
	t.Parallel()
	ok := &Result{Stored: &Stored{Settled: true}}
	if !ok.Lossless() {
		t.Error("a settled run with nothing lost is not lossless")
	}
	for name, r := range map[string]*Result{
		"unverified": {},
		"lost":       {Stored: &Stored{Settled: true, Lost: 1}},
		"unsettled":  {Stored: &Stored{}},
		"not sent":   {Stored: &Stored{Settled: true}, Sent: Sent{FailedDatagrams: 1}},
	} {
		if r.Lossless() {
			t.Errorf("%s: Lossless() is true", name)
		}
	}
}

func TestFindMaxNeedsDatabase(t *testing.T) {
	t.Parallel()
	if _, err := FindMax(t.Context(), FindMaxConfig{StepDuration: time.Second, Factor: 1.25, MaxSteps: 1, Precision: 0.05}); err == nil {
		t.Error("no error without a database")
	}
}
