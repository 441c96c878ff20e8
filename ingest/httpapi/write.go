package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/parse"
)

// Writer stores what /write (InfluxDB 1.x), /api/v2/write (2.x) and
// /api/v3/write_lp (3) receive. The server knows nothing of where it goes. Its methods are
// called concurrently, by every request.
type Writer interface {
	// Admit says whether a request for database db (v1 and v3 db=, v2
	// bucket=; "" when not given), of credential c, can be taken now,
	// before its body is read: nil, or an error wrapping ErrFull,
	// ErrUnavailable or ErrInvalid, whose text is the answer's message.
	Admit(db string, c *auth.Credential) error
	// Write stores the lines of req.Body as they arrive and returns once they are stored
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
	// ErrForbidden: PostgreSQL refused the rows for a privilege the
	// credential's role lacks (403).
	ErrForbidden = errors.New("forbidden")
)

// WriteRequest is one write request, its body decompressed.
type WriteRequest struct {
	DB string // v1 and v3 db=, v2 bucket=; "" when not given
	// Body is the request's body, decompressed, read by Write as it
	// arrives (never after Write returns). A read that fails returns a
	// *BodyError, which Write returns wrapped, with the lines before it
	// counted in its result.
	Body      io.Reader
	Precision parse.Precision
	Source    netip.AddrPort // the client, as the connection says
	Received  time.Time
	// CommitTimeout bounds the wait for the commit, from the body's end.
	CommitTimeout time.Duration
	// Credential is who sent it (see Config.Auth); never nil.
	Credential *auth.Credential
	// Held, when not nil, is to count the request's rows while they wait
	// for their commit (a credential's of --auth-file).
	Held prometheus.Gauge
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
	// By credential of --auth-file (not --http-token's, nor anyone's):
	CredentialRequests *prometheus.CounterVec // credential, code
	CredentialLines    *prometheus.CounterVec // credential, outcome: taken, bad, rejected
	CredentialHeld     *prometheus.GaugeVec   // credential: rows waiting for their commit
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
	m.CredentialRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pginflux_http_credential_write_requests_total",
		Help: "Write requests answered, by credential of --auth-file (its name) and status code.",
	}, []string{"credential", "code"})
	m.CredentialLines = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pginflux_http_credential_lines_total",
		Help: "Lines of write requests, by credential of --auth-file and outcome: taken (added as rows), bad (not stored as rows), rejected (rows stored with values in the rejected table, or refused whole).",
	}, []string{"credential", "outcome"})
	m.CredentialHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pginflux_http_credential_held_rows",
		Help: "Rows of write requests waiting for their commit, by credential of --auth-file.",
	}, []string{"credential"})
	if reg != nil {
		reg.MustRegister(m.Requests, m.Bytes, m.Duration, m.CredentialRequests, m.CredentialLines, m.CredentialHeld)
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
		var t tally
		code := s.write(v, w, r, start, &t)
		s.wm.Requests.WithLabelValues(v.String(), strconv.Itoa(code)).Inc()
		if c := t.cred; c != nil && c != anyone && c != tokenHolder {
			s.wm.CredentialRequests.WithLabelValues(c.Name, strconv.Itoa(code)).Inc()
			s.wm.CredentialLines.WithLabelValues(c.Name, "taken").Add(float64(t.res.Lines))
			s.wm.CredentialLines.WithLabelValues(c.Name, "bad").Add(float64(t.res.BadLines))
			s.wm.CredentialLines.WithLabelValues(c.Name, "rejected").Add(float64(t.res.Rejected))
		}
		s.wm.Duration.Observe(time.Since(start).Seconds())
	}
}

