// Package parse turns InfluxDB line protocol into Points, one line at a time.
//
// Common lines (no backslash, plain decimal numbers) are read by a scanner
// of its own in one pass (fast.go); everything else goes to
// lineprotocol.Decoder, which is the reference: the scanner takes only
// lines the decoder path would give the same Point, and the decoder path
// alone makes every error. Over the decoder the package adds what pginflux
// needs: one reused Point per line, so that a steady stream of lines does
// not allocate; timestamps in Unix nanoseconds from a chosen Precision;
// line numbers; the grammar of numbers as InfluxDB has it; repeated field
// keys resolved (the last value wins); and a closed set of Reasons for the
// lines it rejects. A bad line is skipped to the end of its logical line,
// honouring quoted strings as InfluxDB does, and reported; parsing goes on
// with the next one.
//
// The package is pure: no goroutines, no logging, no metrics.
package parse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// Parser parses line protocol from a buffer.
//
// A Parser is not safe for concurrent use; each goroutine keeps its own and
// reuses it (Reset) for every buffer, so that its Point, tag and field
// slices and the arena for unescaped tokens are allocated once and then
// recycled. The zero Parser parses at Nanosecond precision.
type Parser struct {
	dec   lineprotocol.Decoder // for the lines the fast path leaves (see fast.go)
	ready bool                 // Reset has been called
	data  []byte

	// Lines are read by the fast path from off until it meets one it
	// leaves to the decoder. The decoder then reads from where it starts
	// (slow) until an entry whose end it can tell. decAt is the offset
	// where dec stands between two entries, or -1: the fast path hands
	// over to it there without making a new one.
	off      int
	slow     bool
	decAt    int
	tailEnd  int  // offset just past the last token of the decoder's entry, or -1
	slowOnly bool // tests: the decoder alone, as before the fast path

	prec Precision // for the following Reset calls
	cur  Precision // of data
	mult int64     // nanoseconds per timestamp unit in data
	now  int64     // Unix nanoseconds for lines without a timestamp

	pt    Point
	arena []byte  // unescaped tokens of the current entry
	seen  []int32 // hash table of field keys, for lines with many fields

	lines lines
	rej   rejected
}

// NewParser returns a Parser for timestamps at precision prec. It panics if
// prec is not one of the Precision constants.
func NewParser(prec Precision) *Parser {
	p := &Parser{}
	p.SetPrecision(prec)
	return p
}

// SetPrecision changes the precision of timestamps for the following Reset
// calls; the buffer being parsed keeps its precision. It panics if prec is
// not one of the Precision constants.
func (p *Parser) SetPrecision(prec Precision) {
	if !prec.valid() {
		panic(fmt.Sprintf("parse: invalid precision %d", prec))
	}
	p.prec = prec
}

// Reset starts parsing data. now is the time given to lines without a
// timestamp (as now.UnixNano(), not truncated to the precision). It does
// not allocate.
//
// The Parser keeps data, and Points may alias it: data must not be modified
// until parsing it is done, that is until the next Reset or until the
// Points taken from it are no longer used.
func (p *Parser) Reset(data []byte, now time.Time) {
	p.dec = lineprotocol.Decoder{} // drop the last buffer
	p.ready = true
	p.data = data
	p.off, p.slow, p.decAt = 0, false, -1
	p.cur, p.mult = p.prec, nanos[p.prec]
	p.now = now.UnixNano()
	p.arena = p.arena[:0]
	p.lines.reset(data)
	p.rej = rejected{}
}

// Next returns the next good point, or (nil, *LineError) for a bad line that
// was skipped — call Next again — or (nil, io.EOF) when the buffer is
// exhausted. Blank lines and comment lines (#...) are skipped silently;
// lines may end in LF or CRLF, and the last line needs no line end.
//
// A bad line is skipped to the end of its logical line: a newline inside
// a quoted string value does not end it, even when the error came before
// the string (see logicalEnd). Nothing inside a rejected line becomes a
// point, and Line returns all of it.
//
// The Point belongs to the Parser and is valid until the next call to Next
// or Reset (see Point).
func (p *Parser) Next() (*Point, error) {
	if !p.ready {
		return nil, io.EOF
	}
	if !p.slow {
		if !p.slowOnly {
			s := p.skipBlank(p.off)
			if s == len(p.data) {
				return nil, io.EOF
			}
			if s >= 0 {
				if end := p.fastEntry(s); end >= 0 {
					p.off, p.decAt = end, -1
					return &p.pt, nil
				}
			}
		}
		if p.decAt != p.off {
			// A Decoder cannot be moved: a new one allocates its escape
			// buffer. A run of lines for the decoder costs one.
			p.dec = *lineprotocol.NewDecoderWithBytes(p.data[p.off:])
			p.lines.restart(p.off)
		}
		p.slow = true
	}
	if !p.dec.Next() {
		return nil, io.EOF
	}
	p.lines.entry++
	pt, le := p.parse()
	if le != nil {
		return nil, le // resync has handed back to the fast path
	}
	if !p.slowOnly && p.tailEnd >= 0 {
		if end := eolAt(p.data, skipSpaces(p.data, p.tailEnd)); end >= 0 {
			p.off, p.slow, p.decAt = end, false, end
		}
	}
	return pt, nil
}

