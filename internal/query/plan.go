package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/influxql"
)

// plan is a SELECT on one table: the SQL it runs and how to read its rows.
type plan struct {
	q       *query
	t       *table
	fields  []*influxql.Field // the statement's, wildcards expanded
	columns []string
	dims    []string // GROUP BY tag keys
	// aggregate says rows are windows of aggregated points (else points).
	aggregate bool
	calls     []*influxql.Call // aggregates SQL computes, in row order
	callIdx   map[string]int
	callAt    map[*influxql.Call]int // each call of the fields: its value's index
	refs      []*influxql.VarRef     // fields and tags read as they are, in row order
	refIdx    map[string]int
	// lone is the query's only aggregate when it is a selector: rows
	// carry its point's time (without GROUP BY time) and refs its point's
	// values.
	lone *influxql.Call
	// lookback is how far beyond the range transformations read (ns):
	// before it in time order, after it with ORDER BY time DESC, as
	// InfluxDB reads.
	lookback int64
	special  *influxql.Call // top, bottom or distinct: rows of their own
	// start is the first window without a lower bound of time.
	start int64
	// seriesIDs, when not nil, are the series the query's tag conditions
	// pick (see seriesLookup).
	seriesIDs []int64
	// mem is what the rows held draw from the memory budget.
	mem memory
}

// aggregates are the functions SQL computes over a window; selectors
// among them have a point's time and values.
var aggregates = map[string]bool{
	"count": true, "distinct": true, "mean": true, "median": true, "mode": true, "sum": true,
	"min": true, "max": true, "first": true, "last": true, "spread": true, "stddev": true,
	"percentile": true, "integral": true, "top": true, "bottom": true,
}

// transformations are computed in Go, window after window.
var transformations = map[string]bool{
	"derivative": true, "non_negative_derivative": true, "difference": true,
	"non_negative_difference": true, "moving_average": true, "cumulative_sum": true, "elapsed": true,
}

// selectFrom runs q on table t, handing each series to add in order.
func (r *run) selectFrom(ctx context.Context, q *query, t *table, add func(Series) error) error {
	p, err := newPlan(q, t)
	if err != nil || p == nil {
		return err
	}
	p.mem.acct = r.e.opt.Memory
	defer p.mem.release()
	if none, err := r.pickSeries(ctx, p); err != nil || none {
		return err
	}
	sql, args, err := p.sql()
	if err != nil {
		return err
	}
	if l := r.e.opt.Log; l != nil {
		l.Debug("InfluxQL as SQL", "measurement", t.measurement, "sql", sql, "args", args)
	}
	rows, err := r.tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	finish := func(g *group) error {
		s, ok, err := p.finish(g)
		if err == nil && ok {
			err = add(s)
		}
		p.mem.release() // its rows are out
		return err
	}
	if p.aggregate && q.interval > 0 && !q.hasMin {
		// The windows start at the first of every series: read them all.
		var groups []*group
		if err := p.read(rows, func(g *group) error { groups = append(groups, g); return nil }); err != nil {
			return err
		}
		p.gridStart(groups)
		for _, g := range groups {
			if err := finish(g); err != nil {
				return err
			}
		}
		return nil
	}
	return p.read(rows, finish)
}

// pickSeries reads the series ids the query's tag conditions pick, and
// keeps them for the query when they are at most half of the table's
// (else reading by them saves little); none says no series matches.
func (r *run) pickSeries(ctx context.Context, p *plan) (none bool, err error) {
	sql, args, err := seriesLookup(p.t, p.q.cond)
	if err != nil || sql == "" {
		return false, err
	}
	var ids []int64
	var total int64
	if err := r.tx.QueryRow(ctx, sql, args...).Scan(&ids, &total); err != nil {
		return false, err
	}
	if len(ids) == 0 {
		return true, nil
	}
	if int64(len(ids))*2 <= total {
		p.seriesIDs = ids
	}
	return false, nil
}

