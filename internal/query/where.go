package query

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/influxdata/influxql"
	"github.com/jackc/pgx/v5"
)

// sqlArgs collects the parameters of one SQL statement.
type sqlArgs struct{ vals []any }

// add adds v and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	a.vals = append(a.vals, v)
	return "$" + strconv.Itoa(len(a.vals))
}

// condition translates an InfluxQL condition without its time range (see
// influxql.ConditionExpr) into SQL on t. nil is "true". Tags compare as
// InfluxDB compares them: a series without the tag has it empty, so
// `host != 'a'` and `host !~ /a/` hold there, and host equal to the empty
// string holds only there. A key that is neither a tag nor a field of t is an absent tag.
func condition(t *table, e influxql.Expr, args *sqlArgs) (string, error) {
	if e == nil {
		return "true", nil
	}
	switch e := e.(type) {
	case *influxql.ParenExpr:
		return condition(t, e.Expr, args)
	case *influxql.BooleanLiteral:
		return strconv.FormatBool(e.Val), nil
	case *influxql.BinaryExpr:
		switch e.Op {
		case influxql.AND, influxql.OR:
			l, err := condition(t, e.LHS, args)
			if err != nil {
				return "", err
			}
			r, err := condition(t, e.RHS, args)
			if err != nil {
				return "", err
			}
			return "(" + l + " " + e.Op.String() + " " + r + ")", nil
		case influxql.EQ, influxql.NEQ, influxql.LT, influxql.LTE, influxql.GT, influxql.GTE, influxql.EQREGEX, influxql.NEQREGEX:
			return comparison(t, e, args)
		}
	}
	return "", errorf("unsupported condition: %s", e)
}

// comparison translates `key op literal` (either way round).
func comparison(t *table, e *influxql.BinaryExpr, args *sqlArgs) (string, error) {
	op, lhs, rhs := e.Op, e.LHS, e.RHS
	if _, ok := lhs.(*influxql.VarRef); !ok {
		if _, ok := rhs.(*influxql.VarRef); ok {
			lhs, rhs = rhs, lhs
			op = map[influxql.Token]influxql.Token{influxql.LT: influxql.GT, influxql.LTE: influxql.GTE, influxql.GT: influxql.LT, influxql.GTE: influxql.LTE}[op]
			if op == 0 {
				op = e.Op
			}
		}
	}
	ref, ok := lhs.(*influxql.VarRef)
	if !ok {
		// Arithmetic on fields: compare the numbers.
		l, err := numeric(t, lhs, args)
		if err != nil {
			return "", errorf("unsupported condition: %s", e)
		}
		r, err := numeric(t, rhs, args)
		if err != nil {
			return "", errorf("unsupported condition: %s", e)
		}
		return "(" + l + " " + sqlOp(op) + " " + r + ")", nil
	}
	tag, isTag, f, isField := t.key(ref)
	if !isTag && !isField {
		isTag, tag = true, "NULL::text"
	}
	if isTag {
		return tagComparison(tag, op, rhs, args)
	}
	return fieldComparison(f, op, rhs, t, args)
}

// tagComparison compares tag value tag (NULL when absent) with a string
// or regex: an absent tag is the empty string.
func tagComparison(tag string, op influxql.Token, rhs influxql.Expr, args *sqlArgs) (string, error) {
	if re, ok := rhs.(*influxql.RegexLiteral); ok {
		switch op {
		case influxql.EQREGEX:
			return "(coalesce(" + tag + ", '') ~ " + args.add(re.Val.String()) + ")", nil
		case influxql.NEQREGEX:
			return "(coalesce(" + tag + ", '') !~ " + args.add(re.Val.String()) + ")", nil
		}
		return "", errorf("unsupported condition: %s %s %s", tag, op, rhs)
	}
	s, ok := literalString(rhs)
	switch {
	case op == influxql.EQREGEX || op == influxql.NEQREGEX:
		return "", errorf("unsupported condition: a regex is expected after %s", op)
	case !ok:
		return "false", nil // a tag is never a number
	case op == influxql.EQ && s == "":
		return "(" + tag + " IS NULL)", nil
	case op == influxql.NEQ && s == "":
		return "(" + tag + " IS NOT NULL)", nil
	case op == influxql.EQ:
		return "(" + tag + " = " + args.add(s) + ")", nil
	case op == influxql.NEQ:
		return "(" + tag + " IS DISTINCT FROM " + args.add(s) + ")", nil
	}
	return "(coalesce(" + tag + ", '') " + sqlOp(op) + " " + args.add(s) + ")", nil
}

// fieldComparison compares field f with a literal of its type; another
// type never matches, as in InfluxDB.
func fieldComparison(f field, op influxql.Token, rhs influxql.Expr, t *table, args *sqlArgs) (string, error) {
	switch v := rhs.(type) {
	case *influxql.RegexLiteral:
		switch {
		case op != influxql.EQREGEX && op != influxql.NEQREGEX:
			return "", errorf("unsupported condition: %s after %s", rhs, op)
		case f.typ != typeString:
			return "false", nil
		case op == influxql.NEQREGEX:
			return "(" + f.sql + " !~ " + args.add(v.Val.String()) + ")", nil
		}
		return "(" + f.sql + " ~ " + args.add(v.Val.String()) + ")", nil
	case *influxql.StringLiteral:
		if f.typ != typeString {
			return "false", nil
		}
		return "(" + f.sql + " " + sqlOp(op) + " " + args.add(v.Val) + ")", nil
	case *influxql.BooleanLiteral:
		if f.typ != typeBoolean || (op != influxql.EQ && op != influxql.NEQ) {
			return "false", nil
		}
		return "(" + f.sql + " " + sqlOp(op) + " " + args.add(v.Val) + ")", nil
	}
	if op == influxql.EQREGEX || op == influxql.NEQREGEX {
		return "", errorf("unsupported condition: a regex is expected after %s", op)
	}
	if !f.typ.numeric() {
		return "false", nil
	}
	r, err := numeric(t, rhs, args)
	if err != nil {
		return "", errorf("unsupported condition: %s %s", op, rhs)
	}
	return "(" + f.sql + " " + sqlOp(op) + " " + r + ")", nil
}