// skipSpaces returns the offset of the first byte at or after data[i] that
// is not a space.
func skipSpaces(data []byte, i int) int {
	for i < len(data) && data[i] == ' ' {
		i++
	}
	return i
}

// parse parses the entry the decoder is at.
func (p *Parser) parse() (*Point, *LineError) {
	p.arena = p.arena[:0]
	p.tailEnd = -1
	p.lines.startEntry()
	pt := &p.pt
	pt.Tags = pt.Tags[:0]
	pt.Fields = pt.Fields[:0]

	m, err := p.dec.Measurement()
	if err != nil {
		return nil, p.decodeError(err, true)
	}
	if len(m) == 0 {
		return nil, p.reject(ReasonSyntax, errNoMeasurement)
	}
	pt.Measurement = p.keep(m)

	for {
		k, v, err := p.dec.NextTag()
		if err != nil {
			return nil, p.decodeError(err, true)
		}
		if k == nil {
			break
		}
		pt.Tags = append(pt.Tags, Tag{Key: p.keep(k), Value: p.keep(v)})
	}

	for {
		k, kind, v, err := p.dec.NextFieldBytes()
		if err != nil {
			return nil, p.decodeError(err, false)
		}
		if k == nil {
			break
		}
		f := Field{Key: p.keep(k)}
		if le := p.value(&f, kind, v); le != nil {
			return nil, le
		}
		pt.Fields = append(pt.Fields, f)
		p.tailEnd = p.valueEnd(kind, v)
	}
	if len(pt.Fields) == 0 {
		return nil, p.reject(ReasonSyntax, errNoFields)
	}
	p.dedupFields()

	ts, err := p.dec.TimeBytes()
	if err != nil {
		return nil, p.decodeError(err, false)
	}
	if ts == nil {
		pt.Time = p.now
	} else {
		p.tailEnd = -1
		if off := p.lines.offset(ts); off >= 0 {
			p.tailEnd = off + len(ts)
		}
		n, err := strconv.ParseInt(unsafeString(ts), 10, 64)
		if err != nil {
			if isRange(err) {
				return nil, p.reject(ReasonOutOfRange, fmt.Errorf("timestamp %q: %w", ts, lineprotocol.ErrValueOutOfRange))
			}
			return nil, p.reject(ReasonSyntax, fmt.Errorf("invalid timestamp %q", ts))
		}
		var ok bool
		if pt.Time, ok = toNanos(n, p.mult); !ok {
			return nil, p.reject(ReasonOutOfRange, fmt.Errorf("timestamp %q at precision %s: %w", ts, p.cur, lineprotocol.ErrValueOutOfRange))
		}
	}
	pt.Line = p.lines.entryLine()
	return pt, nil
}

// value parses the field value v of the given kind into f. Strings are the
// decoder's unescaped, UTF-8-checked token; other kinds are the raw bytes
// without the i or u suffix, and always alias data.
func (p *Parser) value(f *Field, kind lineprotocol.ValueKind, v []byte) *LineError {
	if kind == lineprotocol.String {
		if bytes.IndexByte(v, 0) >= 0 {
			return p.reject(ReasonNulByte, fmt.Errorf("string field %q holds a NUL byte", f.Key))
		}
		f.Kind = String
		f.Str = p.keep(v)
		// A string value may span lines, so later tokens cannot tell the
		// first line of the entry.
		p.lines.stopSearch()
		return nil
	}
	p.lines.mark(v)
	s := unsafeString(v)
	switch kind {
	case lineprotocol.Float:
		if !floatSyntax(v) {
			return p.reject(badBytes(v), fmt.Errorf("field %q: invalid float value %q", f.Key, v))
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return p.valueError(f, Float, v, err)
		}
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return p.reject(ReasonSyntax, fmt.Errorf("field %q: non-finite float value %q", f.Key, v))
		}
		f.Kind, f.Num, f.Str = Float, math.Float64bits(x), nil
	case lineprotocol.Int:
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return p.valueError(f, Int, v, err)
		}
		f.Kind, f.Num = Int, uint64(x)
	case lineprotocol.Uint:
		x, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return p.valueError(f, Uint, v, err)
		}
		f.Kind, f.Num = Uint, x
	case lineprotocol.Bool:
		switch s {
		case "t", "T", "true", "True", "TRUE":
			f.Kind, f.Num = Bool, 1
		case "f", "F", "false", "False", "FALSE":
			f.Kind, f.Num = Bool, 0
		default:
			return p.reject(badBytes(v), fmt.Errorf("field %q: invalid boolean value %q", f.Key, v))
		}
	default:
		return p.reject(ReasonSyntax, fmt.Errorf("field %q: value %q of unknown kind %v", f.Key, v, kind))
	}
	return nil
}

