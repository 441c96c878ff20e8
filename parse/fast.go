package parse

import (
	"bytes"
	"math"
	"unicode/utf8"
)

// The fast path parses the common line straight from the buffer, in one
// pass and without the decoder: no backslash anywhere, names and keys of
// printable characters (UTF-8 checked only where a byte is not ASCII), string
// values without a backslash or NUL, booleans and decimal numbers that
// parse without error, and a line end where the decoder would find one.
// Whatever it does not take, it leaves to the decoder, which starts at the
// same place and so yields the points, errors and rejected extents it
// always did. It never rejects a line itself.
//
// Every line it takes, the decoder would take with the same tokens and the
// same extent, and the Parser's checks would accept with the same values:
// FuzzFastPath checks it against the decoder alone.

// Byte classes of the fast path.
const (
	clName   = 1 << iota // may appear in a measurement
	clKey                // may appear in a tag key, tag value or field key
	clValEnd             // ends a number or boolean: the decoder's fieldValChars inverted
)

// class holds the classes of each byte. A backslash, a control character,
// DEL, a space and a comma end every name; '=' also ends keys and tag
// values. The decoder allows the same bytes, and a backslash besides.
var class = func() (t [256]uint8) {
	for c := range len(t) {
		switch {
		case c < 0x20 || c == 0x7f || c == '\\' || c == ' ' || c == ',':
		case c == '=':
			t[c] = clName
		default:
			t[c] = clName | clKey
		}
	}
	for _, c := range []byte(", \r\n") {
		t[c] |= clValEnd
	}
	return t
}()

// skipBlank returns the offset of the next entry at or after data[i],
// skipping what the decoder's Next skips: spaces, empty lines and comment
// lines. It returns len(data) at the end of the buffer, and -1 where the
// decoder would report an error (a comment with a control character).
func (p *Parser) skipBlank(i int) int {
	data := p.data
	n := len(data)
	for {
		for i < n && data[i] == ' ' {
			i++
		}
		if i == n {
			return n
		}
		switch data[i] {
		case '\n':
			i++
		case '\r':
			if i+1 == n {
				return n
			}
			if data[i+1] != '\n' {
				return i // not an entry: the fast path will not take it
			}
			i += 2
		case '#':
			i++
			for i < n && data[i] >= 0x20 && data[i] != 0x7f {
				i++
			}
			if i = eolAt(data, i); i < 0 {
				return -1
			}
		default:
			return i
		}
	}
}

// eolAt returns the offset just past the line end at data[i] (LF, CRLF,
// or a CR or nothing at the end of data), or -1 if there is none there.
func eolAt(data []byte, i int) int {
	n := len(data)
	if i == n {
		return n
	}
	switch data[i] {
	case '\n':
		return i + 1
	case '\r':
		if i+1 == n {
			return n
		}
		if data[i+1] == '\n' {
			return i + 2
		}
	}
	return -1
}

// span returns the end of the run of bytes of class cl at data[i:], and
// whether all of them are ASCII.
func span(data []byte, i int, cl uint8) (int, bool) {
	var hi byte
	for i < len(data) && class[data[i]]&cl != 0 {
		hi |= data[i]
		i++
	}
	return i, hi < 0x80
}

// name returns the token data[i:j] with no spare capacity, and whether it
// is not empty and valid UTF-8.
func name(data []byte, i, j int, ascii bool) ([]byte, bool) {
	tok := data[i:j:j]
	return tok, j > i && (ascii || utf8.Valid(tok))
}

// fastEntry parses the entry that starts at data[s] into p.pt and returns
// the offset just past its line end, or -1 to leave the entry to the
// decoder. It reads the series (measurement and tags) and the fields, then
// leaves the timestamp and the line end to fastTail.
//
// The series and the fields are read in one function on purpose: in a
// function of their own, the fields' loop starts without the address of
// class in a register, and the compiler then reloads it for every byte of
// every field key (3% more instructions per line in BenchmarkParser).
func (p *Parser) fastEntry(s int) int {
	data := p.data
	n := len(data)
	pt := &p.pt
	pt.Tags = pt.Tags[:0]
	pt.Fields = pt.Fields[:0]

	i, ascii := span(data, s, clName)
	m, ok := name(data, s, i, ascii)
	if !ok || i == n {
		return -1
	}
	pt.Measurement = m

	for data[i] == ',' {
		k0 := i + 1
		i, ascii = span(data, k0, clKey)
		k, ok := name(data, k0, i, ascii)
		if !ok || i == n || data[i] != '=' {
			return -1
		}
		v0 := i + 1
		i, ascii = span(data, v0, clKey)
		v, ok := name(data, v0, i, ascii)
		if !ok || i == n {
			return -1
		}
		pt.Tags = append(pt.Tags, Tag{Key: k, Value: v})
	}
	if data[i] != ' ' {
		return -1
	}
	for i < n && data[i] == ' ' {
		i++
	}

	for {
		k0 := i
		i, ascii = span(data, k0, clKey)
		k, ok := name(data, k0, i, ascii)
		if !ok || i+1 >= n || data[i] != '=' {
			return -1
		}
		i++
		// Filled in place: a Field is 64 bytes.
		if len(pt.Fields) < cap(pt.Fields) {
			pt.Fields = pt.Fields[:len(pt.Fields)+1]
		} else {
			pt.Fields = append(pt.Fields, Field{})
		}
		f := &pt.Fields[len(pt.Fields)-1]
		f.Key = k
		if i = fastValue(data, i, f); i < 0 {
			return -1
		}
		if i == n || data[i] != ',' {
			break
		}
		i++
	}
	p.dedupFields()

	end := p.fastTail(i)
	if end >= 0 {
		pt.Line = p.lines.lineAt(s)
	}
	return end
}

