package sink

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

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
// appends nothing and says why, so that PostgreSQL never rounds a value
// nor refuses a row for one. The rules (documented in docs/tables.md):
//
//   - integers and unsigned integers go into any numeric column that holds
//     them exactly: smallint, integer and bigint in range, double
//     precision and real when the float has that exact value, numeric(p,s)
//     when they have at most p-s digits;
//   - floats into double precision; into numeric as the shortest decimal
//     that reads back as the same float64 (95.9, not
//     95.900000000000005684...), for numeric(p,s) when that decimal has at
//     most s digits after the point and p-s before it; into real when the
//     nearest real prints as that same shortest decimal (95.9 and 0.1 do,
//     1.0000001234 and 1e-50 do not); into integer columns when they are
//     whole numbers in range;
//   - strings into text, varchar(n) and char(n) when not too long;
//   - booleans into boolean only.
func appendValue(b []byte, t schema.Type, v value) ([]byte, *conflict) {
	switch v.kind {
	case parse.Float:
		return appendFloatAs(b, t, math.Float64frombits(v.num))
	case parse.Int:
		return appendIntAs(b, t, int64(v.num))
	case parse.Uint:
		return appendUintAs(b, t, v.num)
	case parse.Bool:
		if t.OID != schema.OIDBool {
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

func typeConflict(v value, t schema.Type) *conflict {
	return &conflict{reason: ReasonTypeConflict, detail: fmt.Sprintf("a %s value does not fit column type %s", v.kind, t.Name)}
}

func outOfRange(text string, t schema.Type) *conflict {
	return &conflict{reason: ReasonOutOfRange, detail: fmt.Sprintf("%s does not fit column type %s exactly", text, t.Name)}
}

func appendFloatAs(b []byte, t schema.Type, f float64) ([]byte, *conflict) {
	switch t.OID {
	case schema.OIDFloat8:
		b = appendInt32(b, 8)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(f)), nil
	case schema.OIDFloat4:
		if !realHolds(f) {
			return b, outOfRange(strconv.FormatFloat(f, 'g', -1, 64), t)
		}
		b = appendInt32(b, 4)
		return binary.BigEndian.AppendUint32(b, math.Float32bits(float32(f))), nil
	case schema.OIDNumeric:
		return appendNumericAs(b, t, strconv.AppendFloat(nil, f, 'e', -1, 64))
	case schema.OIDInt8, schema.OIDInt4, schema.OIDInt2:
		// Whole floats in range are exact: 2.0 into bigint is 2.
		if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return b, outOfRange(strconv.FormatFloat(f, 'g', -1, 64), t)
		}
		return appendIntAs(b, t, int64(f))
	}
	return b, typeConflict(value{kind: parse.Float}, t)
}

func appendIntAs(b []byte, t schema.Type, i int64) ([]byte, *conflict) {
	switch t.OID {
	case schema.OIDInt8:
		b = appendInt32(b, 8)
		return binary.BigEndian.AppendUint64(b, uint64(i)), nil
	case schema.OIDInt4:
		if i < math.MinInt32 || i > math.MaxInt32 {
			return b, outOfRange(strconv.FormatInt(i, 10), t)
		}
		b = appendInt32(b, 4)
		return binary.BigEndian.AppendUint32(b, uint32(int32(i))), nil
	case schema.OIDInt2:
		if i < math.MinInt16 || i > math.MaxInt16 {
			return b, outOfRange(strconv.FormatInt(i, 10), t)
		}
		b = appendInt32(b, 2)
		return binary.BigEndian.AppendUint16(b, uint16(int16(i))), nil
	case schema.OIDNumeric:
		return appendNumericAs(b, t, strconv.AppendInt(nil, i, 10))
	case schema.OIDFloat8:
		if f := float64(i); f >= 1<<63 || int64(f) != i {
			return b, outOfRange(strconv.FormatInt(i, 10), t)
		}
		return appendFloatAs(b, t, float64(i))
	case schema.OIDFloat4:
		if f := float32(i); f >= 1<<63 || int64(f) != i {
			return b, outOfRange(strconv.FormatInt(i, 10), t)
		}
		return appendFloatAs(b, t, float64(i))
	}
	return b, typeConflict(value{kind: parse.Int}, t)
}

func appendUintAs(b []byte, t schema.Type, u uint64) ([]byte, *conflict) {
	switch t.OID {
	case schema.OIDNumeric:
		return appendNumericAs(b, t, strconv.AppendUint(nil, u, 10))
	case schema.OIDFloat8:
		// 2^63 and other large powers of two are floats exactly.
		if f := float64(u); f >= 1<<64 || uint64(f) != u {
			return b, outOfRange(strconv.FormatUint(u, 10), t)
		}
		return appendFloatAs(b, t, float64(u))
	case schema.OIDFloat4:
		if f := float32(u); f >= 1<<64 || uint64(f) != u {
			return b, outOfRange(strconv.FormatUint(u, 10), t)
		}
		return appendFloatAs(b, t, float64(u))
	case schema.OIDInt8, schema.OIDInt4, schema.OIDInt2:
		if u > math.MaxInt64 {
			return b, outOfRange(strconv.FormatUint(u, 10), t)
		}
		return appendIntAs(b, t, int64(u))
	}
	return b, typeConflict(value{kind: parse.Uint}, t)
}

func appendStringAs(b []byte, t schema.Type, v value) ([]byte, *conflict) {
	switch t.OID {
	case schema.OIDText, schema.OIDVarchar, schema.OIDBPChar:
		if n := t.MaxChars(); n >= 0 && utf8.RuneCount(v.str) > n {
			return b, &conflict{reason: ReasonTooLong, detail: fmt.Sprintf("%d characters do not fit column type %s", utf8.RuneCount(v.str), t.Name)}
		}
		b = appendInt32(b, int32(len(v.str)))
		return append(b, v.str...), nil
	}
	return b, typeConflict(v, t)
}

// realHolds reports whether a real column holds f without loss: the
// nearest float32 prints, in the fewest digits that read back as it, as a
// decimal that reads back as f itself. A real shows those digits (with
// PostgreSQL's default extra_float_digits), so a reader gets the number
// that was sent.
func realHolds(f float64) bool {
	f32 := float32(f)
	if math.IsInf(float64(f32), 0) {
		return false
	}
	if float64(f32) == f {
		return true
	}
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], float64(f32), 'e', -1, 32)
	back, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(s), len(s)), 64)
	return err == nil && back == f
}

