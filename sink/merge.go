package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pginflux/pginflux/internal/plural"
	"github.com/pginflux/pginflux/sink/schema"
)

// Write modes: how the tables pginflux creates are keyed.
const (
	// WriteMerge makes tables with a point key (time, series_id): one row
	// per point, later writes of a point merging into it.
	WriteMerge = "merge"
	// WriteAppend makes tables without a key: every line is a row.
	WriteAppend = "append"
)

// encodeJSONBPoints encodes rows lo..hi-1 of b (jsonb storage) for a table
// with a point key, in the order of the key: time, series_id (and time_ns
// in a table that keeps nanoseconds), tags, fields, the rows of one point
// made one, their fields objects joined so that jsonb keeps the last
// value of a repeated key.
func encodeJSONBPoints(e *encoded, b *batch, lo, hi int, pp *pointPlan, ident string) {
	e.reset()
	e.names = append(e.names[:0], `"time"`, `"series_id"`)
	if pp.nanos {
		e.names = append(e.names, `"`+schema.NanosColumn+`"`)
	}
	e.names = append(e.names, `"tags"`, `"fields"`)
	e.copySQL = "COPY " + ident + " (" + strings.Join(e.names, ", ") + ") FROM STDIN (FORMAT binary)"
	for r := lo; r < hi; r++ {
		k := r - lo
		if !pp.head[k] {
			continue
		}
		row := b.rowBytes(r, r+1)
		tl := readInt32(row, 14)
		fat := 18 + tl // the fields' length word
		e.rows = appendInt16(e.rows, int16(len(e.names)))
		e.rows = append(e.rows, row[2:14]...) // time
		e.rows = pp.appendKey(e.rows, k)
		e.rows = append(e.rows, row[14:fat]...) // tags
		if pp.next[k] < 0 {
			e.rows = append(e.rows, row[fat:]...)
		} else {
			var at int
			e.rows, at = beginValue(e.rows)
			e.rows = append(e.rows, jsonbVersion, '{')
			for j := int32(k); j >= 0; j = pp.next[j] {
				rr := b.rowBytes(lo+int(j), lo+int(j)+1)
				ft := 18 + readInt32(rr, 14)
				body := rr[ft+4+2 : len(rr)-1] // inside the braces
				if j != int32(k) {
					e.rows = append(e.rows, ',')
				}
				e.rows = append(e.rows, body...)
			}
			e.rows = append(e.rows, '}')
			e.rows = endValue(e.rows, at)
		}
		e.ends = append(e.ends, len(e.rows))
	}
	e.inKeyOrder(pp)
}

// isUniqueViolation reports whether err is a unique violation: for a
// table with a point key, a row whose point is there already.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// isRemoteCopyError reports SQLSTATE XX000 (internal_error). Citus
// reports every error a worker raises during a COPY into a distributed
// table as XX000 with the worker's message, its SQLSTATE lost (its
// ReportCopyError): a duplicate key (23505), a CHECK (23514), a
// connection the worker ended (57P01) all look alike. Rows that get it
// are written again with INSERT (upsertRows, insertRows), whose errors
// keep their SQLSTATE, and the failure policy goes by that one. Plain
// PostgreSQL raises XX000 only for its own bugs or a damaged disk: the
// INSERT then fails too, and the rows are held.
func isRemoteCopyError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "XX000"
}

// upsertSQL is the statement that merges a staging table's rows into
// their table: a row whose point exists updates the fields it carries
// (a NULL, a key the write did not carry, keeps the stored value). nanos
// says the point key includes schema.NanosColumn.
func upsertSQL(ident, stage string, names []string, jsonb, nanos bool) string {
	var set []string
	target := `"series_id", "time"`
	if nanos {
		target += `, "` + schema.NanosColumn + `"`
	}
	for _, n := range names {
		switch {
		case n == `"time"`, n == `"series_id"`, n == `"tags"`, nanos && n == `"`+schema.NanosColumn+`"`:
			continue
		case n == `"fields"`:
			if jsonb {
				set = append(set, `"fields" = t."fields" || EXCLUDED."fields"`)
				continue
			}
		case n == `"`+schema.OverflowColumn+`"`:
			set = append(set, n+` = CASE WHEN t.`+n+` IS NULL OR EXCLUDED.`+n+` IS NULL THEN coalesce(EXCLUDED.`+n+`, t.`+n+`) ELSE
				jsonb_strip_nulls(jsonb_build_object('tags', nullif(coalesce(t.`+n+`->'tags', '{}') || coalesce(EXCLUDED.`+n+`->'tags', '{}'), '{}'),
					'fields', nullif(coalesce(t.`+n+`->'fields', '{}') || coalesce(EXCLUDED.`+n+`->'fields', '{}'), '{}'))) END`)
			continue
		}
		set = append(set, n+" = coalesce(EXCLUDED."+n+", t."+n+")")
	}
	cols := strings.Join(names, ", ")
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	return "INSERT INTO " + ident + " AS t (" + cols + ") SELECT " + cols + " FROM " + stage +
		" ON CONFLICT (" + target + ") " + action
}

