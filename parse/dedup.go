package parse

import "bytes"

// dedupFields keeps, of the fields of the current point that share a key,
// only the last, as InfluxDB does: a later value of a key overwrites an
// earlier one. The order of the fields kept does not change. Lines with a
// few fields compare keys pairwise; lines with many use a hash table that
// the Parser keeps, so that neither allocates once the table has grown.
func (p *Parser) dedupFields() {
	fs := p.pt.Fields
	if len(fs) < 2 {
		return
	}
	dups := false
	if len(fs) <= 16 {
		// A key is compared with the earlier ones only when its bit, from
		// its length and last two bytes, is already set: names such as
		// usage_idle and usage_nice share a length and a prefix. Of the
		// earlier fields with a key, only the last is still kept.
		var seen uint64
		for i := range fs {
			k := fs[i].Key // never empty
			bit := uint64(1) << ((uint(len(k)) + uint(k[len(k)-1])*7 + uint(k[len(k)/2])*3) & 63)
			if seen&bit != 0 {
				for j := range i {
					if fs[j].Kind != 0 && bytes.Equal(fs[j].Key, k) {
						fs[j].Kind = 0 // overwritten
						dups = true
						break
					}
				}
			}
			seen |= bit
		}
	} else {
		dups = p.markOverwritten(fs)
	}
	if !dups {
		return
	}
	kept := fs[:0]
	for _, f := range fs {
		if f.Kind != 0 {
			kept = append(kept, f)
		}
	}
	clear(fs[len(kept):])
	p.pt.Fields = kept
}

// markOverwritten sets Kind to 0 on each field that a later field of the
// same key overwrites, and reports whether there was any.
func (p *Parser) markOverwritten(fs []Field) bool {
	size := 1
	for size < 2*len(fs) {
		size <<= 1
	}
	if cap(p.seen) < size {
		p.seen = make([]int32, size)
	}
	seen := p.seen[:size]
	clear(seen)
	mask := uint32(size - 1)
	dups := false
	for i := len(fs) - 1; i >= 0; i-- {
		h := fnv32(fs[i].Key) & mask
		for {
			s := seen[h]
			if s == 0 {
				seen[h] = int32(i + 1)
				break
			}
			if bytes.Equal(fs[s-1].Key, fs[i].Key) {
				fs[i].Kind = 0
				dups = true
				break
			}
			h = (h + 1) & mask
		}
	}
	return dups
}

// fnv32 is FNV-1a.
func fnv32(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}
