package sink

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/sink/schema"
)

// Partition upkeep (--partition-by, --retention): the catalog makes and
// drops partitions (schema.Partitions); the sink tells it which periods a
// batch's rows need, and runs the maintenance rounds.

// maintainEvery is how often partitions are made ahead and old ones
// dropped; the first round comes maintainFirst after the start (rows make
// the partitions they need themselves meanwhile).
const (
	maintainEvery = 10 * time.Minute
	maintainFirst = time.Minute
)

// maintain runs partition upkeep until the sink closes.
func (s *Sink) maintain() {
	wait := time.NewTimer(maintainFirst)
	defer wait.Stop()
	for {
		select {
		case <-wait.C:
		case <-s.maintenanceCtx.Done():
			return
		}
		s.maintainOnce(time.Now())
		wait.Reset(maintainEvery)
	}
}

// maintainOnce makes partitions ahead and drops the expired ones, logging
// what it did; errors are logged and retried at the next round.
func (s *Sink) maintainOnce(now time.Time) {
	ctx, cancel := context.WithTimeout(s.maintenanceCtx, time.Minute)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		s.log.Debug("partition upkeep: no connection", "err", err)
		return
	}
	defer conn.Release()
	if err := s.catalog.Ready(ctx, conn.Conn()); err != nil {
		s.log.Debug("partition upkeep: schema not ready", "err", err)
		return
	}
	parts := s.catalog.Partitions()
	if err := parts.LoadPartitioned(ctx, conn.Conn()); err != nil {
		s.log.Warn("partition upkeep failed", "err", err)
		return
	}
	dropped, err := parts.Maintain(ctx, conn.Conn(), now, s.cfg.Retention)
	for _, d := range dropped {
		s.log.Info("partition dropped by retention", "schema", s.cfg.Schema, "partition", d, "retention", s.cfg.Retention)
	}
	if err != nil {
		s.log.Warn("partition upkeep failed", "err", err)
	}
}

// ensurePartitions makes the partitions rows lo..hi-1 of b need.
func (s *Sink) ensurePartitions(ctx context.Context, conn *pgx.Conn, b *batch, lo, hi int, table string) error {
	p := s.catalog.Partitions()
	if p == nil {
		return nil
	}
	return p.Ensure(ctx, conn, table, rowPeriods(p, b, lo, hi, s.cfg.Storage == StorageColumns))
}

// rowPeriods returns the distinct period starts (see schema.Partitions)
// of rows lo..hi-1 of b.
func rowPeriods(p *schema.Partitions, b *batch, lo, hi int, columns bool) []time.Time {
	seen := map[int64]bool{}
	var out []time.Time
	for r := lo; r < hi; r++ {
		start := 0
		if r > 0 {
			start = b.ends[r-1]
		}
		var t time.Time
		if columns {
			t = time.Unix(0, int64(binary.BigEndian.Uint64(b.buf[start:])))
		} else {
			// int16 count | int32 8 | int64 microseconds since 2000
			micros := int64(binary.BigEndian.Uint64(b.buf[start+6:])) + pgEpochMicros
			t = time.UnixMicro(micros)
		}
		s := p.Start(t)
		if !seen[s.Unix()] {
			seen[s.Unix()] = true
			out = append(out, s)
		}
	}
	return out
}