// stageTable is the temporary table a batch that hit existing points goes
// through; it lives until the end of its transaction.
const stageTable = "pginflux_stage"

// upsertRows writes n encoded rows into ident through a staging table,
// merging each into the point it hits, in tx; nanos says the point key
// includes schema.NanosColumn.
func upsertRows(ctx context.Context, tx pgx.Tx, ident string, names []string, rows []byte, n int, jsonb, nanos bool) error {
	if err := stageRows(ctx, tx, ident, names, rows, n); err != nil {
		return err
	}
	tag, err := tx.Conn().PgConn().Exec(ctx, upsertSQL(ident, stageTable, names, jsonb, nanos)).ReadAll()
	if err != nil {
		return fmt.Errorf("merge %s into %s: %w", plural.Count(n, "row"), ident, err)
	}
	if got := tag[0].CommandTag.RowsAffected(); got > int64(n) {
		return fmt.Errorf("merge into %s took %d rows of %d", ident, got, n)
	}
	return nil
}

// jsonbNames are the columns of a row of a table in jsonb storage without
// a point key, quoted, in the order appendJSONBRow encodes them.
var jsonbNames = []string{`"time"`, `"tags"`, `"fields"`}

// insertRows writes n encoded rows into ident (a table without a point
// key) through a staging table and INSERT ... SELECT, in tx: for rows
// whose COPY failed with an error that lost its SQLSTATE (see
// isRemoteCopyError). RETURNING is there for Citus, which runs a plain
// INSERT ... SELECT into a distributed table as a COPY again (and so
// loses the SQLSTATE again), but one with RETURNING as INSERTs on its
// shards. The returned rows are read and thrown away.
func insertRows(ctx context.Context, tx pgx.Tx, ident string, names []string, rows []byte, n int) error {
	if err := stageRows(ctx, tx, ident, names, rows, n); err != nil {
		return err
	}
	cols := strings.Join(names, ", ")
	rr := tx.Conn().PgConn().ExecParams(ctx, "INSERT INTO "+ident+" ("+cols+") SELECT "+cols+" FROM "+stageTable+" RETURNING NULL", nil, nil, nil, nil)
	for rr.NextRow() {
	}
	tag, err := rr.Close()
	if err != nil {
		return fmt.Errorf("insert %s into %s: %w", plural.Count(n, "row"), ident, err)
	}
	if got := tag.RowsAffected(); got > int64(n) {
		return fmt.Errorf("insert into %s took %d rows of %d", ident, got, n)
	}
	return nil
}

// stageRows makes the staging table for ident, in tx, and copies n
// encoded rows into it.
func stageRows(ctx context.Context, tx pgx.Tx, ident string, names []string, rows []byte, n int) error {
	cols := strings.Join(names, ", ")
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+stageTable+" ON COMMIT DROP AS SELECT "+cols+" FROM "+ident+" WITH NO DATA"); err != nil {
		return fmt.Errorf("make staging table for %s: %w", ident, err)
	}
	stageCopy := "COPY " + stageTable + " (" + cols + ") FROM STDIN (FORMAT binary)"
	if err := copyRows(ctx, tx.Conn().PgConn(), stageCopy, rows, n); err != nil {
		return fmt.Errorf("copy %s into the staging table: %w", plural.Count(n, "row"), err)
	}
	return nil
}

// Upserts after a collision: a table whose batches keep hitting points
// that are there already (a sender splitting its points over several
// lines, say) skips the COPY that would fail, for a streak of batches
// that doubles while collisions go on.
const (
	minUpsertStreak = 4
	maxUpsertStreak = 32
)

// upsertStreak says whether batches of a table go through a staging table
// straight away. Safe for concurrent use.
type upsertStreak struct {
	upsertsLeft, streak atomic.Int32
}

// streakOf returns the upsert streak of a table.
func (s *Sink) streakOf(table string) *upsertStreak {
	s.streaksMu.Lock()
	defer s.streaksMu.Unlock()
	st := s.streaks[table]
	if st == nil {
		st = new(upsertStreak)
		s.streaks[table] = st
	}
	return st
}

// forget drops what is known of a measurement's table, or of every table
// and the schema (see schema.Catalog.Forget).
func (s *Sink) forget(measurement string, schemaToo bool) {
	s.catalog.Forget(measurement, schemaToo)
	if schemaToo {
		s.streaksMu.Lock()
		clear(s.streaks)
		s.streaksMu.Unlock()
	}
}

// useUpsert reports whether the next batch of the table should merge
// through a staging table straight away.
func (sc *upsertStreak) useUpsert() bool {
	for {
		left := sc.upsertsLeft.Load()
		if left <= 0 {
			return false
		}
		if sc.upsertsLeft.CompareAndSwap(left, left-1) {
			return true
		}
	}
}

// collided notes a COPY that hit existing points.
func (sc *upsertStreak) collided() {
	streak := min(max(sc.streak.Load()*2, minUpsertStreak), maxUpsertStreak)
	sc.streak.Store(streak)
	sc.upsertsLeft.Store(streak)
}

// fastOK notes a COPY that hit no existing point.
func (sc *upsertStreak) fastOK() { sc.streak.Store(0) }
