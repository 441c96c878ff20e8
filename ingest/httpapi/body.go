package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// A write request's body is not held: the Writer reads it as it arrives,
// decompressed, through a body, which enforces --http-max-body and tells
// the Writer's caller why a read failed.

// BodyError is a failure to read a request's body: too large, too slow,
// not valid gzip, or the client gone. The Writer stops there and returns
// an error wrapping it; the lines before it were taken.
type BodyError struct {
	Code int    // the status to answer; clientGone when there is no one to answer
	Msg  string // the answer's message
	err  error
}

func (e *BodyError) Error() string { return e.Msg }
func (e *BodyError) Unwrap() error { return e.err }

// reqBody is a request's body as the Writer reads it: decompressed, counted,
// and cut with a *BodyError when more than limit bytes arrive or a read
// fails. The body must arrive by its read deadline, which is pushed back
// by the time the Writer spends between reads (parsing, or waiting for
// room for the rows): only the client's slowness counts. At its end the
// deadline is lifted, so that the wait for the commit that follows is
// bounded by the commit timeout alone. Used by one goroutine.
type reqBody struct {
	s      *Server
	r      *http.Request
	rc     *http.ResponseController
	src    io.Reader // decompressed
	gz     *gzip.Reader
	left   int64        // bytes still allowed
	n      atomic.Int64 // bytes read, decompressed
	ended  atomic.Bool
	err    error // the read's failure, once there is one
	commit time.Duration

	deadline time.Time // the read deadline
	returned time.Time // when the last read returned

	onEnd func(n int64) // called with the bytes read at the end, or the cut
}

// openBody returns the body of r, decompressed by its Content-Encoding,
// or the status and message to answer with. Close it when done.
func (s *Server) openBody(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, deadline time.Time, ended func(n int64)) (*reqBody, int, string) {
	_ = rc.SetReadDeadline(deadline)
	// The body as sent is bounded too: gzip only ever shrinks line
	// protocol.
	var src io.Reader = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	b := &reqBody{s: s, r: r, rc: rc, left: s.cfg.MaxBody, commit: s.cfg.CommitTimeout, deadline: deadline, onEnd: ended}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		gz, err := getGzip(src)
		if err != nil {
			e := s.bodyError(r, err, "the body is not gzip")
			return nil, e.Code, e.Msg
		}
		b.gz, src = gz, gz
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported: send gzip or identity", enc)
	}
	b.src = src
	return b, 0, ""
}

// Read reads the body, decompressed; past the limit, or when a read fails,
// it returns a *BodyError.
func (b *reqBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.ended.Load() {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left+1 {
		// One byte more than allowed tells a body that is too large.
		p = p[:b.left+1]
	}
	if !b.returned.IsZero() {
		if ours := time.Since(b.returned); ours > time.Millisecond {
			b.deadline = b.deadline.Add(ours)
			_ = b.rc.SetReadDeadline(b.deadline)
		}
	}
	n, err := b.src.Read(p)
	b.returned = time.Now()
	b.n.Add(int64(n))
	b.left -= int64(n)
	switch {
	case b.left < 0:
		b.err = &BodyError{Code: http.StatusRequestEntityTooLarge, Msg: b.s.tooLarge()}
		b.onEnd(b.n.Load())
		return n, b.err
	case err == io.EOF:
		b.ended.Store(true)
		b.onEnd(b.n.Load())
		// From now on the answer comes within the commit timeout.
		_ = b.rc.SetReadDeadline(time.Time{})
		_ = b.rc.SetWriteDeadline(time.Now().Add(b.commit + writeTimeout))
		return n, io.EOF
	case err != nil:
		invalid := "cannot read the body"
		if b.gz != nil {
			invalid = "the body is not valid gzip"
		}
		b.err = b.s.bodyError(b.r, err, invalid)
		b.onEnd(b.n.Load())
		return n, b.err
	}
	return n, nil
}

// Close returns the decompressor for reuse.
func (b *reqBody) Close() {
	if b.gz != nil {
		putGzip(b.gz)
		b.gz = nil
	}
}

// bodyError says what a failed read of r's body is answered with.
func (s *Server) bodyError(r *http.Request, err error, invalid string) *BodyError {
	e := &BodyError{err: err}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		e.Code, e.Msg = http.StatusRequestEntityTooLarge, s.tooLarge()
	case errors.Is(err, os.ErrDeadlineExceeded):
		e.Code, e.Msg = http.StatusRequestTimeout, fmt.Sprintf("the body did not arrive within %v", s.cfg.BodyTimeout)
	case r.Context().Err() != nil:
		e.Code = clientGone
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, new(flate.CorruptInputError)):
		e.Code, e.Msg = http.StatusBadRequest, invalid+": "+err.Error()
	default:
		e.Code, e.Msg = http.StatusBadRequest, "cannot read the body: "+err.Error()
	}
	return e
}

func (s *Server) tooLarge() string {
	return fmt.Sprintf("request body too large: more than --http-max-body (%d bytes) after decompression; send smaller batches", s.cfg.MaxBody)
}

// gzipPool keeps decompressors for reuse.
var gzipPool sync.Pool

func getGzip(r io.Reader) (*gzip.Reader, error) {
	if gz, ok := gzipPool.Get().(*gzip.Reader); ok {
		if err := gz.Reset(r); err != nil {
			gzipPool.Put(gz)
			return nil, err
		}
		return gz, nil
	}
	return gzip.NewReader(r)
}

func putGzip(gz *gzip.Reader) { gzipPool.Put(gz) }
