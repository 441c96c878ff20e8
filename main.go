// Command pginflux receives InfluxDB line protocol over UDP and writes every
// measurement into its own PostgreSQL table.
//
// Run pginflux --help for its flags; each has a PGINFLUX_* environment twin.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/ingest/pipeline"
	"github.com/pginflux/pginflux/ingest/udp"
	"github.com/pginflux/pginflux/internal/procmetrics"
	"github.com/pginflux/pginflux/sink"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if !isCommand(os.Args[1:]) {
		setProcs(os.Getenv)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv)
	stop()
	os.Exit(exitStatus(err, os.Stderr))
}

// setProcs runs the daemon's Go code on half the CPUs the runtime would
// use (at least one: one on a 2-core machine), unless GOMAXPROCS is set.
// pginflux shares the machine with PostgreSQL, and the rest is the
// server's: on 2 cores, one P cut pginflux's CPU per line by a quarter
// (0.62-0.66 against 0.76-0.84 us, cpu workload, 400,000-625,000 lines/s)
// and raised the highest lossless rate (703,072 against 663,821 lines/s),
// as Go's scheduler no longer spins and wakes threads across the cores
// for each datagram handed on (BENCHMARKS.md). The defaults of
// --udp-readers and --parsers follow. The tools (bench, import...) keep
// the runtime's default.
func setProcs(getenv func(string) string) int {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
	return runtime.GOMAXPROCS(0)
}

// usageError is a problem with the flags or environment: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitStatus writes err, if any, to w, every line of it after
// "pginflux: ", and returns the exit status for it: 0 for none, 2 for a
// usageError (bad flags, arguments or environment: what systemd's unit
// does not restart on), 1 for anything else.
func exitStatus(err error, w io.Writer) int {
	if err == nil {
		return 0
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(w, "pginflux: %s\n", line)
	}
	var usage usageError
	if errors.As(err, &usage) {
		return 2
	}
	return 1
}

// testHookListening, when set, is called with the UDP address once
// pginflux listens, so that tests can listen on port 0.
var testHookListening func(udp net.Addr)

// testHookHTTPListening, when set, is called with the HTTP address once
// pginflux serves it, so that tests can listen on port 0.
var testHookHTTPListening func(http net.Addr)

// testHookLogOutput, when set, receives the daemon's log instead of
// standard error.
var testHookLogOutput io.Writer

// run is pginflux: it returns when ctx ends and everything received has
// been written (or the shutdown timeout passed).
func run(ctx context.Context, args []string, getenv func(string) string) error {
	return runIO(ctx, args, getenv, os.Stdin, os.Stdout, os.Stderr)
}

