package schema

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pointKeyDDL is the point key of the tables pginflux makes in merge mode:
// it includes time, as partitioned tables and TimescaleDB hypertables
// require of a unique key, and starts with it, so that rows arriving in
// time order go to the right edge of the index (PostgreSQL's fast path
// for rising keys): the server spends less on them than with series_id
// first.
const pointKeyDDL = "PRIMARY KEY (time, " + SeriesColumn + ")"

// hasPointKey reports whether a table has a point key pginflux can merge
// into: a bigint column series_id and a unique, immediate, valid index (a
// primary key or unique constraint included) on exactly (series_id, time),
// in either order, without expressions, predicate or included columns.
func hasPointKey(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, ident string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (
		SELECT 1 FROM pg_index i
		WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indimmediate AND i.indisvalid
			AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnatts = 2
			AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
				WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) = ARRAY['series_id', 'time'])
		AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'series_id'
			AND atttypid = 'bigint'::regtype AND NOT attisdropped)`, ident).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up the key of %s: %w", ident, err)
	}
	return ok, nil
}

// NoKey says once per table, in merge mode, that a table without a point
// key is written in append mode.
func (c *Catalog) NoKey(table string) {
	if !c.merge {
		return
	}
	if _, seen := c.noKeyLogged.LoadOrStore(table, struct{}{}); !seen {
		c.log.Warn("the table has no point key (a unique key on time and series_id); writing it in append mode, where a point written twice is two rows (see docs/tables.md, Converting a table)",
			"schema", c.schema, "table", table)
	}
}
