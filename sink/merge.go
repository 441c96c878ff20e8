package sink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

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

// pointPlan is what a writer learns of rows lo..hi-1 of a batch bound for
// a table with a point key: each row's series id, and which rows are one
// point. Indexes are relative to lo.
type pointPlan struct {
	sids []int64 // series id of each row
	head []bool  // the row is the first of its point
	next []int32 // the next row of the same point, or -1
	tail []int32 // for a head, the last row of its point so far
	rows int     // points: rows once merged

	// Scratch space, reused from batch to batch.
	canon     []byte
	canonEnds []int
	order     []int
	tk, tv    [][]byte
	keyBytes  [][]byte
	micros    []int64 // each row's time as its column keeps it
	slots     []int32 // open addressing: the first row of a point, or -1
	miss      []int
}

// floorMicros turns Unix nanoseconds into microseconds as appendTimestamp
// stores them.
func floorMicros(unixNanos int64) int64 {
	m := unixNanos / 1000
	if unixNanos%1000 < 0 {
		m--
	}
	return m
}

// planPoints fills pp for rows lo..hi-1 of b, bound for table: it finds
// each row's tag set, its series id (registering new ones), and groups the
// rows that are one point, in arrival order.
func (s *Sink) planPoints(ctx context.Context, conn *pgx.Conn, pp *pointPlan, b *batch, lo, hi int, table string, timeType schema.Type) error {
	// Times as the time column keeps them: rows apart by less are one
	// point.
	unit := timeType.TimeUnit()
	columns := s.cfg.Storage == StorageColumns
	n := hi - lo
	pp.canon, pp.canonEnds = pp.canon[:0], pp.canonEnds[:0]
	if columns {
		pp.keyBytes = pp.keyBytes[:0]
		for _, k := range b.keys {
			pp.keyBytes = append(pp.keyBytes, []byte(k.Name))
		}
	}
	micros := pp.micros[:0]
	for r := lo; r < hi; r++ {
		row := b.rowBytes(r, r+1)
		if columns {
			micros = append(micros, floorUnit(floorMicros(int64(binary.BigEndian.Uint64(row))), unit))
			pp.tk, pp.tv = pp.tk[:0], pp.tv[:0]
			count := int(binary.BigEndian.Uint32(row[8:]))
			for i, k := 12, 0; k < count && row[i+4] == byte(kindTag); k++ {
				id := binary.BigEndian.Uint32(row[i:])
				l := int(binary.BigEndian.Uint32(row[i+5:]))
				pp.tk = append(pp.tk, pp.keyBytes[id])
				pp.tv = append(pp.tv, row[i+9:i+9+l])
				i += 9 + l
			}
			pp.canon, pp.order = canonicalTags(pp.canon, pp.order, pp.tk, pp.tv)
		} else {
			// int16 count | int32 8 | int64 time | int32 len | 1 | tags | ...
			micros = append(micros, floorUnit(int64(binary.BigEndian.Uint64(row[6:])), unit))
			tl := readInt32(row, 14)
			pp.canon = append(pp.canon, row[19:18+tl]...)
		}
		pp.canonEnds = append(pp.canonEnds, len(pp.canon))
	}
	key := func(k int) []byte {
		start := 0
		if k > 0 {
			start = pp.canonEnds[k-1]
		}
		return pp.canon[start:pp.canonEnds[k]]
	}

	pp.sids = resize(pp.sids, n)
	sc := s.catalog.Series(table)
	pp.miss = sc.Lookup(n, key, pp.sids, pp.miss[:0])
	if len(pp.miss) > 0 {
		uniq := make(map[string]int)
		var tags []string
		for _, k := range pp.miss {
			c := string(key(k))
			if _, ok := uniq[c]; !ok {
				uniq[c] = len(tags)
				if columns {
					tags = append(tags, canonicalJSON(key(k)))
				} else {
					tags = append(tags, c)
				}
			}
		}
		ids, err := s.catalog.RegisterSeries(ctx, conn, table, tags)
		if err != nil {
			return err
		}
		sc.Store(uniq, ids)
		for _, k := range pp.miss {
			pp.sids[k] = ids[uniq[string(key(k))]]
		}
	}

	pp.micros = micros
	pp.head = resize(pp.head, n)
	pp.next = resize(pp.next, n)
	pp.tail = resize(pp.tail, n)
	// The rows of a point (a series and a time): an open-addressing table
	// of each point's first row, at most half full.
	size := 16
	for size < 2*n {
		size <<= 1
	}
	pp.slots = resize(pp.slots, size)
	for i := range pp.slots {
		pp.slots[i] = -1
	}
	mask := uint64(size - 1)
	pp.rows = 0
	for k := range n {
		pp.next[k] = -1
		sid, us := pp.sids[k], micros[k]
		h := (uint64(sid) ^ uint64(us)*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
		for i := (h ^ h>>31) & mask; ; i = (i + 1) & mask {
			first := pp.slots[i]
			if first < 0 {
				pp.slots[i] = int32(k)
				pp.head[k], pp.tail[k] = true, int32(k)
				pp.rows++
				break
			}
			if pp.sids[first] == sid && micros[first] == us {
				pp.head[k] = false
				pp.next[pp.tail[first]] = int32(k)
				pp.tail[first] = int32(k)
				break
			}
		}
	}
	return nil
}

// floorUnit floors micros to a multiple of unit.
func floorUnit(micros, unit int64) int64 {
	if unit == 1 {
		return micros
	}
	r := micros % unit
	if r < 0 {
		r += unit
	}
	return micros - r
}

func resize[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// encodeJSONBPoints encodes rows lo..hi-1 of b (jsonb storage) for a table
// with a point key: time, series_id, tags, fields, the rows of one point
// made one, their fields objects joined so that jsonb keeps the last value
// of a repeated key.
func encodeJSONBPoints(e *encoded, b *batch, lo, hi int, pp *pointPlan, ident string) {
	e.reset()
	e.names = append(e.names[:0], `"time"`, `"series_id"`, `"tags"`, `"fields"`)
	e.copySQL = "COPY " + ident + " (" + strings.Join(e.names, ", ") + ") FROM STDIN (FORMAT binary)"
	for r := lo; r < hi; r++ {
		k := r - lo
		if !pp.head[k] {
			continue
		}
		row := b.rowBytes(r, r+1)
		tl := readInt32(row, 14)
		fat := 18 + tl // the fields' length word
		e.rows = appendInt16(e.rows, 4)
		e.rows = append(e.rows, row[2:14]...) // time
		e.rows = appendInt32(e.rows, 8)
		e.rows = binary.BigEndian.AppendUint64(e.rows, uint64(pp.sids[k]))
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
// (a NULL, a key the write did not carry, keeps the stored value).
func upsertSQL(ident, stage string, names []string, jsonb bool) string {
	var set []string
	for _, n := range names {
		switch n {
		case `"time"`, `"series_id"`, `"tags"`:
			continue
		case `"fields"`:
			if jsonb {
				set = append(set, `"fields" = t."fields" || EXCLUDED."fields"`)
				continue
			}
		case `"` + schema.OverflowColumn + `"`:
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
		` ON CONFLICT ("series_id", "time") ` + action
}

// stageTable is the temporary table a batch that hit existing points goes
// through; it lives until the end of its transaction.
const stageTable = "pginflux_stage"

// upsertRows writes n encoded rows into ident through a staging table,
// merging each into the point it hits, in tx.
func upsertRows(ctx context.Context, tx pgx.Tx, ident string, names []string, rows []byte, n int, jsonb bool) error {
	if err := stageRows(ctx, tx, ident, names, rows, n); err != nil {
		return err
	}
	tag, err := tx.Conn().PgConn().Exec(ctx, upsertSQL(ident, stageTable, names, jsonb)).ReadAll()
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
