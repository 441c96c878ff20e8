package schema

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/parse"
)

// MaxAttributes is PostgreSQL's limit of columns a table, dropped columns
// included.
const MaxAttributes = 1600

// OverflowColumn holds, as jsonb, the keys of a table at its column limit.
const OverflowColumn = "pginflux_overflow"

// Key names a tag or field key.
type Key struct {
	Tag  bool   // a tag's key, not a field's
	Name string // the key as the line has it
}

// BatchKey is one tag or field key of a batch, with what the batch holds
// for it: a new column's type is chosen from that (see ColumnType).
type BatchKey struct {
	Key
	First  parse.Kind             // the kind of its first value
	Counts [parse.Bool + 1]uint32 // values seen, by kind
}

// Column is one column of a table in columns storage.
type Column struct {
	Name  string // the column's name in PostgreSQL
	Type  Type
	Owner *Key // the key pginflux made it for; nil for a column made by someone else
}

// TypedTable is a snapshot of a table in columns storage. It is never
// changed once a Catalog has handed it out: a writer that needs more
// columns gets a new one. Safe for concurrent reads.
type TypedTable struct {
	Name, Ident string // the table's name, and its name quoted with the schema
	owned       map[Key]*Column
	byName      map[string]*Column
	Overflow    *Column // the overflow column (see OverflowColumn), or nil
	Attrs       int     // column numbers used, dropped columns included
	// Failed holds keys whose column could not be added (a missing
	// privilege, say), with why: their values go to the rejected table
	// until the table is looked at again.
	Failed map[Key]string
	// Point says the table has a point key: rows carry a series_id, and
	// the column of that name serves no key.
	Point bool
	// Nanos says the point key includes NanosColumn: rows carry the
	// nanoseconds of their time beyond the microsecond, and the column of
	// that name serves no key.
	Nanos bool
	// TimeType is the type of the time column: timestamp(p) keeps less
	// than microseconds.
	TimeType Type
}

// NewTypedTable returns an empty snapshot of table name (ident quoted
// with its schema), for a table that is not made yet: the dry run of an
// import, or a test. Add gives it columns.
func NewTypedTable(name, ident string) *TypedTable {
	return &TypedTable{Name: name, Ident: ident, owned: make(map[Key]*Column), byName: make(map[string]*Column), Failed: make(map[Key]string)}
}

// Add adds c to a snapshot that is not handed out yet, as ALTER TABLE
// would: it takes a column number, and serves its owner's key when it has
// one.
func (t *TypedTable) Add(c *Column) {
	t.byName[c.Name] = c
	if c.Owner != nil {
		t.owned[*c.Owner] = c
	}
	t.Attrs++
}

// systemColumns are the names of every table's system columns: ADD
// COLUMN of one fails (42701) whatever the table.
var systemColumns = map[string]bool{"tableoid": true, "xmin": true, "cmin": true, "xmax": true, "cmax": true, "ctid": true}

// ownerComment is the comment pginflux gives a column it adds, so that
// the key a column serves survives renames of the key's preferred name.
func ownerComment(k Key) string { return "pginflux " + k.Role() + " " + k.Name }

func parseOwnerComment(s string) *Key {
	if k, ok := strings.CutPrefix(s, "pginflux tag "); ok {
		return &Key{Tag: true, Name: k}
	}
	if k, ok := strings.CutPrefix(s, "pginflux field "); ok {
		return &Key{Name: k}
	}
	return nil
}

// Role is "tag" or "field".
func (k Key) Role() string {
	if k.Tag {
		return "tag"
	}
	return "field"
}

// ColumnsFor maps each key of a batch to its column, or nil when it has
// none yet. A column pginflux made serves the key it was made for. A column
// someone else made serves the key of its name, whether tag or field; when
// a batch has both a tag and a field of that name, the tag gets it.
func (t *TypedTable) ColumnsFor(keys []BatchKey) []*Column {
	cols := make([]*Column, len(keys))
	claimed := make(map[*Column]bool)
	for _, tags := range []bool{true, false} {
		for i, k := range keys {
			if k.Tag != tags {
				continue
			}
			if c := t.owned[k.Key]; c != nil {
				cols[i] = c
				continue
			}
			c := t.byName[k.Name]
			if c == nil || c.Owner != nil || c == t.Overflow || k.Name == "time" || (t.Point && k.Name == SeriesColumn) || (t.Nanos && k.Name == NanosColumn) || claimed[c] || !c.Type.Writable() {
				continue
			}
			claimed[c] = true
			cols[i] = c
		}
	}
	return cols
}

