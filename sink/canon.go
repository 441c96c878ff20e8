package sink

// The canonical form of a tag set: its identity in a table with a point
// key (see merge.go), and as JSON the key of the series table.

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
