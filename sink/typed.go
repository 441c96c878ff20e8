package sink

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

// In columns storage a batch cannot hold final COPY rows: which columns a
// row fills, and their types, are known only once the writer has looked
// at (and perhaps added to) the table. So the Batcher appends rows in a
// compact form of its own, with keys replaced by numbers from the batch's
// key list, and the writer encodes them against the table when it writes.
//
//	row:   int64 time (Unix ns) | uint32 value count | values
//	value: uint32 key id | uint8 kind | 8 bytes (numbers, booleans)
//	                                  | uint32 length + bytes (strings, tag values)
//
// A tag value has kind kindTag.
const kindTag parse.Kind = 0

// keyID returns the number of a key in b's key list, adding it when new.
func (b *batch) keyID(tag bool, key []byte, kind parse.Kind) uint32 {
	ids := b.fieldIDs
	if tag {
		ids = b.tagIDs
	}
	id, ok := ids[string(key)]
	if !ok {
		id = uint32(len(b.keys))
		b.keys = append(b.keys, schema.BatchKey{Key: schema.Key{Name: string(key), Tag: tag}})
		ids[b.keys[id].Name] = id
		b.keys[id].First = kind
	}
	b.keys[id].Counts[kind]++
	return id
}

// seqID returns the key id of value i of a line: lines of one measurement
// nearly always repeat the keys of the line before in the same order, so
// the id that value i had then is tried first, before the map.
func (b *batch) seqID(i int, tag bool, key []byte, kind parse.Kind) uint32 {
	if i < len(b.lastSeq) {
		if id := b.lastSeq[i]; int(id) < len(b.keys) {
			if k := &b.keys[id]; k.Tag == tag && k.Name == string(key) {
				k.Counts[kind]++
				return id
			}
		}
	}
	id := b.keyID(tag, key, kind)
	if i < len(b.lastSeq) {
		b.lastSeq[i] = id
	} else {
		b.lastSeq = append(b.lastSeq, id)
	}
	return id
}

func (b *batch) appendTypedRow(p *parse.Point) {
	if b.tagIDs == nil {
		b.tagIDs = make(map[string]uint32)
		b.fieldIDs = make(map[string]uint32)
	}
	buf := binary.BigEndian.AppendUint64(b.buf, uint64(p.Time))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(p.Tags)+len(p.Fields)))
	for i := range p.Tags {
		t := &p.Tags[i]
		buf = binary.BigEndian.AppendUint32(buf, b.seqID(i, true, t.Key, kindTag))
		buf = append(buf, byte(kindTag))
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(t.Value)))
		buf = append(buf, t.Value...)
	}
	for i := range p.Fields {
		f := &p.Fields[i]
		buf = binary.BigEndian.AppendUint32(buf, b.seqID(len(p.Tags)+i, false, f.Key, f.Kind))
		buf = append(buf, byte(f.Kind))
		if f.Kind == parse.String {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(f.Str)))
			buf = append(buf, f.Str...)
		} else {
			buf = binary.BigEndian.AppendUint64(buf, f.Num)
		}
	}
	b.buf = buf
}

// typedValue is one value of a decoded compact row.
type typedValue struct {
	key uint32
	v   value
}

// decodeTypedRow reads the compact row at buf, appending its values to vals.
func decodeTypedRow(buf []byte, vals []typedValue) (unixNanos int64, _ []typedValue) {
	unixNanos = int64(binary.BigEndian.Uint64(buf))
	n := int(binary.BigEndian.Uint32(buf[8:]))
	i := 12
	for range n {
		tv := typedValue{key: binary.BigEndian.Uint32(buf[i:])}
		tv.v.kind = parse.Kind(buf[i+4])
		i += 5
		if tv.v.kind == kindTag || tv.v.kind == parse.String {
			l := int(binary.BigEndian.Uint32(buf[i:]))
			tv.v.str = buf[i+4 : i+4+l]
			i += 4 + l
		} else {
			tv.v.num = binary.BigEndian.Uint64(buf[i:])
			i += 8
		}
		vals = append(vals, tv)
	}
	return unixNanos, vals
}

