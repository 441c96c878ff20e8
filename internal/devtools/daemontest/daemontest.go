// Package daemontest runs pginflux daemons for tests: the real daemon
// (package internal/daemon), started in the test's process on free
// loopback ports against the test database (package pgtest), its log
// captured. It is the one harness of every end-to-end test.
//
// A package using it calls Main from its TestMain.
//
// No verdict of a test may depend on how fast the machine is: the
// harness waits for conditions, never for a time, and its deadlines
// (Patience) are safety nets whose expiry means a real failure.
package daemontest

import (
	"bytes"
	"flag"
	"io"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/daemon"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// Version is the version the daemons of tests report.
const Version = "test"

// Patience is how long the helpers wait for a condition (rows landed, a
// metric reached, a log line written, a server ready) before they fail
// the test, or, where what they wait on moves (a count of rows), how long
// they wait for it to move: long enough that only a real failure reaches
// it, on a slow machine busy with other tests under the race detector.
const Patience = time.Minute

// CommitTimeout is the commit timeout (daemon.Options.CommitTimeout) of
// the daemons the harness starts, unless a test sets one: an HTTP write
// waits for its commit that long, rather than pginflux's 5 seconds,
// after which it would be answered 503. A busy test machine can take
// longer than 5 seconds to commit, and the answer would tell its speed,
// not pginflux's. Tests of what happens at the timeout set their own.
const CommitTimeout = time.Minute

// Parallel is how many tests of a package using Main run at once, unless
// go test's -parallel says otherwise (its default is GOMAXPROCS, 2 on a
// small machine): end-to-end tests mostly wait on PostgreSQL and the
// network rather than compute.
const Parallel = 8

// Main runs a package's tests: ChildMain first (in a child process that
// StartChild started, the daemon, until SIGTERM), then, up to Parallel at
// once, the tests with pgtest.Main, which gives them their database.
func Main(m *testing.M) {
	ChildMain()
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", strconv.Itoa(max(Parallel, runtime.GOMAXPROCS(0))))
	}
	pgtest.Main(m)
}

// Unreachable is a connection string to no server: loopback's port 1
// refuses at once, as a PostgreSQL that is down does.
const Unreachable = "host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=1"

// Config says how to start a daemon; the zero value starts one on the
// test database with no environment.
type Config struct {
	// ConnString is the database's; "" is pgtest.ConnString.
	ConnString string
	// Getenv is the daemon's environment (PGINFLUX_CONFIG_FILE, say); nil
	// is an empty one. With an environment, the harness leaves
	// --flush-interval to it.
	Getenv func(string) string
	// Options are the daemon's; the harness sets Version, Log, Args and
	// Getenv, and CommitTimeout when it is 0 (to CommitTimeout).
	Options daemon.Options
}

// Instance is a daemon running for a test; it is closed at the test's
// cleanup, if the test has not closed it.
type Instance struct {
	*daemon.Daemon
	UDP  net.Addr // nil with --udp-address ""
	Base string   // the HTTP server's URL, http://host:port; "" with --http-address ""
	TCP  string   // host:port; "" without --tcp-address
	Log  *Log
	Args []string // the command line it was started with
}

// Start starts a daemon of the zero Config writing into schema; see
// Config.Start.
func Start(t testing.TB, schema string, args ...string) *Instance {
	t.Helper()
	return Config{}.Start(t, schema, args...)
}

// Start starts a daemon writing into schema, with UDP (two readers) and
// HTTP on free loopback ports, a flush interval of 20ms (unless c has an
// environment), and args after those, which win. It fails the test if the
// daemon does not start.
func (c Config) Start(t testing.TB, schema string, args ...string) *Instance {
	t.Helper()
	p, err := c.TryStart(t, schema, args...)
	if err != nil {
		t.Fatalf("pginflux did not start: %v\nlog:\n%s", err, p.Log)
	}
	return p
}

// TryStart is Start, returning the daemon's error instead of failing the
// test; the Instance holds the log either way, and a nil Daemon on an
// error.
func (c Config) TryStart(t testing.TB, schema string, args ...string) (*Instance, error) {
	t.Helper()
	conn := c.ConnString
	if conn == "" {
		conn = pgtest.ConnString(t)
	}
	getenv := c.Getenv
	base := []string{
		"--database-url", conn,
		"--schema", schema,
		"--udp-address", "127.0.0.1:0",
		"--udp-readers", "2",
		"--http-address", "127.0.0.1:0",
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
		base = append(base, "--flush-interval", "20ms")
	}
	args = append(base, args...)
	p := &Instance{Log: &Log{}, Args: args}
	cfg, err := config.Load(args, getenv, io.Discard)
	if err != nil {
		return p, err
	}
	opts := c.Options
	opts.Version, opts.Log, opts.Args, opts.Getenv = Version, p.Log, args, getenv
	if opts.CommitTimeout == 0 {
		opts.CommitTimeout = CommitTimeout
	}
	d, err := daemon.Start(t.Context(), cfg, opts)
	if err != nil {
		return p, err
	}
	p.Daemon = d
	t.Cleanup(func() { _ = d.Close() })
	a := d.Addrs()
	p.UDP = a.UDP
	if a.HTTP != nil {
		p.Base = "http://" + a.HTTP.String()
	}
	if a.TCP != nil {
		p.TCP = a.TCP.String()
	}
	return p, nil
}

// Stop stops the daemon as SIGTERM does and fails the test if Close
// returns an error.
func (p *Instance) Stop(t testing.TB) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pginflux stopped with %v, want nil\nlog:\n%s", err, p.Log)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("pginflux did not stop within 2 minutes\nlog:\n%s", p.Log)
	}
}

// Log collects a daemon's log. Safe for concurrent use.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns what was logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// WaitFor polls the log until it holds a line matching re, and returns
// the match; it fails the test after Patience.
func (l *Log) WaitFor(t testing.TB, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(Patience)
	var poll Poller
	for {
		if m := rx.FindString(l.String()); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line matching %q after %v; the log:\n%s", re, Patience, l.String())
		}
		poll.Sleep()
	}
}
