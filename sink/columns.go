package sink

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxAttributes is PostgreSQL's limit of columns a table, dropped columns
// included.
const maxAttributes = 1600

// colKey names a tag or field key.
type colKey struct {
	tag bool
	key string
}

// column is one column of a typed table.
type column struct {
	name  string
	typ   colType
	owner *colKey // the key pginflux made it for; nil for a column made by someone else
}

// typedTable is a snapshot of a table in columns storage. It is never
// changed once built: a writer that needs more columns builds a new one.
type typedTable struct {
	name, ident string
	owned       map[colKey]*column
	byName      map[string]*column
	overflow    *column
	attrs       int // column numbers used, dropped columns included
	// failed holds keys whose column could not be added (a missing
	// privilege, say), with why: their values go to the rejected table
	// until the table is looked at again.
	failed map[colKey]string
	// point says the table has a point key: rows carry a series_id, and
	// the column of that name serves no key.
	point bool
	// timeType is the type of the time column: timestamp(p) keeps less
	// than microseconds.
	timeType colType
}

// systemColumns are the names of every table's system columns: ADD
// COLUMN of one fails (42701) whatever the table.
var systemColumns = map[string]bool{"tableoid": true, "xmin": true, "cmin": true, "xmax": true, "cmax": true, "ctid": true}

// ownerComment is the comment pginflux gives a column it adds, so that
// the key a column serves survives renames of the key's preferred name.
func ownerComment(k colKey) string { return "pginflux " + keyRole(k.tag) + " " + k.key }

func parseOwnerComment(s string) *colKey {
	if k, ok := strings.CutPrefix(s, "pginflux tag "); ok {
		return &colKey{tag: true, key: k}
	}
	if k, ok := strings.CutPrefix(s, "pginflux field "); ok {
		return &colKey{key: k}
	}
	return nil
}

// columnsFor maps each key of a batch to its column, or nil when it has
// none yet. A column pginflux made serves the key it was made for. A column
// someone else made serves the key of its name, whether tag or field; when
// a batch has both a tag and a field of that name, the tag gets it.
func (t *typedTable) columnsFor(keys []batchKey) []*column {
	cols := make([]*column, len(keys))
	claimed := make(map[*column]bool)
	for _, tags := range []bool{true, false} {
		for i, k := range keys {
			if k.tag != tags {
				continue
			}
			if c := t.owned[colKey{k.tag, k.name}]; c != nil {
				cols[i] = c
				continue
			}
			c := t.byName[k.name]
			if c == nil || c.owner != nil || c == t.overflow || k.name == "time" || (t.point && k.name == seriesColumn) || claimed[c] || !c.typ.writable() {
				continue
			}
			claimed[c] = true
			cols[i] = c
		}
	}
	return cols
}

// needsDDL reports whether some key has no column and one can still be
// added for it (below --max-columns), or the overflow column is missing.
func (t *typedTable) needsDDL(keys []batchKey, cols []*column, maxColumns int) bool {
	for i, c := range cols {
		if c == nil {
			if _, failed := t.failed[colKey{keys[i].tag, keys[i].name}]; failed {
				continue
			}
			return t.attrs < maxColumns || (t.overflow == nil && t.attrs < maxAttributes)
		}
	}
	return false
}

// columnName chooses the name of a new column for k: the key itself; or,
// when that is "time", the overflow column or taken by another key, the key
// with "_tag" or "_field" appended; names over 63 bytes shortened as table
// names are (see TableName); and as a last resort a name made unique by a
// hash of the role and key.
func (t *typedTable) columnName(k colKey) string {
	for _, cand := range []string{k.key, k.key + "_" + keyRole(k.tag)} {
		n := TableName(cand)
		if n == "time" || n == seriesColumn || n == overflowColumn || systemColumns[n] {
			continue
		}
		if _, taken := t.byName[n]; !taken {
			return n
		}
	}
	return hashedName(k.key, keyRole(k.tag)+"\x00"+k.key)
}

// readTyped reads the columns of a table in columns storage.
func readTyped(ctx context.Context, q pgx.Tx, name, ident string) (*typedTable, error) {
	// A column of a domain over a base type, without constraints, is
	// written as its base type (a domain's CHECK could refuse whole rows:
	// such a column is left alone).
	rows, err := q.Query(ctx, `SELECT a.attname,
			CASE WHEN d.oid IS NULL THEN a.atttypid ELSE d.typbasetype END,
			CASE WHEN d.oid IS NULL THEN a.atttypmod ELSE d.typtypmod END,
			format_type(a.atttypid, a.atttypmod), coalesce(col_description(a.attrelid, a.attnum), ''), a.attisdropped
		FROM pg_attribute a
		LEFT JOIN pg_type d ON d.oid = a.atttypid AND d.typtype = 'd'
			AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE contypid = d.oid)
			AND (SELECT b.typtype FROM pg_type b WHERE b.oid = d.typbasetype) <> 'd'
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 ORDER BY a.attnum`, ident)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", ident, err)
	}
	t := &typedTable{name: name, ident: ident, owned: make(map[colKey]*column), byName: make(map[string]*column)}
	var timeCol *column
	for rows.Next() {
		var c column
		var comment string
		var dropped bool
		if err := rows.Scan(&c.name, &c.typ.oid, &c.typ.typmod, &c.typ.name, &comment, &dropped); err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", ident, err)
		}
		t.attrs++
		if dropped {
			continue
		}
		c.owner = parseOwnerComment(comment)
		cp := &c
		t.byName[c.name] = cp
		switch {
		case c.name == "time":
			timeCol = cp
		case c.name == overflowColumn:
			t.overflow = cp
		case c.owner != nil:
			t.owned[*c.owner] = cp
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", ident, err)
	}
	switch {
	case timeCol == nil:
		return nil, fmt.Errorf("table %s has no column \"time\": %w", ident, errTableMismatch)
	case timeCol.typ.oid != oidTimestamptz && timeCol.typ.oid != oidTimestamp:
		return nil, fmt.Errorf("table %s: column \"time\" is %s, not timestamp with time zone: %w", ident, timeCol.typ.name, errTableMismatch)
	case t.overflow != nil && t.overflow.typ.oid != oidJSONB:
		return nil, fmt.Errorf("table %s: column %q is %s, not jsonb: %w", ident, overflowColumn, t.overflow.typ.name, errTableMismatch)
	}
	t.timeType = timeCol.typ
	if t.point, err = hasPointKey(ctx, q, ident); err != nil {
		return nil, err
	}
	return t, nil
}