// encoded is a range of a batch's rows in final binary COPY form, with the
// dead letters for values that did not fit.
type encoded struct {
	copySQL string
	names   []string // the COPY's columns, quoted
	rows    []byte
	ends    []int          // ends[i] is where encoded row i ends in rows
	dead    [][]deadLetter // dead[i]: values of batch row lo+i that went to the rejected table
	// overflowed counts values put in the overflow column.
	overflowed int
	// noFastRow makes every row take the general path (Seams.NoFastRow).
	noFastRow bool
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
// one; pts is nil for other tables.
func encodeTyped(e *encoded, b *batch, lo, hi int, t *schema.TypedTable, keyCols []*schema.Column, pts *pointPlan) {
	e.reset()
	// Which COPY column, if any, each key of the batch goes to: the
	// columns list holds time first, then each column the batch uses once.
	slot := make([]int, len(b.keys)) // -1: overflow; -2: rejected, the column failed
	var cols []*schema.Column
	index := make(map[*schema.Column]int)
	for id := range b.keys {
		c := keyCols[id]
		if c == nil {
			slot[id] = -1
			continue
		}
		i, ok := index[c]
		if !ok {
			i = len(cols) + 1
			index[c] = i
			cols = append(cols, c)
		}
		slot[id] = i
	}
	useOverflow := false
	for id, s := range slot {
		if s != -1 {
			continue
		}
		if _, failed := t.Failed[b.keys[id].Key]; failed {
			slot[id] = -2 // to the rejected table, never the overflow column
		} else if t.Overflow != nil {
			useOverflow = true
		}
	}
	names := make([]string, 0, len(cols)+3)
	names = append(names, pgx.Identifier{"time"}.Sanitize())
	if pts != nil {
		names = append(names, pgx.Identifier{schema.SeriesColumn}.Sanitize())
	}
	for _, c := range cols {
		names = append(names, pgx.Identifier{c.Name}.Sanitize())
	}
	if useOverflow {
		names = append(names, pgx.Identifier{schema.OverflowColumn}.Sanitize())
	}
	e.names = names
	e.copySQL = "COPY " + t.Ident + " (" + strings.Join(names, ", ") + ") FROM STDIN (FORMAT binary)"

	ncols := len(names)
	present := make([]int, len(cols)+1) // index in vals of the value for each column, or -1
	pos := make([]int, len(cols)+1)     // for fastRow
	var vals []typedValue
	var valRow []int // the batch row each value of vals came from
	var lw lineWriter
	for range hi - lo {
		e.dead = append(e.dead, nil)
	}
	for r := lo; r < hi; r++ {
		if pts != nil && !pts.head[r-lo] {
			continue // merged into its point's first row
		}
		if !e.noFastRow && fastRow(e, b, r, lo, t, slot, cols, pos, pts, ncols, useOverflow) {
			e.ends = append(e.ends, len(e.rows))
			continue
		}
		start := 0
		if r > 0 {
			start = b.ends[r-1]
		}
		ts, vs := decodeTypedRow(b.buf[start:b.ends[r]], vals[:0])
		valRow = valRow[:0]
		for range vs {
			valRow = append(valRow, r)
		}
		if pts != nil {
			// The later rows of the point: their values come after, and
			// a later value of a key wins below.
			for k := pts.next[r-lo]; k >= 0; k = pts.next[k] {
				rr := lo + int(k)
				_, vs = decodeTypedRow(b.buf[b.ends[rr-1]:b.ends[rr]], vs)
				for len(valRow) < len(vs) {
					valRow = append(valRow, rr)
				}
			}
		}
		vals = vs
		for i := range present {
			present[i] = -1
		}
		var over, failed []int
		for j, tv := range vals {
			switch s := slot[tv.key]; s {
			case -1:
				over = append(over, j)
			case -2:
				failed = append(failed, j)
			default:
				present[s] = j // a repeated key: the last wins
			}
		}
		// A rejected value belongs to the row (the request) it came
		// from; a rejected tag to the point's first row.
		rejectLine := func(reason, detail string, only int) {
			from := r
			if only >= 0 {
				from = valRow[only]
			}
			d := deadLetter{origin: b.origin(from), measurement: b.measurement, reason: reason, detail: detail}
			d.line = rowLine(&lw, b, vals, ts, only)
			e.dead[from-lo] = append(e.dead[from-lo], d)
		}
		e.rows = appendInt16(e.rows, int16(ncols))
		e.rows = appendTimeAs(e.rows, t.TimeType, ts)
		if pts != nil {
			e.rows = appendInt32(e.rows, 8)
			e.rows = binary.BigEndian.AppendUint64(e.rows, uint64(pts.sids[r-lo]))
		}
		for i := 1; i < len(cols)+1; i++ {
			j := present[i]
			if j < 0 {
				e.rows = appendInt32(e.rows, -1)
				continue
			}
			c := cols[i-1]
			v := &vals[j].v
			// The common cases inline: a float into double precision, a
			// tag or string into unbounded text.
			switch {
			case v.kind == parse.Float && c.Type.OID == schema.OIDFloat8:
				e.rows = append(e.rows, 0, 0, 0, 8)
				e.rows = binary.BigEndian.AppendUint64(e.rows, v.num)
				continue
			case (v.kind == kindTag || v.kind == parse.String) && c.Type.OID == schema.OIDText:
				e.rows = appendInt32(e.rows, int32(len(v.str)))
				e.rows = append(e.rows, v.str...)
				continue
			}
			var cf *conflict
			e.rows, cf = appendValue(e.rows, c.Type, *v)
			if cf != nil {
				e.rows = appendInt32(e.rows, -1)
				k := b.keys[vals[j].key]
				detail := k.Role() + " " + quoteKey(k.Name) + " into column " + quoteKey(c.Name) + ": " + cf.detail
				if k.Tag {
					// The row lands without the tag; the rejected
					// table gets the whole line.
					rejectLine(cf.reason, detail, -1)
				} else {
					rejectLine(cf.reason, detail, j)
				}
			}
		}
		switch {
		case useOverflow && len(over) == 0:
			e.rows = appendInt32(e.rows, -1)
		case useOverflow:
			ov := make([]typedValue, len(over))
			for i, j := range over {
				ov[i] = vals[j]
			}
			e.rows = appendOverflow(e.rows, b, ov)
			e.overflowed += len(over)
		default:
			for _, j := range over {
				k := b.keys[vals[j].key]
				rejectLine(ReasonOverflow, k.Role()+" "+quoteKey(k.Name)+": the table is at --max-columns", j)
			}
		}
		for _, j := range failed {
			k := b.keys[vals[j].key]
			rejectLine(ReasonColumnFailed, k.Role()+" "+quoteKey(k.Name)+": "+t.Failed[k.Key], j)
		}
		e.ends = append(e.ends, len(e.rows))
	}
}

// fastRow encodes row r of b (with, for a point, its later rows) as
// encodeTyped does, for the common row: every value has a column and each
// column takes its value as it is. It copies values from the compact rows
// to the COPY row without decoding them into typedValues: a float's eight
// bytes and a string's length word and bytes are already in their binary
// COPY form there. It reports false, having appended nothing, for any
// other row, which takes the general path. pos is scratch space, a slot
// per column.
func fastRow(e *encoded, b *batch, r, lo int, t *schema.TypedTable, slot []int, cols []*schema.Column, pos []int, pts *pointPlan, ncols int, useOverflow bool) bool {
	for i := range pos {
		pos[i] = -1
	}
	buf := b.buf
	start := 0
	if r > 0 {
		start = b.ends[r-1]
	}
	ts := int64(binary.BigEndian.Uint64(buf[start:]))
	// Where each column's value is: its kind byte's offset in buf. The
	// later rows of a point come after, and a later value of a key wins.
	for k, row := int32(-1), r; ; {
		i := start + 12
		for range binary.BigEndian.Uint32(buf[start+8:]) {
			s := slot[binary.BigEndian.Uint32(buf[i:])]
			if s < 1 {
				return false // the overflow column, or the rejected table
			}
			pos[s] = i + 4
			if kind := parse.Kind(buf[i+4]); kind == kindTag || kind == parse.String {
				i += 9 + int(binary.BigEndian.Uint32(buf[i+5:]))
			} else {
				i += 13
			}
		}
		if pts == nil {
			break
		}
		if k == -1 {
			k = pts.next[row-lo]
		} else {
			k = pts.next[k]
		}
		if k < 0 {
			break
		}
		row = lo + int(k)
		start = b.ends[row-1]
	}
	rowStart := len(e.rows)
	out := appendInt16(e.rows, int16(ncols))
	out = appendTimeAs(out, t.TimeType, ts)
	if pts != nil {
		out = appendInt32(out, 8)
		out = binary.BigEndian.AppendUint64(out, uint64(pts.sids[r-lo]))
	}
	for i, c := range cols {
		p := pos[i+1]
		if p < 0 {
			out = appendInt32(out, -1)
			continue
		}
		kind := parse.Kind(buf[p])
		switch {
		case kind == parse.Float && c.Type.OID == schema.OIDFloat8:
			out = append(out, 0, 0, 0, 8)
			out = append(out, buf[p+1:p+9]...)
			continue
		case (kind == kindTag || kind == parse.String) && c.Type.OID == schema.OIDText:
			out = append(out, buf[p+1:p+5+int(binary.BigEndian.Uint32(buf[p+1:]))]...)
			continue
		}
		v := value{kind: kind}
		if kind == kindTag || kind == parse.String {
			v.str = buf[p+5 : p+5+int(binary.BigEndian.Uint32(buf[p+1:]))]
		} else {
			v.num = binary.BigEndian.Uint64(buf[p+1:])
		}
		var cf *conflict
		if out, cf = appendValue(out, c.Type, v); cf != nil {
			e.rows = out[:rowStart] // the general path rejects the value
			return false
		}
	}
	if useOverflow {
		out = appendInt32(out, -1) // the batch's overflow column: none for this row
	}
	e.rows = out
	return true
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
