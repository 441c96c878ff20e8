package parse

import (
	"math"
	"strconv"
)

// The number parsers of the fast path. Each returns what strconv returns
// for the same bytes where strconv succeeds, and false for anything else
// (the line then goes to the decoder path, which reports it). They do not
// allocate: strconv is called on the bytes, and only fails (and allocates
// its error) for lines the decoder path will reject anyway.

// digits parses 1 to 19 decimal digits, which always fit in a uint64.
func digits(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		u = u*10 + uint64(d)
	}
	return u, true
}

// parseInt is strconv.ParseInt(b, 10, 64).
func parseInt(b []byte) (int64, bool) {
	d := b
	neg := len(d) > 0 && d[0] == '-'
	if len(d) > 0 && (neg || d[0] == '+') { // a '+' never reaches here from a line
		d = d[1:]
	}
	if len(d) > 19 { // leading zeros
		x, err := strconv.ParseInt(unsafeString(b), 10, 64)
		return x, err == nil
	}
	u, ok := digits(d)
	switch {
	case !ok:
		return 0, false
	case neg && u <= 1<<63:
		return -int64(u), true // -(1<<63) wraps to itself, math.MinInt64
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	}
	return 0, false
}

// parseUint is strconv.ParseUint(b, 10, 64).
func parseUint(b []byte) (uint64, bool) {
	if len(b) > 19 {
		x, err := strconv.ParseUint(unsafeString(b), 10, 64)
		return x, err == nil
	}
	return digits(b)
}

// pow10 holds the powers of ten that a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat is a float field value as the Parser takes it: b matches
// -?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? (the grammar floatSyntax
// checks, less what strconv refuses), strconv.ParseFloat(b, 64) succeeds,
// and the result is finite.
//
// A value of at most 19 significant digits is m×10^e for an integer m. When
// m < 2^53 and |e| ≤ 22, both m and 10^|e| are float64s exactly, and one
// multiplication or division rounds their exact product or quotient
// correctly (Clinger's fast path, which strconv takes first too): the
// result is strconv's. Other values go to strconv.
func parseFloat(b []byte) (float64, bool) {
	x, ok, _ := parseFloatPlain(b)
	return x, ok
}

// parseFloatPlain is parseFloat, and reports too whether b is a plain
// decimal: digits (no leading zero but a lone one), a point, digits, no
// exponent, at most 15 significant digits — text that is exactly the
// float64 it stands for, and valid JSON. It reads the digits of the
// mantissa into an integer and the exponent, and leaves the rest to
// exactFloat, or to strconv (slowFloat) where that cannot.
func parseFloatPlain(b []byte) (x float64, ok, plain bool) {
	i := 0
	neg := b[0] == '-'
	if neg {
		i++
	}
	var m uint64
	nd, frac := 0, 0 // significant digits in m; digits after the point
	anyDigit, dot := false, false
	intStart := i
	for ; i < len(b); i++ {
		c := b[i]
		if d := c - '0'; d <= 9 {
			anyDigit = true
			if dot {
				frac++
			}
			if m == 0 && d == 0 {
				continue // a leading zero
			}
			if nd == 19 {
				x, ok := slowFloat(b)
				return x, ok, false
			}
			m = m*10 + uint64(d)
			nd++
			continue
		}
		if c == '.' && !dot {
			dot = true
			// A plain decimal has one integer digit at least, and
			// none but a lone 0 to start with.
			intDigits := i - intStart
			plain = intDigits > 0 && (b[intStart] != '0' || intDigits == 1)
			continue
		}
		break
	}
	if !anyDigit {
		return 0, false, false
	}
	plain = plain && frac > 0 && i == len(b) && nd <= 15
	exp := 0
	if i < len(b) {
		if b[i] != 'e' && b[i] != 'E' {
			return 0, false, false
		}
		i++
		eneg := i < len(b) && b[i] == '-'
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) {
			return 0, false, false
		}
		for ; i < len(b); i++ {
			d := b[i] - '0'
			if d > 9 {
				return 0, false, false
			}
			if exp > 1000 {
				x, ok := slowFloat(b)
				return x, ok, false
			}
			exp = exp*10 + int(d)
		}
		if eneg {
			exp = -exp
		}
	}
	x, ok = exactFloat(m, exp-frac)
	if !ok {
		x, ok := slowFloat(b)
		return x, ok, plain
	}
	if neg {
		x = -x
	}
	return x, true, plain
}

// exactFloat returns m×10^e, correctly rounded, when m < 2^53 and |e| ≤ 22:
// m and 10^|e| are then float64s exactly, and one multiplication or
// division rounds their exact product or quotient (Clinger's fast path).
// It returns false for other m and e.
func exactFloat(m uint64, e int) (float64, bool) {
	if m>>53 != 0 || e < -22 || e > 22 {
		return 0, false
	}
	x := float64(m)
	if e >= 0 {
		return x * pow10[e], true
	}
	return x / pow10[-e], true
}

// slowFloat is parseFloat for the values outside Clinger's fast path. Its
// caller has checked the grammar up to where it gave up; strconv checks the
// rest, but takes more than the grammar (hexadecimal, underscores, Inf), so
// floatSyntax is checked too.
func slowFloat(b []byte) (float64, bool) {
	if !floatSyntax(b) {
		return 0, false
	}
	x, err := strconv.ParseFloat(unsafeString(b), 64)
	if err != nil || math.IsInf(x, 0) {
		return 0, false
	}
	return x, true
}
