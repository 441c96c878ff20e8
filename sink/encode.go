package sink

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/pginflux/pginflux/parse"
)

// The binary COPY format (PostgreSQL docs, "COPY ... Binary Format"):
// a fixed header, then per row an int16 column count and per column an
// int32 length (-1 for NULL) and the value in the type's binary send form,
// then an int16 -1 trailer. Rows are encoded once, when they are added to a
// batch, so that a flush only writes bytes.
var (
	copyHeader  = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	copyTrailer = []byte{0xff, 0xff}
)

// pgEpochMicros is 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in
// Unix microseconds.
const pgEpochMicros = 946684800 * 1_000_000

// jsonbVersion prefixes a jsonb value in binary form.
const jsonbVersion = 1

func appendInt16(b []byte, v int16) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
func appendInt32(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }

// appendTimestamp appends a timestamptz column: Unix nanoseconds become
// microseconds since 2000 (PostgreSQL keeps microseconds; the nanoseconds
// are floored away, also before 1970).
func appendTimestamp(b []byte, unixNanos int64) []byte {
	micros := floorMicros(unixNanos)
	b = appendInt32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(micros-pgEpochMicros))
}

// beginValue reserves a column's length word and returns where it is.
func beginValue(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

// endValue writes the length of the value started at at.
func endValue(b []byte, at int) []byte {
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// appendJSONBRow appends one row of the jsonb layout in the column order
// of schema.Catalog's jsonb tables: time, tags, fields. When a line
// repeats a key, the object repeats it too and jsonb keeps the last one,
// as InfluxDB does.
func appendJSONBRow(b []byte, p *parse.Point) []byte {
	b = appendInt16(b, 3)
	b = appendTimestamp(b, p.Time)

	b, at := beginValue(b)
	b = append(b, jsonbVersion, '{')
	b = appendJSONTags(b, p.Tags)
	b = append(b, '}')
	b = endValue(b, at)

	b, at = beginValue(b)
	b = append(b, jsonbVersion, '{')
	for i := range p.Fields {
		f := &p.Fields[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.Key)
		b = append(b, ':')
		b = appendJSONValue(b, f)
	}
	b = append(b, '}')
	return endValue(b, at)
}

// appendJSONTags appends the members of the tags object in canonical
// form: sorted by key, a repeated key keeping its last value. The text is
// then the tag set's identity (see series.go).
func appendJSONTags(b []byte, tags []parse.Tag) []byte {
	sorted := true
	for i := 1; i < len(tags); i++ {
		if string(tags[i-1].Key) >= string(tags[i].Key) {
			sorted = false
			break
		}
	}
	if sorted {
		for i := range tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, tags[i].Key)
			b = append(b, ':')
			b = appendJSONString(b, tags[i].Value)
		}
		return b
	}
	var space [16]int
	order := space[:0]
	for i := range tags {
		j := len(order)
		order = append(order, i)
		for j > 0 && string(tags[order[j-1]].Key) > string(tags[i].Key) {
			order[j] = order[j-1]
			j--
		}
		order[j] = i
	}
	first := true
	for n, i := range order {
		if n+1 < len(order) && string(tags[order[n+1]].Key) == string(tags[i].Key) {
			continue // the later one wins
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, tags[i].Key)
		b = append(b, ':')
		b = appendJSONString(b, tags[i].Value)
	}
	return b
}

// appendJSONValue appends a field value keeping its JSON type: numbers stay
// numbers (an unsigned integer exactly, since jsonb numbers are numeric), a
// float keeps a decimal point so that 2.0 stays 2.0, strings and booleans
// stay what they are.
//
// A float is written in positional form, with the shortest digits that
// read back as the same float64, and ".0" when it is whole: jsonb keeps a
// number's display scale only from the digits written after a decimal
// point once its exponent is applied, so "1e21" and even "1.0e21" become
// the integer 1000000000000000000000, while "1000000000000000000000.0"
// stays a float. (A whole float has at most 309 digits; jsonb keeps them
// in a few bytes, as numeric does.)
func appendJSONValue(b []byte, f *parse.Field) []byte {
	switch f.Kind {
	case parse.Float:
		if len(f.Str) > 0 {
			// A plain decimal as written: it is its float64 already,
			// in float form, and valid JSON (see parse.Field).
			return append(b, f.Str...)
		}
		start := len(b)
		b = strconv.AppendFloat(b, f.Float(), 'f', -1, 64)
		if bytes.IndexByte(b[start:], '.') < 0 {
			b = append(b, '.', '0')
		}
		return b
	case parse.Int:
		return strconv.AppendInt(b, f.Int(), 10)
	case parse.Uint:
		return strconv.AppendUint(b, f.Uint(), 10)
	case parse.Bool:
		if f.Bool() {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	default:
		return appendJSONString(b, f.Str)
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. s is valid UTF-8 without
// NUL bytes (the parser guarantees both); anything else that JSON or jsonb
// would refuse is escaped.
func appendJSONString(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			// Bytes of multi-byte UTF-8 sequences are all >= 0x80.
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
