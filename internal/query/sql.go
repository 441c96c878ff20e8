package query

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxql"
)

// The SQL of a plan. Its rows are, in order:
//   - aggregate: the window (with GROUP BY time), the dimensions, each
//     call's value, then, for a lone selector, its point's time (without
//     GROUP BY time) and each ref's value at its point;
//   - top and bottom: the window, the dimensions, the point's time, the
//     value and the tags named;
//   - raw: time (and time_ns), the dimensions, each ref's value.

// tusSQL is a row's time in microseconds, as a double precision (exact
// until 2255).
const tusSQL = "(extract(epoch FROM time) * 1000000)::double precision"

func (p *plan) sql() (string, []any, error) {
	var args sqlArgs
	cond, err := condition(p.t, p.q.cond, &args)
	if err != nil {
		return "", nil, err
	}
	where := p.timeRange(&args) + " AND " + cond
	if p.seriesIDs != nil {
		where += " AND " + seriesIn(p.seriesIDs)
	}
	switch {
	case p.special != nil && p.special.Name != "distinct":
		return p.topSQL(&args, where)
	case len(p.calls) == 1 && p.calls[0].Name == "integral":
		return p.integralSQL(&args, where)
	case p.aggregate:
		return p.aggregateSQL(&args, where)
	}
	return p.rawSQL(&args, where)
}

// dir is the SQL of the answer's time order.
func (p *plan) dir() string {
	if p.q.desc {
		return " DESC"
	}
	return ""
}

// seriesOrder orders rows by the dimensions' values, so that a series'
// rows come together and series in InfluxDB's order (bytewise, a series
// without the tag first).
func seriesOrder(dims []string) []string {
	out := make([]string, len(dims))
	for i, d := range dims {
		out[i] = d + ` COLLATE "C" NULLS FIRST`
	}
	return out
}

// byKey reorders what is one a dimension in the order of the
// dimensions' tag keys, the order of a series key.
func (p *plan) byKey(perDim []string) []string {
	idx := make([]int, len(p.dims))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(p.dims[a], p.dims[b]) })
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = perDim[j]
	}
	return out
}

// dimSQL is the SQL of the dimensions, each a text or NULL.
func (p *plan) dimSQL() []string {
	out := make([]string, len(p.dims))
	for i, d := range p.dims {
		if e, ok := p.t.tags[d]; ok {
			out[i] = e
		} else {
			out[i] = "NULL::text"
		}
	}
	return out
}

// windowSQL is the GROUP BY time window of a row.
func (p *plan) windowSQL(args *sqlArgs) (string, error) {
	us := p.q.interval / 1000
	if us <= 0 || p.q.interval%1000 != 0 {
		return "", errorf("GROUP BY time(%s): pginflux keeps microseconds, the interval must be a whole number of them", formatDuration(p.q.interval))
	}
	return "date_bin(" + args.add(strconv.FormatInt(us, 10)+" microseconds") + "::interval, time, " + args.add(p.q.origin()) + "::timestamptz)", nil
}

