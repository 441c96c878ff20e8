package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/influxql"
	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/sink/schema"
)

// Where the SHOW statements read tag sets from: the series table or the
// table itself (see show.go).

// showTagSets returns the tag sets of t that cond and tr keep (perhaps
// some twice).
func (r *run) showTagSets(ctx context.Context, t *table, cond influxql.Expr, tr influxql.TimeRange) ([]map[string]string, error) {
	keys := t.tagKeys()
	sc, err := r.showScope(ctx, t, cond, tr, keys)
	if err != nil {
		return nil, err
	}
	var sets []map[string]string
	switch {
	case sc.series || t.jsonb:
		// The tags as stored, also keys the table's sample did not show.
		col, distinct := "s.tags", ""
		if !sc.series {
			col, distinct = "tags", "DISTINCT "
		}
		rows, err := r.tx.Query(ctx, "SELECT "+distinct+col+" FROM "+sc.from+" WHERE "+sc.where, sc.args.vals...)
		if err != nil {
			return nil, err
		}
		var tags map[string]any
		if _, err := pgx.ForEachRow(rows, []any{&tags}, func() error {
			set := make(map[string]string, len(tags))
			for k, v := range tags {
				switch v := v.(type) {
				case nil:
				case string:
					set[k] = v
				default:
					set[k] = fmt.Sprint(v)
				}
			}
			sets = append(sets, set)
			tags = nil
			return nil
		}); err != nil {
			return nil, err
		}
	case len(keys) == 0:
		var found bool
		if err := r.tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+sc.from+" WHERE "+sc.where+")", sc.args.vals...).Scan(&found); err != nil {
			return nil, err
		}
		if found {
			sets = append(sets, map[string]string{})
		}
	default:
		cols := make([]string, len(keys))
		for i, k := range keys {
			cols[i] = "(" + sc.tags[k] + ")::text"
		}
		rows, err := r.tx.Query(ctx, "SELECT DISTINCT "+strings.Join(cols, ", ")+" FROM "+sc.from+" WHERE "+sc.where, sc.args.vals...)
		if err != nil {
			return nil, err
		}
		vals := make([]*string, len(keys))
		dest := make([]any, len(keys))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if _, err := pgx.ForEachRow(rows, dest, func() error {
			set := map[string]string{}
			for i, v := range vals {
				if v != nil {
					set[keys[i]] = *v
				}
			}
			sets = append(sets, set)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return sets, nil
}

// showCondition splits a SHOW statement's WHERE into its condition on tags
// (nil for none) and its time range.
func (r *run) showCondition(cond influxql.Expr) (influxql.Expr, influxql.TimeRange, error) {
	c, tr, err := influxql.ConditionExpr(cond, &influxql.NowValuer{Now: r.req.Now})
	if err != nil {
		return nil, tr, errorf("%s", err)
	}
	return c, tr, nil
}

// showTables returns the tables that sources name (every measurement of
// the database when none), sorted by measurement: a measurement without a
// table is left out. A source's database, else db, else the request's, is
// the one read.
func (r *run) showTables(ctx context.Context, db string, sources influxql.Sources) ([]*table, error) {
	type target struct{ sch, m string }
	var targets []target
	if len(sources) == 0 {
		sch, err := r.schema(ctx, db)
		if err != nil {
			return nil, err
		}
		all, err := r.allMeasurements(ctx, sch)
		if err != nil {
			return nil, err
		}
		for _, m := range all {
			targets = append(targets, target{sch, m})
		}
	}
	for _, src := range sources {
		mm, ok := src.(*influxql.Measurement)
		if !ok {
			return nil, unsupported("FROM " + src.String() + " in a SHOW statement")
		}
		sdb := mm.Database
		if sdb == "" {
			sdb = db
		}
		sch, err := r.schema(ctx, sdb)
		if err != nil {
			return nil, err
		}
		names, err := r.measurements(ctx, sdb, mm)
		if err != nil {
			return nil, err
		}
		for _, m := range names {
			targets = append(targets, target{sch, m})
		}
	}
	slices.SortFunc(targets, func(a, b target) int {
		if c := strings.Compare(a.m, b.m); c != 0 {
			return c
		}
		return strings.Compare(a.sch, b.sch)
	})
	targets = slices.Compact(targets)
	var tables []*table
	for _, tg := range targets {
		t, err := r.table(ctx, tg.sch, tg.m)
		if err != nil {
			return nil, err
		}
		if t != nil {
			tables = append(tables, t)
		}
	}
	return tables, nil
}

// showScope is where a SHOW statement reads a table's tag sets from: the
// table's rows, or the series table's.
type showScope struct {
	from   string            // what follows FROM
	where  string            // the rows the statement's WHERE keeps
	tags   map[string]string // tag key → SQL of its value there (text, NULL when absent)
	args   *sqlArgs          // where's parameters; more may be added
	series bool              // from the series table: a row a tag set, its tags in s.tags
}

// showScope returns where to read the tag sets of t that cond (on tags
// and fields, without time) and tr keep, reading the tags keys.
func (r *run) showScope(ctx context.Context, t *table, cond influxql.Expr, tr influxql.TimeRange, keys []string) (*showScope, error) {
	args := &sqlArgs{}
	if tr.IsZero() {
		tags, fields := showRefs(t, cond)
		ok := false
		if !fields {
			var err error
			if ok, err = r.seriesKnows(ctx, t, append(tags, keys...)); err != nil {
				return nil, err
			}
		}
		if ok {
			view := &table{measurement: t.measurement, name: t.name, schema: t.schema, tags: map[string]string{}, fields: map[string]field{}}
			for k := range t.tags {
				view.tags[k] = "(s.tags->>" + quoteLiteral(k) + ")"
			}
			c, err := condition(view, cond, args)
			if err != nil {
				return nil, err
			}
			return &showScope{
				from:   pgx.Identifier{t.schema, schema.SeriesTable}.Sanitize() + " s",
				where:  "s.table_name = " + args.add(t.name) + " AND " + c,
				tags:   view.tags,
				args:   args,
				series: true,
			}, nil
		}
	}
	c, err := condition(t, cond, args)
	if err != nil {
		return nil, err
	}
	if !tr.Min.IsZero() {
		c += showTimeBound(t, ">=", tr.Min, args)
	}
	if !tr.Max.IsZero() {
		c += showTimeBound(t, "<=", tr.Max, args)
	}
	return &showScope{from: t.ident, where: c, tags: t.tags, args: args}, nil
}

// showTimeBound is the SQL of a bound of a time range (inclusive, in
// nanoseconds) on t's rows, whose time column keeps microseconds, floored,
// and a time_ns column the nanoseconds beyond when t.nanos.
func showTimeBound(t *table, op string, at time.Time, args *sqlArgs) string {
	ns := at.UnixNano()
	us := ns / 1000
	rem := ns % 1000
	if rem < 0 {
		us, rem = us-1, rem+1000
	}
	if t.nanos {
		p := args.add(time.UnixMicro(us).UTC())
		return ` AND "time" ` + op + " " + p + ` AND ("time", ` + pgx.Identifier{schema.NanosColumn}.Sanitize() + ") " + op + " (" + p + ", " + args.add(rem) + ")"
	}
	if op == ">=" && rem > 0 {
		us++ // the first microsecond at or after at
	}
	return ` AND "time" ` + op + " " + args.add(time.UnixMicro(us).UTC())
}

// showRefs returns the tags of t that cond names, and whether it names a
// field (which only the table's rows have), as condition reads them.
func showRefs(t *table, cond influxql.Expr) (tags []string, fields bool) {
	influxql.WalkFunc(cond, func(n influxql.Node) {
		ref, ok := n.(*influxql.VarRef)
		if !ok {
			return
		}
		_, isTag, _, isField := t.key(ref)
		switch {
		case isTag:
			tags = append(tags, ref.Val)
		case isField:
			fields = true
		}
	})
	return tags, fields
}

// seriesKnows reports whether the series table can stand for t's rows: it
// has series of t (a table in append mode has none), and among them keys
// (in columns storage, a text column someone else made is a tag the
// series table does not have). The querying role must be allowed to read
// both tables.
func (r *run) seriesKnows(ctx context.Context, t *table, keys []string) (bool, error) {
	series := pgx.Identifier{t.schema, schema.SeriesTable}.Sanitize()
	var ok bool
	if err := r.tx.QueryRow(ctx, `SELECT CASE WHEN to_regclass($1) IS NULL THEN false
			ELSE has_table_privilege(to_regclass($1), 'SELECT') AND has_table_privilege(to_regclass($2), 'SELECT') END`,
		series, t.ident).Scan(&ok); err != nil || !ok {
		return false, err
	}
	if t.jsonb {
		keys = nil // its tags are the series'
	}
	err := r.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+series+` WHERE table_name = $1)
		AND NOT EXISTS (SELECT 1 FROM unnest($2::text[]) k
			WHERE NOT EXISTS (SELECT 1 FROM `+series+` s WHERE s.table_name = $1 AND s.tags ? k))`,
		t.name, keys).Scan(&ok)
	return ok, err
}

// showKeyMatch is the test of SHOW TAG VALUES's WITH KEY.
func showKeyMatch(op influxql.Token, lit influxql.Literal) (func(string) bool, error) {
	switch lit := lit.(type) {
	case *influxql.StringLiteral:
		switch op {
		case influxql.EQ:
			return func(k string) bool { return k == lit.Val }, nil
		case influxql.NEQ:
			return func(k string) bool { return k != lit.Val }, nil
		}
	case *influxql.RegexLiteral:
		switch op {
		case influxql.EQREGEX:
			return lit.Val.MatchString, nil
		case influxql.NEQREGEX:
			return func(k string) bool { return !lit.Val.MatchString(k) }, nil
		}
	case *influxql.ListLiteral:
		if op == influxql.IN {
			return func(k string) bool { return slices.Contains(lit.Vals, k) }, nil
		}
	}
	return nil, errorf("unsupported WITH KEY %s %v", op, lit)
}

// showPage applies LIMIT and OFFSET (0 is none).
func showPage[T any](s []T, limit, offset int) []T {
	if offset > 0 {
		if offset >= len(s) {
			return nil
		}
		s = s[offset:]
	}
	if limit > 0 && limit < len(s) {
		s = s[:limit]
	}
	return s
}

// seriesKey is a series' key as InfluxDB writes it: the measurement, then
// key=value of each tag, sorted by key; an empty value is no tag.
func seriesKey(m string, tags map[string]string) string {
	var b strings.Builder
	escapeKey(&b, m, ", ")
	for _, k := range sortedKeys(tags) {
		if tags[k] == "" {
			continue
		}
		b.WriteByte(',')
		escapeKey(&b, k, ", =")
		b.WriteByte('=')
		escapeKey(&b, tags[k], ", =")
	}
	return b.String()
}

// escapeKey writes s with a backslash before each of the bytes special.
func escapeKey(b *strings.Builder, s, special string) {
	for i := range len(s) {
		if strings.IndexByte(special, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
}
