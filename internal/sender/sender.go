// Package sender packs lines of line protocol into UDP datagrams, as
// "pginflux send" does: as many whole lines as fit in a datagram, never a
// line split across two.
package sender

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxPayload is the largest UDP payload over IPv4: 64 KiB less the IP and
// UDP headers. A line longer than this cannot be sent at all.
const MaxPayload = 65507

// DefaultMaxDatagram keeps a datagram within a typical Ethernet MTU, so
// that it is never fragmented on the way.
const DefaultMaxDatagram = 1400

// Stats is what a Sender sent.
type Stats struct {
	Lines     int // lines sent
	Datagrams int // datagrams sent
	Bytes     int // payload bytes sent
	TooLong   int // lines not sent for being longer than MaxPayload
}

// ErrLineTooLong is returned (wrapped) by Add for a line longer than
// MaxPayload; the line is not sent and the Sender goes on.
var ErrLineTooLong = errors.New("line longer than the largest UDP payload")

// Sender packs lines into datagrams of at most a given size and writes
// each datagram with one Write call, as a connected UDP socket needs. In a
// datagram, every line ends with a newline. A line that does not fit in an
// empty datagram goes alone in one of its own, as long as it fits in a UDP
// payload. A Sender is not safe for concurrent use.
type Sender struct {
	w     io.Writer
	max   int
	buf   []byte
	lines int // in buf
	stats Stats
}

// New returns a Sender writing to w datagrams of at most maxDatagram bytes
// (capped at MaxPayload).
func New(w io.Writer, maxDatagram int) *Sender {
	maxDatagram = min(max(maxDatagram, 1), MaxPayload)
	return &Sender{w: w, max: maxDatagram, buf: make([]byte, 0, maxDatagram)}
}

// Add queues one line (without its newline; a trailing CR or LF is
// removed, and a blank line is skipped), writing the datagram under way
// first when the line does not fit in it. The Sender does not keep line.
func (s *Sender) Add(line []byte) error {
	line = bytes.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	size := len(line) + 1
	if size > MaxPayload {
		s.stats.TooLong++
		return fmt.Errorf("%w (%d bytes, at most %d with its newline): not sent", ErrLineTooLong, size, MaxPayload)
	}
	if len(s.buf)+size > s.max && len(s.buf) > 0 {
		if err := s.Flush(); err != nil {
			return err
		}
	}
	s.buf = append(s.buf, line...)
	s.buf = append(s.buf, '\n')
	s.lines++
	if len(s.buf) >= s.max {
		return s.Flush()
	}
	return nil
}

// Flush writes the datagram under way, if any.
func (s *Sender) Flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	n := len(s.buf)
	lines := s.lines
	s.buf, s.lines = s.buf[:0], 0
	if _, err := s.w.Write(s.buf[:n]); err != nil {
		return fmt.Errorf("send a datagram of %d bytes: %w", n, err)
	}
	s.stats.Datagrams++
	s.stats.Lines += lines
	s.stats.Bytes += n
	return nil
}

// Stats returns what was sent so far.
func (s *Sender) Stats() Stats { return s.stats }

// AddFrom adds every line of r, then flushes. A line too long to send is
// skipped and reported, with its line number, in the returned error (which
// then wraps ErrLineTooLong); the other lines are sent. Any other error
// stops it.
func (s *Sender) AddFrom(r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxPayload+1)
	var tooLong []error
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than any datagram: skip to the end of the line.
			size := len(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				size += len(line)
			}
			s.stats.TooLong++
			tooLong = append(tooLong, fmt.Errorf("line %d: %w (%d bytes, at most %d with its newline): not sent", n, ErrLineTooLong, size, MaxPayload))
			line = nil
		}
		if len(line) > 0 {
			if aerr := s.Add(line); errors.Is(aerr, ErrLineTooLong) {
				tooLong = append(tooLong, fmt.Errorf("line %d: %w", n, aerr))
			} else if aerr != nil {
				return aerr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read lines: %w", err)
		}
	}
	if err := s.Flush(); err != nil {
		return err
	}
	return errors.Join(tooLong...)
}
