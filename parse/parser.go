// Package parse turns InfluxDB line protocol into Points, one line at a time.
//
// Common lines (no backslash, plain decimal numbers) are read by a scanner
// of its own in one pass (fast.go); everything else goes to
// lineprotocol.Decoder (decode.go), which is the reference: the scanner
// takes only lines the decoder path would give the same Point, and the
// decoder path alone makes every error. Over the decoder the package adds what pginflux
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
	"fmt"
	"io"
	"time"
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

// unsafeString returns b as a string without copying, for a call that does
// not keep it (strconv copies what it puts in its errors).
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
