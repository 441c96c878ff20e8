package sink

import "encoding/binary"

// A table that keeps nanoseconds (--time-nanos, or a table made with such
// a key: see schema.NanosColumn) has the nanoseconds of each row's time
// beyond its microsecond in a smallint column of its point key, so that
// points of a series less than a microsecond apart are rows of their own.
// The compact rows of columns storage keep a row's time in nanoseconds,
// and jsonb storage keeps the nanoseconds beside its rows (subMicros):
// the point plan reads them from there (pointPlan.ns), groups and orders
// points by them too, and the encoders write them after the series id.
// Tables without the column never look at them.

// subMicro returns the nanoseconds of row r's time beyond its
// microsecond, 0 to 999.
func subMicro(b *batch, r int, columns bool) uint16 {
	if !columns {
		if r < len(b.subMicros) {
			return b.subMicros[r]
		}
		return 0
	}
	ns := int64(binary.BigEndian.Uint64(b.rowBytes(r, r+1))) % 1000
	if ns < 0 {
		ns += 1000
	}
	return uint16(ns)
}

// nsOf returns the nanoseconds of row k beyond its microsecond in a table
// that keeps them, else 0.
func (pp *pointPlan) nsOf(k int) uint16 {
	if !pp.nanos {
		return 0
	}
	return pp.ns[k]
}

// appendKey appends the columns of row k's point key after its time: its
// series id, and in a table that keeps them its nanoseconds beyond the
// microsecond.
func (pp *pointPlan) appendKey(out []byte, k int) []byte {
	out = appendInt32(out, 8)
	out = binary.BigEndian.AppendUint64(out, uint64(pp.sids[k]))
	if pp.nanos {
		out = appendInt32(out, 2)
		out = binary.BigEndian.AppendUint16(out, pp.ns[k])
	}
	return out
}
