package sink

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pginflux/pginflux/parse"
)

// Points of one series whose times differ by less than the resolution of
// the time column (a microsecond, or the precision of a timestamptz(p)
// column) get one key once stored, and are merged into one row; InfluxDB,
// which keeps nanoseconds, keeps them apart. Such merges are told from a
// point written again by the rows' times in nanoseconds, among the rows
// a writer holds at once (a batch): a point merged into a row already
// stored cannot be told, the row not keeping its nanoseconds. Only a
// batch in which some rows merged is looked at again, so rows that do
// not merge cost nothing more.

// appendJSONB appends p to b in jsonb storage: its row in final form, and
// the nanoseconds of its time beyond the microsecond, which that row does
// not keep (see countSubresolution). b.subMicros stays empty while they
// are all 0, as they are for times sent at microsecond precision or
// coarser.
func (b *batch) appendJSONB(p *parse.Point) {
	ns := p.Time % 1000
	if ns < 0 {
		ns += 1000
	}
	if ns != 0 || len(b.subMicros) > 0 {
		for len(b.subMicros) < b.rows() {
			b.subMicros = append(b.subMicros, 0)
		}
		b.subMicros = append(b.subMicros, uint16(ns))
	}
	b.buf = appendJSONBRow(b.buf, p)
}

// rowNanos returns the time of row r of b in Unix nanoseconds, as it was
// sent.
func (b *batch) rowNanos(r int, columns bool) int64 {
	row := b.rowBytes(r, r+1)
	if columns {
		return int64(binary.BigEndian.Uint64(row))
	}
	// int16 count | int32 8 | int64 time (microseconds since 2000) | ...
	// Near the ends of int64 the product wraps, and the sum wraps back.
	ns := (int64(binary.BigEndian.Uint64(row[6:])) + pgEpochMicros) * 1000
	if r < len(b.subMicros) {
		ns += int64(b.subMicros[r])
	}
	return ns
}

// countSubresolution sets pp.subres: how many of n rows (rows lo.. of b,
// grouped into points) were merged into their point though their time in
// nanoseconds is that of no earlier row of it. Those are the points
// InfluxDB would have kept apart: a point of times t, t+1 ns and t+1 ns
// again is two of them, one merged so. A batch without merges is not
// looked at, nor one in jsonb storage whose times are all whole
// microseconds.
func (pp *pointPlan) countSubresolution(b *batch, lo, n int, columns bool) {
	pp.subres = 0
	if pp.rows == n || !columns && len(b.subMicros) == 0 {
		return
	}
	for k := range n {
		if !pp.head[k] || pp.next[k] < 0 {
			continue
		}
		times := pp.times[:0]
		for j := int32(k); j >= 0; j = pp.next[j] {
			times = append(times, b.rowNanos(lo+int(j), columns))
		}
		pp.times = times
		pp.subres += distinct(times) - 1
	}
}

// distinct returns how many different values ts (not empty) holds; it
// may sort ts. The times of a point's rows nearly always rise or stay.
func distinct(ts []int64) int {
	n, rising := 1, true
	for i := 1; i < len(ts); i++ {
		if ts[i] != ts[i-1] {
			n++
			rising = rising && ts[i] > ts[i-1]
		}
	}
	if rising {
		return n
	}
	slices.Sort(ts)
	n = 1
	for i := 1; i < len(ts); i++ {
		if ts[i] != ts[i-1] {
			n++
		}
	}
	return n
}

// subresolutionLogEvery is the least time between two warnings about one
// table's points merged below its time column's resolution.
const subresolutionLogEvery = time.Minute

// subresolutionLog limits those warnings for one table, and counts the
// points merged so since the last one. Safe for concurrent use.
type subresolutionLog struct {
	logLimiter
	since atomic.Int64
}

// mergedSubresolution counts n points of table merged below its time
// column's resolution (unit microseconds) by a batch just committed, and
// warns of them, at most once a subresolutionLogEvery for the table.
func (s *Sink) mergedSubresolution(table string, n int, unit int64) {
	s.metrics.SubresolutionMergedRows.Add(float64(n))
	v, ok := s.subresolutionLogs.Load(table)
	if !ok {
		v, _ = s.subresolutionLogs.LoadOrStore(table, &subresolutionLog{logLimiter: logLimiter{every: subresolutionLogEvery}})
	}
	l := v.(*subresolutionLog)
	l.since.Add(int64(n))
	if !l.allow() {
		return
	}
	s.log.Warn("points of one series less than the time column's resolution apart were merged into one row: "+
		"send times at least that far apart (at most microsecond precision), or use --write-mode append if every point must be kept "+
		"(see docs/tables.md); merged_points: such points since the table's last such message, at most one a minute",
		"schema", s.cfg.Schema, "table", table, "merged_points", l.since.Swap(0), "resolution", time.Duration(unit)*time.Microsecond)
}
