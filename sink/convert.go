package sink

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/pginflux/pginflux/parse"
)

// PostgreSQL type OIDs of the column types pginflux can write.
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidFloat4      = 700
	oidFloat8      = 701
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidJSONB       = 3802
)

// colType is a column's type as the catalog reports it.
type colType struct {
	oid    uint32
	typmod int32  // -1 when none
	name   string // format_type(), for messages
}

// maxChars returns the length limit of a varchar(n) or char(n) column, or
// -1.
func (t colType) maxChars() int {
	if (t.oid == oidVarchar || t.oid == oidBPChar) && t.typmod >= 4 {
		return int(t.typmod - 4)
	}
	return -1
}

// writable reports whether pginflux knows how to encode values for t.
func (t colType) writable() bool {
	switch t.oid {
	case oidBool, oidInt8, oidInt2, oidInt4, oidText, oidFloat4, oidFloat8,
		oidBPChar, oidVarchar, oidNumeric, oidJSONB:
		return true
	}
	return false
}

// Why a value did not fit its column: the closed set of reasons in the
// rejected table and in pginflux_sink_rejected_values_total.
const (
	ReasonTypeConflict = "type_conflict" // the value's type cannot become the column's without loss
	ReasonOutOfRange   = "out_of_range"  // a number outside the column type's range or precision
	ReasonTooLong      = "too_long"      // a string longer than a varchar(n) or char(n) column
	ReasonRefused      = "refused"       // PostgreSQL refused the row (a constraint, say)
	ReasonOverflow     = "column_limit"  // the table is at --max-columns
)

// conflict says why a value was not stored.
type conflict struct {
	reason string
	detail string
}

// value is one tag or field value on its way to a column.
type value struct {
	kind parse.Kind // String for tags
	num  uint64
	str  []byte
}

// appendValue appends v as a binary COPY column of type t: the length word
// and the value's send form. When v cannot become a t without loss, it
// appends nothing and says why. The rules (documented in the README):
// integers and unsigned integers go into any numeric column that holds them
// exactly; floats into double precision, numeric, into real when inside
// its range (rounded to the nearest real), and into integer columns when
// they are whole numbers in range; strings into text, varchar(n) and
// char(n) when not too long; booleans into boolean only.
func appendValue(b []byte, t colType, v value) ([]byte, *conflict) {
	switch v.kind {
	case parse.Float:
		return appendFloatAs(b, t, math.Float64frombits(v.num))
	case parse.Int:
		return appendIntAs(b, t, int64(v.num))
	case parse.Uint:
		return appendUintAs(b, t, v.num)
	case parse.Bool:
		if t.oid != oidBool {
			return b, typeConflict(v, t)
		}
		b = appendInt32(b, 1)
		if v.num != 0 {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	default:
		return appendStringAs(b, t, v)
	}
}

func typeConflict(v value, t colType) *conflict {
	return &conflict{reason: ReasonTypeConflict, detail: fmt.Sprintf("a %s value does not fit column type %s", v.kind, t.name)}
}

func outOfRange(text string, t colType) *conflict {
	return &conflict{reason: ReasonOutOfRange, detail: fmt.Sprintf("%s does not fit column type %s exactly", text, t.name)}
}

func appendFloatAs(b []byte, t colType, f float64) ([]byte, *conflict) {
	switch t.oid {
	case oidFloat8:
		b = appendInt32(b, 8)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(f)), nil
	case oidFloat4:
		if math.Abs(f) > math.MaxFloat32 {
			return b, outOfRange(strconv.FormatFloat(f, 'g', -1, 64), t)
		}
		b = appendInt32(b, 4)
		return binary.BigEndian.AppendUint32(b, math.Float32bits(float32(f))), nil
	case oidNumeric:
		return appendNumeric(b, strconv.AppendFloat(nil, f, 'e', -1, 64)), nil
	case oidInt8, oidInt4, oidInt2:
		// Whole floats in range are exact: 2.0 into bigint is 2.
		if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return b, outOfRange(strconv.FormatFloat(f, 'g', -1, 64), t)
		}
		return appendIntAs(b, t, int64(f))
	}
	return b, typeConflict(value{kind: parse.Float}, t)
}

