package sink

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

// encoded is a range of a batch's rows in final binary COPY form, with the
// dead letters for values that did not fit.
type encoded struct {
	copySQL string
	names   []string // the COPY's columns, quoted
	rows    []byte
	spare   []byte         // inKeyOrder's
	ends    []int          // ends[i] is where encoded row i ends in rows
	dead    [][]deadLetter // dead[i]: values of batch row lo+i that went to the rejected table
	// overflowed counts values put in the overflow column.
	overflowed int
	// noFastRow makes every row take the general path (Seams.NoFastRow).
	noFastRow bool
	typedScratch
}

func (e *encoded) reset() {
	e.rows = e.rows[:0]
	e.ends = e.ends[:0]
	e.dead = e.dead[:0]
	e.overflowed = 0
}

// encodeTyped encodes rows lo..hi-1 of b into e for table t, where
// keyCols[id] is the column of key id of b, or nil for none (the overflow
// column, or the rejected table when there is none). For a table with a
// point key, pts gives each row's series id and the rows that are one
// point: they become one row, a later value of a key replacing an earlier
// one, and the encoded points are put in the order of the key (see
// pointPlan.keyOrder); pts is nil for other tables.
//
// Each row takes fastRow when it can, else the general path (generalRow),
// which also finds the values that go to the overflow column or the
// rejected table.
func encodeTyped(e *encoded, b *batch, lo, hi int, t *schema.TypedTable, keyCols []*schema.Column, pts *pointPlan) {
	e.reset()
	x := typedRows{e: e, b: b, lo: lo, t: t, pts: pts}
	x.mapColumns(keyCols)
	e.present = resize(e.present, len(e.cols)+1)
	e.pos = resize(e.pos, len(e.cols)+1)
	for range hi - lo {
		e.dead = append(e.dead, nil)
	}
	for r := lo; r < hi; r++ {
		if pts != nil && !pts.head[r-lo] {
			continue // merged into its point's first row
		}
		if e.noFastRow || !fastRow(e, b, r, lo, t, e.slot, e.cols, e.pos, pts, x.ncols, x.useOverflow) {
			x.generalRow(r)
		}
		e.ends = append(e.ends, len(e.rows))
	}
	if pts != nil {
		e.inKeyOrder(pts)
	}
}

// typedRows is what encodeTyped knows while it encodes a range of a
// batch's rows; its scratch space is in e (encoded.typedScratch), reused
// from row to row and from batch to batch.
type typedRows struct {
	e           *encoded
	b           *batch
	lo          int
	t           *schema.TypedTable
	pts         *pointPlan
	ncols       int // the COPY's columns: time, series_id, e.cols, the overflow column
	useOverflow bool
}

// typedScratch is encodeTyped's scratch space, kept in encoded.
type typedScratch struct {
	// slot[id] is the COPY column of key id: 1 and up for a column of
	// cols, -1 for the overflow column, -2 for the rejected table (its
	// column could not be added).
	slot         []int
	cols         []*schema.Column // the batch's columns, each once
	present      []int            // index in vals of the value for each column, or -1
	pos          []int            // for fastRow
	vals         []typedValue     // the values of the row (and its point's later rows)
	valRow       []int            // the batch row each value of vals came from
	over, failed []int            // indexes in vals
	lw           lineWriter
}

// mapColumns finds the COPY column of each key of the batch, and the
// COPY statement: time first, series_id for a point, then each column the
// batch uses once, then the overflow column when some key goes there.
func (x *typedRows) mapColumns(keyCols []*schema.Column) {
	b, t, e := x.b, x.t, x.e
	e.slot = resize(e.slot, len(b.keys))
	clear(e.cols)
	e.cols = e.cols[:0]
	index := make(map[*schema.Column]int)
	for id := range b.keys {
		c := keyCols[id]
		if c == nil {
			e.slot[id] = -1
			continue
		}
		i, ok := index[c]
		if !ok {
			i = len(e.cols) + 1
			index[c] = i
			e.cols = append(e.cols, c)
		}
		e.slot[id] = i
	}
	for id, s := range e.slot {
		if s != -1 {
			continue
		}
		if _, failed := t.Failed[b.keys[id].Key]; failed {
			e.slot[id] = -2 // to the rejected table, never the overflow column
		} else if t.Overflow != nil {
			x.useOverflow = true
		}
	}
	names := make([]string, 0, len(e.cols)+3)
	names = append(names, pgx.Identifier{"time"}.Sanitize())
	if x.pts != nil {
		names = append(names, pgx.Identifier{schema.SeriesColumn}.Sanitize())
		if x.pts.nanos {
			names = append(names, pgx.Identifier{schema.NanosColumn}.Sanitize())
		}
	}
	for _, c := range e.cols {
		names = append(names, pgx.Identifier{c.Name}.Sanitize())
	}
	if x.useOverflow {
		names = append(names, pgx.Identifier{schema.OverflowColumn}.Sanitize())
	}
	x.e.names = names
	x.e.copySQL = "COPY " + t.Ident + " (" + strings.Join(names, ", ") + ") FROM STDIN (FORMAT binary)"
	x.ncols = len(names)
}

