package query

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/influxdata/influxql"
	"github.com/jackc/pgx/v5"
)

// The SHOW statements answer as InfluxDB 1.8 does: LIMIT and OFFSET page
// the whole list (SHOW MEASUREMENTS, SHOW SERIES) or each measurement's
// (SHOW TAG KEYS, SHOW TAG VALUES, SHOW FIELD KEYS); measurements without
// a table are left out, and an empty answer is no series at all.
//
// A WHERE keeps the tag sets of the rows it matches. Without a time range
// and without a field in it, those come from the series table when it
// knows the table's series (pginflux_series, one row per tag set): a
// Grafana variable then reads a few thousand series, not the table. The
// series table keeps a series whose rows were deleted or dropped by
// retention, so such a series still shows there. A time range, a field, a
// table in append mode (no series) or a tag the series table lacks (a
// text column someone else made) send the statement to the table's rows.

// showMeasurements answers SHOW MEASUREMENTS: the names, in one series
// "measurements"; WITH MEASUREMENT picks names, a WHERE keeps those with a
// row it matches.
func (r *run) showMeasurements(ctx context.Context, st *influxql.ShowMeasurementsStatement) ([]Series, error) {
	sch, err := r.schema(ctx, st.Database)
	if err != nil {
		return nil, err
	}
	var src *influxql.Measurement
	if st.Source != nil {
		var ok bool
		if src, ok = st.Source.(*influxql.Measurement); !ok {
			return nil, unsupported("SHOW MEASUREMENTS WITH MEASUREMENT " + st.Source.String())
		}
	}
	cond, tr, err := r.showCondition(st.Condition)
	if err != nil {
		return nil, err
	}
	all, err := r.allMeasurements(ctx, sch)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range all {
		if src != nil && (src.Regex == nil && m != src.Name || src.Regex != nil && !src.Regex.Val.MatchString(m)) {
			continue
		}
		if cond != nil || !tr.IsZero() {
			t, err := r.table(ctx, sch, m)
			if err != nil {
				return nil, err
			}
			if t == nil {
				continue
			}
			sc, err := r.showScope(ctx, t, cond, tr, nil)
			if err != nil {
				return nil, err
			}
			var found bool
			if err := r.tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+sc.from+" WHERE "+sc.where+")", sc.args.vals...).Scan(&found); err != nil {
				return nil, err
			}
			if !found {
				continue
			}
		}
		names = append(names, m)
		if st.Limit > 0 && len(names) >= st.Offset+st.Limit {
			break
		}
	}
	names = showPage(names, st.Limit, st.Offset)
	if len(names) == 0 {
		return nil, nil
	}
	s := Series{Name: "measurements", Columns: []string{"name"}}
	for _, m := range names {
		s.Values = append(s.Values, []any{m})
	}
	return []Series{s}, nil
}

// showTagKeys answers SHOW TAG KEYS: a series a measurement with tags,
// its keys sorted; with a WHERE, the keys of the tag sets it keeps.
// SLIMIT and SOFFSET are ignored, as InfluxDB 1.8 does.
func (r *run) showTagKeys(ctx context.Context, st *influxql.ShowTagKeysStatement) ([]Series, error) {
	cond, tr, err := r.showCondition(st.Condition)
	if err != nil {
		return nil, err
	}
	tables, err := r.showTables(ctx, st.Database, st.Sources)
	if err != nil {
		return nil, err
	}
	var out []Series
	for _, t := range tables {
		keys := t.tagKeys()
		if len(keys) > 0 && (cond != nil || !tr.IsZero()) {
			if keys, err = r.showPresentKeys(ctx, t, cond, tr, keys); err != nil {
				return nil, err
			}
		}
		keys = showPage(keys, st.Limit, st.Offset)
		if len(keys) == 0 {
			continue
		}
		s := Series{Name: t.measurement, Columns: []string{"tagKey"}}
		for _, k := range keys {
			s.Values = append(s.Values, []any{k})
		}
		out = append(out, s)
	}
	return out, nil
}

// showPresentKeys returns those of keys that some tag set of t that cond
// and tr keep has.
func (r *run) showPresentKeys(ctx context.Context, t *table, cond influxql.Expr, tr influxql.TimeRange, keys []string) ([]string, error) {
	sc, err := r.showScope(ctx, t, cond, tr, keys)
	if err != nil {
		return nil, err
	}
	// One EXISTS a key: each stops at the first row that has it.
	exists := make([]string, len(keys))
	for i, k := range keys {
		exists[i] = "EXISTS (SELECT 1 FROM " + sc.from + " WHERE " + sc.where + " AND " + sc.tags[k] + " <> '')"
	}
	var has []bool
	if err := r.tx.QueryRow(ctx, "SELECT ARRAY["+strings.Join(exists, ", ")+"]::boolean[]", sc.args.vals...).Scan(&has); err != nil {
		return nil, err
	}
	var out []string
	for i, k := range keys {
		if has[i] {
			out = append(out, k)
		}
	}
	return out, nil
}

