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

// NanosColumn is the column that keeps, with --time-nanos, the
// nanoseconds of a row's time beyond its microsecond (0 to 999), which
// timestamptz does not keep; time + time_ns is the exact instant.
const NanosColumn = "time_ns"

// nanosKeyDDL is the column NanosColumn and the point key that includes
// it, of the tables pginflux makes in merge mode with --time-nanos: points
// less than a microsecond apart are rows of their own.
const nanosKeyDDL = NanosColumn + " smallint NOT NULL DEFAULT 0, PRIMARY KEY (time, " + SeriesColumn + ", " + NanosColumn + ")"

// pointKeyDDL returns the point key of the tables c makes in merge mode,
// with the column NanosColumn when it keeps nanoseconds.
func (c *Catalog) pointKeyDDL() string {
	if c.timeNanos {
		return nanosKeyDDL
	}
	return pointKeyDDL
}

// hasPointKey reports whether a table has a point key pginflux can merge
// into: a bigint column series_id and a unique, immediate, valid index (a
// primary key or unique constraint included) on exactly (series_id, time),
// in any order, without expressions, predicate or included columns; or on
// exactly (series_id, time, time_ns), time_ns a smallint column, and then
// nanos says the table keeps nanoseconds (unless it has a unique key on
// (series_id, time) too, which would merge what that one keeps apart).
func hasPointKey(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, ident string) (point, nanos bool, err error) {
	err = q.QueryRow(ctx, `WITH k AS (
		SELECT (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
			WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) AS cols
		FROM pg_index i
		WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indimmediate AND i.indisvalid
			AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnatts IN (2, 3)
	), c AS (
		SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'series_id'
				AND atttypid = 'bigint'::regtype AND NOT attisdropped) AS sid,
			EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'time_ns'
				AND atttypid = 'smallint'::regtype AND NOT attisdropped) AS ns,
			EXISTS (SELECT 1 FROM k WHERE cols = ARRAY['series_id', 'time']) AS two,
			EXISTS (SELECT 1 FROM k WHERE cols = ARRAY['series_id', 'time', 'time_ns']) AS three
	)
	SELECT sid AND (two OR ns AND three), sid AND ns AND three AND NOT two FROM c`, ident).Scan(&point, &nanos)
	if err != nil {
		return false, false, fmt.Errorf("look up the key of %s: %w", ident, err)
	}
	return point, nanos, nil
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
