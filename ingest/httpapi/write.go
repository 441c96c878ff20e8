package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/parse"
)

// Writer stores what /write (InfluxDB 1.x), /api/v2/write (2.x) and
// /api/v3/write_lp (3) receive. The server knows nothing of where it goes. Its methods are
// called concurrently, by every request.
type Writer interface {
	// Admit says whether a request for database db (v1 and v3 db=, v2
	// bucket=; "" when not given) can be taken now, before its body is read: nil,
	// or an error wrapping ErrFull, ErrUnavailable or ErrInvalid, whose
	// text is the answer's message.
	Admit(db string) error
	// Write stores the lines of req.Body and returns once they are stored
	// for good (committed, or durably spooled), or could not be (an
	// error: the rows are lost, or ctx ended, at the latest when the
	// server's commit timeout passes; or an error wrapping ErrUnavailable
	// when it is known early that they cannot be stored now). Lines that
	// could not be stored as sent are counted in the result, not errors.
	Write(ctx context.Context, req *WriteRequest) (WriteResult, error)
}

// Errors of a Writer, each answered in its own way.
var (
	// ErrFull: too many rows wait to be written; the client should retry
	// shortly (v2: 429; v1: 503, since InfluxDB 1.x clients drop a batch
	// answered with any 4xx).
	ErrFull = errors.New("too many rows waiting to be written")
	// ErrUnavailable: the database is down, or pginflux is starting or
	// stopping (503).
	ErrUnavailable = errors.New("unavailable")
	// ErrInvalid: the request cannot be taken as it is (400).
	ErrInvalid = errors.New("invalid request")
)

// WriteRequest is one write request, its body decompressed.
type WriteRequest struct {
	DB        string // v1 and v3 db=, v2 bucket=; "" when not given
	Body      []byte // owned by the server: valid only during Write
	Precision parse.Precision
	Source    netip.AddrPort // the client, as the connection says
	Received  time.Time
	// AllOrNothing asks that nothing be stored when any line is bad (v3
	// accept_partial=false); NoWait that Write return once the rows are
	// taken, before their commit (v3 no_sync=true).
	AllOrNothing, NoWait bool
}

// WriteResult is what became of a request's lines.
type WriteResult struct {
	Lines    int // lines stored as rows
	Rejected int // of those rows, the ones whose values (some or all) went to the rejected table
	BadLines int // lines not stored: malformed, too long, or naming the rejected table
	// Listed are the first bad lines (up to a bound of the Writer's), in
	// order, when BadLines > 0.
	Listed []BadLine
	// KeptIn names where bad lines and rejected values are kept, such as
	// metrics.pginflux_rejected; "" when they are only counted (and with
	// AllOrNothing, whose bad lines are not kept).
	KeptIn string
}

// BadLine is a line of a request that was not stored.
type BadLine struct {
	Line int64  // 1-based, in the request body
	Text string // the line, perhaps cut
	Err  string // what was wrong
}

// api is the dialect of a write endpoint.
type api int

const (
	apiV1 api = iota // /write and /query: {"error": "..."}
	apiV2            // /api/v2/write, /ready: {"code": "...", "message": "..."}
	apiV3            // /api/v3/write_lp: {"error": "...", "data": ...}
)

func (a api) String() string {
	switch a {
	case apiV2:
		return "v2"
	case apiV3:
		return "v3"
	}
	return "v1"
}

// Retry-After of each kind of "try later", in seconds.
const (
	retryFull        = "1"
	retryUnavailable = "5"
)

// clientGone is the status recorded for a request whose client left
// before its answer (nginx's number; never sent).
const clientGone = 499

// WriteMetrics counts the write requests. Safe for concurrent use.
type WriteMetrics struct {
	Requests *prometheus.CounterVec // api, code
	Bytes    prometheus.Counter
	Duration prometheus.Histogram
}

// NewWriteMetrics creates the metrics of the write endpoints and registers
// them with reg (nil for none).
func NewWriteMetrics(reg prometheus.Registerer) *WriteMetrics {
	m := &WriteMetrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pginflux_http_write_requests_total",
			Help: "Write requests answered, by API (v1: /write, v2: /api/v2/write, v3: /api/v3/write_lp) and status code (499: the client left first).",
		}, []string{"api", "code"}),
		Bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_http_write_received_bytes_total",
			Help: "Bytes of write request bodies, after decompression.",
		}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pginflux_http_write_duration_seconds",
			Help:    "Time from a write request's arrival to its answer: reading, parsing and committing.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1ms .. 24s
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Requests, m.Bytes, m.Duration)
	}
	return m
}

// writeRoutes serves the write endpoints when there is a Writer.
func (s *Server) writeRoutes() {
	if s.cfg.Writer == nil {
		return
	}
	s.mux.HandleFunc("POST /write", s.writeHandler(apiV1))
	s.mux.HandleFunc("POST /api/v2/write", s.writeHandler(apiV2))
	s.mux.HandleFunc("POST /api/v3/write_lp", s.writeHandler(apiV3))
}

func (s *Server) writeHandler(v api) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := s.write(v, w, r, start)
		s.wm.Requests.WithLabelValues(v.String(), strconv.Itoa(code)).Inc()
		s.wm.Duration.Observe(time.Since(start).Seconds())
	}
}

