package parse

import "bytes"

// A rejected line is skipped to its logical end, found the way InfluxDB
// finds it rather than the way the decoder does. The decoder, after an
// error, skips to the next newline, which may lie inside a string value:
// what follows it in the string would then be read as lines of their own,
// and a fragment such as `b=2 3` could become a point. InfluxDB splits a
// buffer into logical lines before it parses any of them, and a newline
// inside a quoted string does not end one; so the Parser starts a fresh
// decoder at the end of the rejected line's logical line.
//
// A line the decoder accepts is never split again: its extent is the
// decoder's. For lines without backslashes outside string values the two
// agree (the fuzz test checks it); see logicalEnd for where they can
// differ.

// logicalEnd returns the offset just past the logical line that starts at
// start (the first byte of a physical line): after its terminating newline,
// or len(data).
//
// Leading spaces are skipped and a comment line (#...) ends at its
// newline, as the decoder has it. Anything else is InfluxDB's scanLine
// (models/points.go, 1.x and 2.x): a backslash skips the next byte, when
// one more byte follows that one; the first unescaped space starts the
// field section, where a double quote opens a string when more '=' than
// ',' have been seen outside strings (the quote follows a field's '=') and
// closes it when in one; a newline outside a string ends the line.
//
// InfluxDB reads the leading spaces of a line as the start of the field
// section, and lets a quote in a comment line hide the newline that ends
// it (swallowing the next line); pginflux does neither. It also differs
// from the decoder where a backslash does: outside string values the
// decoder unescapes only the separators of each part (`\\` is two
// backslashes in a key, and `\\ ` an escaped space), where InfluxDB skips
// any escaped byte.
func logicalEnd(data []byte, start int) int {
	i := start
	for i < len(data) && data[i] == ' ' {
		i++
	}
	if i < len(data) && data[i] == '#' {
		if nl := bytes.IndexByte(data[i:], '\n'); nl >= 0 {
			return i + nl + 1
		}
		return len(data)
	}
	quoted, fields := false, false
	equals, commas := 0, 0
	for i < len(data) {
		c := data[i]
		if c == '\\' && i+2 < len(data) {
			i += 2
			continue
		}
		if c == ' ' {
			fields = true
		}
		if fields {
			switch {
			case !quoted && c == '=':
				equals++
			case !quoted && c == ',':
				commas++
			case c == '"' && equals > commas:
				quoted = !quoted
			}
		}
		if c == '\n' && !quoted {
			return i + 1
		}
		i++
	}
	return len(data)
}

// rejected is the extent of the last rejected line.
type rejected struct {
	line       int64 // its first line; 0 when there is none
	start, end int   // data[start:end], from the start of its first physical line to past its line end
}

// resync skips the rest of the rejected entry that starts on line first:
// the Parser goes on at the end of its logical line, with the fast path
// and, for a line it leaves, a fresh decoder. The new decoder's escape
// buffer is the one allocation of a rejected line; good lines never get
// here.
func (p *Parser) resync(first int64) {
	start := p.lines.lineStart(first)
	end := logicalEnd(p.data, start)
	p.rej = rejected{line: first, start: start, end: end}
	p.off, p.slow, p.decAt = end, false, -1
}

// rejectedText returns the last rejected logical line without its line
// end.
func (p *Parser) rejectedText() []byte {
	b := p.data[p.rej.start:p.rej.end]
	b = bytes.TrimSuffix(b, newline)
	return bytes.TrimSuffix(b, []byte{'\r'})
}
