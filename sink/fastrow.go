package sink

import (
	"encoding/binary"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

// fastRow encodes row r of b (with, for a point, its later rows) as
// encodeTyped does, for the common row: every value has a column and each
// column takes its value as it is. It copies values from the compact rows
// to the COPY row without decoding them into typedValues: a float's eight
// bytes and a string's length word and bytes are already in their binary
// COPY form there. It reports false, having appended nothing, for any
// other row, which takes the general path. pos is scratch space, a slot
// per column.
func fastRow(e *encoded, b *batch, r, lo int, t *schema.TypedTable, slot []int, cols []*schema.Column, pos []int, pts *pointPlan, ncols int, useOverflow bool) bool {
	ts, ok := valuePositions(b, r, lo, slot, pos, pts)
	if !ok {
		return false
	}
	buf := b.buf
	rowStart := len(e.rows)
	out := appendInt16(e.rows, int16(ncols))
	out = appendTimeAs(out, t.TimeType, ts)
	if pts != nil {
		out = pts.appendKey(out, r-lo)
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

// valuePositions finds, for fastRow, where the value of each column of
// row r (with, for a point, its later rows) is: pos[slot] is the offset of
// its kind byte in b.buf, or -1. The later rows of a point come after, and
// a later value of a key wins. It returns the row's time, and false when
// some value has no column (it goes to the overflow column or the rejected
// table).
func valuePositions(b *batch, r, lo int, slot []int, pos []int, pts *pointPlan) (ts int64, ok bool) {
	for i := range pos {
		pos[i] = -1
	}
	buf := b.buf
	start := 0
	if r > 0 {
		start = b.ends[r-1]
	}
	ts = int64(binary.BigEndian.Uint64(buf[start:]))
	// Where each column's value is: its kind byte's offset in buf. The
	// later rows of a point come after, and a later value of a key wins.
	for k, row := int32(-1), r; ; {
		i := start + 12
		for range binary.BigEndian.Uint32(buf[start+8:]) {
			s := slot[binary.BigEndian.Uint32(buf[i:])]
			if s < 1 {
				return 0, false // the overflow column, or the rejected table
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
	return ts, true
}
