package parse

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// The decoder path reads the entries the fast path leaves: it takes the
// tokens of lineprotocol.Decoder, checks their values as the Parser has
// them (the grammar of numbers, NUL bytes, the range of timestamps), and
// makes every LineError the Parser returns. Tokens the decoder unescaped
// are copied into the Parser's arena (keep); the others alias data.

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
