// Package httpapi serves pginflux's operational endpoints: /metrics for
// Prometheus, /healthz and /readyz for orchestrators, /ping, /health and
// /ready as InfluxDB answers them, and optionally Go's profiler under
// /debug/pprof. With a Writer it also takes line protocol as InfluxDB
// does: /write (1.x), /api/v2/write (2.x) and /api/v3/write_lp (3), and
// answers on /query what InfluxDB tools ask before they write (CREATE
// DATABASE, SHOW DATABASES, SHOW MEASUREMENTS, SHOW RETENTION POLICIES).
// Every answer carries InfluxDB's version headers and a request ID.
//
// It knows nothing of PostgreSQL or of the transports: readiness and
// health are functions handed in, metrics come from the registry handed
// in, what is written goes to the Writer handed in, and what /query tells
// comes from the Catalog handed in.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/budget"
)

// Timeouts of the http.Server. WriteTimeout leaves room for a 30-second
// CPU profile, pprof's default.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// shutdownTimeout bounds how long Run waits for requests under way
	// once its context has ended; what is still open then is closed.
	shutdownTimeout = 5 * time.Second
)

// Config configures a Server.
type Config struct {
	// Address is host:port with a numeric port; port 0 picks a free one.
	Address string
	// Registry is what /metrics serves: the process's own registry, never
	// the global one.
	Registry *prometheus.Registry
	// Ready reports whether pginflux can do its job; /readyz answers 503
	// with the error's text when it returns one. It is called for every
	// request to /readyz (wrap it with Cache to spare what it checks), with
	// a context that ends when the request does. Nil means always ready.
	Ready func(ctx context.Context) error
	// Checks are what /health reports, each by name: it answers 503 with
	// status "fail" while any returns an error. Each is called for every
	// request to /health (wrap it with Cache), with a context that ends
	// when the request does.
	Checks []Check
	// Version is pginflux's version, sent as X-Influxdb-Version
	// ("pginflux-<version>") and in /health; Commit its VCS revision, in
	// /health ("" when unknown).
	Version, Commit string
	// PProf serves Go's profiler under /debug/pprof/.
	PProf bool

	// Writer, when not nil, takes /write, /api/v2/write and
	// /api/v3/write_lp, and /query is served.
	Writer Writer
	// Catalog, when not nil, answers /query's CREATE DATABASE, SHOW
	// DATABASES and SHOW RETENTION POLICIES; without it CREATE DATABASE is
	// a no-op and the others are errors.
	Catalog Catalog
	// Reader, when not nil, answers /query's SELECT and other SHOW
	// statements; without it they are errors.
	Reader Reader
	// QueryTimeout is the Reader's bound on one statement: a /query
	// answer's write deadline leaves that much time to each statement.
	QueryTimeout time.Duration
	// Token, when not empty, is a credential that may write to and query
	// every database (see tokenGiven).
	Token string
	// Auth, when not nil, returns the credentials file (--auth-file) in
	// force, or nil for none: a request to the write endpoints or /query
	// then needs one of its credentials (or Token), and may write to and
	// query only the databases it grants (403 otherwise). It is called for
	// every request, so that a reload takes effect at once.
	Auth func() *auth.File
	// MaxBody bounds a write request's body, after decompression.
	MaxBody int64
	// MaxConnections bounds the connections held open at once, every
	// endpoint's; one more is closed as soon as it is accepted, and
	// counted. 0 means DefaultMaxConnections.
	MaxConnections int
	// MaxWrites bounds the write requests served at once (reading,
	// parsing, waiting for the commit); one more is answered "try later"
	// before its body is read. 0 means DefaultMaxWrites.
	MaxWrites int
	// BodyTimeout bounds the time from a write request's arrival to the
	// end of its body (408 after); CommitTimeout the time from then to
	// the answer (503 after). 0 means DefaultBodyTimeout and
	// DefaultCommitTimeout.
	BodyTimeout, CommitTimeout time.Duration
	// TLS, when not nil, makes the server HTTPS, for every endpoint.
	TLS *tls.Config
	// Memory is what write requests draw from the memory budget while
	// served: RequestMemory bytes each (the first read buffer), and
	// GzipMemory more for a gzipped body (its decompressor); one that does
	// not fit is answered "try later" before its body is read. Nil for no
	// budget.
	Memory                    *budget.Account
	RequestMemory, GzipMemory int64
}

