package sink

import (
	"encoding/binary"

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