// generalRow encodes row r (with, for a point, its later rows) value by
// value: each goes to its column when it fits, else to the rejected table;
// keys without a column go to the overflow column or the rejected table.
func (x *typedRows) generalRow(r int) {
	e, pts := x.e, x.pts
	ts := x.decodePoint(r)
	x.sortValues()
	e.rows = appendInt16(e.rows, int16(x.ncols))
	e.rows = appendTimeAs(e.rows, x.t.TimeType, ts)
	if pts != nil {
		e.rows = pts.appendKey(e.rows, r-x.lo)
	}
	for i := 1; i < len(e.cols)+1; i++ {
		x.appendColumn(r, ts, i)
	}
	x.appendOverflowed(r, ts)
	for _, j := range e.failed {
		k := x.b.keys[e.vals[j].key]
		x.reject(r, ts, ReasonColumnFailed, k.Role()+" "+quoteKey(k.Name)+": "+x.t.Failed[k.Key], j)
	}
}

// decodePoint decodes row r, and for a point its later rows after it,
// into x.vals (x.valRow saying which row each value came from), and
// returns the row's time.
func (x *typedRows) decodePoint(r int) (ts int64) {
	b, e := x.b, x.e
	start := 0
	if r > 0 {
		start = b.ends[r-1]
	}
	ts, vs := decodeTypedRow(b.buf[start:b.ends[r]], e.vals[:0])
	e.valRow = e.valRow[:0]
	for range vs {
		e.valRow = append(e.valRow, r)
	}
	if x.pts != nil {
		// The later rows of the point: their values come after, and a
		// later value of a key wins (see sortValues).
		for k := x.pts.next[r-x.lo]; k >= 0; k = x.pts.next[k] {
			rr := x.lo + int(k)
			_, vs = decodeTypedRow(b.buf[b.ends[rr-1]:b.ends[rr]], vs)
			for len(e.valRow) < len(vs) {
				e.valRow = append(e.valRow, rr)
			}
		}
	}
	e.vals = vs
	return ts
}

// sortValues finds, for each value of x.vals, where it goes: the value of
// each column (a repeated key: the last one wins), and the values for the
// overflow column or the rejected table.
func (x *typedRows) sortValues() {
	e := x.e
	for i := range e.present {
		e.present[i] = -1
	}
	e.over, e.failed = e.over[:0], e.failed[:0]
	for j, tv := range e.vals {
		switch s := e.slot[tv.key]; s {
		case -1:
			e.over = append(e.over, j)
		case -2:
			e.failed = append(e.failed, j)
		default:
			e.present[s] = j
		}
	}
}

// appendColumn appends COPY column i (of x.cols, from 1) of row r: its
// value, or NULL when the row has none or it does not fit the column (it
// goes to the rejected table).
func (x *typedRows) appendColumn(r int, ts int64, i int) {
	e := x.e
	j := e.present[i]
	if j < 0 {
		e.rows = appendInt32(e.rows, -1)
		return
	}
	c := e.cols[i-1]
	v := &e.vals[j].v
	// The common cases inline: a float into double precision, a tag or
	// string into unbounded text.
	switch {
	case v.kind == parse.Float && c.Type.OID == schema.OIDFloat8:
		e.rows = append(e.rows, 0, 0, 0, 8)
		e.rows = binary.BigEndian.AppendUint64(e.rows, v.num)
		return
	case (v.kind == kindTag || v.kind == parse.String) && c.Type.OID == schema.OIDText:
		e.rows = appendInt32(e.rows, int32(len(v.str)))
		e.rows = append(e.rows, v.str...)
		return
	}
	var cf *conflict
	e.rows, cf = appendValue(e.rows, c.Type, *v)
	if cf == nil {
		return
	}
	e.rows = appendInt32(e.rows, -1)
	k := x.b.keys[e.vals[j].key]
	detail := k.Role() + " " + quoteKey(k.Name) + " into column " + quoteKey(c.Name) + ": " + cf.detail
	if k.Tag {
		// The row lands without the tag; the rejected table gets the
		// whole line.
		x.reject(r, ts, cf.reason, detail, -1)
	} else {
		x.reject(r, ts, cf.reason, detail, j)
	}
}

