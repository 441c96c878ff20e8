package parse

import "bytes"

// Line returns line n (1-based, as in LineError.Line) of the buffer being
// parsed, without its line end, or nil when there is no such line. When n
// is the line where the last rejected line starts, it returns all of that
// logical line, which spans several lines when a quoted string does (see
// Next). It aliases the buffer given to Reset. Asking for lines in
// increasing order, as rejected lines come, costs one pass over the buffer
// in all.
func (p *Parser) Line(n int64) []byte {
	if n == p.rej.line && n > 0 {
		return p.rejectedText()
	}
	return bytes.TrimSuffix(p.lines.text(n), []byte{'\r'})
}