// newPlan plans q on t; nil when t has none of the fields q reads.
func newPlan(q *query, t *table) (*plan, error) {
	p := &plan{q: q, t: t, callIdx: map[string]int{}, callAt: map[*influxql.Call]int{}, refIdx: map[string]int{}}
	if err := p.dimensions(); err != nil {
		return nil, err
	}
	p.expandFields()
	if len(p.fields) == 0 {
		return nil, nil
	}
	for _, f := range p.fields {
		if err := p.walk(f.Expr, false); err != nil {
			return nil, err
		}
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	stmt := *q.st
	stmt.Fields = p.fields
	p.columns = stmt.ColumnNames()
	return p, nil
}

// dimensions reads GROUP BY's tag keys: names, regexes and *.
func (p *plan) dimensions() error {
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			p.dims = append(p.dims, k)
		}
	}
	for _, d := range p.q.st.Dimensions {
		switch e := d.Expr.(type) {
		case *influxql.Call:
			if e.Name != "time" {
				return errorf("only time() calls allowed in dimensions")
			}
		case *influxql.VarRef:
			add(e.Val)
		case *influxql.Wildcard:
			for _, k := range p.t.tagKeys() {
				add(k)
			}
		case *influxql.RegexLiteral:
			for _, k := range p.t.tagKeys() {
				if e.Val.MatchString(k) {
					add(k)
				}
			}
		default:
			return errorf("invalid dimension: %s", d)
		}
	}
	return nil
}

// expandFields expands * (every field and tag not grouped by, in name
// order) and drops fields of a raw query the table does not have.
func (p *plan) expandFields() {
	grouped := map[string]bool{}
	for _, d := range p.dims {
		grouped[d] = true
	}
	for _, f := range p.q.st.Fields {
		if c, ok := f.Expr.(*influxql.Call); ok && aggregates[c.Name] && len(c.Args) > 0 {
			if fs, ok := p.expandCall(c); ok {
				p.fields = append(p.fields, fs...)
				continue
			}
		}
		w, ok := f.Expr.(*influxql.Wildcard)
		if !ok {
			p.fields = append(p.fields, f)
			continue
		}
		var keys []string
		if w.Type != influxql.TAG {
			keys = append(keys, p.t.fieldKeys()...)
		}
		if w.Type != influxql.FIELD {
			for _, k := range p.t.tagKeys() {
				if !grouped[k] {
					keys = append(keys, k)
				}
			}
		}
		slices.Sort(keys)
		for _, k := range slices.Compact(keys) {
			p.fields = append(p.fields, &influxql.Field{Expr: &influxql.VarRef{Val: k}})
		}
	}
}

// expandCall expands an aggregate of * or of /regex/ into one call a
// field (that the function takes), named function_field as InfluxDB
// names them; false when c reads one field.
func (p *plan) expandCall(c *influxql.Call) ([]*influxql.Field, bool) {
	var match func(string) bool
	switch a := c.Args[0].(type) {
	case *influxql.Wildcard:
		match = func(string) bool { return true }
	case *influxql.RegexLiteral:
		match = a.Val.MatchString
	default:
		return nil, false
	}
	numeric := map[string]bool{"mean": true, "median": true, "sum": true, "spread": true, "stddev": true,
		"percentile": true, "integral": true, "min": true, "max": true, "top": true, "bottom": true}[c.Name]
	var out []*influxql.Field
	for _, k := range p.t.fieldKeys() {
		if !match(k) || (numeric && !p.t.fields[k].typ.numeric()) {
			continue
		}
		args := append([]influxql.Expr{&influxql.VarRef{Val: k}}, c.Args[1:]...)
		out = append(out, &influxql.Field{Expr: &influxql.Call{Name: c.Name, Args: args}, Alias: c.Name + "_" + k})
	}
	return out, true
}

