package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// FindMaxConfig configures FindMax.
type FindMaxConfig struct {
	// Run is the configuration of every step; its Send.Rate is the first
	// rate tried, its Send.Lines is replaced by what a step needs.
	Run          Config
	StepDuration time.Duration
	Factor       float64 // rate multiplier while no bound is known, > 1
	MaxSteps     int
	// Precision ends the search once the lowest lossy rate is within
	// this fraction above the highest lossless one (0.05: 5%).
	Precision float64
}

// FindMaxResult is every step of a search and its outcome.
type FindMaxResult struct {
	Steps []*Result `json:"steps"`
	// Best is the step with the highest rate at which nothing was lost;
	// nil when every step lost lines.
	Best *Result `json:"-"`
	// BestStep is Best's number, from 1; 0 without one.
	BestStep int `json:"best_step"`
	// BestRate is Best's achieved rate of lines sent, 0 without one.
	BestRate float64 `json:"best_rate"`
	// LowestLossy is the lowest target rate at which lines were lost, 0
	// when none was.
	LowestLossy float64 `json:"lowest_lossy_rate"`
	Reason      string  `json:"stopped_because"`
}

// Lossless reports whether a step lost nothing: every line sent was
// stored, none failed to be sent, and the rows stopped arriving in time.
func (r *Result) Lossless() bool {
	return r.Stored != nil && r.Stored.Settled && r.Stored.Lost == 0 && r.Sent.FailedDatagrams == 0
}

// search is the rate search of FindMax: it multiplies the rate by factor
// until a step loses lines (or divides it until one does not), then
// bisects between the highest lossless and the lowest lossy rate.
type search struct {
	factor, precision float64
	lo, hi            float64 // highest lossless, lowest lossy; 0: none yet
}

// next returns the rate to try after a step at rate ended ok or not, and
// whether the search is over.
func (s *search) next(rate float64, ok bool) (float64, bool) {
	if ok {
		s.lo = max(s.lo, rate)
	} else if s.hi == 0 || rate < s.hi {
		s.hi = rate
	}
	switch {
	case s.lo > 0 && s.hi > 0:
		if s.hi <= s.lo*(1+s.precision) {
			return 0, true
		}
		return math.Round((s.lo + s.hi) / 2), false
	case s.lo > 0:
		return math.Round(s.lo * s.factor), false
	default:
		r := math.Round(s.hi / s.factor)
		return r, r < 100 // nothing works even at a trickle
	}
}

// FindMax steps the rate to find the highest at which pginflux stores
// every line, each step a Run of cfg.StepDuration verified on its own time
// range. It stops when the bracket is tight enough, after cfg.MaxSteps
// steps, when the sender cannot reach the rate asked, or when ctx ends.
func FindMax(ctx context.Context, cfg FindMaxConfig) (*FindMaxResult, error) {
	if cfg.Run.Database == nil {
		return nil, errors.New("finding the maximum rate needs a database to verify each step")
	}
	if cfg.Factor <= 1 || cfg.MaxSteps < 1 || cfg.StepDuration <= 0 || cfg.Run.Send.Rate <= 0 || cfg.Precision <= 0 {
		return nil, fmt.Errorf("find-max: need factor > 1 (%v), steps ≥ 1 (%d), step duration > 0 (%v), a start rate > 0 (%v), precision > 0 (%v)",
			cfg.Factor, cfg.MaxSteps, cfg.StepDuration, cfg.Run.Send.Rate, cfg.Precision)
	}
	s := search{factor: cfg.Factor, precision: cfg.Precision}
	res := &FindMaxResult{Reason: fmt.Sprintf("ran the %d steps allowed", cfg.MaxSteps)}
	rate := cfg.Run.Send.Rate
	next := time.Now()
	for i := range cfg.MaxSteps {
		if ctx.Err() != nil {
			res.Reason = "interrupted"
			break
		}
		step := cfg.Run
		step.Send.Rate = rate
		step.Send.Duration = cfg.StepDuration
		step.Send.Lines = int64(math.Ceil(rate * cfg.StepDuration.Seconds()))
		// Each step's timestamps start after the last one's, so that its
		// count cannot include an earlier step's rows.
		step.Send.Base = maxTime(time.Now(), next)
		step.Truncate = cfg.Run.Truncate && i == 0
		progress(step.Progress, "step %d of at most %d: %.0f lines/s", i+1, cfg.MaxSteps, rate)
		r, err := Run(ctx, step)
		if err != nil {
			return res, fmt.Errorf("step %d at %.0f lines/s: %w", i+1, rate, err)
		}
		res.Steps = append(res.Steps, r)
		next = r.LastTime.Add(time.Millisecond)
		ok := r.Lossless()
		if ok && (res.Best == nil || r.Sent.Rate > res.BestRate) {
			res.Best, res.BestStep, res.BestRate = r, i+1, r.Sent.Rate
		}
		if !ok && (res.LowestLossy == 0 || rate < res.LowestLossy) {
			res.LowestLossy = rate
		}
		if r.Sent.Rate < 0.95*rate {
			res.Reason = fmt.Sprintf("the sender reached only %.0f of %.0f lines/s; try --senders, or a faster machine for the sender", r.Sent.Rate, rate)
			break
		}
		var done bool
		if rate, done = s.next(rate, ok); done {
			res.Reason = fmt.Sprintf("the lowest lossy rate is within %.0f%% of the highest lossless one", 100*cfg.Precision)
			if s.lo == 0 {
				res.Reason = "lines were lost even at the lowest rate tried"
			}
			break
		}
	}
	return res, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