// ensureTyped returns the table of a measurement with a column for every
// key of keys that can have one, creating the table and adding columns as
// needed. The DDL runs in one transaction under the table's advisory lock,
// after reading the catalog again: what another process (or a person)
// added or dropped meanwhile is taken into account.
func (c *catalog) ensureTyped(ctx context.Context, conn *pgx.Conn, measurement string, keys []batchKey) (*typedTable, error) {
	if err := c.ready(ctx, conn); err != nil {
		return nil, err
	}
	var name, ident string
	var t *typedTable
	created, added := false, 0
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var exists bool
		var err error
		if name, exists, err = c.claimName(ctx, tx, measurement); err != nil {
			return err
		}
		ident = pgx.Identifier{c.schema, name}.Sanitize()
		if !exists {
			cols := "time timestamptz NOT NULL"
			if c.merge {
				cols += ", " + seriesColumn + " bigint NOT NULL, " + pointKeyDDL
			}
			if _, err := tx.Exec(ctx, "CREATE TABLE "+ident+" ("+cols+")"+c.partitionClause()); err != nil {
				return err
			}
			if err := commentOn(ctx, tx, "TABLE "+ident, measurement, name != measurement); err != nil {
				return err
			}
			created = true
		}
		if t, err = readTyped(ctx, tx, name, ident); err != nil {
			return err
		}
		cols := t.columnsFor(keys)
		for i, k := range keys {
			if cols[i] != nil {
				continue
			}
			if t.attrs >= c.maxColumns {
				if t.overflow == nil && t.attrs < maxAttributes {
					if _, err := tx.Exec(ctx, "ALTER TABLE "+ident+" ADD COLUMN "+quoteKey(overflowColumn)+" jsonb"); err != nil {
						return err
					}
					t.overflow = &column{name: overflowColumn, typ: colType{oid: oidJSONB, typmod: -1, name: "jsonb"}}
					t.byName[overflowColumn] = t.overflow
					t.attrs++
					added++
				}
				continue
			}
			key := colKey{tag: k.tag, key: k.name}
			col := &column{name: t.columnName(key), owner: &key}
			typ := newColumnType(k, c.uintType)
			// Each column under a savepoint: one that cannot be added
			// costs its key's values, not the batch.
			if _, err := tx.Exec(ctx, "SAVEPOINT add_column"); err != nil {
				return err
			}
			err := addColumn(ctx, tx, ident, col, typ, key)
			if err != nil {
				if isTemporary(err) {
					return err
				}
				if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT add_column"); rerr != nil {
					return rerr
				}
				if t.failed == nil {
					t.failed = map[colKey]string{}
				}
				t.failed[key] = fmt.Sprintf("cannot add column %s: %v", quoteKey(col.name), err)
				c.log.Warn("cannot add a column; the key's values go to the rejected table", "schema", c.schema, "table", name, "column", col.name, "err", err)
				continue
			}
			t.owned[key] = col
			t.byName[col.name] = col
			t.attrs++
			added++
		}
		if created {
			// After the first columns, so that the template can index them.
			return c.runTemplate(ctx, tx, name, measurement)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prepare table %s: %w", ident, err)
	}
	if created {
		c.metrics.TablesCreated.Inc()
		c.log.Info("table created", "schema", c.schema, "table", name, "measurement", measurement)
	}
	if added > 0 {
		c.metrics.ColumnsCreated.Add(float64(added))
		c.log.Info("columns added", "schema", c.schema, "table", name, "columns", added)
	}
	c.mu.Lock()
	c.typed[measurement] = t
	c.mu.Unlock()
	return t, nil
}

// addColumn adds col of type typ for key and reads the type back.
func addColumn(ctx context.Context, tx pgx.Tx, ident string, col *column, typ string, key colKey) error {
	if _, err := tx.Exec(ctx, "ALTER TABLE "+ident+" ADD COLUMN "+quoteKey(col.name)+" "+typ); err != nil {
		return err
	}
	if err := commentOn(ctx, tx, "COLUMN "+ident+"."+quoteKey(col.name), ownerComment(key), true); err != nil {
		return err
	}
	return tx.QueryRow(ctx, "SELECT $1::regtype::oid, -1, format_type($1::regtype, NULL)", typ).Scan(&col.typ.oid, &col.typ.typmod, &col.typ.name)
}

// cachedTyped returns the last known snapshot of a measurement's table.
func (c *catalog) cachedTyped(measurement string) *typedTable {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.typed[measurement]
}

// commentOn sets a comment on obj; COMMENT takes no parameters, so the
// server quotes the literal, whatever its standard_conforming_strings.
func commentOn(ctx context.Context, tx pgx.Tx, obj, text string, do bool) error {
	if !do {
		return nil
	}
	var lit string
	if err := tx.QueryRow(ctx, "SELECT quote_literal($1::text)", text).Scan(&lit); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "COMMENT ON "+obj+" IS "+lit)
	return err
}
