package schema

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
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

// maxNameTries bounds the names tried for one measurement whose table
// name belongs to another measurement.
const maxNameTries = 8

// candidateName is the k-th name tried for a measurement's table: its
// TableName first, then names made unique by a hash of k and the
// measurement.
func candidateName(measurement string, k int) string {
	if k == 0 {
		return TableName(measurement)
	}
	return hashedName(measurement, strconv.Itoa(k)+"\x00"+measurement)
}

// TableOwner tells, from a table's name and comment, which measurement a
// table pginflux made serves: the measurement its comment names when the
// name is one of that measurement's names, else the name itself (a
// measurement of at most 63 bytes has a table of its own name, and no
// comment of pginflux's; a comment someone else gave it names no
// measurement of that table).
func TableOwner(name, comment string) string {
	switch {
	case name == SeriesTable || name == commitTable || name == MarkerTable,
		strings.HasPrefix(comment, "pginflux partition "), strings.HasPrefix(comment, "pginflux: "):
		// pginflux's own tables and partitions serve no measurement.
		return "\x00pginflux"
	case comment != "":
		for k := range maxNameTries {
			if candidateName(comment, k) == name && (k > 0 || comment != name) {
				return comment
			}
		}
	}
	return name
}

// claimName returns the name of a measurement's table, in tx, taking the
// table's DDL lock: TableName(measurement), unless a table of that name
// serves another measurement (a long name's shortened form that happens
// to equal a short measurement name, or the other way round); then the
// next candidate. exists says the table is there already.
func (c *Catalog) claimName(ctx context.Context, tx pgx.Tx, measurement string) (name string, exists bool, err error) {
	for k := range maxNameTries {
		name = candidateName(measurement, k)
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "pginflux:"+c.schema+"."+name); err != nil {
			return "", false, err
		}
		var comment *string
		ident := pgx.Identifier{c.schema, name}.Sanitize()
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL, obj_description(to_regclass($1), 'pg_class')", ident).Scan(&exists, &comment); err != nil {
			return "", false, err
		}
		owner := TableOwner(name, "")
		if comment != nil {
			owner = TableOwner(name, *comment)
		}
		// pginflux's own tables' names are taken, made yet or not.
		if (!exists && owner == name) || owner == measurement {
			if k > 0 {
				c.log.Warn("the measurement's table name serves another measurement; using another name", "schema", c.schema, "measurement", measurement, "table", name)
			}
			c.mu.Lock()
			if name != TableName(measurement) {
				c.names[measurement] = name
			}
			c.mu.Unlock()
			return name, exists, nil
		}
	}
	return "", false, fmt.Errorf("no free table name for measurement %q after %d tries", measurement, maxNameTries)
}

// nameOf returns the table name of a measurement as last claimed. The
// caller holds c.mu.
func (c *Catalog) nameOf(measurement string) string {
	if n, ok := c.names[measurement]; ok {
		return n
	}
	return TableName(measurement)
}
