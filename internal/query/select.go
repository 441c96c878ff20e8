package query

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/influxql"
)

// A SELECT runs once per measurement of its FROM: plan (plan.go) turns
// the statement and the measurement's table into one SQL statement, and
// what it returns into series (series.go).

// maxWindows bounds the windows of one series of a GROUP BY time query,
// with or without --query-max-points.
const maxWindows = 1_000_000

// selectStmt runs a SELECT, handing each series to emit: the
// measurements in name order, each one's series in tag order.
func (r *run) selectStmt(ctx context.Context, st *influxql.SelectStatement, emit func(Series) error) error {
	if st.Target != nil {
		return errorf("SELECT INTO is not supported: pginflux's /query is read-only")
	}
	q, err := r.newQuery(st)
	if err != nil {
		return err
	}
	type source struct{ schema, name string }
	var sources []source
	for _, src := range st.Sources {
		m, ok := src.(*influxql.Measurement)
		if !ok {
			return unsupported("a subquery")
		}
		sch, err := r.schema(ctx, m.Database)
		if err != nil {
			return err
		}
		names, err := r.measurements(ctx, m.Database, m)
		if err != nil {
			return err
		}
		for _, n := range names {
			sources = append(sources, source{sch, n})
		}
	}
	slices.SortStableFunc(sources, func(a, b source) int { return strings.Compare(a.name, b.name) })
	sources = slices.Compact(sources)
	out := &seriesOut{q: q, emit: emit}
	for _, src := range sources {
		t, err := r.table(ctx, src.schema, src.name)
		if err != nil {
			return err
		}
		if t == nil {
			continue
		}
		if err := r.selectFrom(ctx, q, t, out.add); err != nil {
			return err
		}
	}
	return nil
}

// seriesOut applies SOFFSET, SLIMIT and the bounds of series and points
// to the series of a SELECT, in order.
type seriesOut struct {
	q              *query
	emit           func(Series) error
	series, points int
	// more says the last series handed over continues in the next.
	more bool
}

func (o *seriesOut) add(s Series) error {
	if !o.more {
		o.series++
	}
	o.more = s.Partial
	st := o.q.st
	if o.series <= st.SOffset || (st.SLimit > 0 && o.series > st.SOffset+st.SLimit) {
		return nil
	}
	if err := o.q.checkSeries(o.series - st.SOffset); err != nil {
		return err
	}
	o.points += len(s.Values)
	if err := o.q.checkPoints(o.points); err != nil {
		return err
	}
	return o.emit(s)
}

// query is what a SELECT's measurements share.
type query struct {
	st              *influxql.SelectStatement
	e               *Engine
	loc             *time.Location
	cond            influxql.Expr // without the time range
	min, max        int64         // the time range, inclusive, in ns
	hasMin, hasMax  bool
	interval, shift int64 // GROUP BY time(interval, offset), in ns
	fill            influxql.FillOption
	fillValue       any
	desc            bool
}

func (r *run) newQuery(st *influxql.SelectStatement) (*query, error) {
	q := &query{st: st, e: r.e, loc: time.UTC, fill: st.Fill, fillValue: st.FillValue, desc: !st.TimeAscending()}
	if st.Location != nil {
		q.loc = st.Location
	}
	cond, tr, err := influxql.ConditionExpr(st.Condition, &influxql.NowValuer{Now: r.req.Now, Location: st.Location})
	if err != nil {
		return nil, errorf("%s", err)
	}
	q.cond = cond
	if !tr.Min.IsZero() {
		q.min, q.hasMin = tr.Min.UnixNano(), true
	}
	if !tr.Max.IsZero() {
		q.max, q.hasMax = tr.Max.UnixNano(), true
	}
	iv, err := st.GroupByInterval()
	if err != nil {
		return nil, errorf("%s", err)
	}
	off, err := st.GroupByOffset()
	if err != nil {
		return nil, errorf("%s", err)
	}
	q.interval, q.shift = int64(iv), int64(off)
	if q.interval > 0 && !q.hasMax {
		q.max, q.hasMax = r.req.Now.UnixNano(), true
	}
	if q.hasMin && q.hasMax && q.min > q.max {
		q.hasMin, q.hasMax, q.min, q.max = true, true, 1, 0 // empty
	}
	return q, nil
}

// checkSeries applies --query-max-series.
func (q *query) checkSeries(n int) error {
	if m := q.e.opt.MaxSeries; m > 0 && n > m {
		return errorf("max-select-series limit exceeded: (%d/%d)", n, m)
	}
	return nil
}

// checkPoints applies --query-max-points.
func (q *query) checkPoints(n int) error {
	if m := q.e.opt.MaxPoints; m > 0 && n > m {
		return errorf("max-select-point limit exceeded: (%d/%d)", n, m)
	}
	return nil
}

// window returns the start of the GROUP BY time window of t (ns).
func (q *query) window(t int64) int64 {
	origin := q.shift
	if q.loc != time.UTC {
		_, zone := time.Unix(0, q.min).In(q.loc).Zone()
		origin -= int64(zone) * int64(time.Second)
	}
	m := (t - origin) % q.interval
	if m < 0 {
		m += q.interval
	}
	return t - m
}

// origin is the window origin as a time, for date_bin.
func (q *query) origin() time.Time { return time.Unix(0, q.window(0)) }