// NeedsDDL reports whether some key has no column in cols (from
// ColumnsFor) and one can still be added for it (below maxColumns), or the
// overflow column is missing.
func (t *TypedTable) NeedsDDL(keys []BatchKey, cols []*Column, maxColumns int) bool {
	for i, c := range cols {
		if c == nil {
			if _, failed := t.Failed[keys[i].Key]; failed {
				continue
			}
			return t.Attrs < maxColumns || (t.Overflow == nil && t.Attrs < MaxAttributes)
		}
	}
	return false
}

// ColumnName chooses the name of a new column for k: the key itself; or,
// when that is "time", the overflow column or taken by another key, the key
// with "_tag" or "_field" appended; names over 63 bytes shortened as table
// names are (see TableName); and as a last resort a name made unique by a
// hash of the role and key.
func (t *TypedTable) ColumnName(k Key) string {
	for _, cand := range []string{k.Name, k.Name + "_" + k.Role()} {
		n := TableName(cand)
		if n == "time" || n == SeriesColumn || n == OverflowColumn || systemColumns[n] {
			continue
		}
		if _, taken := t.byName[n]; !taken {
			return n
		}
	}
	return hashedName(k.Name, k.Role()+"\x00"+k.Name)
}

// ReadTyped reads, in tx, the columns of table name (ident quoted with its
// schema) in columns storage.
func ReadTyped(ctx context.Context, q pgx.Tx, name, ident string) (*TypedTable, error) {
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
	t := &TypedTable{Name: name, Ident: ident, owned: make(map[Key]*Column), byName: make(map[string]*Column)}
	var timeCol *Column
	for rows.Next() {
		var c Column
		var comment string
		var dropped bool
		if err := rows.Scan(&c.Name, &c.Type.OID, &c.Type.Typmod, &c.Type.Name, &comment, &dropped); err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", ident, err)
		}
		t.Attrs++
		if dropped {
			continue
		}
		c.Owner = parseOwnerComment(comment)
		cp := &c
		t.byName[c.Name] = cp
		switch {
		case c.Name == "time":
			timeCol = cp
		case c.Name == OverflowColumn:
			t.Overflow = cp
		case c.Owner != nil:
			t.owned[*c.Owner] = cp
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", ident, err)
	}
	switch {
	case timeCol == nil:
		return nil, fmt.Errorf("table %s has no column \"time\": %w", ident, ErrTableMismatch)
	case timeCol.Type.OID != OIDTimestamptz && timeCol.Type.OID != OIDTimestamp:
		return nil, fmt.Errorf("table %s: column \"time\" is %s, not timestamp with time zone: %w", ident, timeCol.Type.Name, ErrTableMismatch)
	case t.Overflow != nil && t.Overflow.Type.OID != OIDJSONB:
		return nil, fmt.Errorf("table %s: column %q is %s, not jsonb: %w", ident, OverflowColumn, t.Overflow.Type.Name, ErrTableMismatch)
	}
	t.TimeType = timeCol.Type
	if t.Point, t.Nanos, err = hasPointKey(ctx, q, ident); err != nil {
		return nil, err
	}
	return t, nil
}

