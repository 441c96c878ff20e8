package query

import (
	"cmp"
	"slices"
	"time"

	"github.com/influxdata/influxql"
)

// finish makes the series of a group's rows: windows filled,
// transformations and arithmetic computed, rows ordered and limited;
// false when it has no row to answer.
func (p *plan) finish(g *group) (Series, bool, error) {
	q := p.q
	if err := p.grid(g); err != nil {
		return Series{}, false, err
	}
	if p.special != nil && p.special.Name == "distinct" {
		g.rows = expandDistinct(g.rows, p.callIdx[p.special.String()])
	}
	if q.desc && p.aggregate {
		// Windows are made in time order; InfluxDB computes across them
		// in the order of the answer.
		slices.Reverse(g.rows)
	}
	values := p.evaluate(g.rows)
	g.rows = nil
	if p.lookback > 0 && q.hasMin && !q.desc {
		first := q.window(q.min)
		values = slices.DeleteFunc(values, func(v []any) bool { return v[0].(int64) < first })
	}
	if p.lookback > 0 && q.hasMax && q.desc {
		last := q.window(q.max)
		values = slices.DeleteFunc(values, func(v []any) bool { return v[0].(int64) > last })
	}
	if !(len(p.dims) == 0 && !p.aggregate && !p.transforms()) {
		// LIMIT and OFFSET of each series, across the parts it comes in.
		n := min(max(q.st.Offset-g.skipped, 0), len(values))
		values, g.skipped = values[n:], g.skipped+n
		if q.st.Limit > 0 {
			values = values[:min(max(q.st.Limit-g.kept, 0), len(values))]
		}
		g.kept += len(values)
	}
	if len(values) == 0 && !(g.sent && !g.more) {
		return Series{}, false, nil
	}
	for _, v := range values {
		v[0] = time.Unix(0, v[0].(int64)).In(q.loc)
	}
	g.sent = g.sent || len(values) > 0
	return Series{Name: p.t.measurement, Tags: g.tags, Columns: p.columns, Values: values, Partial: g.more}, true, nil
}

// gridStart sets where the windows of GROUP BY time start without a
// lower bound of time: at the first window of any series' rows.
func (p *plan) gridStart(groups []*group) {
	first := true
	for _, g := range groups {
		for _, r := range g.rows {
			if first || r.t < p.start {
				p.start, first = r.t, false
			}
		}
	}
}

// grid sorts a group's rows by time and, with GROUP BY time, gives it
// a row for every window of the range (values nil) unless fill(none),
// then fills them.
func (p *plan) grid(g *group) error {
	q := p.q
	if !p.aggregate {
		return nil // points come in the order asked
	}
	slices.SortStableFunc(g.rows, func(a, b row) int { return cmp.Compare(a.t, b.t) })
	if q.interval == 0 || (p.special != nil && p.special.Name != "distinct") {
		return nil
	}
	if q.fill != influxql.NoFill {
		start, end := p.start, q.window(q.max+p.after())
		if q.hasMin {
			start = q.window(q.min - p.before())
		}
		if n := (end-start)/q.interval + 1; n > maxWindows || q.checkPoints(int(n)) != nil {
			return errorf("the query has %d windows of %s, more than pginflux answers (%d): choose a longer interval or a shorter range", n, formatDuration(q.interval), min(maxWindows, max(q.e.opt.MaxPoints, 1)))
		}
		width := len(p.calls) + len(p.refs)
		if err := p.mem.draw(int((end-start)/q.interval+1), width); err != nil {
			return err
		}
		rows := make([]row, 0, (end-start)/q.interval+1)
		i := 0
		for w := start; w <= end; w += q.interval {
			if i < len(g.rows) && g.rows[i].t == w {
				rows = append(rows, g.rows[i])
				i++
				continue
			}
			rows = append(rows, row{t: w, vals: make([]any, width)})
		}
		g.rows = rows
	}
	p.fillRows(g.rows)
	return nil
}

// fillRows fills the calls' nil values: count's with 0, the others as
// fill() says.
func (p *plan) fillRows(rows []row) {
	q := p.q
	for c, call := range p.calls {
		isCount := call.Name == "count"
		var prev any
		for i := range rows {
			v := rows[i].vals[c]
			switch {
			case v != nil:
				prev = v
				continue
			case isCount && q.fill != influxql.NumberFill:
				rows[i].vals[c] = int64(0)
			case q.fill == influxql.NumberFill:
				rows[i].vals[c] = fillNumber(q.fillValue, isCount)
			case q.fill == influxql.PreviousFill:
				rows[i].vals[c] = prev
			case q.fill == influxql.LinearFill:
				rows[i].vals[c] = linear(rows, c, i)
			}
		}
	}
}