// numeric translates arithmetic on numeric fields and numbers.
func numeric(t *table, e influxql.Expr, args *sqlArgs) (string, error) {
	switch e := e.(type) {
	case *influxql.ParenExpr:
		return numeric(t, e.Expr, args)
	case *influxql.NumberLiteral:
		return args.add(e.Val) + "::double precision", nil
	case *influxql.IntegerLiteral:
		return args.add(e.Val) + "::bigint", nil
	case *influxql.UnsignedLiteral:
		return args.add(strconv.FormatUint(e.Val, 10)) + "::numeric", nil
	case *influxql.VarRef:
		if f, ok := t.fields[e.Val]; ok && f.typ.numeric() {
			return f.sql, nil
		}
		return "NULL::double precision", nil
	case *influxql.BinaryExpr:
		switch e.Op {
		case influxql.ADD, influxql.SUB, influxql.MUL, influxql.DIV:
			l, err := numeric(t, e.LHS, args)
			if err != nil {
				return "", err
			}
			r, err := numeric(t, e.RHS, args)
			if err != nil {
				return "", err
			}
			if e.Op == influxql.DIV {
				return "(" + l + "::double precision / nullif(" + r + ", 0))", nil
			}
			return "(" + l + " " + e.Op.String() + " " + r + ")", nil
		}
	}
	return "", fmt.Errorf("not a number: %s", e)
}

// literalString is a string literal's value (tags compare as strings).
func literalString(e influxql.Expr) (string, bool) {
	switch e := e.(type) {
	case *influxql.StringLiteral:
		return e.Val, true
	case *influxql.ParenExpr:
		return literalString(e.Expr)
	}
	return "", false
}

// sqlOp is the SQL of a comparison operator.
func sqlOp(op influxql.Token) string {
	switch op {
	case influxql.NEQ:
		return "<>"
	case influxql.EQ:
		return "="
	}
	return strings.TrimSpace(op.String())
}

// seriesLookup is SQL that reads, from the series table, the ids of the
// series of t that the tag conditions among e's top-level conjuncts pick,
// and how many series t has; "" when no conjunct is on tags the series
// table holds. With those ids in the query (see plan.sql), the point key
// (time, series_id), or an index leading with series_id, finds their rows
// without reading others'. The conditions stay in the query as well.
func seriesLookup(t *table, e influxql.Expr) (string, []any, error) {
	if !t.series || e == nil {
		return "", nil, nil
	}
	st := &table{tags: map[string]string{}, fields: map[string]field{}}
	for k := range t.seriesTags {
		st.tags[k] = "(s.tags->>" + quoteLiteral(k) + ")"
	}
	var args sqlArgs
	name := args.add(t.name)
	var parts []string
	for _, c := range conjuncts(e) {
		if !onlyTags(t, c) {
			continue
		}
		sql, err := condition(st, c, &args)
		if err != nil {
			return "", nil, err
		}
		parts = append(parts, sql)
	}
	if len(parts) == 0 {
		return "", nil, nil
	}
	ident := pgx.Identifier{t.schema, seriesTable}.Sanitize()
	return "SELECT coalesce(array_agg(s.series_id) FILTER (WHERE " + strings.Join(parts, " AND ") + "), '{}'), count(*) FROM " +
		ident + " s WHERE s.table_name = " + name, args.vals, nil
}

// seriesIn is the SQL keeping the rows of series ids, a constant so that
// PostgreSQL plans with it (its selectivity, an index on series_id, a
// hashed lookup for many).
func seriesIn(ids []int64) string {
	var b strings.Builder
	b.WriteString("series_id = ANY ('{")
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteString("}'::bigint[])")
	return b.String()
}

// conjuncts splits e at its top-level ANDs.
func conjuncts(e influxql.Expr) []influxql.Expr {
	switch e := e.(type) {
	case *influxql.ParenExpr:
		return conjuncts(e.Expr)
	case *influxql.BinaryExpr:
		if e.Op == influxql.AND {
			return append(conjuncts(e.LHS), conjuncts(e.RHS)...)
		}
	}
	return []influxql.Expr{e}
}

// onlyTags says every key e reads is a tag the series table holds.
func onlyTags(t *table, e influxql.Expr) bool {
	ok, refs := true, 0
	influxql.WalkFunc(e, func(n influxql.Node) {
		r, isRef := n.(*influxql.VarRef)
		if !isRef {
			return
		}
		refs++
		_, isField := t.fields[r.Val]
		if !t.seriesTags[r.Val] || (isField && r.Type != influxql.Tag) {
			ok = false
		}
	})
	return ok && refs > 0
}
