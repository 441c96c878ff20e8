package sink

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// maxIdentifier is PostgreSQL's limit on the length of a name, in bytes
// (NAMEDATALEN - 1). PostgreSQL cuts longer names silently, which would
// make two long measurement names that share their first 63 bytes land in
// one table.
const maxIdentifier = 63

// hashLen is how many hex digits of SHA-256 a shortened name carries.
const hashLen = 12

// TableName returns the name of the table that holds a measurement. A name
// of at most 63 bytes is used as it is (case, spaces, quotes and all: it is
// always quoted). A longer one becomes its first bytes, cut at a character
// boundary to at most 50 bytes, then "_" and the first 12 hex digits of the
// SHA-256 of the whole name: deterministic, at most 63 bytes, and distinct
// for distinct names unless 48 bits of SHA-256 collide. The full name is kept
// as the table's comment.
func TableName(measurement string) string {
	if len(measurement) <= maxIdentifier {
		return measurement
	}
	return hashedName(measurement, measurement)
}

// hashedName is the short form of a name: the start of prefix, cut at a
// character boundary to at most 50 bytes, "_", and 12 hex digits of the
// SHA-256 of whole.
func hashedName(prefix, whole string) string {
	sum := sha256.Sum256([]byte(whole))
	cut := min(len(prefix), maxIdentifier-1-hashLen)
	for cut > 0 && cut < len(prefix) && !utf8.RuneStart(prefix[cut]) {
		cut--
	}
	return prefix[:cut] + "_" + hex.EncodeToString(sum[:])[:hashLen]
}
