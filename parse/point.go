package parse

import (
	"fmt"
	"math"
)

// Kind is the line-protocol type of a field value.
type Kind uint8

// The kinds of field values. The zero Kind is not a valid kind.
const (
	Float  Kind = iota + 1 // 1.5, -2, 1e9
	Int                    // 42i
	Uint                   // 42u
	String                 // "text"
	Bool                   // t, true, F, false, ...
)

// String returns "float", "integer", "unsigned", "string" or "boolean", the
// names InfluxDB gives the kinds.
func (k Kind) String() string {
	switch k {
	case Float:
		return "float"
	case Int:
		return "integer"
	case Uint:
		return "unsigned"
	case String:
		return "string"
	case Bool:
		return "boolean"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Tag is one tag of a point. Key and Value are unescaped, valid UTF-8, not
// empty and free of NUL bytes. They belong to the Parser that returned the
// Point (see Point).
type Tag struct{ Key, Value []byte }

// Field is one field of a point.
//
// Num holds the value bits for numeric and boolean kinds: math.Float64bits
// for Float, uint64(int64) for Int, the value for Uint, 0 or 1 for Bool.
// Str holds the unescaped string for String (valid UTF-8, no NUL bytes,
// possibly empty); for Float, the value as written in the line when it is
// a plain decimal — digits (no leading zero but a lone one), a point,
// digits, no exponent, at most 15 significant digits: text that is
// exactly the float64 it stands for, which a writer can copy instead of
// formatting the number again — and nil otherwise, or when the parser did
// not keep it; nil for other kinds. Key is
// unescaped, valid UTF-8, not empty and free of NUL bytes. Key and Str
// belong to the Parser that returned the Point (see Point).
type Field struct {
	Key  []byte
	Kind Kind
	Num  uint64
	Str  []byte
}

// Float returns the value of a Float field; it is meaningless for other kinds.
// It is never NaN or infinite: the Parser rejects such lines.
func (f *Field) Float() float64 { return math.Float64frombits(f.Num) }

// Int returns the value of an Int field; it is meaningless for other kinds.
func (f *Field) Int() int64 { return int64(f.Num) }

// Uint returns the value of a Uint field; it is meaningless for other kinds.
func (f *Field) Uint() uint64 { return f.Num }

// Bool returns the value of a Bool field; it is meaningless for other kinds.
func (f *Field) Bool() bool { return f.Num != 0 }

// Point is one parsed line.
//
// The Point, its Tags and Fields and every byte slice they hold belong to
// the Parser that returned it and are valid only until the next call to
// Parser.Next or Parser.Reset: copy what you keep. The byte slices may
// alias the buffer given to Reset; none of them has spare capacity, so
// appending to one copies it rather than overwriting what follows.
//
// When a line repeats a field key (`v=1i,v="s"`), only the last value is
// kept, at the place of its last occurrence, as InfluxDB keeps it: no
// field of a Point is overwritten by a later one, so a consumer may choose
// a column type from any of them.
type Point struct {
	Measurement []byte
	Tags        []Tag   // in line order; not deduplicated, not sorted
	Fields      []Field // in line order; at least one; keys unique (see below)
	Time        int64   // Unix nanoseconds
	Line        int64   // 1-based line number within the buffer: where the line starts
}
