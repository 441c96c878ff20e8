package sink

import (
	"cmp"
	"context"
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/sink/schema"
)

// pointPlan is what a writer learns of rows lo..hi-1 of a batch bound for
// a table with a point key: each row's series id, and which rows are one
// point. Indexes are relative to lo.
type pointPlan struct {
	sids []int64    // series id of each row
	head []bool     // the row is the first of its point
	next []int32    // the next row of the same point, or -1
	tail []int32    // for a head, the last row of its point so far
	rows int        // points: rows once merged
	keys []pointKey // the points, in the order of the point key (see keyOrder)
	// reordered: keys are not in the order the points came.
	reordered bool
	// subres: of the rows merged, those that were points apart in
	// nanoseconds (see countSubresolution).
	subres int
	// nanos says the point key includes the nanoseconds beyond the
	// microsecond (schema.NanosColumn), ns each row's.
	nanos bool
	ns    []uint16

	// Scratch space, reused from batch to batch.
	canon      []byte
	canonEnds  []int
	order      []int
	tk, tv     [][]byte
	keyBytes   [][]byte
	micros     []int64 // each row's time as its column keeps it
	slots      []int32 // open addressing: the first row of a point, or -1
	miss       []int
	buckets    []int32 // sortBySID's
	bucketNext []int32
	keysWas    []pointKey
	times      []int64 // countSubresolution's
}

