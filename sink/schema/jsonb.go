package schema

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Tables in jsonb storage: time, tags jsonb, fields jsonb (and series_id
// with a point key).

// jsonbColumns is the layout of a table in jsonb storage, in the order the
// sink encodes rows.
var jsonbColumns = []struct{ name, typ string }{
	{"time", "timestamptz"},
	{"tags", "jsonb"},
	{"fields", "jsonb"},
}

// Lookup returns the jsonb-storage table of a measurement, creating it
// (and the schema) when needed, on conn.
func (c *Catalog) Lookup(ctx context.Context, conn *pgx.Conn, measurement string) (*Table, error) {
	c.mu.Lock()
	t, ok := c.tables[measurement]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	if err := c.Ready(ctx, conn); err != nil {
		return nil, err
	}
	t, err := c.ensureTable(ctx, conn, measurement)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tables[measurement] = t
	c.mu.Unlock()
	return t, nil
}

func (c *Catalog) ensureTable(ctx context.Context, conn *pgx.Conn, measurement string) (*Table, error) {
	var name, ident string
	created := false
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var exists bool
		var err error
		if name, exists, err = c.claimName(ctx, tx, measurement); err != nil {
			return err
		}
		ident = pgx.Identifier{c.schema, name}.Sanitize()
		if exists {
			return nil
		}
		cols := make([]string, len(jsonbColumns))
		for i, col := range jsonbColumns {
			cols[i] = pgx.Identifier{col.name}.Sanitize() + " " + col.typ + " NOT NULL"
		}
		if c.merge {
			cols = append(cols[:1], append([]string{SeriesColumn + " bigint NOT NULL"}, cols[1:]...)...)
			cols = append(cols, c.pointKeyDDL())
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE "+ident+" ("+strings.Join(cols, ", ")+")"+c.partitionClause()); err != nil {
			return err
		}
		created = true
		if err := commentOn(ctx, tx, "TABLE "+ident, measurement, name != measurement); err != nil {
			return err
		}
		return c.runTemplate(ctx, tx, name, measurement)
	})
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", ident, err)
	}
	if created {
		c.metrics.TablesCreated.Inc()
		c.log.Info("table created", "schema", c.schema, "table", name, "measurement", measurement)
	}
	if err := c.checkColumns(ctx, conn, ident); err != nil {
		return nil, err
	}
	point, nanos, err := hasPointKey(ctx, conn, ident)
	if err != nil {
		return nil, err
	}
	cols := make([]string, len(jsonbColumns))
	for i, col := range jsonbColumns {
		cols[i] = pgx.Identifier{col.name}.Sanitize()
	}
	return &Table{
		Name:    name,
		Ident:   ident,
		Point:   point,
		Nanos:   nanos,
		CopySQL: "COPY " + ident + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)",
	}, nil
}

// checkColumns makes sure a table, perhaps made by a user beforehand, has
// the columns the binary rows are encoded for. Extra columns are fine when
// they have defaults or allow NULL.
func (c *Catalog) checkColumns(ctx context.Context, conn *pgx.Conn, ident string) error {
	rows, err := conn.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod)
		FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, ident)
	if err != nil {
		return fmt.Errorf("read columns of %s: %w", ident, err)
	}
	types := make(map[string]string)
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return fmt.Errorf("read columns of %s: %w", ident, err)
		}
		types[name] = typ
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read columns of %s: %w", ident, err)
	}
	var problems []string
	for _, col := range jsonbColumns {
		got, ok := types[col.name]
		want := col.typ
		if want == "timestamptz" {
			want = "timestamp with time zone"
		}
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("no column %q", col.name))
		case got != want && !(col.name == "time" && got == "timestamp without time zone"):
			problems = append(problems, fmt.Sprintf("column %q is %s, not %s", col.name, got, want))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("table %s: %s: %w", ident, strings.Join(problems, "; "), ErrTableMismatch)
	}
	return nil
}
