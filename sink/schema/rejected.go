package schema

import (
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