// EnsureTyped returns the table of a measurement with a column for every
// key of keys that can have one, creating the table and adding columns as
// needed. The DDL runs in one transaction under the table's advisory lock,
// after reading the catalog again: what another process (or a person)
// added or dropped meanwhile is taken into account.
func (c *Catalog) EnsureTyped(ctx context.Context, conn *pgx.Conn, measurement string, keys []BatchKey) (*TypedTable, error) {
	if err := c.Ready(ctx, conn); err != nil {
		return nil, err
	}
	var name, ident string
	var t *TypedTable
	created, added := false, 0
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var exists bool
		var err error
		if name, exists, err = c.claimName(ctx, tx, measurement); err != nil {
			return err
		}
		ident = pgx.Identifier{c.schema, name}.Sanitize()
		if !exists {
			if err := c.createTyped(ctx, tx, ident, name, measurement); err != nil {
				return err
			}
			created = true
		}
		if t, err = ReadTyped(ctx, tx, name, ident); err != nil {
			return err
		}
		if added, err = c.addColumns(ctx, tx, t, keys); err != nil {
			return err
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

// createTyped makes the table of a measurement in columns storage, in tx:
// time (and series_id, the point key, in merge mode), with the
// measurement's name as its comment when the table has another.
func (c *Catalog) createTyped(ctx context.Context, tx pgx.Tx, ident, name, measurement string) error {
	cols := "time timestamptz NOT NULL"
	if c.merge {
		cols += ", " + SeriesColumn + " bigint NOT NULL, " + c.pointKeyDDL()
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE "+ident+" ("+cols+")"+c.partitionClause()); err != nil {
		return err
	}
	return commentOn(ctx, tx, "TABLE "+ident, measurement, name != measurement)
}

// addColumns adds to t, in tx, a column for each key of keys that has
// none, up to the column limit; past it, the overflow column once. A
// column that cannot be added (a privilege missing, say) is noted in
// t.Failed and costs its key's values, not the batch. added counts the
// columns added.
func (c *Catalog) addColumns(ctx context.Context, tx pgx.Tx, t *TypedTable, keys []BatchKey) (added int, err error) {
	cols := t.ColumnsFor(keys)
	for i, k := range keys {
		if cols[i] != nil {
			continue
		}
		if t.Attrs >= c.maxColumns {
			if t.Overflow == nil && t.Attrs < MaxAttributes {
				if _, err := tx.Exec(ctx, "ALTER TABLE "+t.Ident+" ADD COLUMN "+quoteIdent(OverflowColumn)+" jsonb"); err != nil {
					return added, err
				}
				t.Overflow = &Column{Name: OverflowColumn, Type: Type{OID: OIDJSONB, Typmod: -1, Name: "jsonb"}}
				t.byName[OverflowColumn] = t.Overflow
				t.Attrs++
				added++
			}
			continue
		}
		key := k.Key
		col := &Column{Name: t.ColumnName(key), Owner: &key}
		// Each column under a savepoint: one that cannot be added costs
		// its key's values, not the batch.
		if _, err := tx.Exec(ctx, "SAVEPOINT add_column"); err != nil {
			return added, err
		}
		if err := addColumn(ctx, tx, t.Ident, col, ColumnType(k, c.uintType), key); err != nil {
			if IsTemporary(err) {
				return added, err
			}
			if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT add_column"); rerr != nil {
				return added, rerr
			}
			if t.Failed == nil {
				t.Failed = map[Key]string{}
			}
			t.Failed[key] = fmt.Sprintf("cannot add column %s: %v", quoteIdent(col.Name), err)
			c.log.Warn("cannot add a column; the key's values go to the rejected table", "schema", c.schema, "table", t.Name, "column", col.Name, "err", err)
			continue
		}
		t.Add(col)
		added++
	}
	return added, nil
}

// addColumn adds col of type typ for key and reads the type back.
func addColumn(ctx context.Context, tx pgx.Tx, ident string, col *Column, typ string, key Key) error {
	if _, err := tx.Exec(ctx, "ALTER TABLE "+ident+" ADD COLUMN "+quoteIdent(col.Name)+" "+typ); err != nil {
		return err
	}
	if err := commentOn(ctx, tx, "COLUMN "+ident+"."+quoteIdent(col.Name), ownerComment(key), true); err != nil {
		return err
	}
	return tx.QueryRow(ctx, "SELECT $1::regtype::oid, -1, format_type($1::regtype, NULL)", typ).Scan(&col.Type.OID, &col.Type.Typmod, &col.Type.Name)
}

// CachedTyped returns the last known snapshot of a measurement's table, or
// nil.
func (c *Catalog) CachedTyped(measurement string) *TypedTable {
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
