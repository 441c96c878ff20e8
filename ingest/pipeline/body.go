package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// A request's body is read as it arrives, a chunk at a time: the complete
// lines of each chunk are parsed and added, and the incomplete last one
// waits for the next read. A request holds a read buffer and the rows of
// the batches it feeds, never its body.

// ReadSize is the most of a body read at once; a request's buffer holds
// that and the start of a line not yet complete, up to the line size.
const ReadSize = 64 << 10

// FirstReadSize is a request's buffer at first: it grows, up to twice
// ReadSize, only while the body arrives faster than it is read, so that a
// body that trickles in costs little.
const FirstReadSize = 16 << 10

// Write reads a request's body from body (at precision prec), adds its
// lines as they arrive, and waits until the rows are committed, kept in
// the rejected table, or lost (an error), or ctx ends; opts can change
// both (see WriteOptions). Lines without a timestamp get o.Received. Lines
// of other requests share batches with these. When a read of body fails,
// or ctx ends while lines are being added, the rest are not, what was
// added is written without anyone waiting for it, and the error (the
// read's, wrapped) is returned with the lines added so far counted.
func (s *Stream) Write(ctx context.Context, body io.Reader, prec parse.Precision, o sink.Origin, opts WriteOptions) (Result, error) {
	parser := s.parsers.Get().(*parse.Parser)
	defer s.parsers.Put(parser)
	defer parser.Reset(nil, time.Time{}) // drop body
	parser.SetPrecision(prec)
	var res Result
	var whole []byte
	if opts.AllOrNothing {
		buf := getBodyBuffer()
		defer putBodyBuffer(buf)
		drawn, err := s.readWhole(buf, body)
		defer s.cfg.WholeMemory.Give(drawn)
		if err != nil {
			return res, err
		}
		whole = buf.Bytes()
		// A nil producer only looks.
		if err := s.addBody(ctx, parser, nil, whole, 0, o, nil, &res); err != nil || res.Bad > 0 {
			return res, err
		}
		res = Result{}
	}
	var tk *sink.Ticket
	if !opts.NoWait {
		tk = sink.NewTicket()
	}
	pr := s.sh.BeginContext(ctx)
	var err error
	if whole != nil {
		err = s.addBody(ctx, parser, pr, whole, 0, o, tk, &res)
	} else {
		err = s.addFrom(ctx, parser, pr, body, o, tk, &res)
	}
	pr.End()
	if opts.Held != nil && tk != nil && err == nil {
		// The rows wait for their commit.
		held := float64(res.Lines)
		opts.Held.Add(held)
		defer opts.Held.Sub(held)
	}
	if tk == nil || err != nil {
		if tk != nil {
			tk.Seal()
		}
		return res, err
	}
	tk.Seal()
	if opts.CommitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.CommitTimeout)
		defer cancel()
	}
	res.Rejected, err = tk.Wait(ctx)
	return res, err
}

// chunkPool keeps the read buffers of requests that grew to full size.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, 2*ReadSize); return &b }}

// readBuffer is a request's read buffer, which grows as the body's pace
// and its lines need, drawing what it grows by from the memory budget
// (the first FirstReadSize bytes were drawn with the request).
type readBuffer struct {
	buf    []byte
	pooled *[]byte // when buf came from chunkPool
	drawn  int64
	mem    *budget.Account
}

// room makes room for a read after buf's len bytes, at least min bytes,
// more when the last read filled what there was (full).
func (r *readBuffer) room(min int, full bool) {
	want := cap(r.buf)
	if full && want < 2*ReadSize {
		want *= 2
	}
	for want-len(r.buf) < min {
		want *= 2
	}
	if want <= cap(r.buf) {
		return
	}
	var nb []byte
	if want <= 2*ReadSize && r.pooled == nil {
		r.pooled = chunkPool.Get().(*[]byte)
		nb = (*r.pooled)[:0]
	} else {
		nb = make([]byte, 0, want)
	}
	if grown := int64(cap(nb) - FirstReadSize); grown > r.drawn {
		r.mem.Take(grown - r.drawn)
		r.drawn = grown
	}
	r.buf = append(nb, r.buf...)
}

