package schema

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

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

// SeriesTable is the schema's table of series ids.
const SeriesTable = "pginflux_series"

// SeriesColumn is the column holding a row's series id.
const SeriesColumn = "series_id"

// maxSeriesProbes bounds the ids tried for one tag set: a collision of 63
// bits of SHA-256 is never expected, so more than a few means something
// else is wrong.
const maxSeriesProbes = 64

// maxCachedSeries bounds the series ids a sink keeps in memory per table;
// past it, the cache starts again (ids are looked up in the series table).
const maxCachedSeries = 1 << 20

// seriesHash proposes the id of a tag set: 63 bits of its SHA-256, or
// what Config.SeriesHash says in a test.
func (c *Catalog) seriesHash(tagsJSON []byte) int64 {
	if c.testSeriesHash != nil {
		return c.testSeriesHash(tagsJSON)
	}
	sum := sha256.Sum256(tagsJSON)
	return int64(binary.BigEndian.Uint64(sum[:]) >> 1)
}

// Series maps the tag sets of one table, each in a canonical form the
// sink chooses, to their ids: a cache of the series table. Safe for
// concurrent use.
type Series struct {
	mu  sync.RWMutex
	ids map[string]int64
}

// Lookup sets ids[k] to the id of tag set key(k), for each k below n that
// the cache knows, and appends the others to miss, which it returns.
func (s *Series) Lookup(n int, key func(k int) []byte, ids []int64, miss []int) []int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k := range n {
		if id, ok := s.ids[string(key(k))]; ok {
			ids[k] = id
		} else {
			miss = append(miss, k)
		}
	}
	return miss
}

// Store remembers ids from RegisterSeries: uniq maps each canonical tag
// set to its index in ids. Past maxCachedSeries the cache starts again.
func (s *Series) Store(uniq map[string]int, ids []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids)+len(uniq) > maxCachedSeries {
		clear(s.ids)
	}
	for c, j := range uniq {
		s.ids[c] = ids[j]
	}
}

// Series returns the cache of a table's series ids.
func (c *Catalog) Series(table string) *Series {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := c.series[table]
	if sc == nil {
		sc = &Series{ids: make(map[string]int64)}
		c.series[table] = sc
	}
	return sc
}

// seriesReady makes sure the series table exists, once.
func (c *Catalog) seriesReady(ctx context.Context, conn *pgx.Conn) error {
	c.mu.Lock()
	ready := c.seriesMade
	c.mu.Unlock()
	if ready {
		return nil
	}
	ident := pgx.Identifier{c.schema, SeriesTable}.Sanitize()
	_, err := c.createOwn(ctx, conn, SeriesTable, func(tx pgx.Tx) error {
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

// RegisterSeries returns the ids of tag sets of a table (each a JSON
// object with sorted keys), registering the new ones. An id found taken by
// another tag set is never shared: the next number is tried.
func (c *Catalog) RegisterSeries(ctx context.Context, conn *pgx.Conn, table string, tags []string) ([]int64, error) {
	if err := c.seriesReady(ctx, conn); err != nil {
		return nil, err
	}
	ident := pgx.Identifier{c.schema, SeriesTable}.Sanitize()
	ids := make([]int64, len(tags))
	found := make([]bool, len(tags))

	// Tag sets registered before, under whatever id: one probe of the
	// index on tags each (LATERAL ... OFFSET 0 keeps the planner from
	// hashing the whole series table instead, which costs as much as the
	// table is large, for each batch that brings new series).
	rows, err := conn.Query(ctx, `SELECT v.i, s.series_id FROM unnest($2::text[]) WITH ORDINALITY AS v(tags, i)
		CROSS JOIN LATERAL (SELECT series_id FROM `+ident+` s WHERE s.tags = v.tags::jsonb AND s.table_name = $1 OFFSET 0) s`, table, tags)
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
			ids[i] = c.seriesHash([]byte(tags[i]))
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
		mine, err := insertSeries(ctx, conn, ident, table, cand, ctags)
		if err != nil {
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

// insertSeries registers the candidate ids cand of tag sets tags in the
// series table ident, where free, and reports which of them are now the
// ids of their own tag set (mine[k]), not of another's. The INSERT says
// which ids it took; only the others (taken already, or proposed twice)
// are read back, by a second statement that sees what a concurrent
// process committed while the first waited on its conflicting row.
func insertSeries(ctx context.Context, conn *pgx.Conn, ident, table string, cand []int64, tags []string) (mine []bool, err error) {
	rows, err := conn.Query(ctx, `INSERT INTO `+ident+` (table_name, series_id, tags)
		SELECT $1, id, tags::jsonb FROM unnest($2::bigint[], $3::text[]) AS v(id, tags)
		ON CONFLICT DO NOTHING RETURNING series_id`, table, cand, tags)
	if err != nil {
		return nil, err
	}
	took := make(map[int64]bool, len(cand))
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		took[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	proposed := make(map[int64]int, len(cand))
	for _, id := range cand {
		proposed[id]++
	}
	mine = make([]bool, len(cand))
	var check []int // indexes into cand to read back
	for k, id := range cand {
		if took[id] && proposed[id] == 1 {
			mine[k] = true
		} else {
			check = append(check, k)
		}
	}
	if len(check) == 0 {
		return mine, nil
	}
	ids, texts := make([]int64, len(check)), make([]string, len(check))
	for j, k := range check {
		ids[j], texts[j] = cand[k], tags[k]
	}
	back, err := conn.Query(ctx, `SELECT v.j, s.tags = v.tags::jsonb FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS v(id, tags, j)
		CROSS JOIN LATERAL (SELECT tags FROM `+ident+` s WHERE s.table_name = $1 AND s.series_id = v.id OFFSET 0) s`, table, ids, texts)
	if err != nil {
		return nil, err
	}
	for back.Next() {
		var j int64
		var same bool
		if err := back.Scan(&j, &same); err != nil {
			return nil, err
		}
		mine[check[j-1]] = same
	}
	return mine, back.Err()
}