func appendIntAs(b []byte, t colType, i int64) ([]byte, *conflict) {
	switch t.oid {
	case oidInt8:
		b = appendInt32(b, 8)
		return binary.BigEndian.AppendUint64(b, uint64(i)), nil
	case oidInt4:
		if i < math.MinInt32 || i > math.MaxInt32 {
			return b, outOfRange(strconv.FormatInt(i, 10), t)
		}
		b = appendInt32(b, 4)
		return binary.BigEndian.AppendUint32(b, uint32(int32(i))), nil
	case oidInt2:
		if i < math.MinInt16 || i > math.MaxInt16 {
			return b, outOfRange(strconv.FormatInt(i, 10), t)
		}
		b = appendInt32(b, 2)
		return binary.BigEndian.AppendUint16(b, uint16(int16(i))), nil
	case oidNumeric:
		return appendNumeric(b, strconv.AppendInt(nil, i, 10)), nil
	case oidFloat8:
		if f := float64(i); f >= 1<<63 || int64(f) != i {
			return b, outOfRange(strconv.FormatInt(i, 10), t)
		}
		return appendFloatAs(b, t, float64(i))
	case oidFloat4:
		if f := float32(i); f >= 1<<63 || int64(f) != i {
			return b, outOfRange(strconv.FormatInt(i, 10), t)
		}
		return appendFloatAs(b, t, float64(i))
	}
	return b, typeConflict(value{kind: parse.Int}, t)
}

func appendUintAs(b []byte, t colType, u uint64) ([]byte, *conflict) {
	switch t.oid {
	case oidNumeric:
		return appendNumeric(b, strconv.AppendUint(nil, u, 10)), nil
	case oidInt8, oidInt4, oidInt2, oidFloat8, oidFloat4:
		if u > math.MaxInt64 {
			return b, outOfRange(strconv.FormatUint(u, 10), t)
		}
		return appendIntAs(b, t, int64(u))
	}
	return b, typeConflict(value{kind: parse.Uint}, t)
}

func appendStringAs(b []byte, t colType, v value) ([]byte, *conflict) {
	switch t.oid {
	case oidText, oidVarchar, oidBPChar:
		if n := t.maxChars(); n >= 0 && utf8.RuneCount(v.str) > n {
			return b, &conflict{reason: ReasonTooLong, detail: fmt.Sprintf("%d characters do not fit column type %s", utf8.RuneCount(v.str), t.name)}
		}
		b = appendInt32(b, int32(len(v.str)))
		return append(b, v.str...), nil
	}
	return b, typeConflict(v, t)
}

// appendNumeric appends a numeric column holding the decimal number in
// text, which is what strconv writes for an integer or, in 'e' format, for
// a float ("-1.2345e+02"). The binary form is a list of base-10000 digits
// with the weight of the first one and the display scale.
func appendNumeric(b []byte, text []byte) []byte {
	neg := false
	if len(text) > 0 && (text[0] == '-' || text[0] == '+') {
		neg = text[0] == '-'
		text = text[1:]
	}
	// Split into decimal digits and the position of the decimal point
	// relative to the start of those digits.
	var digits []byte
	point := -1
	exp := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c-'0')
		case c == '.':
			point = len(digits)
		case c == 'e' || c == 'E':
			e, _ := strconv.Atoi(string(text[i+1:]))
			exp = e
			i = len(text)
		}
	}
	if point < 0 {
		point = len(digits)
	}
	point += exp
	// Drop leading zeros, keeping the point where it is.
	for len(digits) > 0 && digits[0] == 0 {
		digits = digits[1:]
		point--
	}
	dscale := max(len(digits)-point, 0)
	// Drop trailing zeros of the digit list; dscale keeps the scale.
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		b = appendInt32(b, 8)
		b = appendInt16(b, 0)                // ndigits
		b = appendInt16(b, 0)                // weight
		b = appendInt16(b, 0)                // sign
		return appendInt16(b, int16(dscale)) // dscale
	}
	// Align to groups of four decimal digits around the point.
	lead := ((point % 4) + 4) % 4 // digits of the first group that are before the point
	pad := 0
	if lead != 0 {
		pad = 4 - lead
	}
	weight := (point+pad)/4 - 1 // point+pad is a multiple of 4
	all := make([]byte, 0, pad+len(digits)+3)
	all = append(all, make([]byte, pad)...)
	all = append(all, digits...)
	for len(all)%4 != 0 {
		all = append(all, 0)
	}
	ngroups := len(all) / 4
	b = appendInt32(b, int32(8+2*ngroups))
	b = appendInt16(b, int16(ngroups))
	b = appendInt16(b, int16(weight))
	if neg {
		b = appendInt16(b, 0x4000)
	} else {
		b = appendInt16(b, 0)
	}
	b = appendInt16(b, int16(dscale))
	for g := range ngroups {
		d := all[4*g : 4*g+4]
		b = appendInt16(b, int16(int(d[0])*1000+int(d[1])*100+int(d[2])*10+int(d[3])))
	}
	return b
}
