package parse

import (
	"bytes"
	"io"
	"unsafe"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// lines finds the line numbers of the entries of a buffer. The decoder
// tells the line of an error, but not where an entry starts.
//
// Mostly a token of the entry tells: a token the decoder returns as a
// sub-slice of data has a known offset, and counting newlines up to it gives
// its line. Newlines within an entry occur only inside string field values,
// so every token up to and including the first string value lies on the
// first line of the entry. The count goes on from the previous offset, so
// that a buffer is counted once in all.
//
// When every one of those tokens was unescaped into the decoder's own buffer
// (as in `a\ b c\ d="x\"y"`), a second decoder reads the buffer through a
// reader that hands out one line per Read, and skips entries until it is at
// the same one: when its Next returns true, the last byte it has read lies
// on the line where the entry starts. Skipping a good entry consumes the
// same bytes as reading it, and after a rejected entry both decoders start
// again where the Parser resynchronises (restart), so both see the same
// entries. The second decoder is made only for stretches that need it, and
// reads each once.
type lines struct {
	data  []byte
	entry int64 // entries the main decoder has started since base

	base     int   // offset in data where the main decoder started
	baseLine int64 // line number of data[base]

	pos  int   // an offset in data ...
	line int64 // ... and its line number

	anchor    int  // offset in data of a token on the first line of the current entry, or -1
	searching bool // no anchor and no string value seen in the current entry yet

	shadow        *lineprotocol.Decoder
	rd            lineReader
	shadowEntries int64 // entries shadow has started

	forceShadow bool // tests: find every line with the shadow decoder
}

// reset starts on a new buffer.
func (l *lines) reset(data []byte) {
	l.data = data
	l.pos, l.line = 0, 1
	l.restart(0)
}

// restart notes that the main decoder starts again at data[off].
func (l *lines) restart(off int) {
	l.base, l.baseLine = off, l.lineAt(off)
	l.entry = 0
	l.shadow = nil
	l.rd = lineReader{}
	l.shadowEntries = 0
}

// absLine returns the line in data of line n of the main decoder.
func (l *lines) absLine(n int64) int64 { return l.baseLine + n - 1 }

// startEntry starts looking for the first line of a new entry.
func (l *lines) startEntry() {
	l.anchor = -1
	l.searching = true
}

// stopSearch ends the search for the first line of the current entry:
// later tokens may lie on later lines.
func (l *lines) stopSearch() { l.searching = false }

// mark reports whether tok is a part of data, and takes the first such
// non-empty token of an entry, while searching, as its anchor.
func (l *lines) mark(tok []byte) bool {
	off := l.offset(tok)
	if off < 0 {
		return false
	}
	if l.searching && len(tok) > 0 {
		l.anchor = off
		l.searching = false
	}
	return true
}

// offset returns the offset of tok in data, or -1 if tok is not a part of
// data.
func (l *lines) offset(tok []byte) int {
	off := uintptr(unsafe.Pointer(unsafe.SliceData(tok))) - uintptr(unsafe.Pointer(unsafe.SliceData(l.data)))
	if off >= uintptr(len(l.data)) || uintptr(len(tok)) > uintptr(len(l.data))-off {
		return -1
	}
	return int(off)
}

// entryLine returns the line on which the current entry starts.
func (l *lines) entryLine() int64 {
	if l.anchor >= 0 && !l.forceShadow {
		return l.lineAt(l.anchor)
	}
	return l.shadowLine()
}

// lineAt returns the line number of data[off] (off may be len(data)).
// Counting goes on from the last offset asked about, so that asking in
// increasing order costs one pass over data in all.
func (l *lines) lineAt(off int) int64 {
	if off < l.pos {
		l.line -= int64(bytes.Count(l.data[off:l.pos], newline))
	} else {
		l.line += int64(bytes.Count(l.data[l.pos:off], newline))
	}
	l.pos = off
	return l.line
}

// lineStart returns the offset in data of the start of line n, or -1 if
// there is no such line.
func (l *lines) lineStart(n int64) int {
	start := bytes.LastIndexByte(l.data[:l.pos], '\n') + 1
	for l.line > n && start > 0 {
		start = bytes.LastIndexByte(l.data[:start-1], '\n') + 1
		l.line--
	}
	for l.line < n {
		i := bytes.IndexByte(l.data[start:], '\n')
		if i < 0 {
			l.pos = start
			return -1
		}
		start += i + 1
		l.line++
	}
	l.pos = start
	return start
}

// text returns line n of data without its line end, or nil if there is no
// such line.
func (l *lines) text(n int64) []byte {
	start := l.lineStart(n)
	if start < 0 {
		return nil
	}
	end := bytes.IndexByte(l.data[start:], '\n')
	if end < 0 {
		return l.data[start:]
	}
	return l.data[start : start+end]
}

// shadowLine returns the line on which the current entry starts, from the
// second decoder.
func (l *lines) shadowLine() int64 {
	if l.shadow == nil {
		l.rd = lineReader{data: l.data[l.base:]}
		l.shadow = lineprotocol.NewDecoder(&l.rd)
	}
	for l.shadowEntries < l.entry && l.shadow.Next() {
		l.shadowEntries++
	}
	return l.absLine(l.rd.line())
}

var newline = []byte{'\n'}

// lineReader reads data one line at a time, so that what it has handed out
// tells how far a Decoder reading from it has got.
type lineReader struct {
	data []byte
	off  int   // bytes handed out
	nl   int64 // newlines handed out
}

// Read reads at most up to and including the next newline.
func (r *lineReader) Read(b []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	rest := r.data[r.off:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i+1]
	}
	n := copy(b, rest)
	r.off += n
	if n > 0 && b[n-1] == '\n' {
		r.nl++
	}
	return n, nil
}

// line returns the line number of the last byte handed out.
func (r *lineReader) line() int64 {
	if r.off > 0 && r.data[r.off-1] == '\n' {
		return r.nl
	}
	return r.nl + 1
}
