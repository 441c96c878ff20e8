package sink

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// Point identity. InfluxDB identifies a point by its measurement, its tag
// set and its time, and a second write of a point merges into it. A table
// with a point key holds one row per point: a column series_id, the id of
// the row's tag set, and a unique key on (time, series_id).
//
// A series id is a number for one tag set of one table, kept in the
// schema's series table (pginflux_series: table_name, series_id, tags
// jsonb). A new tag set gets, as its id, the first 63 bits of the SHA-256
// of its canonical form (the tags as a JSON object, keys sorted), or the
// next free number when that id belongs to another tag set already: an id
// is registered with INSERT ... ON CONFLICT DO NOTHING and read back, so
// two different tag sets never share one, across any number of pginflux
// processes. A tag key that appears later makes new tag sets, hence new
// ids: no index over the tag columns is ever rebuilt.

// seriesTable is the schema's table of series ids.
const seriesTable = "pginflux_series"

// seriesColumn is the column holding a row's series id.
const seriesColumn = "series_id"

// maxSeriesProbes bounds the ids tried for one tag set: a collision of 63
// bits of SHA-256 is never expected, so more than a few means something
// else is wrong.
const maxSeriesProbes = 64

// maxCachedSeries bounds the series ids a sink keeps in memory per table;
// past it, the cache starts again (ids are looked up in the series table).
const maxCachedSeries = 1 << 20

// testHookSeriesHash, when set, replaces the hash that proposes a tag set's
// id: tests use it to force collisions.
var testHookSeriesHash func(tagsJSON []byte) int64

// seriesHash proposes the id of a tag set: 63 bits of its SHA-256.
func seriesHash(tagsJSON []byte) int64 {
	if testHookSeriesHash != nil {
		return testHookSeriesHash(tagsJSON)
	}
	sum := sha256.Sum256(tagsJSON)
	return int64(binary.BigEndian.Uint64(sum[:]) >> 1)
}

// seriesCache maps the canonical tag sets of one table to their ids. Safe
// for concurrent use.
type seriesCache struct {
	mu  sync.RWMutex
	ids map[string]int64

	// Whether batches of the table go through a staging table straight
	// away (see useUpsert).
	upsertsLeft, streak atomic.Int32
}

// seriesOf returns the cache of a table.
func (c *catalog) seriesOf(table string) *seriesCache {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := c.series[table]
	if sc == nil {
		sc = &seriesCache{ids: make(map[string]int64)}
		c.series[table] = sc
	}
	return sc
}

// seriesReady makes sure the series table exists, once.
func (c *catalog) seriesReady(ctx context.Context, conn *pgx.Conn) error {
	c.mu.Lock()
	ready := c.seriesMade
	c.mu.Unlock()
	if ready {
		return nil
	}
	ident := pgx.Identifier{c.schema, seriesTable}.Sanitize()
	_, err := c.createOwn(ctx, conn, seriesTable, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE `+ident+` (
			table_name text NOT NULL,
			series_id bigint NOT NULL,
			tags jsonb NOT NULL,
			created timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (table_name, series_id))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "CREATE INDEX ON "+ident+" USING hash (tags)"); err != nil {
			return err
		}
		return commentOn(ctx, tx, "TABLE "+ident, "pginflux: the tag set of each series_id of each table", true)
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.seriesMade = true
	c.mu.Unlock()
	return nil
}

