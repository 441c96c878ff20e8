// Package daemon is pginflux's daemon: built from a config.Config, Start
// binds every listener and starts the data path, and Close stops it in
// order, writing what was received.
//
// The data path, wired here: the transports (ingest/udp, ingest/tcp,
// ingest/httpapi) hand what they receive to ingest/pipeline, which parses
// it (package parse) into the rows of the sink (package sink), which
// writes them into PostgreSQL. The order of wiring is config → registry →
// pool → sink → pipeline → transports → HTTP, with HTTP bound first so
// that a port in use stops pginflux before anything starts.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/ingest/pipeline"
	"github.com/pginflux/pginflux/ingest/udp"
	"github.com/pginflux/pginflux/internal/auth"
	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/internal/procmetrics"
	"github.com/pginflux/pginflux/sink"
)

// Options are what a Daemon needs beyond its configuration. The zero
// value is what production uses, but for Version; the rest are seams for
// tests.
type Options struct {
	// Version is pginflux's version: in the log, /health and the HTTP
	// headers, and the pginflux_build_info metric.
	Version string
	// Log receives the daemon's log; nil means standard error.
	Log io.Writer
	// Args and Getenv are where the configuration came from (the command
	// line, and the environment with PGINFLUX_CONFIG_FILE): Reload reads
	// them again. Nil Getenv means os.Getenv.
	Args   []string
	Getenv func(string) string
	// MaxSchemas bounds the schemas HTTP writes go into with
	// --schema-from-db, the default one included; 0 means
	// DefaultMaxSchemas.
	MaxSchemas int
	// CommitTimeout bounds how long an HTTP write waits for its commit
	// before it is answered 503; 0 means httpapi.DefaultCommitTimeout.
	CommitTimeout time.Duration
}

// DefaultMaxSchemas is the default of Options.MaxSchemas: each schema has
// a sink of its own (writers, a limit of pending rows, a cache of its
// tables).
const DefaultMaxSchemas = 64

// Addrs are the addresses a Daemon is bound to; nil for a transport that
// is disabled.
type Addrs struct {
	UDP, TCP, HTTP net.Addr
}

// Daemon is a running pginflux. Its methods are safe for concurrent use.
type Daemon struct {
	cfg   config.Config
	opts  Options
	log   *slog.Logger
	level *slog.LevelVar // changed by Reload
	reg   *prometheus.Registry
	ready *readiness
	mem   *budget.Budget             // --max-memory, which every buffer draws from
	auth  *atomic.Pointer[auth.File] // --auth-file as last read; nil without

	http     *httpServer // nil without --http-address
	writes   *httpWrites // nil without --http-address
	pool     *pgxpool.Pool
	sink     *sink.Sink
	pipeline *pipeline.Pipeline
	tcp      *tcpStream    // nil without --tcp-address
	udp      *udp.Listener // nil without --udp-address
	reloader *reloader

	stopUDP context.CancelFunc
	udpDone chan struct{} // closed when the UDP readers have returned
	udpErr  error         // their error, once udpDone is closed

	closeOnce sync.Once
	closeErr  error
}

// Start builds the daemon of cfg and starts it: it binds every listener
// and starts taking line protocol. A database that cannot be reached yet
// is no reason not to start (the writers keep retrying); one that refuses
// pginflux's configuration is. ctx bounds the start only: stop the Daemon
// with Close.
func Start(ctx context.Context, cfg config.Config, opts Options) (*Daemon, error) {
	if cfg.UDPAddress == "" && cfg.TCPAddress == "" && cfg.HTTPAddress == "" {
		return nil, errors.New("nothing to listen on: --udp-address, --tcp-address and --http-address are all empty")
	}
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.MaxSchemas == 0 {
		opts.MaxSchemas = DefaultMaxSchemas
	}
	d := &Daemon{cfg: cfg, opts: opts, level: new(slog.LevelVar), reg: prometheus.NewRegistry(), ready: &readiness{}}
	d.log = cfg.Logger(opts.Log, d.level)
	d.logStart()
	procmetrics.Register(d.reg, opts.Version)
	if err := d.start(ctx); err != nil {
		d.abort()
		return nil, err
	}
	d.logListening()
	return d, nil
}

