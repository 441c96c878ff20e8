package query

import (
	"strconv"
	"strings"
	"time"

	"github.com/influxdata/influxql"
)

// The SQL of the aggregates that are not one value per window computed
// by an aggregate function: top() and bottom(), and integral().

// topSQL selects the points of top() and bottom(): per window and series
// the n greatest (least) values, with the tags named the greatest
// (least) of each of their values first.
func (p *plan) topSQL(args *sqlArgs, where string) (string, []any, error) {
	c := p.special
	k := c.Args[0].(*influxql.VarRef).Val
	f, ok := p.t.fields[k]
	if !ok {
		return "", nil, nil
	}
	if !f.typ.numeric() {
		return "", nil, errorf("unsupported %s iterator type: %s", c.Name, f.typ)
	}
	n := c.Args[len(c.Args)-1].(*influxql.IntegerLiteral).Val
	dir := "DESC"
	if c.Name == "bottom" {
		dir = "ASC"
	}
	var part, sel []string
	if p.q.interval > 0 {
		w, err := p.windowSQL(args)
		if err != nil {
			return "", nil, err
		}
		sel = append(sel, w+" AS w")
		part = append(part, "w")
	}
	for i, d := range p.dimSQL() {
		sel = append(sel, d+" AS d"+strconv.Itoa(i))
		part = append(part, "d"+strconv.Itoa(i))
	}
	sel = append(sel, "time", f.sql+" AS v")
	var tags []string
	for i, a := range c.Args[1 : len(c.Args)-1] {
		sel = append(sel, p.refSQL(a.(*influxql.VarRef))+" AS t"+strconv.Itoa(i))
		tags = append(tags, "t"+strconv.Itoa(i))
	}
	// Other fields and tags selected: the point's.
	var aux []string
	for i, r := range p.refs {
		sel = append(sel, p.refSQL(r)+" AS x"+strconv.Itoa(i))
		aux = append(aux, "x"+strconv.Itoa(i))
	}
	inner := "SELECT " + strings.Join(sel, ", ") + " FROM " + p.t.ident + " WHERE " + where + " AND " + f.sql + " IS NOT NULL"
	partition := func(extra []string) string {
		all := append(append([]string{}, part...), extra...)
		if len(all) == 0 {
			return ""
		}
		return "PARTITION BY " + strings.Join(all, ", ") + " "
	}
	// With tags named, each of their values' best point first; without,
	// every point.
	mid := "SELECT *, row_number() OVER (" + partition(tags) + "ORDER BY v " + dir + ", time) AS r1 FROM (" + inner + ") i"
	if len(tags) == 0 {
		mid = "SELECT *, 1 AS r1 FROM (" + inner + ") i"
	}
	cols := append(append([]string{}, part...), "time", "v")
	cols = append(append(cols, tags...), aux...)
	var dimCols []string
	for i := range p.dims {
		dimCols = append(dimCols, "d"+strconv.Itoa(i))
	}
	outer := "SELECT " + strings.Join(cols, ", ") + " FROM (SELECT *, row_number() OVER (" + partition(nil) + "ORDER BY v " + dir + ", time) AS r2 FROM (" + mid + ") m WHERE r1 = 1) o WHERE r2 <= " + args.add(n) +
		" ORDER BY " + strings.Join(append(seriesOrder(p.byKey(dimCols)), "time"+p.dir()), ", ")
	return outer, args.vals, nil
}

// integralSQL computes integral() as InfluxDB's reducer does: the
// trapezium rule over consecutive points of a series, and, with GROUP BY
// time, a segment across a window's end split there, the value at the end
// interpolated, each part counted in its window.
func (p *plan) integralSQL(args *sqlArgs, where string) (string, []any, error) {
	c := p.calls[0]
	v, err := p.numericField(c)
	if err != nil {
		return "", nil, err
	}
	unit := 1.0 // seconds
	if len(c.Args) == 2 {
		unit = time.Duration(c.Args[1].(*influxql.DurationLiteral).Val).Seconds()
	}
	u := args.add(unit) + "::double precision"
	var dims, part []string
	for i, d := range p.dimSQL() {
		dims = append(dims, d+" AS d"+strconv.Itoa(i))
		part = append(part, "d"+strconv.Itoa(i))
	}
	over := "OVER (ORDER BY time)"
	if len(part) > 0 {
		over = "OVER (PARTITION BY " + strings.Join(part, ", ") + " ORDER BY time)"
	}
	secs := func(a, b string) string { return "extract(epoch FROM (" + a + " - " + b + "))::double precision" }
	points := "SELECT " + strings.Join(append(dims, "time", v+"::double precision AS v"), ", ") +
		" FROM " + p.t.ident + " WHERE " + where + " AND " + v + " IS NOT NULL"
	lagged := "SELECT *, lag(time) " + over + " AS pt, lag(v) " + over + " AS pv FROM (" + points + ") p"
	cols := strings.Join(part, ", ")
	if cols != "" {
		cols += ", "
	}
	if p.q.interval == 0 {
		sql := "SELECT " + cols + "coalesce(sum(0.5 * (v + pv) * " + secs("time", "pt") + "), 0) / " + u + " FROM (" + lagged + ") l"
		if len(part) > 0 {
			sql += " GROUP BY " + strings.Join(part, ", ") + " ORDER BY " + strings.Join(seriesOrder(p.byKey(part)), ", ")
		}
		return sql, args.vals, nil
	}
	w, err := p.windowSQL(args)
	if err != nil {
		return "", nil, err
	}
	iv := args.add(strconv.FormatInt(p.q.interval/1000, 10)+" microseconds") + "::interval"
	wp := strings.Replace(w, "time,", "pt,", 1)
	windows := "SELECT *, " + w + " AS wt, " + wp + " AS wp FROM (" + lagged + ") l"
	ends := "SELECT *, wp + " + iv + " AS we, pv + (v - pv) * " + secs("wp + "+iv, "pt") + " / nullif(" + secs("time", "pt") + ", 0) AS ve FROM (" + windows + ") x"
	parts := "SELECT wt AS w, " + cols + "CASE WHEN pt IS NULL THEN 0 WHEN wp = wt THEN 0.5 * (v + pv) * " + secs("time", "pt") +
		" ELSE 0.5 * (v + ve) * " + secs("time", "we") + " END AS a FROM (" + ends + ") e" +
		" UNION ALL SELECT wp, " + cols + "0.5 * (ve + pv) * " + secs("we", "pt") + " FROM (" + ends + ") e WHERE pt IS NOT NULL AND wp <> wt"
	group := []string{"1"}
	for i := range part {
		group = append(group, strconv.Itoa(i+2))
	}
	sql := "SELECT w, " + cols + "sum(a) / " + u + " FROM (" + parts + ") s GROUP BY " + strings.Join(group, ", ")
	if len(part) > 0 {
		sql += " ORDER BY " + strings.Join(seriesOrder(p.byKey(part)), ", ")
	}
	return sql, args.vals, nil
}
