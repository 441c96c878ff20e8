// Package plural writes counts of things for messages: "1 row", "2 rows".
package plural

import "strconv"

// Count returns n and noun, with an s added to noun unless n is 1:
// Count(1, "row") is "1 row", Count(0, "row") "0 rows". For nouns whose
// plural is not noun+"s", use Of.
func Count[T ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64](n T, noun string) string {
	return Of(n, noun, noun+"s")
}

// Of returns n and singular when n is 1, else n and plural:
// Of(2, "series", "series") is "2 series".
func Of[T ~int | ~int32 | ~int64 | ~uint | ~uint32 | ~uint64](n T, singular, plural string) string {
	word := plural
	if n == 1 {
		word = singular
	}
	if n < 0 {
		return strconv.FormatInt(int64(n), 10) + " " + word
	}
	return strconv.FormatUint(uint64(n), 10) + " " + word
}
