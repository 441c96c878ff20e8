package schema

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
)

// RejectedColumns is the layout of the rejected table ("dead letters"),
// which holds every line, row or value that pginflux accepted but could
// not store as it was: one row each, with a line of line protocol that
// stores it again when sent back to pginflux (after the cause, say a
// column type, is fixed). The sink encodes its rows in this order.
var RejectedColumns = []struct{ Name, Def string }{
	{"received", "timestamptz NOT NULL"},
	{"source", "text"},
	{"measurement", "text"},
	{"reason", "text NOT NULL"},
	{"detail", "text"},
	{"line", "text NOT NULL"},
	{"raw", "bytea"},
}

func rejectedDDL(ident string) string {
	cols := make([]string, len(RejectedColumns))
	for i, c := range RejectedColumns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize() + " " + c.Def
	}
	return "CREATE TABLE " + ident + " (" + strings.Join(cols, ", ") + ")"
}

func rejectedCopySQL(ident string) string {
	cols := make([]string, len(RejectedColumns))
	for i, c := range RejectedColumns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
	}
	return "COPY " + ident + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)"
}

// RejectedTable returns the rejected table, creating it when missing.
func (c *Catalog) RejectedTable(ctx context.Context, conn *pgx.Conn) (*Table, error) {
	c.mu.Lock()
	t := c.rejected
	c.mu.Unlock()
	if t != nil {
		return t, nil
	}
	if err := c.Ready(ctx, conn); err != nil {
		return nil, err
	}
	ident := pgx.Identifier{c.schema, c.rejectedName}.Sanitize()
	created, err := c.createOwn(ctx, conn, c.rejectedName, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, rejectedDDL(ident)); err != nil {
			return err
		}
		return commentOn(ctx, tx, "TABLE "+ident, "pginflux: lines, rows and values that could not be stored; replay with: psql -Atc 'SELECT line FROM <this table>' | pginflux send", true)
	})
	if err != nil {
		return nil, err
	}
	if created {
		c.log.Info("rejected table created", "schema", c.schema, "table", c.rejectedName)
	}
	t = &Table{Name: c.rejectedName, Ident: ident, CopySQL: rejectedCopySQL(ident)}
	c.mu.Lock()
	c.rejected = t
	c.mu.Unlock()
	return t, nil
}
