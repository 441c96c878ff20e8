package parse

import (
	"fmt"
	"math"
)

// Precision is the unit of line-protocol timestamps.
type Precision uint8

// The precisions of InfluxDB v1 and v2, and InfluxDB 3's Auto.
const (
	Nanosecond Precision = iota
	Microsecond
	Millisecond
	Second
	Minute
	Hour
	// Auto guesses the unit of each timestamp from its magnitude, as
	// InfluxDB 3's precision=auto does: below 5e9 seconds, below 5e12
	// milliseconds, below 5e15 microseconds, else nanoseconds (see
	// autoNanos). ParsePrecision does not return it: v1 and v2 have no
	// such precision.
	Auto
)

// nanos holds the length of one unit of each Precision in nanoseconds;
// 0 for Auto, whose unit depends on each timestamp.
var nanos = [...]int64{
	Nanosecond:  1,
	Microsecond: 1e3,
	Millisecond: 1e6,
	Second:      1e9,
	Minute:      60e9,
	Hour:        3600e9,
	Auto:        0,
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
// accepts, or "auto".
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
	case Auto:
		return "auto"
	}
	return fmt.Sprintf("Precision(%d)", uint8(p))
}

// valid reports whether p is one of the constants.
func (p Precision) valid() bool { return int(p) < len(nanos) }

// toNanos converts a timestamp ts in units of mult nanoseconds (0: Auto)
// to Unix nanoseconds. It reports false if the result does not fit in an
// int64.
func toNanos(ts, mult int64) (int64, bool) {
	if mult == 0 {
		return autoNanos(ts), true
	}
	if mult == 1 {
		return ts, true
	}
	if ts > math.MaxInt64/mult || ts < math.MinInt64/mult {
		return 0, false
	}
	return ts * mult, true
}

// autoNanos converts ts at precision Auto: InfluxDB 3 Core's rule, on the
// magnitude of the timestamp, |ts| / 1e9 (integer division) below 5 is
// seconds, below 5,000 milliseconds, below 5,000,000 microseconds, and
// anything larger nanoseconds. Every product stays below 5e18, within an
// int64.
func autoNanos(ts int64) int64 {
	a := ts
	if a < 0 {
		a = -a // math.MinInt64 stays negative: nanoseconds, below
	}
	switch {
	case a < 0:
		return ts
	case a < 5e9:
		return ts * 1e9
	case a < 5e12:
		return ts * 1e6
	case a < 5e15:
		return ts * 1e3
	}
	return ts
}