// start is Start's wiring, in order; on an error, abort undoes what it
// did.
func (d *Daemon) start(ctx context.Context) error {
	var err error
	// HTTP first, so that a port in use stops pginflux before anything
	// starts; stopped last, so that metrics stay scrapeable while the
	// rest drains.
	if d.cfg.AuthFile != "" {
		f, err := auth.Load(d.cfg.AuthFile)
		if err != nil {
			return fmt.Errorf("--auth-file: %w", err)
		}
		d.auth = new(atomic.Pointer[auth.File])
		d.auth.Store(f)
		d.log.Info("credentials read", "auth_file", d.cfg.AuthFile, "credentials", len(f.Credentials()))
	}
	d.mem = budget.New(d.cfg.MaxMemory)
	d.reg.MustRegister(d.mem.Collector())
	d.writes = newHTTPWrites(d.cfg, d.opts.MaxSchemas, d.reg, d.mem, d.log)
	if d.http, err = startHTTP(d.cfg, d.opts, d.reg, d.ready, d.writes, d.mem, d.auth, d.log); err != nil {
		return err
	}
	if d.pool, err = openPool(ctx, d.cfg, d.log); err != nil {
		return err
	}
	d.registerPool()
	sinkCfg := d.cfg.Sink()
	sinkCfg.Memory = d.mem.Account("rows")
	sinkMetrics := sink.NewMetrics(d.reg)
	d.sink = sink.New(d.pool, sinkCfg, sinkMetrics, d.log)
	d.ready.sink.Store(d.sink)
	if d.cfg.SpoolDir != "" {
		if err := d.sink.UseSpool(d.cfg.SpoolDir, d.cfg.SpoolMaxBytes); err != nil {
			return err
		}
	}
	d.pipeline = pipeline.New(pipeline.Config{
		Transport:     "udp",
		QueueSize:     d.cfg.QueueSize,
		QueueBytes:    d.cfg.QueueMaxBytes,
		Memory:        d.mem.Account("udp_queue"),
		Parsers:       d.cfg.Parsers,
		Precision:     d.cfg.Precision,
		FlushInterval: d.cfg.FlushInterval,
	}, d.sink, pipeline.NewMetrics(d.reg, "udp"), d.log)
	// TCP and HTTP writes go through shared batchers, not the pipeline.
	if d.tcp, err = startTCP(d.cfg, d.reg, d.sink, d.mem.Account("tcp"), d.log); err != nil {
		return err
	}
	if err := d.startUDP(); err != nil {
		return err
	}
	d.writes.open(d.pool, d.sink, sinkCfg, sinkMetrics)
	d.ready.listening.Store(true)
	d.reloader = &reloader{cfg: d.cfg, level: d.level, sink: d.sink, others: d.writes, auth: d.auth, log: d.log}
	return nil
}

// startUDP binds --udp-address, when set, and reads it into the pipeline
// until Close.
func (d *Daemon) startUDP() error {
	d.udpDone = make(chan struct{})
	if d.cfg.UDPAddress == "" {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := udp.ListenBatch(ctx, udp.Config{
		Address:    d.cfg.UDPAddress,
		Readers:    d.cfg.UDPReaders,
		ReadBuffer: d.cfg.UDPReadBuffer,
		Allow:      d.cfg.UDPAllow,
	}, d.pipeline.HandleBatch, udp.NewMetrics(d.reg), d.log)
	if err != nil {
		cancel()
		return err
	}
	d.udp, d.stopUDP = l, cancel
	if kd, err := l.KernelDrops(); err != nil {
		d.log.Warn("cannot count the datagrams the kernel drops; pginflux_udp_kernel_dropped_datagrams_total is left out", "err", err)
	} else {
		d.reg.MustRegister(kd)
	}
	go func() {
		d.udpErr = l.Run(ctx)
		close(d.udpDone)
	}()
	return nil
}

// Addrs returns the addresses the daemon is bound to: with port 0 in the
// configuration, the ports the kernel picked.
func (d *Daemon) Addrs() Addrs {
	var a Addrs
	if d.udp != nil {
		a.UDP = d.udp.Addr()
	}
	if d.tcp != nil {
		a.TCP = d.tcp.listener.Addr()
	}
	if d.http != nil {
		a.HTTP = d.http.srv.Addr()
	}
	return a
}

// Registry returns the registry of the daemon's metrics, which /metrics
// serves.
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// Failed is closed when the daemon can no longer take line protocol on
// its own (the UDP readers failed): Close it then, and it returns why.
func (d *Daemon) Failed() <-chan struct{} {
	if d.udp == nil {
		return nil
	}
	return d.udpDone
}

// Reload reads the configuration again from Options.Args and
// Options.Getenv and applies what can change while pginflux runs; see
// reloader.reload. On an error nothing changes, and the error says why;
// except that an --auth-file that does not parse leaves only the
// credentials as they were (the error says so too).
func (d *Daemon) Reload() error {
	d.log.Info("reloading the configuration", "config_file", d.opts.Getenv(config.FileEnv))
	next, err := config.Load(d.opts.Args, d.opts.Getenv, io.Discard)
	if err == nil {
		err = d.reloader.reload(next)
	}
	if err != nil && !errors.Is(err, errAuthNotReread) { // that one is logged already
		d.log.Error("cannot reload the configuration; running on with the current one", "err", err)
	}
	return err
}

// Close stops the daemon in order, writing what was received, within
// --shutdown-timeout: the readers first (UDP, TCP, then the HTTP writes
// under way), then the shared batchers and the parsers (which hand every
// open batch to the sink), then the sink's writers, then the pool, then
// HTTP, so that metrics stay scrapeable while the rest drains. Rows it
// could not write in time are logged (and counted), not returned: it
// returns an error only when the UDP readers had failed. Later calls
// return the first's error.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() { d.closeErr = d.close() })
	return d.closeErr
}