// write serves one write request and returns the status it answered.
func (s *Server) write(v api, w http.ResponseWriter, r *http.Request, received time.Time, t *tally) int {
	cred, ok := s.credential(r)
	t.cred = cred
	if ok {
		r = withCredential(r, cred)
	}
	if !ok {
		return s.refuse(w, r, v, http.StatusUnauthorized, s.unauthorized())
	}
	p, err := writeParamsOf(v, r.URL.Query())
	if err != nil {
		return s.refuse(w, r, v, http.StatusBadRequest, err.Error())
	}
	if !cred.CanWrite(p.db) {
		return s.refuse(w, r, v, http.StatusForbidden, forbidden(cred, "write to", p.db))
	}
	if err := s.cfg.Writer.Admit(p.db, cred); err != nil {
		return s.refuseWith(w, r, v, err)
	}
	if r.ContentLength > s.cfg.MaxBody {
		return s.refuse(w, r, v, http.StatusRequestEntityTooLarge, s.tooLarge()+"; nothing of it is written")
	}
	sv, err := s.serve(w, r, cred)
	if err != nil {
		return s.refuseWith(w, r, v, err)
	}
	defer sv.end()
	// A slow body holds its slot no longer than this.
	rc := http.NewResponseController(w)
	b, code, msg := s.openBody(w, r, rc, received.Add(s.cfg.BodyTimeout), sv.read)
	if code != 0 {
		if code == clientGone {
			return code
		}
		return s.refuse(w, r, v, code, msg)
	}
	defer b.Close()
	// A body that trickles in gives its place back (see serve).
	watch := time.AfterFunc(slowAfter, func() {
		if !b.ended.Load() && b.n.Load() < slowBytes {
			sv.slow()
		}
	})
	defer watch.Stop()

	// The rows wait for room at most as long as the body may take and
	// their commit after it; the commit, CommitTimeout from the body's
	// end.
	ctx, cancel := context.WithDeadline(r.Context(), received.Add(s.cfg.BodyTimeout+s.cfg.CommitTimeout))
	defer cancel()
	src, _ := netip.ParseAddrPort(r.RemoteAddr)
	var held prometheus.Gauge
	if cred != anyone && cred != tokenHolder {
		held = s.wm.CredentialHeld.WithLabelValues(cred.Name)
	}
	res, err := s.cfg.Writer.Write(ctx, &WriteRequest{
		Held: held,
		DB:   p.db, Body: b, Precision: p.prec, Source: src, Received: received, CommitTimeout: s.cfg.CommitTimeout, Credential: cred,
		AllOrNothing: p.allOrNothing, NoWait: p.noWait,
	})
	s.wm.Bytes.Add(float64(b.n.Load()))
	t.res = res
	return s.answerWrite(w, r, v, p, res, err)
}

// answerWrite answers a write request whose body was read (or cut), with
// what the Writer returned, and returns the status.
func (s *Server) answerWrite(w http.ResponseWriter, r *http.Request, v api, p writeParams, res WriteResult, err error) int {
	var cut *BodyError
	switch {
	case errors.As(err, &cut):
		if cut.Code == clientGone {
			return clientGone
		}
		return s.refuse(w, r, v, cut.Code, cutMessage(cut, res.Lines))
	case err != nil && r.Context().Err() != nil:
		return clientGone
	case errors.Is(err, ErrFull), errors.Is(err, ErrUnavailable), errors.Is(err, ErrInvalid), errors.Is(err, ErrForbidden):
		return s.failWith(w, r, v, err)
	case errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", retryUnavailable)
		return s.fail(w, r, v, http.StatusServiceUnavailable, fmt.Sprintf(
			"the rows were not committed within %v (PostgreSQL is slow or unreachable); pginflux holds them and may still write them: send the request again later", s.cfg.CommitTimeout))
	case err != nil:
		s.log.Warn("a write request's rows were not written", "source", r.RemoteAddr, "request_id", requestID(r), "credential", credentialName(r), "err", err)
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

// refuse answers a write request whose body was not read, and closes the
// connection after the answer: otherwise net/http would first read what
// is left of the body (up to 256 KiB), and a client that trickles it
// would not hear the answer for as long.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, v api, code int, msg string) int {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	return s.fail(w, r, v, code, msg)
}

// refuseWith is refuse with the answer of failWith.
func (s *Server) refuseWith(w http.ResponseWriter, r *http.Request, v api, err error) int {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	return s.failWith(w, r, v, err)
}

// tally is what a write request's metrics need of it.
type tally struct {
	cred *auth.Credential // nil when it carried none
	res  WriteResult
}

// cutMessage is the answer to a request whose body was cut: what was
// wrong, and what became of the lines before the cut, which were taken
// as they arrived.
func cutMessage(cut *BodyError, taken int) string {
	if taken == 0 {
		return cut.Msg + "; nothing of it is written"
	}
	return fmt.Sprintf("%s; the %d lines before it were taken and will be written", cut.Msg, taken)
}