// present is the SQL that keeps rows with a value of one of fields.
func (p *plan) present(fields []string) string {
	var parts []string
	seen := map[string]bool{}
	for _, k := range fields {
		if f, ok := p.t.fields[k]; ok && !seen[k] {
			seen[k] = true
			parts = append(parts, f.sql+" IS NOT NULL")
		}
	}
	if len(parts) == 0 {
		return "false"
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// argField is the field an aggregate reads.
func argField(c *influxql.Call) (string, bool) {
	switch a := c.Args[0].(type) {
	case *influxql.VarRef:
		return a.Val, true
	case *influxql.Call:
		return argField(a)
	case *influxql.Distinct:
		return a.Val, true
	}
	return "", false
}

func (p *plan) aggregateSQL(args *sqlArgs, where string) (string, []any, error) {
	var sel, group []string
	var read []string
	if p.q.interval > 0 {
		w, err := p.windowSQL(args)
		if err != nil {
			return "", nil, err
		}
		sel = append(sel, w)
		group = append(group, "1")
	}
	for _, d := range p.dimSQL() {
		sel = append(sel, d)
		group = append(group, strconv.Itoa(len(sel)))
	}
	for _, c := range p.calls {
		s, err := p.callSQL(c, args)
		if err != nil {
			return "", nil, err
		}
		sel = append(sel, s)
		k, _ := argField(c)
		read = append(read, k)
	}
	if p.lone != nil && (p.q.interval == 0 || len(p.refs) > 0) {
		order, idx, err := p.selectorOrder(p.lone, args)
		if err != nil {
			return "", nil, err
		}
		v := p.t.fields[mustArg(p.lone)].sql
		pick := func(e string) string {
			return "(array_agg(" + e + " ORDER BY " + order + ") FILTER (WHERE " + v + " IS NOT NULL))[" + idx + "]"
		}
		if p.q.interval == 0 {
			sel = append(sel, pick("time"))
		}
		for _, r := range p.refs {
			sel = append(sel, pick(p.refSQL(r)))
		}
	}
	sql := "SELECT " + strings.Join(sel, ", ") + " FROM " + p.t.ident + " WHERE " + where + " AND " + p.present(read)
	if len(group) > 0 {
		sql += " GROUP BY " + strings.Join(group, ", ")
	}
	if len(p.dims) > 0 {
		sql += " ORDER BY " + strings.Join(seriesOrder(p.byKey(p.dimSQL())), ", ")
	}
	return sql, args.vals, nil
}

// mustArg is the field of an aggregate checked by checkAggregate.
func mustArg(c *influxql.Call) string { k, _ := argField(c); return k }

// refSQL reads a field or tag as it is stored.
func (p *plan) refSQL(r *influxql.VarRef) string {
	f, isField := p.t.fields[r.Val]
	tag, isTag := p.t.tags[r.Val]
	switch {
	case isField && (r.Type != influxql.Tag || !isTag):
		return f.raw
	case isTag:
		return tag
	}
	return "NULL::text"
}

// numericField returns the SQL of c's field, which must be a number.
func (p *plan) numericField(c *influxql.Call) (string, error) {
	k := mustArg(c)
	f, ok := p.t.fields[k]
	if !ok {
		return "NULL::double precision", nil
	}
	if !f.typ.numeric() {
		return "", errorf("unsupported %s iterator type: %s", c.Name, f.typ)
	}
	return f.sql, nil
}

// callSQL is the SQL of an aggregate over a window.
func (p *plan) callSQL(c *influxql.Call, args *sqlArgs) (string, error) {
	k := mustArg(c)
	f, ok := p.t.fields[k]
	if !ok {
		return "NULL", nil
	}
	v := f.sql
	num := func() (string, error) { return p.numericField(c) }
	switch c.Name {
	case "count":
		if _, ok := c.Args[0].(*influxql.VarRef); !ok {
			return "count(DISTINCT " + v + ")", nil
		}
		return "count(" + v + ")", nil
	case "distinct":
		// Every value in time order: the first of each is kept (in Go,
		// see firstOfEach), in the order InfluxDB lists them.
		return "array_agg(" + v + " ORDER BY time, " + v + ") FILTER (WHERE " + v + " IS NOT NULL)", nil
	case "mean":
		n, err := num()
		return "avg(" + n + "::double precision)", err
	case "median":
		n, err := num()
		return "percentile_cont(0.5) WITHIN GROUP (ORDER BY " + n + "::double precision)", err
	case "mode":
		// Every value in time order: the most frequent is picked in Go
		// (see mode), the earliest of those as frequent, as InfluxDB.
		return "array_agg(" + v + " ORDER BY time, " + v + ") FILTER (WHERE " + v + " IS NOT NULL)", nil
	case "sum":
		n, err := num()
		return "sum(" + n + ")", err
	case "spread":
		n, err := num()
		return "(max(" + n + ") - min(" + n + "))", err
	case "stddev":
		n, err := num()
		return "stddev_samp(" + n + "::double precision)", err
	case "integral":
		return "", unsupported("integral() beside other functions")
	case "min", "max":
		if _, err := num(); err != nil {
			return "", err
		}
		return c.Name + "(" + v + ")", nil
	case "first", "last", "percentile":
		if c.Name == "percentile" {
			if _, err := num(); err != nil {
				return "", err
			}
		}
		order, idx, err := p.selectorOrder(c, args)
		if err != nil {
			return "", err
		}
		if f.typ.numeric() && c.Name != "percentile" {
			agg := map[string]string{"first": "min", "last": "max"}[c.Name]
			// Streaming: the least (greatest) [time, value] pair.
			return "(" + agg + "(ARRAY[" + tusSQL + ", " + v + "::double precision]))[2]", nil
		}
		return "(array_agg(" + v + " ORDER BY " + order + ") FILTER (WHERE " + v + " IS NOT NULL))[" + idx + "]", nil
	}
	return "", unsupported(fmt.Sprintf("function %s()", c.Name))
}

// selectorOrder is the order that puts a selector's point first (or at
// the index returned).
func (p *plan) selectorOrder(c *influxql.Call, args *sqlArgs) (order, idx string, err error) {
	v := p.t.fields[mustArg(c)].sql
	// Points of one time in series key order, as InfluxDB merges series.
	tags := ""
	for _, k := range p.t.tagKeys() {
		tags += ", " + p.t.tags[k] + ` COLLATE "C" NULLS FIRST`
	}
	switch c.Name {
	case "first":
		return "time" + tags, "1", nil
	case "last":
		return "time DESC" + tags, "1", nil
	case "max":
		return v + " DESC, time" + tags, "1", nil
	case "min":
		return v + ", time" + tags, "1", nil
	case "percentile":
		var pct float64
		switch a := c.Args[1].(type) {
		case *influxql.IntegerLiteral:
			pct = float64(a.Val)
		case *influxql.NumberLiteral:
			pct = a.Val
		}
		return v + ", time" + tags, "floor(count(" + v + ") * " + args.add(pct) + "::double precision / 100 + 0.5)::int", nil
	}
	return "", "", errorf("%s() is not a selector", c.Name)
}

func (p *plan) rawSQL(args *sqlArgs, where string) (string, []any, error) {
	sel := []string{"time"}
	if p.t.nanos {
		sel = append(sel, "time_ns")
	}
	sel = append(sel, p.dimSQL()...)
	var read []string
	for _, r := range p.refs {
		sel = append(sel, p.refSQL(r))
		if r.Type != influxql.Tag {
			read = append(read, r.Val)
		}
	}
	dir := ""
	if p.q.desc {
		dir = " DESC"
	}
	order := append(seriesOrder(p.byKey(p.dimSQL())), "time"+dir)
	if p.t.nanos {
		order = append(order, "time_ns"+dir)
	}
	for _, k := range p.t.tagKeys() {
		order = append(order, p.t.tags[k]+` COLLATE "C"`+dir+" NULLS FIRST")
	}
	sql := "SELECT " + strings.Join(sel, ", ") + " FROM " + p.t.ident + " WHERE " + where + " AND " + p.present(read) +
		" ORDER BY " + strings.Join(order, ", ")
	// One series and nothing computed across points: LIMIT in SQL.
	st := p.q.st
	if len(p.dims) == 0 && !p.transforms() {
		limit := st.Limit
		if m := p.q.e.opt.MaxPoints; m > 0 && (limit == 0 || limit > m) {
			limit = m + 1
		}
		if limit > 0 {
			sql += " LIMIT " + args.add(int64(limit))
		}
		if st.Offset > 0 {
			sql += " OFFSET " + args.add(int64(st.Offset))
		}
	} else if m := p.q.e.opt.MaxPoints; m > 0 {
		sql += " LIMIT " + args.add(int64(m+1))
	}
	return sql, args.vals, nil
}

// transforms says whether a field is computed across points.
func (p *plan) transforms() bool {
	found := false
	for _, f := range p.fields {
		influxql.WalkFunc(f.Expr, func(n influxql.Node) {
			if c, ok := n.(*influxql.Call); ok && transformations[c.Name] {
				found = true
			}
		})
	}
	return found
}

// formatDuration writes d as InfluxQL does.
func formatDuration(ns int64) string { return influxql.FormatDuration(time.Duration(ns)) }
