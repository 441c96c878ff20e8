package loadgen

import (
	"math/bits"
	"strconv"
	"time"
)

// fracDigits is how many decimals a Float value has: 93.877551, about
// what Telegraf's cpu percentages look like.
const fracDigits = 6

const fracScale = 1_000_000 // 10^fracDigits

// SeqStride is the time between the timestamps of consecutive lines.
// PostgreSQL keeps microseconds, so a stride of one microsecond keeps the
// stored rows distinct too.
const SeqStride = time.Microsecond

// Generator writes the lines of a workload: line seq has the timestamp
// Base + seq*SeqStride, less its place in the lines that share it (see
// Workload.Stamps), and values derived from seq alone, so the same seq
// always gives the same line. A Generator produces the seqs first,
// first+step, first+2*step, ..., so that several generators (one per
// sender) can share a run without sharing a line.
//
// A Generator is not safe for concurrent use; the Workload may be shared.
type Generator struct {
	w        *Workload
	base     int64 // Unix nanoseconds of seq 0
	next     uint64
	step     uint64
	group    uint64 // consecutive lines sharing a timestamp
	round    uint64 // lines of a round: every series once
	interval int64  // nanoseconds between rounds; 0: none
}

// NewGenerator returns a generator of w's lines from seq first on, every
// step-th, with seq 0 at base (truncated to the microsecond).
func NewGenerator(w *Workload, base time.Time, first, step uint64) *Generator {
	return &Generator{w: w, base: base.Truncate(time.Microsecond).UnixNano(), next: first, step: max(step, 1),
		group: w.group(), round: uint64(len(w.Series)), interval: int64(w.Interval)}
}

// Next returns the seq of the line the generator writes next.
func (g *Generator) Next() uint64 { return g.next }

// Time returns the timestamp of line seq.
func (g *Generator) Time(seq uint64) time.Time { return time.Unix(0, g.unixNano(seq)) }

func (g *Generator) unixNano(seq uint64) int64 {
	if g.interval == 0 {
		return g.base + int64(seq-seq%g.group)*int64(SeqStride)
	}
	r, at := seq/g.round, seq%g.round
	return g.base + int64(r)*g.interval + int64(at-at%g.group)*int64(SeqStride)
}

// AppendLine appends the next line, newline included, to b.
func (g *Generator) AppendLine(b []byte) []byte {
	b = g.appendLine(b, g.next)
	g.next += g.step
	return b
}

// AppendDatagram appends whole lines to b, at most maxLines and as many as
// fit in maxSize bytes (counted from len(b)), and returns b and the number
// of lines. It returns no line when the next one alone is longer than
// maxSize; Workload.MaxLineLen says how large maxSize must be for that
// never to happen.
func (g *Generator) AppendDatagram(b []byte, maxLines, maxSize int) ([]byte, int) {
	start := len(b)
	n := 0
	for n < maxLines {
		end := len(b)
		b = g.appendLine(b, g.next)
		if len(b)-start > maxSize {
			return b[:end], n
		}
		g.next += g.step
		n++
	}
	return b, n
}

// appendLine appends point seq: a line, or Workload.Split lines with the
// fields shared out among them in order.
func (g *Generator) appendLine(b []byte, seq uint64) []byte {
	s := &g.w.Series[seq%uint64(len(g.w.Series))]
	nf := len(s.Measurement.Fields)
	parts := g.w.parts(s)
	for p := range parts {
		b = append(b, s.prefix...)
		for i := p * nf / parts; i < (p+1)*nf/parts; i++ {
			f := &s.Measurement.Fields[i]
			k := s.keys[i]
			if i == p*nf/parts && i > 0 {
				k = k[1:] // the first of its line: no comma
			}
			b = append(b, k...)
			v := fieldValue(seq, i, f)
			if f.Kind == Float {
				b = appendFixed(b, v)
			} else {
				b = strconv.AppendUint(b, v, 10)
				b = append(b, 'i')
			}
		}
		b = append(b, ' ')
		b = strconv.AppendInt(b, g.unixNano(seq), 10)
		b = append(b, '\n')
	}
	return b
}

// fieldValue returns field i of line seq in raw units: millionths for a
// Float, whole numbers for an Int. It is a hash of (seq, i): cheap,
// deterministic, and spread over [0, Max).
func fieldValue(seq uint64, i int, f *Field) uint64 {
	limit := f.Max
	if f.Kind == Float {
		limit *= fracScale
	}
	hi, _ := bits.Mul64(mix(seq<<5|uint64(i)), limit)
	return hi
}

// mix is SplitMix64's finalizer.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// appendFixed appends v millionths as a decimal with fracDigits decimals.
func appendFixed(b []byte, v uint64) []byte {
	b = strconv.AppendUint(b, v/fracScale, 10)
	var frac [1 + fracDigits]byte
	frac[0] = '.'
	f := v % fracScale
	for i := fracDigits; i > 0; i-- {
		frac[i] = byte('0' + f%10)
		f /= 10
	}
	return append(b, frac[:]...)
}

// Row is line seq as values, for writing it to PostgreSQL directly.
type Row struct {
	Series   *Series
	UnixNano int64
	Values   []Value // one per field of Series.Measurement, in order
}

// Value is a field's value: F for a Float field, I for an Int field.
type Value struct {
	F float64
	I int64
}

// Row returns line seq as values, reusing r.Values. The floats are exactly
// what a parser makes of the line's text.
func (g *Generator) Row(seq uint64, r *Row) {
	s := &g.w.Series[seq%uint64(len(g.w.Series))]
	r.Series = s
	r.UnixNano = g.unixNano(seq)
	r.Values = r.Values[:0]
	for i := range s.Measurement.Fields {
		f := &s.Measurement.Fields[i]
		v := fieldValue(seq, i, f)
		if f.Kind == Float {
			// v and 1e6 are exact doubles, so the quotient is the double
			// nearest v/1e6: what parsing the decimal text gives.
			r.Values = append(r.Values, Value{F: float64(v) / fracScale})
		} else {
			r.Values = append(r.Values, Value{I: int64(v)})
		}
	}
}
