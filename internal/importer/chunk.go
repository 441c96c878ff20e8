package importer

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// longLinePrefix is how much of a line over the limit is kept in the
// rejected table: enough to find it in the file, not the whole of it.
const longLinePrefix = 1024

// piece is what a chunker returns: whole lines, or a line over the limit.
type piece struct {
	buf  *[]byte // holds data; from the pool, give it back with putBuf
	data []byte  // whole lines; the last may lack its newline at the end of the input
	long *longLine
	// lines is how many line ends the piece took from the input, so that
	// the next piece's first line number is known.
	lines int64
}

// longLine is a line longer than the limit, skipped.
type longLine struct {
	length int64  // bytes, without its newline
	prefix []byte // its first bytes, a copy
}

// chunker cuts a stream into pieces of whole lines of about size bytes,
// never splitting a line. A line of more than maxLine bytes is skipped and
// returned as a longLine instead. Not safe for concurrent use.
type chunker struct {
	r       io.Reader
	size    int // the usual capacity of a buffer
	maxLine int
	carry   []byte // the start of a line not yet ended, for the next buffer
	eof     bool
}

func newChunker(r io.Reader, size, maxLine int) *chunker {
	// A buffer of at most maxLine+1 bytes can never hold a longer line
	// with its newline: the limit is exact.
	return &chunker{r: r, size: min(size, maxLine+1), maxLine: maxLine}
}

// next returns the next piece, or io.EOF after the last.
func (c *chunker) next() (piece, error) {
	// Every buffer holds at most maxLine+1 bytes, so that a longer line
	// never fits with its newline: the limit is exact.
	n := min(max(c.size, len(c.carry)+c.size), c.maxLine+1)
	bp := getBuf(n)
	buf := append((*bp)[:0:n], c.carry...)
	c.carry = c.carry[:0]
	for {
		for len(buf) < cap(buf) && !c.eof {
			n, err := c.r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if errors.Is(err, io.EOF) {
				c.eof = true
			} else if err != nil {
				putBuf(bp)
				return piece{}, err
			}
		}
		i := bytes.LastIndexByte(buf, '\n')
		if c.eof && (i >= 0 || len(buf) <= c.maxLine) {
			// The rest of the input; its last line may lack a newline.
			if len(buf) == 0 {
				putBuf(bp)
				return piece{}, io.EOF
			}
			return piece{buf: bp, data: buf, lines: int64(bytes.Count(buf, newline))}, nil
		}
		if i >= 0 {
			c.carry = append(c.carry, buf[i+1:]...)
			data := buf[:i+1]
			return piece{buf: bp, data: data, lines: int64(bytes.Count(data, newline))}, nil
		}
		// A full buffer without a line end holds the start of one line.
		if cap(buf) <= c.maxLine {
			grown := make([]byte, len(buf), min(2*cap(buf), c.maxLine+1))
			copy(grown, buf)
			*bp = grown
			buf = grown
			continue
		}
		long, ended, err := c.skip(buf)
		putBuf(bp)
		if err != nil {
			return piece{}, err
		}
		p := piece{long: long}
		if ended {
			p.lines = 1
		}
		return p, nil
	}
}

// skip reads past the rest of a line over the limit whose first bytes fill
// buf, and keeps what follows it for the next piece. ended reports that
// the line had a newline.
func (c *chunker) skip(buf []byte) (long *longLine, ended bool, err error) {
	long = &longLine{length: int64(len(buf)), prefix: bytes.Clone(buf[:min(len(buf), longLinePrefix)])}
	for !c.eof {
		n, err := c.r.Read(buf[:cap(buf)])
		if errors.Is(err, io.EOF) {
			c.eof = true
		} else if err != nil {
			return nil, false, err
		}
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			long.length += int64(i)
			c.carry = append(c.carry, buf[i+1:n]...)
			return long, true, nil
		}
		long.length += int64(n)
	}
	return long, false, nil
}

var newline = []byte{'\n'}

// bufPool recycles chunk buffers of the usual size; outsized ones (grown
// for a long line) are left to the garbage collector.
var bufPool sync.Pool

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 4 * DefaultChunkSize

func getBuf(n int) *[]byte {
	if bp, ok := bufPool.Get().(*[]byte); ok {
		if cap(*bp) >= n {
			return bp
		}
	}
	b := make([]byte, 0, n)
	return &b
}

func putBuf(bp *[]byte) {
	if bp == nil || cap(*bp) > maxPooled {
		return
	}
	*bp = (*bp)[:0]
	bufPool.Put(bp)
}
