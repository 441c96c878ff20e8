package parse

import (
	"fmt"
	"math"
)

// Precision is the unit of line-protocol timestamps.
type Precision uint8

// The precisions of InfluxDB v1 and v2.
const (
	Nanosecond Precision = iota
	Microsecond
	Millisecond
	Second
	Minute
	Hour
)

// nanos holds the length of one unit of each Precision in nanoseconds.
var nanos = [...]int64{
	Nanosecond:  1,
	Microsecond: 1e3,
	Millisecond: 1e6,
	Second:      1e9,
	Minute:      60e9,
	Hour:        3600e9,
}

// ParsePrecision accepts "ns", "n", "us", "u", "µs", "ms", "s", "m" and "h"
// (the InfluxDB v1 and v2 spellings; "μs" with a Greek mu is accepted too).
// An empty string is an error: a caller with a default applies it itself.
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "ns", "n":
		return Nanosecond, nil
	case "us", "u", "µs", "μs": // micro sign U+00B5, Greek mu U+03BC
		return Microsecond, nil
	case "ms":
		return Millisecond, nil
	case "s":
		return Second, nil
	case "m":
		return Minute, nil
	case "h":
		return Hour, nil
	}
	return 0, fmt.Errorf("unknown precision %q: want ns, us, ms, s, m or h", s)
}

// String returns "ns", "us", "ms", "s", "m" or "h", which ParsePrecision
// accepts.
func (p Precision) String() string {
	switch p {
	case Nanosecond:
		return "ns"
	case Microsecond:
		return "us"
	case Millisecond:
		return "ms"
	case Second:
		return "s"
	case Minute:
		return "m"
	case Hour:
		return "h"
	}
	return fmt.Sprintf("Precision(%d)", uint8(p))
}

// valid reports whether p is one of the constants.
func (p Precision) valid() bool { return int(p) < len(nanos) }

// toNanos converts a timestamp ts in units of mult nanoseconds to Unix
// nanoseconds. It reports false if the result does not fit in an int64.
func toNanos(ts, mult int64) (int64, bool) {
	if mult == 1 {
		return ts, true
	}
	if ts > math.MaxInt64/mult || ts < math.MinInt64/mult {
		return 0, false
	}
	return ts * mult, true
}