// fillNumber is fill(n)'s value; count takes its integer part.
func fillNumber(v any, integer bool) any {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		if integer {
			return int64(v)
		}
		return v
	case int:
		return int64(v)
	}
	return v
}

// linear interpolates call c at row i between the nearest rows either
// side that have a value; nil at the ends.
func linear(rows []row, c, i int) any {
	lo, hi := i-1, i+1
	for lo >= 0 && rows[lo].vals[c] == nil {
		lo--
	}
	for hi < len(rows) && rows[hi].vals[c] == nil {
		hi++
	}
	if lo < 0 || hi >= len(rows) {
		return nil
	}
	a, aok := toFloat(rows[lo].vals[c])
	b, bok := toFloat(rows[hi].vals[c])
	if !aok || !bok {
		return nil
	}
	v := a + (b-a)*float64(rows[i].t-rows[lo].t)/float64(rows[hi].t-rows[lo].t)
	_, ai := rows[lo].vals[c].(int64)
	_, bi := rows[hi].vals[c].(int64)
	if ai && bi {
		return int64(v)
	}
	return v
}

// expandDistinct makes a row of each value of distinct()'s call c.
func expandDistinct(rows []row, c int) []row {
	var out []row
	for _, r := range rows {
		vs, _ := r.vals[c].([]any)
		for _, v := range vs {
			vals := slices.Clone(r.vals)
			vals[c] = v
			out = append(out, row{t: r.t, vals: vals})
		}
	}
	return out
}

// evaluate computes the fields over rows: a row of values (time first,
// as int64 ns) for each row at which some field has a value to give.
func (p *plan) evaluate(rows []row) [][]any {
	if p.special != nil && p.special.Name != "distinct" {
		out := make([][]any, len(rows))
		for i, r := range rows {
			out[i] = append([]any{r.t}, r.vals...)
		}
		return out
	}
	trans := map[*influxql.Call][]opt{}
	for _, f := range p.fields {
		influxql.WalkFunc(f.Expr, func(n influxql.Node) {
			if c, ok := n.(*influxql.Call); ok && transformations[c.Name] {
				if _, done := trans[c]; !done {
					trans[c] = p.transform(c, rows, trans)
				}
			}
		})
	}
	var out [][]any
	for i := range rows {
		vals := make([]any, 1+len(p.fields))
		vals[0] = rows[i].t
		emit := false
		for j, f := range p.fields {
			v, ok := p.eval(f.Expr, rows, i, trans)
			vals[j+1] = v
			emit = emit || ok
		}
		if emit {
			out = append(out, vals)
		}
	}
	return out
}

// opt is an optional value: a transformation's output at a row.
type opt struct {
	v  any
	ok bool
}

// eval computes e at row i; ok says the row gives e a value to answer
// (raw: a field's value is there; aggregates: every window; a
// transformation: where it has an output).
func (p *plan) eval(e influxql.Expr, rows []row, i int, trans map[*influxql.Call][]opt) (any, bool) {
	switch e := e.(type) {
	case *influxql.ParenExpr:
		return p.eval(e.Expr, rows, i, trans)
	case *influxql.Call:
		if transformations[e.Name] {
			o := trans[e][i]
			return o.v, o.ok
		}
		return rows[i].vals[p.callAt[e]], true
	case *influxql.VarRef:
		v := rows[i].vals[len(p.calls)+p.refIdx[e.Val]]
		if p.aggregate {
			return v, false
		}
		_, isField := p.t.fields[e.Val]
		return v, v != nil && isField && e.Type != influxql.Tag
	case *influxql.BinaryExpr:
		l, lok := p.eval(e.LHS, rows, i, trans)
		r, rok := p.eval(e.RHS, rows, i, trans)
		return arithmetic(e.Op, l, r), lok || rok
	case *influxql.NumberLiteral:
		return e.Val, false
	case *influxql.IntegerLiteral:
		return e.Val, false
	case *influxql.StringLiteral:
		return e.Val, false
	case *influxql.BooleanLiteral:
		return e.Val, false
	}
	return nil, false
}