func (d *Daemon) close() error {
	d.ready.listening.Store(false)
	d.writes.beginStop()
	d.tcp.beginStop()
	var readErr error
	if d.udp != nil {
		d.stopUDP()
		<-d.udpDone
		readErr = d.udpErr
	}
	d.log.Info("stopping: writing what was received", "timeout", d.cfg.ShutdownTimeout)
	shutdown, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	abandon := context.AfterFunc(shutdown, d.sink.Abandon)
	d.tcp.stop()
	if err := d.writes.stop(shutdown); err != nil {
		d.log.Error("stopped with rows of other schemas not written", "err", err)
	}
	d.pipeline.Close()
	d.logStopped(d.sink.Close(shutdown))
	abandon()
	d.pool.Close()
	d.http.stop()
	if readErr != nil {
		return fmt.Errorf("read udp: %w", readErr)
	}
	return nil
}

// abort undoes a start that failed. What a transport started before the
// failure took is written, within the shutdown timeout.
func (d *Daemon) abort() {
	if d.udp != nil {
		d.stopUDP()
		<-d.udpDone
	}
	d.tcp.stop()
	if d.pipeline != nil {
		d.pipeline.Close()
	}
	if d.sink != nil {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
		abandon := context.AfterFunc(ctx, d.sink.Abandon)
		d.logStopped(d.sink.Close(ctx))
		abandon()
		cancel()
	}
	if d.pool != nil {
		d.pool.Close()
	}
	d.http.stop()
}

// logStopped logs how the sink's Close went.
func (d *Daemon) logStopped(err error) {
	s := d.sink
	switch {
	case err != nil:
		d.log.Error("stopped with rows not written", "err", err, "abandoned_rows", s.Abandoned(), "dropped_rows", s.Dropped())
	case s.Dropped() > 0:
		d.log.Warn("stopped; every row was written except those dropped earlier (see pginflux_sink_dropped_rows_total)", "dropped_rows", s.Dropped())
	default:
		if rows, bytes := s.Spooled(); bytes > 0 {
			d.log.Warn("stopped; what PostgreSQL could not take yet is in the spool, to be written once it can (at the next start)",
				"spooled_rows", rows, "spool_bytes", bytes, "spool", d.cfg.SpoolDir)
		} else {
			d.log.Info("stopped; everything received was written")
		}
	}
}

func (d *Daemon) logStart() {
	cfg := d.cfg
	var memory []any
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		memory = []any{"memory_limit", limit}
	}
	d.log.Info("starting pginflux", append([]any{"version", d.opts.Version, "database", cfg.Database, "schema", cfg.Schema,
		"storage", cfg.Storage, "udp_address", cfg.UDPAddress, "udp_readers", cfg.UDPReaders,
		"precision", cfg.Precision.String(), "batch_size", cfg.BatchSize, "flush_interval", cfg.FlushInterval,
		"writers", cfg.Writers, "parsers", cfg.Parsers, "queue_size", cfg.QueueSize,
		"http_address", cfg.HTTPAddress, "pprof", cfg.PProf, "tcp_address", cfg.TCPAddress,
		"procs", runtime.GOMAXPROCS(0)}, memory...)...)
}

// logListening logs the bound addresses: with port 0, the ports picked.
func (d *Daemon) logListening() {
	a := d.Addrs()
	var attrs []any
	for _, l := range []struct {
		key  string
		addr net.Addr
	}{{"udp", a.UDP}, {"tcp", a.TCP}, {"http", a.HTTP}} {
		if l.addr != nil {
			attrs = append(attrs, l.key, l.addr.String())
		}
	}
	d.log.Info("listening", attrs...)
}