func (r *readBuffer) release() {
	r.mem.Give(r.drawn)
	if r.pooled != nil && cap(r.buf) == 2*ReadSize {
		*r.pooled = r.buf[:0]
		chunkPool.Put(r.pooled)
	}
}

// addFrom reads body and adds its lines as they arrive; a line over the
// line size is rejected, its start kept, and the rest of it skipped as it
// arrives.
func (s *Stream) addFrom(ctx context.Context, parser *parse.Parser, pr *sink.Producer, body io.Reader, o sink.Origin, tk *sink.Ticket, res *Result) error {
	rb := &readBuffer{buf: make([]byte, 0, FirstReadSize), mem: s.cfg.ReadMemory}
	defer rb.release()
	var lines int64 // complete lines before buf
	var long *longLine
	full := false
	for {
		// Room for a read beside the start of a line that waits.
		rb.room(FirstReadSize/2, full)
		buf := rb.buf
		n, rerr := body.Read(buf[len(buf):cap(buf)])
		full = n == cap(buf)-len(buf)
		buf = buf[:len(buf)+n]
		if long != nil {
			rest, ended := long.skip(buf)
			if !ended && rerr != io.EOF {
				rb.buf = buf[:0]
				if rerr != nil {
					return bodyEnd(rerr)
				}
				continue
			}
			s.tooLong(pr, long.prefix, long.size, lines+1, o, res)
			lines++
			long = nil
			buf = buf[:copy(buf, rest)]
		}
		complete := buf
		if rerr != io.EOF {
			// The last line may not have all arrived.
			complete = buf[:bytes.LastIndexByte(buf, '\n')+1]
		}
		if len(complete) > 0 {
			if err := s.addBody(ctx, parser, pr, complete, lines, o, tk, res); err != nil {
				return err
			}
			lines += int64(bytes.Count(complete, []byte{'\n'}))
		}
		if rerr != nil {
			return bodyEnd(rerr)
		}
		rest := buf[len(complete):]
		if len(rest) > s.cfg.MaxLineSize {
			long = &longLine{prefix: bytes.Clone(rest[:min(len(rest), maxKeptLong)]), size: len(rest)}
			rb.buf = buf[:0]
			continue
		}
		rb.buf = buf[:copy(buf, rest)]
	}
}

// bodyEnd is what addFrom returns for a read's error: nil at the end of
// the body.
func bodyEnd(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("read the body: %w", err)
}

// longLine is a line over the line size being skipped: its start, kept
// for the rejected table, and its size so far.
type longLine struct {
	prefix []byte
	size   int
}

// skip takes what arrived of the line: the bytes after its end and true
// when it ended there.
func (l *longLine) skip(data []byte) (rest []byte, ended bool) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		l.size += len(data)
		return nil, false
	}
	l.size += len(bytes.TrimSuffix(data[:i], []byte{'\r'}))
	return data[i+1:], true
}

// ErrNoMemory: a body to be kept whole does not fit in the memory budget
// now.
var ErrNoMemory = errors.New("the memory budget (--max-memory) is spent")

// wholeChunk is how much more of the memory budget a body kept whole
// draws at a time.
const wholeChunk = 256 << 10

// readWhole reads body into buf, drawing its bytes from the memory
// budget as it grows; it returns what it drew, to be given back.
func (s *Stream) readWhole(buf *bytes.Buffer, body io.Reader) (drawn int64, err error) {
	for {
		if int64(buf.Len())+ReadSize > drawn {
			if !s.cfg.WholeMemory.Admit(wholeChunk) {
				return drawn, ErrNoMemory
			}
			drawn += wholeChunk
		}
		buf.Grow(ReadSize)
		n, err := body.Read(buf.AvailableBuffer()[:ReadSize])
		buf.Write(buf.AvailableBuffer()[:n])
		if errors.Is(err, io.EOF) {
			return drawn, nil
		}
		if err != nil {
			return drawn, fmt.Errorf("read the body: %w", err)
		}
	}
}

// Whole bodies, for AllOrNothing.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody keeps one outsized body from pinning its memory.
const maxPooledBody = 4 << 20

func getBodyBuffer() *bytes.Buffer {
	b := bodyPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		bodyPool.Put(b)
	}
}
