package query

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/influxdata/influxql"
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
	tag, isTag := t.tags[ref.Val]
	f, isField := t.fields[ref.Val]
	switch ref.Type {
	case influxql.Tag:
		isField = false
	case influxql.Float, influxql.Integer, influxql.String, influxql.Boolean:
		isTag = false
	}
	if !isTag && !isField {
		isTag, tag = true, "NULL::text"
	}
	if re, ok := rhs.(*influxql.RegexLiteral); ok {
		if op != influxql.EQREGEX && op != influxql.NEQREGEX {
			return "", errorf("unsupported condition: %s", e)
		}
		not := ""
		if op == influxql.NEQREGEX {
			not = "!"
		}
		switch {
		case isTag:
			return "(coalesce(" + tag + ", '') " + not + "~ " + args.add(re.Val.String()) + ")", nil
		case f.typ == typeString:
			return "(" + f.sql + " " + not + "~ " + args.add(re.Val.String()) + ")", nil
		}
		return "false", nil
	}
	if op == influxql.EQREGEX || op == influxql.NEQREGEX {
		return "", errorf("unsupported condition: %s", e)
	}
	if isTag {
		s, ok := literalString(rhs)
		if !ok {
			return "false", nil // a tag is never a number
		}
		switch {
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
	switch v := rhs.(type) {
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
	if !f.typ.numeric() {
		return "false", nil
	}
	r, err := numeric(t, rhs, args)
	if err != nil {
		return "", errorf("unsupported condition: %s", e)
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