// showTagValues answers SHOW TAG VALUES: a series a measurement that has a
// key WITH KEY picks, its distinct (key, value) in the tag sets the WHERE
// keeps, sorted.
func (r *run) showTagValues(ctx context.Context, st *influxql.ShowTagValuesStatement) ([]Series, error) {
	match, err := showKeyMatch(st.Op, st.TagKeyExpr)
	if err != nil {
		return nil, err
	}
	cond, tr, err := r.showCondition(st.Condition)
	if err != nil {
		return nil, err
	}
	tables, err := r.showTables(ctx, st.Database, st.Sources)
	if err != nil {
		return nil, err
	}
	var out []Series
	for _, t := range tables {
		var keys []string
		for _, k := range t.tagKeys() {
			if match(k) {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		values, err := r.showValues(ctx, t, cond, tr, keys)
		if err != nil {
			return nil, err
		}
		values = showPage(values, st.Limit, st.Offset)
		if len(values) == 0 {
			continue
		}
		out = append(out, Series{Name: t.measurement, Columns: []string{"key", "value"}, Values: values})
	}
	return out, nil
}

// showValues returns the distinct (key, value) of keys in the tag sets of t
// that cond and tr keep, sorted by key, then value.
func (r *run) showValues(ctx context.Context, t *table, cond influxql.Expr, tr influxql.TimeRange, keys []string) ([][]any, error) {
	sc, err := r.showScope(ctx, t, cond, tr, keys)
	if err != nil {
		return nil, err
	}
	// The rows are read once: each gives a (key, value) a key. The
	// condition runs inside, where only the table's names are in scope.
	cols := make([]string, len(keys))
	pairs := make([]string, len(keys))
	for i, k := range keys {
		cols[i] = fmt.Sprintf("(%s)::text AS c%d", sc.tags[k], i)
		pairs[i] = fmt.Sprintf("(%s::text, q.c%d)", sc.args.add(k), i)
	}
	sql := "SELECT DISTINCT x.k, x.v FROM (SELECT " + strings.Join(cols, ", ") + " FROM " + sc.from + " WHERE " + sc.where + ") q" +
		" CROSS JOIN LATERAL (VALUES " + strings.Join(pairs, ", ") + ") x(k, v) WHERE x.v <> ''"
	rows, err := r.tx.Query(ctx, sql, sc.args.vals...)
	if err != nil {
		return nil, err
	}
	type kv struct{ k, v string }
	var got []kv
	var p kv
	if _, err := pgx.ForEachRow(rows, []any{&p.k, &p.v}, func() error {
		got = append(got, p)
		return nil
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(got, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	values := make([][]any, len(got))
	for i, p := range got {
		values[i] = []any{p.k, p.v}
	}
	return values, nil
}

// showFieldKeys answers SHOW FIELD KEYS: a series a measurement with
// fields, its keys sorted, with their types.
func (r *run) showFieldKeys(ctx context.Context, st *influxql.ShowFieldKeysStatement) ([]Series, error) {
	tables, err := r.showTables(ctx, st.Database, st.Sources)
	if err != nil {
		return nil, err
	}
	var out []Series
	for _, t := range tables {
		keys := showPage(t.fieldKeys(), st.Limit, st.Offset)
		if len(keys) == 0 {
			continue
		}
		s := Series{Name: t.measurement, Columns: []string{"fieldKey", "fieldType"}}
		for _, k := range keys {
			s.Values = append(s.Values, []any{k, t.fields[k].typ.String()})
		}
		out = append(out, s)
	}
	return out, nil
}

// showSeries answers SHOW SERIES: one series without a name, the keys of
// the tag sets the WHERE keeps ("cpu,cpu=cpu0,host=a"), sorted by
// measurement, then key.
func (r *run) showSeries(ctx context.Context, st *influxql.ShowSeriesStatement) ([]Series, error) {
	cond, tr, err := r.showCondition(st.Condition)
	if err != nil {
		return nil, err
	}
	tables, err := r.showTables(ctx, st.Database, st.Sources)
	if err != nil {
		return nil, err
	}
	var keys []string
	seen := map[string]bool{}
	for _, t := range tables {
		sets, err := r.showTagSets(ctx, t, cond, tr)
		if err != nil {
			return nil, err
		}
		var mine []string
		for _, tags := range sets {
			if k := seriesKey(t.measurement, tags); !seen[k] {
				seen[k] = true
				mine = append(mine, k)
			}
		}
		slices.Sort(mine)
		keys = append(keys, mine...)
	}
	keys = showPage(keys, st.Limit, st.Offset)
	if len(keys) == 0 {
		return nil, nil
	}
	s := Series{Columns: []string{"key"}}
	for _, k := range keys {
		s.Values = append(s.Values, []any{k})
	}
	return []Series{s}, nil
}