// fastTail parses what follows the fields at data[i]: spaces, then a line
// end or a timestamp, spaces and a line end. It sets p.pt.Time and returns
// the offset just past the line end, or -1.
func (p *Parser) fastTail(i int) int {
	data := p.data
	n := len(data)
	if i < n && data[i] != ' ' && data[i] != '\r' && data[i] != '\n' {
		return -1
	}
	for i < n && data[i] == ' ' {
		i++
	}
	if end := eolAt(data, i); end >= 0 {
		p.pt.Time = p.now
		return end
	}
	t0 := i
	if data[i] == '-' {
		i++
	}
	for i < n && data[i]-'0' <= 9 {
		i++
	}
	ts, ok := parseInt(data[t0:i])
	if !ok {
		return -1
	}
	if p.pt.Time, ok = toNanos(ts, p.mult); !ok {
		return -1
	}
	if i < n && data[i] != ' ' && data[i] != '\r' && data[i] != '\n' {
		return -1
	}
	for i < n && data[i] == ' ' {
		i++
	}
	return eolAt(data, i)
}

// fastValue parses the field value at data[i] (there is one byte at least)
// into f and returns the offset just past it, or -1. It sets every member
// of f but Key.
func fastValue(data []byte, i int, f *Field) int {
	f.Str = nil
	switch c := data[i]; {
	case c == '"':
		i++
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return -1
		}
		str := data[i : i+j : i+j]
		var hi byte
		for _, c := range str {
			if c == '\\' || c == 0 {
				return -1
			}
			hi |= c
		}
		if hi >= 0x80 && !utf8.Valid(str) {
			return -1
		}
		f.Kind, f.Num, f.Str = String, 0, str
		return i + j + 1
	case c == 't' || c == 'T' || c == 'f' || c == 'F':
		j := i + 1
		for j < len(data) && class[data[j]]&clValEnd == 0 {
			j++
		}
		switch string(data[i:j]) {
		case "t", "T", "true", "True", "TRUE":
			f.Kind, f.Num = Bool, 1
		case "f", "F", "false", "False", "FALSE":
			f.Kind, f.Num = Bool, 0
		default:
			return -1
		}
		return j
	case c-'0' <= 9 || c == '-' || c == '.':
		if j := plainFloat(data, i, f); j >= 0 {
			return j
		}
		j := i + 1
		for j < len(data) && class[data[j]]&clValEnd == 0 {
			j++
		}
		v := data[i:j]
		var ok bool
		switch v[len(v)-1] {
		case 'i':
			var x int64
			x, ok = parseInt(v[:len(v)-1])
			f.Kind, f.Num, f.Str = Int, uint64(x), nil
		case 'u':
			f.Kind, f.Str = Uint, nil
			f.Num, ok = parseUint(v[:len(v)-1])
		default:
			var x float64
			var plain bool
			x, ok, plain = parseFloatPlain(v)
			f.Kind, f.Num, f.Str = Float, math.Float64bits(x), nil
			if plain {
				f.Str = v[:len(v):len(v)]
			}
		}
		if !ok {
			return -1
		}
		return j
	}
	return -1
}

// plainFloat takes the commonest number in one pass: a float of at most 15
// digits with no exponent and no leading zero but a lone one, such as
// "0", "93.25" or "-0.02", ended by a byte of clValEnd or the buffer's end.
// Its digits make an integer m < 10^15 < 2^53 and its point a division by
// 10^frac with frac <= 15, so float64(m) / 10^frac is correctly rounded:
// strconv's result (Clinger's fast path, as in parseFloat). It fills f and
// returns the offset after the number, or -1 for anything else, which
// fastValue's general number path then takes.
func plainFloat(data []byte, i int, f *Field) int {
	start := i
	neg := data[i] == '-'
	if neg {
		i++
	}
	intStart := i
	var m uint64
	for i < len(data) && data[i]-'0' <= 9 {
		m = m*10 + uint64(data[i]-'0')
		i++
	}
	intDigits := i - intStart
	if intDigits == 0 || intDigits > 1 && data[intStart] == '0' {
		return -1
	}
	frac := 0
	if i < len(data) && data[i] == '.' {
		i++
		for i < len(data) && data[i]-'0' <= 9 {
			m = m*10 + uint64(data[i]-'0')
			i++
			frac++
		}
	}
	if intDigits+frac > 15 || i < len(data) && class[data[i]]&clValEnd == 0 {
		return -1
	}
	x := float64(m)
	if frac > 0 {
		x /= pow10[frac]
	}
	if neg {
		x = -x
	}
	f.Kind, f.Num, f.Str = Float, math.Float64bits(x), nil
	if frac > 0 {
		// Plain decimal text, exactly this float64: kept for jsonb.
		f.Str = data[start:i:i]
	}
	return i
}