// walk records the calls and references of e; inCall says e is an
// aggregate's argument.
func (p *plan) walk(e influxql.Expr, inCall bool) error {
	switch e := e.(type) {
	case *influxql.ParenExpr:
		return p.walk(e.Expr, inCall)
	case *influxql.BinaryExpr:
		if err := p.walk(e.LHS, inCall); err != nil {
			return err
		}
		return p.walk(e.RHS, inCall)
	case *influxql.VarRef:
		if e.Val == "time" {
			return nil
		}
		if !inCall {
			if _, ok := p.refIdx[e.Val]; !ok {
				p.refIdx[e.Val] = len(p.refs)
				p.refs = append(p.refs, e)
			}
		}
		return nil
	case *influxql.Call:
		switch {
		case transformations[e.Name]:
			if len(e.Args) == 0 {
				return errorf("invalid number of arguments for %s, expected at least 1, got 0", e.Name)
			}
			if e.Name == "moving_average" {
				if len(e.Args) != 2 {
					return errorf("invalid number of arguments for moving_average, expected 2, got %d", len(e.Args))
				}
				n, ok := e.Args[1].(*influxql.IntegerLiteral)
				if !ok || n.Val < 2 {
					return errorf("moving_average window must be greater than 1, got %s", e.Args[1])
				}
			} else if len(e.Args) == 2 {
				if _, ok := e.Args[1].(*influxql.DurationLiteral); !ok {
					return errorf("second argument to %s must be a duration, got %T", e.Name, e.Args[1])
				}
			} else if len(e.Args) > 2 {
				return errorf("invalid number of arguments for %s, expected at most 2, got %d", e.Name, len(e.Args))
			}
			return p.walk(e.Args[0], inCall)
		case aggregates[e.Name]:
			if inCall {
				return errorf("%s() cannot be nested", e.Name)
			}
			if err := checkAggregate(e); err != nil {
				return err
			}
			p.aggregate = true
			if e.Name == "top" || e.Name == "bottom" || (e.Name == "distinct") {
				p.special = e
			}
			i, ok := p.callIdx[e.String()]
			if !ok {
				i = len(p.calls)
				p.callIdx[e.String()] = i
				p.calls = append(p.calls, e)
			}
			p.callAt[e] = i
			return nil
		}
		return unsupported(fmt.Sprintf("function %s()", e.Name))
	case *influxql.NumberLiteral, *influxql.IntegerLiteral, *influxql.UnsignedLiteral, *influxql.StringLiteral, *influxql.BooleanLiteral:
		return nil
	case *influxql.Distinct:
		return unsupported("DISTINCT without parentheses")
	}
	return errorf("invalid expression in SELECT: %s", e)
}

// checkAggregate checks an aggregate's arguments as InfluxDB does.
func checkAggregate(c *influxql.Call) error {
	want := 1
	switch c.Name {
	case "percentile", "integral":
		want = 2
	case "top", "bottom":
		if len(c.Args) < 2 {
			return errorf("invalid number of arguments for %s, expected at least 2, got %d", c.Name, len(c.Args))
		}
		if _, ok := c.Args[len(c.Args)-1].(*influxql.IntegerLiteral); !ok {
			return errorf("expected integer as last argument in %s(), found %s", c.Name, c.Args[len(c.Args)-1])
		}
		for _, a := range c.Args[:len(c.Args)-1] {
			if _, ok := a.(*influxql.VarRef); !ok {
				return errorf("only fields or tags are allowed in %s(), found %s", c.Name, a)
			}
		}
		return nil
	}
	if len(c.Args) == 0 || len(c.Args) > want || (c.Name == "percentile" && len(c.Args) != 2) {
		return errorf("invalid number of arguments for %s, expected %d, got %d", c.Name, want, len(c.Args))
	}
	switch a := c.Args[0].(type) {
	case *influxql.VarRef:
	case *influxql.Call:
		if c.Name != "count" || a.Name != "distinct" || len(a.Args) != 1 {
			return errorf("expected field argument in %s()", c.Name)
		}
		if _, ok := a.Args[0].(*influxql.VarRef); !ok {
			return errorf("expected field argument in distinct()")
		}
	case *influxql.Distinct:
		if c.Name != "count" {
			return errorf("expected field argument in %s()", c.Name)
		}
	case *influxql.Wildcard, *influxql.RegexLiteral:
		return unsupported(fmt.Sprintf("%s() of a wildcard or regex", c.Name))
	default:
		return errorf("expected field argument in %s()", c.Name)
	}
	if len(c.Args) == 2 {
		switch c.Name {
		case "percentile":
			switch c.Args[1].(type) {
			case *influxql.IntegerLiteral, *influxql.NumberLiteral:
			default:
				return errorf("expected float argument in percentile()")
			}
		case "integral":
			if _, ok := c.Args[1].(*influxql.DurationLiteral); !ok {
				return errorf("second argument must be a duration")
			}
		}
	}
	return nil
}