// decimal is a decimal number: 0.d1d2...dn × 10^point, with no leading
// or trailing zero digit (no digit at all for zero).
type decimal struct {
	neg    bool
	digits []byte // 0 to 9 each
	point  int
	dscale int // digits after the decimal point in the text, for numeric's display scale
}

// parseDecimal reads what strconv writes for an integer or, in 'e' format,
// for a float ("-1.2345e+02").
func parseDecimal(text []byte) decimal {
	var d decimal
	if len(text) > 0 && (text[0] == '-' || text[0] == '+') {
		d.neg = text[0] == '-'
		text = text[1:]
	}
	// Split into decimal digits and the position of the decimal point
	// relative to the start of those digits.
	point := -1
	exp := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= '0' && c <= '9':
			d.digits = append(d.digits, c-'0')
		case c == '.':
			point = len(d.digits)
		case c == 'e' || c == 'E':
			e, _ := strconv.Atoi(string(text[i+1:]))
			exp = e
			i = len(text)
		}
	}
	if point < 0 {
		point = len(d.digits)
	}
	point += exp
	// Drop leading zeros, keeping the point where it is.
	for len(d.digits) > 0 && d.digits[0] == 0 {
		d.digits = d.digits[1:]
		point--
	}
	d.dscale = max(len(d.digits)-point, 0)
	// Drop trailing zeros of the digit list; dscale keeps the scale.
	for len(d.digits) > 0 && d.digits[len(d.digits)-1] == 0 {
		d.digits = d.digits[:len(d.digits)-1]
	}
	d.point = point
	return d
}

// fits reports whether numeric(precision, scale) holds d exactly:
// PostgreSQL would round away any digit below 10^-scale, and refuses a
// value of more than precision-scale digits before the point.
func (d decimal) fits(precision, scale int) bool {
	if len(d.digits) == 0 {
		return true
	}
	lowest := d.point - len(d.digits) // exponent of the last digit
	return lowest >= -scale && d.point <= precision-scale
}

// appendNumericAs appends the decimal number in text (see parseDecimal)
// as a column of numeric type t, or says why t cannot hold it exactly.
func appendNumericAs(b []byte, t schema.Type, text []byte) ([]byte, *conflict) {
	d := parseDecimal(text)
	if p, s, ok := t.NumericTypmod(); ok && !d.fits(p, s) {
		return b, outOfRange(string(text), t)
	}
	return appendDecimal(b, d), nil
}

// appendDecimal appends d in numeric's binary form: a list of base-10000
// digits with the weight of the first one and the display scale.
func appendDecimal(b []byte, d decimal) []byte {
	digits, point, dscale := d.digits, d.point, d.dscale
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
	if d.neg {
		b = appendInt16(b, 0x4000)
	} else {
		b = appendInt16(b, 0)
	}
	b = appendInt16(b, int16(dscale))
	for g := range ngroups {
		dg := all[4*g : 4*g+4]
		b = appendInt16(b, int16(int(dg[0])*1000+int(dg[1])*100+int(dg[2])*10+int(dg[3])))
	}
	return b
}

// appendTimeAs appends a time column of type t (timestamptz or timestamp,
// perhaps with a precision): Unix nanoseconds floored to what the column
// keeps. PostgreSQL would round a timestamp(p) to p digits, moving a
// point of 12:00:00.7 to 12:00:01 in timestamp(0); flooring first keeps
// the rule that times are floored to the column's resolution, as
// appendTimestamp floors nanoseconds to microseconds.
func appendTimeAs(b []byte, t schema.Type, unixNanos int64) []byte {
	unit := t.TimeUnit()
	if unit == 1 {
		return appendTimestamp(b, unixNanos)
	}
	b = appendInt32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(floorUnit(floorMicros(unixNanos), unit)-pgEpochMicros))
}