// runIO is run with the standard streams given: help and --version go to
// stdout, the log to stderr. Errors are returned, not written.
func runIO(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if isCommand(args) {
		return runCommand(ctx, args, getenv, stdin, stdout, stderr)
	}
	var flags bytes.Buffer
	cfg, err := parseConfig(args, getenv, &flags)
	if errors.Is(err, config.ErrHelp) {
		writeDaemonUsage(stdout, flags.String())
		return nil
	}
	if err != nil {
		return usageError{explainArgument(err)}
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "pginflux", version)
		return nil
	}
	if cfg.UDPAddress == "" && cfg.TCPAddress == "" && cfg.HTTPAddress == "" {
		return usageError{errors.New("nothing to listen on: --udp-address, --tcp-address and --http-address are all empty")}
	}
	// From here on a SIGHUP reloads the settings (once pginflux runs)
	// rather than ending the process.
	hup := catchSIGHUP()
	defer signal.Stop(hup)
	logOut := stderr
	if testHookLogOutput != nil {
		logOut = testHookLogOutput
	}
	level := new(slog.LevelVar) // changed by a reload (SIGHUP)
	log := newLogger(logOut, cfg, level)
	log.Info("starting pginflux", "version", version, "database", cfg.Database, "schema", cfg.Schema,
		"storage", cfg.Storage, "udp_address", cfg.UDPAddress, "udp_readers", cfg.UDPReaders,
		"precision", cfg.Precision.String(), "batch_size", cfg.BatchSize, "flush_interval", cfg.FlushInterval,
		"writers", cfg.Writers, "parsers", cfg.Parsers, "queue_size", cfg.QueueSize,
		"http_address", cfg.HTTPAddress, "pprof", cfg.PProf, "tcp_address", cfg.TCPAddress,
		"procs", runtime.GOMAXPROCS(0))

	if limit, set := setMemoryLimit(cfg, getenv); set {
		log.Info("memory limit for the garbage collector, from --queue-max-bytes and --max-pending-rows (GOMEMLIMIT overrides it)", "bytes", limit)
	}

	reg := prometheus.NewRegistry()
	procmetrics.Register(reg, version)

	// HTTP first, so that a port in use stops pginflux before anything
	// starts; stopped last (deferred first), so that metrics stay
	// scrapeable while the rest drains.
	ready := &readiness{}
	writes := newHTTPWrites(cfg, reg, log)
	stopHTTP, err := startHTTP(cfg, reg, ready, writes, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	pool, err := newPool(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	registerPool(reg, pool, ready)

	sinkCfg := sinkConfig(cfg)
	sinkMetrics := sink.NewMetrics(reg)
	s := sink.New(pool, sinkCfg, sinkMetrics, log)
	ready.sink.Store(s)
	if cfg.SpoolDir != "" {
		if err := s.UseSpool(cfg.SpoolDir, cfg.SpoolMaxBytes); err != nil {
			s.Close(ctx)
			return err
		}
	}
	p := pipeline.New(pipeline.Config{
		Transport:     "udp",
		QueueSize:     cfg.QueueSize,
		QueueBytes:    cfg.QueueMaxBytes,
		Parsers:       cfg.Parsers,
		Precision:     cfg.Precision,
		FlushInterval: cfg.FlushInterval,
	}, s, pipeline.NewMetrics(reg, "udp"), log)

	// TCP and HTTP writes go through shared batchers, not the pipeline.
	streams, err := startStreams(ctx, cfg, reg, s, writes, log)
	if err != nil {
		p.Close()
		s.Close(ctx)
		return err
	}
	var ul *udp.Listener
	if cfg.UDPAddress != "" {
		ul, err = udp.ListenBatch(ctx, udp.Config{
			Address:    cfg.UDPAddress,
			Readers:    cfg.UDPReaders,
			ReadBuffer: cfg.UDPReadBuffer,
			Allow:      cfg.UDPAllow,
		}, p.HandleBatch, udp.NewMetrics(reg), log)
		if err != nil {
			streams.stop(ctx)
			p.Close()
			s.Close(ctx)
			return err
		}
		registerUDP(reg, ul, ready, log)
	}
	writes.open(ctx, pool, s, sinkCfg, sinkMetrics)
	ready.listening.Store(true)
	stopReload := watchReload(hup, &reloader{args: args, getenv: getenv, cfg: cfg, level: level, sink: s, others: writes, log: log})
	defer stopReload()
	if testHookListening != nil && ul != nil {
		testHookListening(ul.Addr())
	}

	// Stop order: readers (UDP, TCP, then the HTTP writes under way), then
	// the shared batchers and the parsers (which hand every open batch to
	// the sink), then the sink's writers, then the pool, then HTTP.
	readErr := readUDP(ctx, ul)
	ready.listening.Store(false)
	log.Info("stopping: writing what was received", "timeout", cfg.ShutdownTimeout)
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	abandon := context.AfterFunc(shutdown, s.Abandon)
	defer abandon()
	streams.stop(shutdown)
	p.Close()
	switch err := s.Close(shutdown); {
	case err != nil:
		log.Error("stopped with rows not written", "err", err, "abandoned_rows", s.Abandoned(), "dropped_rows", s.Dropped())
	case s.Dropped() > 0:
		log.Warn("stopped; every row was written except those dropped earlier (see pginflux_sink_dropped_rows_total)", "dropped_rows", s.Dropped())
	default:
		if rows, bytes := s.Spooled(); bytes > 0 {
			log.Warn("stopped; what PostgreSQL could not take yet is in the spool, to be written once it can (at the next start)",
				"spooled_rows", rows, "spool_bytes", bytes, "spool", cfg.SpoolDir)
		} else {
			log.Info("stopped; everything received was written")
		}
	}
	if readErr != nil {
		return fmt.Errorf("read udp: %w", readErr)
	}
	return nil
}

// sinkConfig is the sink's part of the configuration: the daemon's and
// the import's.
func sinkConfig(cfg config.Config) sink.Config {
	return sink.Config{
		Schema:         cfg.Schema,
		Storage:        string(cfg.Storage),
		WriteMode:      cfg.WriteMode,
		BatchSize:      cfg.BatchSize,
		FlushInterval:  cfg.FlushInterval,
		Writers:        cfg.Writers,
		UintType:       cfg.UintType,
		MaxColumns:     cfg.MaxColumns,
		RejectedTable:  cfg.RejectedTable,
		MaxPendingRows: cfg.MaxPendingRows,
		CreateTableSQL: cfg.CreateTableSQL,
		PartitionBy:    cfg.PartitionBy,
		Retention:      cfg.Retention,
	}
}

// openPool makes the connection pool for the writers (and a couple of
// connections for DDL), and pings the database: it returns the pool, and
// the ping's error for the caller to judge.
func openPool(ctx context.Context, cfg config.Config, appName string) (*pgxpool.Pool, error, error) {
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		// Checked by config already; never print the string itself.
		return nil, nil, usageError{fmt.Errorf("--database-url: not a valid connection string: %s", config.ConnStringProblem(cfg.DatabaseURL, err))}
	}
	pc.MaxConns = int32(cfg.Writers + 2)
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = appName
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, nil, fmt.Errorf("set up the connection pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pool, pool.Ping(pingCtx), nil
}

// newPool makes the daemon's pool. A database that cannot be reached yet
// is no reason not to start: the writers keep retrying, and the first
// attempt here tells the user early.
func newPool(ctx context.Context, cfg config.Config, log *slog.Logger) (*pgxpool.Pool, error) {
	pool, pingErr, err := openPool(ctx, cfg, "pginflux")
	if err != nil {
		return nil, err
	}
	if pingErr == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		pingErr = sink.Preflight(pctx, pool, cfg.Schema)
		cancel()
	}
	// Waiting does not help a configuration the server refuses.
	if err := sink.Refusal(pingErr); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s: %w", cfg.Database, err)
	}
	if pingErr != nil {
		log.Warn("database not reachable yet; receiving anyway and retrying", "database", cfg.Database, "err", pingErr)
	} else {
		log.Info("database reachable", "database", cfg.Database)
	}
	return pool, nil
}

// newLogger makes the log of cfg's format at level. Durations are written
// as Go writes them ("1.5s") in both formats, not as JSON's nanoseconds.
func newLogger(w io.Writer, cfg config.Config, level *slog.LevelVar) *slog.Logger {
	level.Set(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationAsString}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func durationAsString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// Memory the garbage collector aims to stay within: what the bounds let
// pginflux hold at once — the datagram queue (whose buffers can be twice
// what it counts), the rows between parsing and commit, and room for the
// rest — so that after a burst the heap is collected down to that rather
// than allowed to double (GOGC) on top of it. A soft limit: pginflux never
// fails for it, and GOMEMLIMIT set in the environment wins.
const (
	memoryBase          = 64 << 20
	memoryPerPendingRow = 512 // bytes: a row as batched, encoded and queued
)

// setMemoryLimit sets the runtime's soft memory limit from cfg unless
// GOMEMLIMIT is set, and returns it.
func setMemoryLimit(cfg config.Config, getenv func(string) string) (int64, bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	limit := int64(memoryBase) + 2*int64(cfg.QueueMaxBytes) + int64(cfg.MaxPendingRows)*memoryPerPendingRow
	debug.SetMemoryLimit(limit)
	return limit, true
}