// Defaults of Config.
const (
	DefaultMaxBody        = 32 << 20
	DefaultMaxConnections = 1024
	DefaultMaxWrites      = 64
	DefaultBodyTimeout    = 10 * time.Second
	DefaultCommitTimeout  = 5 * time.Second
)

// Check is a named check of what /health reports.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Server is the operational HTTP server. Create it with Listen, add
// handlers with Handle if need be, then call Run once.
type Server struct {
	cfg     Config
	ln      net.Listener
	mux     *http.ServeMux
	handler http.Handler // mux, with the headers of every answer
	srv     *http.Server
	log     *slog.Logger
	started time.Time

	wm         *WriteMetrics
	writes     chan struct{} // a slot per write request under way
	admission  *admission
	credWrites credentialWrites
	tokenHash  [sha256.Size]byte
}

// Listen binds cfg.Address at once, so that a bad address or a port in use
// is reported before anything else starts. Nothing is served until Run.
func Listen(cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.Registry == nil {
		return nil, errors.New("httpapi: no registry")
	}
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listen on http %s: %w", cfg.Address, err)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxWrites <= 0 {
		cfg.MaxWrites = DefaultMaxWrites
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	refused, err := NewConnectionMetrics(cfg.Registry)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	ln = &limitListener{Listener: ln, slots: make(chan struct{}, cfg.MaxConnections), refused: refused}
	s := &Server{cfg: cfg, ln: ln, mux: http.NewServeMux(), log: log, tokenHash: sha256.Sum256([]byte(cfg.Token)),
		writes: make(chan struct{}, cfg.MaxWrites), admission: newAdmission(cfg.MaxBody), started: time.Now()}
	if cfg.Writer != nil {
		s.wm = NewWriteMetrics(cfg.Registry)
	}
	s.routes()
	s.handler = s.common(s.mux)
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		TLSConfig:         cfg.TLS,
	}
	log.Info("serving metrics and health checks", "transport", "http", "address", ln.Addr().String(), "pprof", cfg.PProf,
		"write", cfg.Writer != nil, "tls", cfg.TLS != nil, "token", cfg.Token != "",
		"max_connections", cfg.MaxConnections, "max_writes", cfg.MaxWrites)
	return s, nil
}

// Addr returns the address the server is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handle adds a handler for pattern (see http.ServeMux). It must be called
// before Run.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the server's handler, for tests that skip the socket.
func (s *Server) Handler() http.Handler { return s.handler }

// Run serves until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests under way finish for a few seconds, closes the
// rest and returns. It returns an error only when serving failed.
func (s *Server) Run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() {
		if s.srv.TLSConfig != nil {
			// The certificate is in TLSConfig already.
			served <- s.srv.ServeTLS(s.ln, "", "")
			return
		}
		served <- s.srv.Serve(s.ln)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(shutdown); err != nil {
		s.log.Debug("http requests still open at shutdown; closing them", "err", err)
		s.srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

func (s *Server) routes() {
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{
		ErrorLog: promLogger{s.log},
		// A collector that fails (say, /proc unreadable) must not hide
		// every other metric.
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
	s.healthRoutes()
	if s.cfg.PProf {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.writeRoutes()
	s.queryRoutes()
}

// promLogger passes promhttp's errors (a failing collector, a client gone
// mid-scrape) to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("serving metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// limitListener closes at once the connections it accepts beyond its
// slots, so that what the server holds per connection (buffers, a
// goroutine) has a bound. Safe for concurrent use.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	refused prometheus.Counter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.refused.Inc()
			c.Close()
		}
	}
}

// limitConn gives its slot back once, when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// NewConnectionMetrics makes and registers with reg the counter of HTTP
// connections refused at --http-max-connections.
func NewConnectionMetrics(reg prometheus.Registerer) (prometheus.Counter, error) {
	refused := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pginflux_http_refused_connections_total",
		Help: "HTTP connections closed as soon as accepted because --http-max-connections were open.",
	})
	return refused, reg.Register(refused)
}