// valueEnd returns the offset in data just past the field value v of the
// given kind, as NextFieldBytes returned it, or -1 when v is not a part of
// data (an unescaped string) or is empty and so tells nothing. The decoder
// returns a sub-slice of its buffer, which is data, for every token it did
// not unescape.
func (p *Parser) valueEnd(kind lineprotocol.ValueKind, v []byte) int {
	off := p.lines.offset(v)
	if off < 0 || len(v) == 0 {
		return -1
	}
	switch kind {
	case lineprotocol.String, lineprotocol.Int, lineprotocol.Uint:
		return off + len(v) + 1 // the closing quote or the i or u suffix
	}
	return off + len(v)
}

// valueError rejects the entry for a numeric value strconv did not accept.
func (p *Parser) valueError(f *Field, k Kind, v []byte, err error) *LineError {
	if isRange(err) {
		return p.reject(ReasonOutOfRange, fmt.Errorf("field %q: %s value %q: %w", f.Key, k, v, lineprotocol.ErrValueOutOfRange))
	}
	return p.reject(badBytes(v), fmt.Errorf("field %q: invalid %s value %q", f.Key, k, v))
}

// badBytes returns the reason for rejecting malformed bytes b: a NUL byte
// or invalid UTF-8 in them, else a syntax error.
func badBytes(b []byte) Reason {
	switch {
	case bytes.IndexByte(b, 0) >= 0:
		return ReasonNulByte
	case !utf8.Valid(b):
		return ReasonInvalidUTF8
	}
	return ReasonSyntax
}

// reject rejects the current entry for a check of the Parser's own, and
// skips the rest of its logical line.
func (p *Parser) reject(r Reason, err error) *LineError {
	le := &LineError{Line: p.lines.entryLine(), Reason: r, Err: err}
	p.resync(le.Line)
	return le
}

// decodeError rejects the current entry for an error of the decoder,
// classifying it by the bytes of the line where the decoder found it, and
// skips the rest of its logical line. The DecodeError's Line is made a
// line of the whole buffer (the decoder counts from where it started).
// early says the error is in the measurement or the tags: the decoder is
// still on the first line of the entry, which only a string field value
// can leave.
func (p *Parser) decodeError(err error, early bool) *LineError {
	le := &LineError{Reason: ReasonSyntax, Err: err}
	de, ok := err.(*lineprotocol.DecodeError)
	if ok {
		de.Line = p.lines.absLine(de.Line)
	}
	if ok && early && !p.lines.forceShadow {
		// Before a string value, the entry has not left its first line.
		le.Line = de.Line
	} else {
		le.Line = p.lines.entryLine()
	}
	if ok {
		if isRange(err) {
			le.Reason = ReasonOutOfRange
		} else {
			le.Reason = badBytes(p.lines.text(de.Line))
		}
	}
	p.resync(le.Line)
	return le
}

// keep returns a token of the decoder in a form that stays valid until the
// next entry: the token itself if it is a part of data, else a copy in the
// arena. The arena may move when it grows, but the tokens of the current
// entry keep pointing at the old array, which nothing overwrites. The
// returned slice has no spare capacity.
func (p *Parser) keep(tok []byte) []byte {
	if p.lines.mark(tok) {
		return tok[:len(tok):len(tok)]
	}
	n := len(p.arena)
	p.arena = append(p.arena, tok...)
	return p.arena[n:len(p.arena):len(p.arena)]
}

// unsafeString returns b as a string without copying, for a call that does
// not keep it (strconv copies what it puts in its errors).
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// isRange reports whether err is a value out of range from strconv or the
// decoder.
func isRange(err error) bool {
	return errors.Is(err, strconv.ErrRange) || errors.Is(err, lineprotocol.ErrValueOutOfRange)
}

// floatSyntax reports whether v is a float as the line-protocol grammar
// writes it: an optional '-', decimal digits with at most one '.', and an
// optional exponent of 'e' or 'E', an optional sign and digits. It checks
// the bytes that may appear and where a sign may; strconv.ParseFloat checks
// the rest. ParseFloat alone would also take what InfluxDB refuses and
// line-protocol/v2 takes: hexadecimal (0x1p4), underscores (1_000),
// "-Inf", "-infinity".
func floatSyntax(v []byte) bool {
	for i, c := range v {
		switch {
		case c >= '0' && c <= '9', c == '.', c == 'e', c == 'E':
		case c == '-' && i == 0:
		case (c == '+' || c == '-') && i > 0 && (v[i-1] == 'e' || v[i-1] == 'E'):
		default:
			return false
		}
	}
	return true
}
