package sink

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

// encodeBatch appends rows lo..hi-1 of b, with what they need to be
// written again (origins, keys, and in jsonb storage the nanoseconds of
// their times when some are not 0), as a spool record payload. The
// nanoseconds come last, and only when there are any: a reader that does
// not know them reads the rest alike.
func encodeBatch(out []byte, b *batch, lo, hi int) []byte {
	u32 := func(v int) { out = binary.BigEndian.AppendUint32(out, uint32(v)) }
	str := func(s string) { u32(len(s)); out = append(out, s...) }
	out = append(out, recordVersion)
	flags := byte(0)
	if b.rejected {
		flags = 1
	}
	out = append(out, flags)
	str(b.measurement)
	rows := b.rowBytes(lo, hi)
	u32(len(rows))
	out = append(out, rows...)
	start := 0
	if lo > 0 {
		start = b.ends[lo-1]
	}
	u32(hi - lo)
	for r := lo; r < hi; r++ {
		u32(b.ends[r] - start)
		o := b.origin(r)
		src := ""
		if o.Source.IsValid() {
			src = o.Source.String()
		}
		str(src)
		out = binary.BigEndian.AppendUint64(out, uint64(o.Received.UnixNano()))
	}
	u32(len(b.keys))
	for _, k := range b.keys {
		str(k.Name)
		tag := byte(0)
		if k.Tag {
			tag = 1
		}
		out = append(out, tag, byte(k.First))
		for _, c := range k.Counts {
			u32(int(c))
		}
	}
	if len(b.subMicros) > 0 {
		u32(hi - lo)
		for _, ns := range b.subMicros[lo:hi] {
			out = binary.BigEndian.AppendUint16(out, ns)
		}
	}
	return out
}

// recordVersion starts each payload: the layout of encodeBatch.
const recordVersion = 1

var errBadRecord = errors.New("bad spool record")

// decodeBatch reads a spool record payload back into a batch.
func decodeBatch(p []byte) (b *batch, err error) {
	defer func() {
		if recover() != nil {
			b, err = nil, errBadRecord
		}
	}()
	if len(p) < 2 || p[0] != recordVersion {
		return nil, errBadRecord
	}
	i := 2
	u32 := func() int { v := int(binary.BigEndian.Uint32(p[i:])); i += 4; return v }
	bytesOf := func() []byte { n := u32(); v := p[i : i+n]; i += n; return v }
	b = &batch{rejected: p[1] == 1, tagIDs: map[string]uint32{}, fieldIDs: map[string]uint32{}}
	b.measurement = string(bytesOf())
	b.buf = slices.Clone(bytesOf())
	n := u32()
	for range n {
		b.ends = append(b.ends, u32())
		var o Origin
		if src := string(bytesOf()); src != "" {
			o.Source, _ = netip.ParseAddrPort(src)
		}
		o.Received = time.Unix(0, int64(binary.BigEndian.Uint64(p[i:])))
		i += 8
		b.addOrigin(o)
	}
	nk := u32()
	for id := range nk {
		k := schema.BatchKey{Key: schema.Key{Name: string(bytesOf())}}
		k.Tag = p[i] == 1
		k.First = parse.Kind(p[i+1])
		i += 2
		for c := range k.Counts {
			k.Counts[c] = uint32(u32())
		}
		b.keys = append(b.keys, k)
		if k.Tag {
			b.tagIDs[k.Name] = uint32(id)
		} else {
			b.fieldIDs[k.Name] = uint32(id)
		}
	}
	if i < len(p) {
		if u32() != n {
			return nil, errBadRecord
		}
		for range n {
			b.subMicros = append(b.subMicros, binary.BigEndian.Uint16(p[i:]))
			i += 2
		}
	}
	if len(b.ends) > 0 && b.ends[len(b.ends)-1] != len(b.buf) {
		return nil, errBadRecord
	}
	return b, nil
}