// pointKey is a point's key (its time as its column keeps it, and its
// series id) and its place among the points as they came.
type pointKey struct {
	micros, sid int64
	ord         int32
	ns          uint16 // the nanoseconds beyond micros, in a table that keeps them; else 0
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
// each row's tag set and time (readRows), each tag set's series id,
// registering new ones (seriesIDs), and groups the rows that are one
// point, in arrival order (group), counting those merged only for the
// time column's resolution (countSubresolution). nanos says the table's
// point key includes the nanoseconds beyond the microsecond: rows apart by
// less than a microsecond are then points apart.
func (s *Sink) planPoints(ctx context.Context, conn *pgx.Conn, pp *pointPlan, b *batch, lo, hi int, table string, timeType schema.Type, nanos bool) error {
	columns := s.cfg.Storage == StorageColumns
	pp.nanos = nanos
	pp.readRows(b, lo, hi, timeType.TimeUnit(), columns)
	if err := s.seriesIDs(ctx, conn, pp, hi-lo, table, columns); err != nil {
		return err
	}
	pp.group(hi - lo)
	pp.countSubresolution(b, lo, hi-lo, columns)
	pp.keyOrder(hi - lo)
	return nil
}

// readRows reads the canonical tag set (pp.canon, see canonicalTags; the
// tags object's text in jsonb storage) and the time of each row, the time
// floored to unit microseconds as the time column keeps it: rows apart by
// less are one point.
func (pp *pointPlan) readRows(b *batch, lo, hi int, unit int64, columns bool) {
	pp.canon, pp.canonEnds = pp.canon[:0], pp.canonEnds[:0]
	if columns {
		pp.keyBytes = pp.keyBytes[:0]
		for _, k := range b.keys {
			pp.keyBytes = append(pp.keyBytes, []byte(k.Name))
		}
	}
	micros := pp.micros[:0]
	pp.ns = pp.ns[:0]
	for r := lo; r < hi; r++ {
		row := b.rowBytes(r, r+1)
		if pp.nanos {
			pp.ns = append(pp.ns, subMicro(b, r, columns))
		}
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
	pp.micros = micros
}

// canonOf returns the canonical tag set of row k.
func (pp *pointPlan) canonOf(k int) []byte {
	start := 0
	if k > 0 {
		start = pp.canonEnds[k-1]
	}
	return pp.canon[start:pp.canonEnds[k]]
}

// seriesIDs sets pp.sids: the series id of each of n rows' tag sets, from
// the table's cache, else from the series table, registering new ones.
func (s *Sink) seriesIDs(ctx context.Context, conn *pgx.Conn, pp *pointPlan, n int, table string, columns bool) error {
	pp.sids = resize(pp.sids, n)
	sc := s.catalog.Series(table)
	pp.miss = sc.Lookup(n, pp.canonOf, pp.sids, pp.miss[:0])
	if len(pp.miss) == 0 {
		return nil
	}
	uniq := make(map[string]int)
	var tags []string
	for _, k := range pp.miss {
		c := string(pp.canonOf(k))
		if _, ok := uniq[c]; !ok {
			uniq[c] = len(tags)
			if columns {
				tags = append(tags, canonicalJSON(pp.canonOf(k)))
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
		pp.sids[k] = ids[uniq[string(pp.canonOf(k))]]
	}
	return nil
}

// group finds the rows of each point (a series and a time, and the
// nanoseconds in a table that keeps them) among n rows:
// an open-addressing table of each point's first row, at most half full.
func (pp *pointPlan) group(n int) {
	micros := pp.micros
	pp.head = resize(pp.head, n)
	pp.next = resize(pp.next, n)
	pp.tail = resize(pp.tail, n)
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
		sid, us, ns := pp.sids[k], micros[k], pp.nsOf(k)
		t := uint64(us)
		if pp.nanos {
			t = t*1000 + uint64(ns)
		}
		h := (uint64(sid) ^ t*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
		for i := (h ^ h>>31) & mask; ; i = (i + 1) & mask {
			first := pp.slots[i]
			if first < 0 {
				pp.slots[i] = int32(k)
				pp.head[k], pp.tail[k] = true, int32(k)
				pp.rows++
				break
			}
			if pp.sids[first] == sid && micros[first] == us && pp.nsOf(int(first)) == ns {
				pp.head[k] = false
				pp.next[pp.tail[first]] = int32(k)
				pp.tail[first] = int32(k)
				break
			}
		}
	}
}

// keyOrder sets pp.keys: the points of n rows in the order of the point
// key, (time, series_id) or (time, series_id, time_ns), the order of the
// table's unique index. A COPY in that order adds each key next to the
// one before, at the right end of the index while time rises, where rows
// in the order they came go all over its last pages (the lines of one
// time come in no order of series id): the server spends less per row
// (see docs/benchmarks.md). Points
// already in order are not sorted; times that rise, as they nearly always
// do within a batch, only need each time's points sorted by series id.
// The rows are encoded as they came, reading the batch in order, and the
// encoded rows then put in key order (encoded.inKeyOrder): reading the
// batch's rows out of order costs the writer more than copying.
func (pp *pointPlan) keyOrder(n int) {
	keys := pp.keys[:0]
	sorted, rising := true, true
	for k := range n {
		if !pp.head[k] {
			continue
		}
		pk := pointKey{micros: pp.micros[k], sid: pp.sids[k], ord: int32(len(keys)), ns: pp.nsOf(k)}
		if len(keys) > 0 {
			last := &keys[len(keys)-1]
			rising = rising && last.micros <= pk.micros
			sorted = sorted && (last.micros < pk.micros || last.micros == pk.micros && (last.sid < pk.sid || last.sid == pk.sid && last.ns < pk.ns))
		}
		keys = append(keys, pk)
	}
	pp.keys, pp.reordered = keys, !sorted
	switch {
	case sorted:
	case rising:
		for a := 0; a < len(keys); {
			b := a + 1
			for b < len(keys) && keys[b].micros == keys[a].micros {
				b++
			}
			pp.sortBySID(keys[a:b])
			a = b
		}
	default:
		slices.SortFunc(keys, comparePointKeys)
	}
}

// sortBySID sorts keys of one time by series id: a few by insertion,
// more by a counting sort on the ids' top bits into about one bucket for
// two keys, then each bucket by insertion. Series ids are hashes, spread
// evenly: two passes over the keys and a few moves each. A bucket that
// gets more than its share is sorted by pdqsort.
func (pp *pointPlan) sortBySID(keys []pointKey) {
	if len(keys) <= 16 {
		insertBySID(keys)
		return
	}
	// A key's bucket is its id's place between the least and the most
	// (ids of tables converted by hand may be negative), in its top bits.
	least, most := keys[0].sid, keys[0].sid
	for _, k := range keys {
		least, most = min(least, k.sid), max(most, k.sid)
	}
	width := min(bits.Len(uint(len(keys)/2)), 16) // bits of bucket number
	shift := max(bits.Len64(uint64(most)-uint64(least))-width, 0)
	bucket := func(sid int64) uint64 { return (uint64(sid) - uint64(least)) >> shift }
	starts := resize(pp.buckets, 1<<width+1)
	clear(starts)
	for _, k := range keys {
		starts[bucket(k.sid)+1]++
	}
	for i := 1; i < len(starts); i++ {
		starts[i] += starts[i-1]
	}
	was := append(pp.keysWas[:0], keys...)
	next := append(pp.bucketNext[:0], starts[:len(starts)-1]...)
	for _, k := range was {
		b := bucket(k.sid)
		keys[next[b]] = k
		next[b]++
	}
	for b := range len(starts) - 1 {
		switch bucket := keys[starts[b]:starts[b+1]]; {
		case len(bucket) > 64:
			slices.SortFunc(bucket, comparePointKeys)
		case len(bucket) > 1:
			insertBySID(bucket)
		}
	}
	pp.buckets, pp.bucketNext, pp.keysWas = starts, next, was
}

// insertBySID sorts a few keys of one time by series id (and
// nanoseconds).
func insertBySID(keys []pointKey) {
	for i := 1; i < len(keys); i++ {
		k, j := keys[i], i
		for ; j > 0 && (keys[j-1].sid > k.sid || keys[j-1].sid == k.sid && keys[j-1].ns > k.ns); j-- {
			keys[j] = keys[j-1]
		}
		keys[j] = k
	}
}

// comparePointKeys orders point keys as the table's index does: by time,
// series id, then nanoseconds. Two points never have the same key.
func comparePointKeys(a, b pointKey) int {
	if a.micros != b.micros {
		return cmp.Compare(a.micros, b.micros)
	}
	if a.sid != b.sid {
		return cmp.Compare(a.sid, b.sid)
	}
	return cmp.Compare(a.ns, b.ns)
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

// inKeyOrder puts e.rows, the points encoded as they came (their ends in
// e.ends), in the order of pp.keys, when that differs.
func (e *encoded) inKeyOrder(pp *pointPlan) {
	if !pp.reordered {
		return
	}
	out := e.spare[:0]
	for _, pk := range pp.keys {
		start := 0
		if pk.ord > 0 {
			start = e.ends[pk.ord-1]
		}
		out = append(out, e.rows[start:e.ends[pk.ord]]...)
	}
	e.rows, e.spare = out, e.rows
}
