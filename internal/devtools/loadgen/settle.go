package loadgen

import (
	"context"
	"net/http"
	"time"
)

// writtenRows is pginflux's counter of rows committed.
const writtenRows = "pginflux_sink_written_rows_total"

// settle waits until the rows of a run stop arriving: until as many as
// were sent are stored, or their number has not changed for quiet, or
// cfg.Settle has passed since sending ended. While pginflux's metrics
// are reachable it watches its written-rows counter, which is cheap, and
// counts in the database only to confirm; otherwise it counts in the
// database every time (a scan of the tables' time column).
//
// mark is called once, when the rows are deemed settled but before the
// count that confirms it, so that the CPU time read then leaves out the
// server's counting when pginflux's counter could be watched.
func settle(ctx context.Context, cfg Config, client *http.Client, store *Store, sent *SendResult, from, to time.Time, metrics0 map[string]float64, mark func()) (*Stored, error) {
	target := sent.Lines * int64(max(cfg.RowsPerPoint, 1))
	deadline := time.Now().Add(cfg.Settle)
	useMetrics := metrics0 != nil
	last, lastChange := int64(-1), time.Now()
	settled, marked := false, false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		<-timer.C
		poll := 100 * time.Millisecond
		var v int64
		if useMetrics {
			m, err := Scrape(ctx, client, cfg.MetricsURL)
			if err != nil {
				useMetrics = false
				timer.Reset(0)
				continue
			}
			v = int64(m[writtenRows] - metrics0[writtenRows])
		}
		if !useMetrics || v >= target {
			if useMetrics {
				mark()
				marked = true
			}
			// Confirm in the database: other clients may be writing
			// through the same pginflux. Once they have, count there.
			start := time.Now()
			n, _, err := store.Count(ctx, from, to)
			if err != nil {
				return nil, err
			}
			if v >= target && n < target {
				useMetrics, marked = false, false
			}
			v = n
			poll = max(poll, 2*time.Since(start))
		}
		now := time.Now()
		if v != last {
			last, lastChange = v, now
		}
		if v >= target || now.Sub(lastChange) >= quiet {
			settled = true
			break
		}
		if now.After(deadline) {
			break
		}
		marked = false
		timer.Reset(poll)
	}
	if !marked {
		mark()
	}
	n, per, err := store.Count(ctx, from, to)
	if err != nil {
		return nil, err
	}
	if n != last {
		lastChange = time.Now()
	}
	st := &Stored{
		Rows:    n,
		Tables:  per,
		Lost:    target - n,
		Settled: settled,
		Seconds: lastChange.Sub(sent.Start).Seconds(),
	}
	if st.Seconds > 0 {
		st.Rate = float64(n) / st.Seconds
	}
	return st, nil
}
