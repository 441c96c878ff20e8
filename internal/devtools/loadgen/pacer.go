package loadgen

import (
	"context"
	"time"
)

// DefaultSlice is the pacing granularity: lines that fall due within one
// slice go out together, so the rate is smooth at that scale and the
// sender does not wake up for every datagram.
const DefaultSlice = time.Millisecond

// maxLag is how far a sender that fell behind (descheduled, say) may catch
// up in one burst; beyond that, the lines are not sent late but never, and
// the achieved rate says so.
const maxLag = 50 * time.Millisecond

// Pacer spreads lines evenly over time at a fixed rate: a token bucket
// refilled continuously, checked in slices of at least DefaultSlice. The
// rate is kept on average from the start, so that sleeping longer than
// asked (timer slack) is made up at once.
//
// A Pacer is not safe for concurrent use: give each sender its own.
type Pacer struct {
	rate    float64 // lines per second; 0: no limit
	slice   time.Duration
	start   time.Time
	granted float64 // lines taken since start, plus those skipped by the lag cap
	timer   *time.Timer
}

// NewPacer returns a pacer of rate lines per second starting now (0 or
// less: unlimited), waiting in slices of at least slice.
func NewPacer(rate float64, slice time.Duration) *Pacer {
	return &Pacer{rate: max(rate, 0), slice: max(slice, time.Microsecond), start: time.Now()}
}

// due returns how many lines may go now, at most lag.
func (p *Pacer) due(now time.Time, lag float64) float64 {
	d := now.Sub(p.start).Seconds()*p.rate - p.granted
	if d > lag {
		p.granted += d - lag
		d = lag
	}
	return d
}

// Wait blocks until at least n lines are due and returns how many are,
// or ctx's error. With no rate limit it returns max(n, 1) at once. The
// caller reports what it sent with Take.
func (p *Pacer) Wait(ctx context.Context, n int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if p.rate == 0 {
		return max(n, 1), nil
	}
	need := float64(max(n, 1))
	lag := max(p.rate*maxLag.Seconds(), need)
	for {
		due := p.due(time.Now(), lag)
		if due >= need {
			return int(due), nil
		}
		wait := max(time.Duration((need-due)/p.rate*float64(time.Second)), p.slice)
		if p.timer == nil {
			p.timer = time.NewTimer(wait)
		} else {
			p.timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			p.timer.Stop()
			return 0, ctx.Err()
		case <-p.timer.C:
		}
	}
}

// Take records that n lines were sent.
func (p *Pacer) Take(n int) { p.granted += float64(n) }
