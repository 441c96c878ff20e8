package sink

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

// Origin is where and when the rows of a datagram (or request) came from.
// It travels with each row so that a rejected one can be traced back.
type Origin struct {
	Source   netip.AddrPort // the zero value when unknown
	Received time.Time
}

// deadLetter is one row of the rejected table (see
// schema.RejectedColumns): a line, row or value that pginflux accepted but
// could not store as it was.
type deadLetter struct {
	origin      Origin
	measurement string // "" when unknown (a line that did not parse)
	reason      string
	detail      string
	line        []byte // line protocol; need not be valid UTF-8
}

// appendDeadLetter appends d as a binary COPY row of the rejected table.
// A line that is not valid UTF-8 or holds NUL bytes (which text cannot
// hold) is stored with those bytes replaced, and exactly in raw.
func appendDeadLetter(b []byte, d *deadLetter) []byte {
	b = appendInt16(b, int16(len(schema.RejectedColumns)))
	b = appendTimestamp(b, d.origin.Received.UnixNano())
	if d.origin.Source.IsValid() {
		b = appendText(b, d.origin.Source.String())
	} else {
		b = appendInt32(b, -1)
	}
	if d.measurement != "" {
		b = appendText(b, d.measurement)
	} else {
		b = appendInt32(b, -1)
	}
	b = appendText(b, d.reason)
	if d.detail != "" {
		b = appendText(b, strings.ToValidUTF8(strings.ReplaceAll(d.detail, "\x00", "\ufffd"), "\ufffd"))
	} else {
		b = appendInt32(b, -1)
	}
	if utf8.Valid(d.line) && bytes.IndexByte(d.line, 0) < 0 {
		b = appendInt32(b, int32(len(d.line)))
		b = append(b, d.line...)
		return appendInt32(b, -1)
	}
	clean := bytes.ToValidUTF8(bytes.ReplaceAll(d.line, []byte{0}, []byte("\ufffd")), []byte("\ufffd"))
	b = appendInt32(b, int32(len(clean)))
	b = append(b, clean...)
	b = appendInt32(b, int32(len(d.line)))
	return append(b, d.line...)
}

func appendText(b []byte, s string) []byte {
	b = appendInt32(b, int32(len(s)))
	return append(b, s...)
}

// lineWriter builds lines of line protocol, escaped as the syntax demands,
// for the rejected table.
type lineWriter struct{ b []byte }

var (
	measurementEscaper = strings.NewReplacer(",", `\,`, " ", `\ `, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	keyEscaper         = strings.NewReplacer(",", `\,`, "=", `\=`, " ", `\ `, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	stringEscaper      = strings.NewReplacer(`"`, `\"`, `\`, `\\`)
)

func (w *lineWriter) start(measurement string) {
	w.b = append(w.b[:0], measurementEscaper.Replace(measurement)...)
}

func (w *lineWriter) tag(key, val []byte) {
	w.b = append(w.b, ',')
	w.b = append(w.b, keyEscaper.Replace(string(key))...)
	w.b = append(w.b, '=')
	w.b = append(w.b, keyEscaper.Replace(string(val))...)
}

// field appends a field; first says whether it is the line's first.
func (w *lineWriter) field(first bool, key []byte, v value) {
	if first {
		w.b = append(w.b, ' ')
	} else {
		w.b = append(w.b, ',')
	}
	w.b = append(w.b, keyEscaper.Replace(string(key))...)
	w.b = append(w.b, '=')
	switch v.kind {
	case parse.Float:
		f := parse.Field{Kind: parse.Float, Num: v.num}
		w.b = strconv.AppendFloat(w.b, f.Float(), 'g', -1, 64)
	case parse.Int:
		w.b = strconv.AppendInt(w.b, int64(v.num), 10)
		w.b = append(w.b, 'i')
	case parse.Uint:
		w.b = strconv.AppendUint(w.b, v.num, 10)
		w.b = append(w.b, 'u')
	case parse.Bool:
		w.b = strconv.AppendBool(w.b, v.num != 0)
	default:
		w.b = append(w.b, '"')
		w.b = append(w.b, stringEscaper.Replace(string(v.str))...)
		w.b = append(w.b, '"')
	}
}

func (w *lineWriter) end(unixNanos int64) []byte {
	w.b = append(w.b, ' ')
	w.b = strconv.AppendInt(w.b, unixNanos, 10)
	return bytes.Clone(w.b)
}

// readInt32 reads a big-endian int32 at b[i:].
func readInt32(b []byte, i int) int { return int(int32(binary.BigEndian.Uint32(b[i:]))) }

// jsonbRowLine turns a row of jsonb storage back into a line of line
// protocol, for the rejected table: the time, then the tags and fields
// objects, whose keys come out sorted. A whole JSON number is an integer
// (unsigned when above 2^63-1); one with a point or an exponent a float.
func jsonbRowLine(measurement string, row []byte) []byte {
	// int16 count | int32 8 | int64 time | int32 len | 1 | tags | int32 len | 1 | fields
	micros := int64(binary.BigEndian.Uint64(row[6:]))
	i := 14
	tl := readInt32(row, i)
	tags := row[i+5 : i+4+tl]
	i += 4 + tl
	fl := readInt32(row, i)
	fields := row[i+5 : i+4+fl]

	var tm map[string]string
	var fm map[string]json.RawMessage
	if json.Unmarshal(tags, &tm) != nil || json.Unmarshal(fields, &fm) != nil {
		return append([]byte(nil), row...)
	}
	var lw lineWriter
	lw.start(measurement)
	for _, k := range slices.Sorted(maps.Keys(tm)) {
		lw.tag([]byte(k), []byte(tm[k]))
	}
	for n, k := range slices.Sorted(maps.Keys(fm)) {
		lw.field(n == 0, []byte(k), jsonValue(fm[k]))
	}
	return lw.end((micros + pgEpochMicros) * 1000)
}

func jsonValue(raw json.RawMessage) value {
	switch {
	case bytes.Equal(raw, []byte("true")):
		return value{kind: parse.Bool, num: 1}
	case bytes.Equal(raw, []byte("false")):
		return value{kind: parse.Bool}
	case len(raw) > 0 && raw[0] == '"':
		var s string
		json.Unmarshal(raw, &s)
		return value{kind: parse.String, str: []byte(s)}
	case bytes.ContainsAny(raw, ".eE"):
		f, _ := strconv.ParseFloat(string(raw), 64)
		return value{kind: parse.Float, num: math.Float64bits(f)}
	}
	if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return value{kind: parse.Int, num: uint64(i)}
	}
	u, _ := strconv.ParseUint(string(raw), 10, 64)
	return value{kind: parse.Uint, num: u}
}