// write serves one write request and returns the status it answered.
func (s *Server) write(v api, w http.ResponseWriter, r *http.Request, received time.Time) int {
	if !s.authorized(r) {
		return s.fail(w, r, v, http.StatusUnauthorized, "authorization failed: give the token of --http-token")
	}
	p, err := writeParamsOf(v, r.URL.Query())
	if err != nil {
		return s.fail(w, r, v, http.StatusBadRequest, err.Error())
	}
	if err := s.cfg.Writer.Admit(p.db); err != nil {
		return s.failWith(w, r, v, err)
	}
	if r.ContentLength > s.cfg.MaxBody {
		return s.fail(w, r, v, http.StatusRequestEntityTooLarge, s.tooLarge())
	}
	select {
	case s.writes <- struct{}{}:
		defer func() { <-s.writes }()
	default:
		return s.failWith(w, r, v, fmt.Errorf("%w: %d write requests are under way (--http-max-writes)", ErrFull, s.cfg.MaxWrites))
	}
	// A slow body holds its slot no longer than this.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(received.Add(s.cfg.BodyTimeout))

	buf := getBuffer()
	defer putBuffer(buf)
	if code, msg := s.readBody(w, r, buf); code != 0 {
		if code == clientGone {
			return code
		}
		return s.fail(w, r, v, code, msg)
	}
	s.wm.Bytes.Add(float64(buf.Len()))

	// The body is read: from now on the answer comes within the commit
	// timeout, 204 or 503.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.CommitTimeout + writeTimeout))
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommitTimeout)
	defer cancel()
	src, _ := netip.ParseAddrPort(r.RemoteAddr)
	res, err := s.cfg.Writer.Write(ctx, &WriteRequest{
		DB: p.db, Body: buf.Bytes(), Precision: p.prec, Source: src, Received: received,
		AllOrNothing: p.allOrNothing, NoWait: p.noWait,
	})
	switch {
	case err != nil && r.Context().Err() != nil:
		return clientGone
	case errors.Is(err, ErrFull), errors.Is(err, ErrUnavailable), errors.Is(err, ErrInvalid):
		return s.failWith(w, r, v, err)
	case errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", retryUnavailable)
		return s.fail(w, r, v, http.StatusServiceUnavailable, fmt.Sprintf(
			"the rows were not committed within %v (PostgreSQL is slow or unreachable); pginflux holds them and may still write them: send the request again later", s.cfg.CommitTimeout))
	case err != nil:
		s.log.Warn("a write request's rows were not written", "source", src, "request_id", requestID(r), "err", err)
		return s.fail(w, r, v, http.StatusInternalServerError, "rows were not written: "+err.Error())
	case res.BadLines > 0 || res.Rejected > 0:
		if v == apiV3 {
			return s.partialV3(w, r, p, res)
		}
		return s.failLine(w, r, v, http.StatusBadRequest, partialWrite(res), res.Listed)
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

// readBody reads the request's body, decompressed, into buf. It returns 0,
// or the status and message to answer with (clientGone: none).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) (int, string) {
	limit := s.cfg.MaxBody
	// The body as sent is bounded too: gzip only ever shrinks line
	// protocol.
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	invalid := "cannot read the body"
	// The buffer grows with what arrives, never from the declared length,
	// which costs a client nothing to claim.
	switch enc {
	case "", "identity":
	case "gzip":
		gz, err := getGzip(body)
		if err != nil {
			return s.bodyError(r, err, "the body is not gzip")
		}
		defer putGzip(gz)
		body = gz
		invalid = "the body is not valid gzip"
	default:
		return http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported: send gzip or identity", enc)
	}
	// One byte more than allowed tells a body that is too large, after
	// decompression, without holding more of it.
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if n > limit {
		return http.StatusRequestEntityTooLarge, s.tooLarge()
	}
	if err != nil {
		return s.bodyError(r, err, invalid)
	}
	return 0, ""
}

func (s *Server) bodyError(r *http.Request, err error, invalid string) (int, string) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, s.tooLarge()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout, fmt.Sprintf("the body did not arrive within %v; nothing of it is written", s.cfg.BodyTimeout)
	case r.Context().Err() != nil:
		return clientGone, ""
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, new(flate.CorruptInputError)):
		return http.StatusBadRequest, invalid + ": " + err.Error()
	}
	return http.StatusBadRequest, "cannot read the body: " + err.Error()
}

func (s *Server) tooLarge() string {
	return fmt.Sprintf("request body too large: more than --http-max-body (%d bytes) after decompression; send smaller batches", s.cfg.MaxBody)
}

// writeParams are the query parameters of a write request.
type writeParams struct {
	db                   string
	prec                 parse.Precision
	allOrNothing, noWait bool // v3 only
}

// writeParamsOf reads the parameters of a write request: v1 db and
// precision (rp, u, p and consistency are taken and not looked at), v2
// bucket and precision (org and orgID likewise), v3 as v3Params reads
// them.
func writeParamsOf(v api, q url.Values) (writeParams, error) {
	switch v {
	case apiV2:
		p := writeParams{db: q.Get("bucket"), prec: parse.Nanosecond}
		switch s := q.Get("precision"); s {
		case "":
		case "ns", "us", "ms", "s":
			p.prec, _ = parse.ParsePrecision(s)
		default:
			return p, fmt.Errorf("invalid precision %q: want ns, us, ms or s", s)
		}
		return p, nil
	case apiV3:
		return v3Params(q)
	}
	p := writeParams{db: q.Get("db"), prec: parse.Nanosecond}
	if s := q.Get("precision"); s != "" {
		var err error
		if p.prec, err = parse.ParsePrecision(s); err != nil {
			return p, fmt.Errorf("invalid precision %q: want n, ns, u, us, ms, s, m or h", s)
		}
	}
	return p, nil
}

// Pools of what every request needs: a buffer for its body and, for
// gzip, a decompressor.
var (
	bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	gzipPool   sync.Pool
)

// maxPooledBuffer keeps one outsized body from pinning its memory.
const maxPooledBuffer = 4 << 20

func getBuffer() *bytes.Buffer {
	b := bufferPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		bufferPool.Put(b)
	}
}

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