// appendOverflowed appends the overflow column of row r, when the batch
// has one; without it, the values that have no column go to the rejected
// table.
func (x *typedRows) appendOverflowed(r int, ts int64) {
	e := x.e
	switch {
	case x.useOverflow && len(e.over) == 0:
		e.rows = appendInt32(e.rows, -1)
	case x.useOverflow:
		ov := make([]typedValue, len(e.over))
		for i, j := range e.over {
			ov[i] = e.vals[j]
		}
		e.rows = appendOverflow(e.rows, x.b, ov)
		e.overflowed += len(e.over)
	default:
		for _, j := range e.over {
			k := x.b.keys[e.vals[j].key]
			x.reject(r, ts, ReasonOverflow, k.Role()+" "+quoteKey(k.Name)+": the table is at --max-columns", j)
		}
	}
}

// reject puts a dead letter for row r in x.e.dead: the whole line, or,
// when only is not negative, only the field x.vals[only]. A rejected value
// belongs to the row (the request) it came from; a rejected tag to the
// point's first row.
func (x *typedRows) reject(r int, ts int64, reason, detail string, only int) {
	b, e := x.b, x.e
	from := r
	if only >= 0 {
		from = e.valRow[only]
	}
	d := deadLetter{origin: b.origin(from), measurement: b.measurement, reason: reason, detail: detail}
	d.line = rowLine(&e.lw, b, e.vals, ts, only)
	e.dead[from-x.lo] = append(e.dead[from-x.lo], d)
}

func quoteKey(s string) string { return pgx.Identifier{s}.Sanitize() }

// appendOverflow appends the jsonb of the overflow column:
// {"tags": {...}, "fields": {...}} with the values that had no column.
func appendOverflow(b []byte, bt *batch, over []typedValue) []byte {
	b, at := beginValue(b)
	b = append(b, jsonbVersion, '{')
	groups := 0
	for _, tags := range []bool{true, false} {
		n := 0
		for _, tv := range over {
			k := bt.keys[tv.key]
			if k.Tag != tags {
				continue
			}
			if n == 0 {
				if groups > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, []byte(schema.Key{Tag: tags}.Role()+"s"))
				b = append(b, ':', '{')
				groups++
			} else {
				b = append(b, ',')
			}
			n++
			b = appendJSONString(b, []byte(k.Name))
			b = append(b, ':')
			if tags {
				b = appendJSONString(b, tv.v.str)
			} else {
				f := parse.Field{Kind: tv.v.kind, Num: tv.v.num, Str: tv.v.str}
				b = appendJSONValue(b, &f)
			}
		}
		if n > 0 {
			b = append(b, '}')
		}
	}
	b = append(b, '}')
	return endValue(b, at)
}

// rowLine writes a row as a line of line protocol: its tags and every
// field, or, when only is not negative, only the field vals[only].
func rowLine(lw *lineWriter, b *batch, vals []typedValue, ts int64, only int) []byte {
	lw.start(b.measurement)
	for i, tv := range vals {
		if k := b.keys[tv.key]; k.Tag && !slices.ContainsFunc(vals[:i], func(o typedValue) bool { return o.key == tv.key }) {
			lw.tag([]byte(k.Name), tv.v.str)
		}
	}
	first := true
	for i, tv := range vals {
		k := b.keys[tv.key]
		if k.Tag || (only >= 0 && i != only) {
			continue
		}
		lw.field(first, []byte(k.Name), tv.v)
		first = false
	}
	return lw.end(ts)
}