// registerSeries returns the ids of tag sets of a table (each a JSON
// object with sorted keys), registering the new ones. An id found taken by
// another tag set is never shared: the next number is tried.
func (c *catalog) registerSeries(ctx context.Context, conn *pgx.Conn, table string, tags []string) ([]int64, error) {
	if err := c.seriesReady(ctx, conn); err != nil {
		return nil, err
	}
	ident := pgx.Identifier{c.schema, seriesTable}.Sanitize()
	ids := make([]int64, len(tags))
	found := make([]bool, len(tags))

	// Tag sets registered before, under whatever id.
	rows, err := conn.Query(ctx, `SELECT v.i, s.series_id FROM unnest($2::text[]) WITH ORDINALITY AS v(tags, i)
		JOIN `+ident+` s ON s.tags = v.tags::jsonb AND s.table_name = $1`, table, tags)
	if err != nil {
		return nil, fmt.Errorf("look up series of %s: %w", table, err)
	}
	for rows.Next() {
		var i, id int64
		if err := rows.Scan(&i, &id); err != nil {
			return nil, fmt.Errorf("look up series of %s: %w", table, err)
		}
		ids[i-1], found[i-1] = id, true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up series of %s: %w", table, err)
	}

	var todo []int // indexes of tags still without an id
	for i := range tags {
		if !found[i] {
			todo = append(todo, i)
			ids[i] = seriesHash([]byte(tags[i]))
		}
	}
	for probe := 0; len(todo) > 0; probe++ {
		if probe == maxSeriesProbes {
			return nil, fmt.Errorf("register series of %s: no free id after %d tries", table, probe)
		}
		// In id order: writers inserting overlapping sets in the same
		// order cannot deadlock on each other's rows.
		slices.SortFunc(todo, func(a, b int) int { return cmp.Compare(ids[a], ids[b]) })
		cand := make([]int64, len(todo))
		ctags := make([]string, len(todo))
		for k, i := range todo {
			cand[k], ctags[k] = ids[i], tags[i]
		}
		// Two statements: the second sees what a concurrent process
		// committed while the first waited on its conflicting row.
		if _, err := conn.Exec(ctx, `INSERT INTO `+ident+` (table_name, series_id, tags)
			SELECT $1, id, tags::jsonb FROM unnest($2::bigint[], $3::text[]) AS v(id, tags)
			ON CONFLICT DO NOTHING`, table, cand, ctags); err != nil {
			return nil, fmt.Errorf("register series of %s: %w", table, err)
		}
		mine := make([]bool, len(todo))
		rows, err := conn.Query(ctx, `SELECT v.k, s.tags = v.tags::jsonb FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS v(id, tags, k)
			JOIN `+ident+` s ON s.table_name = $1 AND s.series_id = v.id`, table, cand, ctags)
		if err != nil {
			return nil, fmt.Errorf("register series of %s: %w", table, err)
		}
		for rows.Next() {
			var k int64
			var same bool
			if err := rows.Scan(&k, &same); err != nil {
				return nil, fmt.Errorf("register series of %s: %w", table, err)
			}
			mine[k-1] = same
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("register series of %s: %w", table, err)
		}
		next := todo[:0]
		for k, i := range todo {
			if mine[k] {
				continue
			}
			// Taken by another tag set: try the next id.
			c.metrics.SeriesCollisions.Inc()
			c.log.Warn("series id taken by another tag set; using the next one", "schema", c.schema, "table", table, "series_id", ids[i])
			ids[i] = (ids[i] + 1) & (1<<63 - 1)
			next = append(next, i)
		}
		c.metrics.SeriesRegistered.Add(float64(len(todo) - len(next)))
		todo = next
	}
	return ids, nil
}

// canonicalTags appends the canonical form of a tag set to out: the tags
// sorted by key, a repeated key keeping its last value, each as key, NUL,
// value, NUL (neither holds NUL bytes). keys and vals are parallel; order
// is scratch space, returned for reuse.
func canonicalTags(out []byte, order []int, keys, vals [][]byte) ([]byte, []int) {
	order = order[:0]
	for i := range keys {
		// Insertion sort, stable: tag sets are small and nearly always
		// sorted already.
		j := len(order)
		order = append(order, i)
		for j > 0 && string(keys[order[j-1]]) > string(keys[i]) {
			order[j] = order[j-1]
			j--
		}
		order[j] = i
	}
	for n, i := range order {
		if n+1 < len(order) && string(keys[order[n+1]]) == string(keys[i]) {
			continue // the later one wins
		}
		out = append(out, keys[i]...)
		out = append(out, 0)
		out = append(out, vals[i]...)
		out = append(out, 0)
	}
	return out, order
}

// canonicalJSON turns a canonical tag set (see canonicalTags) into the JSON
// object the series table keeps.
func canonicalJSON(canon []byte) string {
	out := []byte{'{'}
	first := true
	for len(canon) > 0 {
		k := indexNUL(canon)
		key := canon[:k]
		canon = canon[k+1:]
		v := indexNUL(canon)
		val := canon[:v]
		canon = canon[v+1:]
		if !first {
			out = append(out, ',')
		}
		first = false
		out = appendJSONString(out, key)
		out = append(out, ':')
		out = appendJSONString(out, val)
	}
	return string(append(out, '}'))
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}
