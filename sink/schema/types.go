package schema

import "github.com/pginflux/pginflux/parse"

// PostgreSQL type OIDs of the column types pginflux can write.
const (
	OIDBool        = 16
	OIDInt8        = 20
	OIDInt2        = 21
	OIDInt4        = 23
	OIDText        = 25
	OIDFloat4      = 700
	OIDFloat8      = 701
	OIDBPChar      = 1042
	OIDVarchar     = 1043
	OIDTimestamp   = 1114
	OIDTimestamptz = 1184
	OIDNumeric     = 1700
	OIDJSONB       = 3802
)

// Type is a column's type as the catalog reports it.
type Type struct {
	OID    uint32 // the type's OID; a domain's is its base type's
	Typmod int32  // -1 when none
	Name   string // format_type(), for messages
}

// NumericTypmod returns the precision and scale of a numeric(p,s)
// column; ok is false for numeric without them. The scale is an 11-bit
// signed number (PostgreSQL 15 allows a negative scale, and one above the
// precision).
func (t Type) NumericTypmod() (precision, scale int, ok bool) {
	if t.OID != OIDNumeric || t.Typmod < 4 {
		return 0, 0, false
	}
	tm := t.Typmod - 4
	return int(tm>>16) & 0xffff, int((tm&0x7ff)^0x400) - 0x400, true
}

// TimePrecision returns the fractional digits of seconds a timestamp(p)
// or timestamptz(p) column keeps: p, or 6 without one.
func (t Type) TimePrecision() int {
	if (t.OID == OIDTimestamp || t.OID == OIDTimestamptz) && t.Typmod >= 0 && t.Typmod < 6 {
		return int(t.Typmod)
	}
	return 6
}

// TimeUnit returns the microseconds a timestamp column of t keeps as one
// unit: 1, or 10^(6-p) for timestamp(p).
func (t Type) TimeUnit() int64 {
	unit := int64(1)
	for range 6 - t.TimePrecision() {
		unit *= 10
	}
	return unit
}

// MaxChars returns the length limit of a varchar(n) or char(n) column, or
// -1.
func (t Type) MaxChars() int {
	if (t.OID == OIDVarchar || t.OID == OIDBPChar) && t.Typmod >= 4 {
		return int(t.Typmod - 4)
	}
	return -1
}

// Writable reports whether the sink knows how to encode values for t: a
// column of another type serves no key.
func (t Type) Writable() bool {
	switch t.OID {
	case OIDBool, OIDInt8, OIDInt2, OIDInt4, OIDText, OIDFloat4, OIDFloat8,
		OIDBPChar, OIDVarchar, OIDNumeric, OIDJSONB:
		return true
	}
	return false
}

// ColumnType returns the type pginflux gives a new column for a key,
// from the values the batch holds for it. A tag is text. A field is typed
// by the line-protocol type of most of its values (on a tie, of the first
// one), numbers counting together: double precision when any of them is a
// float, numeric when any is unsigned (bigint with uintType "bigint" and
// no signed ones), bigint otherwise; text for strings, boolean for
// booleans. Values of another type are then conflicts.
func ColumnType(k BatchKey, uintType string) string {
	if k.Tag {
		return "text"
	}
	c := k.Counts
	numbers := c[parse.Float] + c[parse.Int] + c[parse.Uint]
	family := map[parse.Kind]uint32{parse.Float: numbers, parse.Int: numbers, parse.Uint: numbers,
		parse.String: c[parse.String], parse.Bool: c[parse.Bool]}
	win := k.First
	for _, kind := range []parse.Kind{parse.Float, parse.String, parse.Bool} {
		if family[kind] > family[win] {
			win = kind
		}
	}
	switch win {
	case parse.String:
		return "text"
	case parse.Bool:
		return "boolean"
	}
	switch {
	case c[parse.Float] > 0:
		return "double precision"
	case c[parse.Uint] > 0 && (uintType != "bigint" || c[parse.Int] > 0):
		return "numeric"
	default:
		return "bigint"
	}
}