// validate checks the shape of the query as InfluxDB's compiler does,
// and works out the lone selector and the look-back.
func (p *plan) validate() error {
	q := p.q
	if !p.aggregate && q.interval > 0 {
		return errorf("GROUP BY requires at least one aggregate function")
	}
	if p.aggregate && len(p.refs) > 0 {
		if len(p.calls) != 1 || !influxql.IsSelector(p.calls[0]) {
			return errorf("mixing aggregate and non-aggregate queries is not supported")
		}
	}
	if p.special != nil && len(p.calls) > 1 {
		return errorf("selector function %s() cannot be combined with other functions", p.special.Name)
	}
	if len(p.calls) == 1 && influxql.IsSelector(p.calls[0]) {
		p.lone = p.calls[0]
	}
	if !p.aggregate {
		fields := false
		for _, r := range p.refs {
			if _, ok := p.t.fields[r.Val]; ok && r.Type != influxql.Tag {
				fields = true
			}
		}
		if !fields {
			return errorf("statement must have at least one field in projection")
		}
	}
	for _, f := range p.fields {
		influxql.WalkFunc(f.Expr, func(n influxql.Node) {
			c, ok := n.(*influxql.Call)
			if !ok || !transformations[c.Name] || q.interval == 0 {
				return
			}
			back := q.interval
			if c.Name == "moving_average" {
				back += q.interval * (c.Args[1].(*influxql.IntegerLiteral).Val - 1)
			}
			p.lookback = max(p.lookback, back)
		})
	}
	for _, f := range p.fields {
		if c, ok := f.Expr.(*influxql.Call); ok && transformations[c.Name] && p.aggregate {
			if _, ok := c.Args[0].(*influxql.Call); !ok {
				return errorf("aggregate function required inside the call to %s", c.Name)
			}
		}
	}
	return nil
}

// before and after are the look-back before and after the range.
func (p *plan) before() int64 {
	if p.q.desc {
		return 0
	}
	return p.lookback
}

func (p *plan) after() int64 {
	if p.q.desc {
		return p.lookback
	}
	return 0
}

// timeRange is the SQL of the range read, look-back included.
func (p *plan) timeRange(args *sqlArgs) string {
	q := p.q
	var parts []string
	if q.hasMin {
		lo := q.min - p.before()
		// A row at microsecond u is at u*1000 ns: the first microsecond
		// not before lo.
		us := lo / 1000
		if lo%1000 > 0 {
			us++
		}
		parts = append(parts, "time >= "+args.add(time.UnixMicro(us)))
	}
	if q.hasMax {
		hi := q.max + p.after()
		us := hi / 1000
		if hi%1000 < 0 {
			us--
		}
		parts = append(parts, "time <= "+args.add(time.UnixMicro(us)))
	}
	if len(parts) == 0 {
		return "true"
	}
	return strings.Join(parts, " AND ")
}
