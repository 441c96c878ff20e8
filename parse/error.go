package parse

import (
	"errors"
	"fmt"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Reason classifies why a line was rejected. The set is closed: Reasons
// lists all of them, so a Reason can be a metric label.
type Reason uint8

// The reasons for rejecting a line. They come from error types, errors.Is
// and the bytes of the line, never from error messages.
const (
	// ReasonSyntax is a malformed line: anything the decoder rejects that
	// is not one of the reasons below. This includes a line without
	// fields, and numbers outside the line-protocol grammar that Go's
	// strconv (and so line-protocol/v2) would read: the Parser takes a
	// float only as an optional '-', digits with at most one '.', and an
	// optional exponent ([eE][+-]?digits), so "0x1p4", "1_000", "-Inf" and
	// "-NaN" are syntax errors, as in InfluxDB; the decoder itself rejects
	// "NaN", "inf" and "+Inf" as values of unknown type. Integers and
	// unsigned integers are decimal digits, with a '-' for integers.
	ReasonSyntax Reason = iota + 1
	// ReasonOutOfRange is an integer, unsigned or float value, or a
	// timestamp, that does not fit in 64 bits; a timestamp must also fit in
	// int64 Unix nanoseconds at the Parser's Precision. The error satisfies
	// errors.Is(err, lineprotocol.ErrValueOutOfRange).
	ReasonOutOfRange
	// ReasonNulByte is a line with a NUL byte (0x00), which PostgreSQL text
	// cannot hold. The decoder accepts NUL bytes in string field values
	// only, and the Parser rejects those. Anywhere else the decoder reports
	// a syntax error or the Parser fails to read a value, and the reason is
	// ReasonNulByte if the line of the error (or the value) holds a NUL.
	ReasonNulByte
	// ReasonInvalidUTF8 is a line the decoder rejected, or a value the
	// Parser could not read, whose line (or value) is not valid UTF-8 and
	// holds no NUL byte. The decoder checks the UTF-8 of every name, key,
	// tag value and string value; comment lines are not checked.
	ReasonInvalidUTF8
)

// Reasons lists every Reason, for pre-creating metric label values.
var Reasons = []Reason{ReasonSyntax, ReasonOutOfRange, ReasonNulByte, ReasonInvalidUTF8}

// String returns the reason in snake_case: "syntax", "out_of_range",
// "nul_byte" or "invalid_utf8".
func (r Reason) String() string {
	switch r {
	case ReasonSyntax:
		return "syntax"
	case ReasonOutOfRange:
		return "out_of_range"
	case ReasonNulByte:
		return "nul_byte"
	case ReasonInvalidUTF8:
		return "invalid_utf8"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// LineError describes one rejected line. The line was skipped; parsing
// continues with the next line. A LineError holds no reference to the
// parsed buffer, so it may be kept.
type LineError struct {
	// Line is the 1-based line number within the buffer where the rejected
	// line starts. A logical line spans several when a string value holds a
	// newline; Parser.Line(Line) returns all of it, and a DecodeError in
	// Err tells the line (of the buffer) where the decoder found the
	// problem.
	Line   int64
	Reason Reason
	// Err is the underlying error: a *lineprotocol.DecodeError for what the
	// decoder rejects, or an error of this package for the checks the
	// Parser adds (NUL bytes, value ranges, non-finite floats, timestamps).
	Err error
}

// Error returns e.g. `line 3: syntax: column 12: expected tag value after
// tag key "host", but none found`.
func (e *LineError) Error() string {
	var de *lineprotocol.DecodeError
	if errors.As(e.Err, &de) && de.Line == e.Line {
		return fmt.Sprintf("line %d: %s: column %d: %v", e.Line, e.Reason, de.Column, de.Err)
	}
	return fmt.Sprintf("line %d: %s: %v", e.Line, e.Reason, e.Err)
}

// Unwrap returns e.Err.
func (e *LineError) Unwrap() error { return e.Err }

// errNoFields rejects an entry without fields should the decoder ever
// return one without an error (it reports a syntax error itself).
var errNoFields = errors.New("line has no fields")

// errNoMeasurement rejects an entry without a measurement should the
// decoder ever return one without an error.
var errNoMeasurement = errors.New("line has no measurement")
