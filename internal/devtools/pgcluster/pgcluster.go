// Package pgcluster runs a throwaway PostgreSQL server for tests and
// development: it creates a data directory with initdb when needed and
// starts and stops the server with pg_ctl. By default it is tuned for
// speed over durability (fsync off), as tests want; Options.Durable keeps
// PostgreSQL's durable defaults, as benchmarks want.
//
// When the process runs as root the server runs as the postgres user, since
// initdb and postgres refuse to run as root; the data directory and socket
// directory are then owned by that user.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxSocketPath is the longest unix socket path the kernel accepts
// (sizeof(sun_path) - 1).
const maxSocketPath = 107

// defaultPort names the unix socket when no TCP port is used.
const defaultPort = 5432

// Options for Start.
type Options struct {
	// Dir is the data directory. It is created and initialised with initdb
	// when it holds no PG_VERSION, and reused otherwise. Required.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 means no TCP, unix socket only
	// (named after port 5432).
	Port int
	// SocketDir is where the unix socket goes. The default is Dir itself
	// when the socket path fits in the 107 bytes the kernel allows,
	// otherwise a short directory made under /tmp (removed by Close).
	SocketDir string
	// Log receives the tail of the server log (and of initdb's output)
	// when starting fails. May be nil.
	Log io.Writer
	// Durable keeps PostgreSQL's defaults for fsync, synchronous_commit
	// and full_page_writes (all on). When false, the default, they are
	// turned off: a crash of the machine may lose or corrupt data, and
	// writes cost the server less than they would on a real one.
	Durable bool
	// Settings are more server settings, as name=value, passed with -c on
	// every start after pgcluster's own (so they win): for example
	// "shared_preload_libraries=timescaledb".
	Settings []string
}

// Cluster is a PostgreSQL server started by Start. Its methods are safe for
// concurrent use. The data directory belongs to the caller: Close stops the
// server but never removes Dir.
type Cluster struct {
	dir        string // absolute, symlinks resolved
	socketDir  string
	tempSocket bool // socketDir made by Start, removed by Close
	port       int  // 0: unix socket only
	durable    bool
	settings   []string
	log        io.Writer
	user       *serverUser
	pgCtl      string

	mu         sync.Mutex
	running    bool
	closed     bool
	watchPipes []*os.File // see StopOnExit
}

// Start initialises opts.Dir when needed and starts a server on it,
// waiting until it accepts connections. A server left running in Dir by an
// earlier, killed run is stopped first, and stale lock files are removed.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := newCluster(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		c.removeTempSocket()
		return nil, err
	}
	return c, nil
}

func newCluster(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("no data directory given")
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("port %d out of range", opts.Port)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", opts.Dir, err)
	}
	u, err := lookupServerUser()
	if err != nil {
		return nil, err
	}
	if err := u.checkReach(dir); err != nil {
		return nil, err
	}
	if err := u.mkdir(dir); err != nil {
		return nil, err
	}
	// Postgres processes report their cwd with symlinks resolved; compare
	// like with like when looking for leftovers of earlier runs.
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", opts.Dir, err)
	}
	c := &Cluster{dir: dir, port: opts.Port, durable: opts.Durable, settings: opts.Settings, log: opts.Log, user: u}

	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("inspect data directory: %w", err)
	}
	if c.pgCtl, err = findBinFor("pg_ctl", dir); err != nil {
		return nil, err
	}

	switch {
	case opts.SocketDir != "":
		sd, err := filepath.Abs(opts.SocketDir)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", opts.SocketDir, err)
		}
		if err := u.mkdir(sd); err != nil {
			return nil, err
		}
		c.socketDir = sd
	case len(c.socketPath(dir)) <= maxSocketPath:
		c.socketDir = dir
	default:
		sd, err := os.MkdirTemp("/tmp", "pgsock-")
		if err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
		if err := u.chown(sd); err != nil {
			_ = os.RemoveAll(sd)
			return nil, err
		}
		c.socketDir, c.tempSocket = sd, true
	}
	if p := c.socketPath(c.socketDir); len(p) > maxSocketPath {
		c.removeTempSocket()
		return nil, fmt.Errorf("unix socket path %s is longer than %d bytes", p, maxSocketPath)
	}
	return c, nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	initdb, err := FindBin("initdb")
	if err != nil {
		return err
	}
	out, err := c.run(ctx, initdb,
		"-D", c.dir, "-A", "trust", "-U", "postgres", "-E", "UTF8",
		"--locale=C", "--no-sync")
	if err != nil {
		tail := lastLines(out, 20)
		c.report("initdb", tail)
		return fmt.Errorf("initdb %s: %w\n%s", c.dir, err, tail)
	}
	return nil
}

// socketPath returns the path of the server's unix socket in dir.
func (c *Cluster) socketPath(dir string) string {
	return filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(c.effectivePort()))
}

func (c *Cluster) effectivePort() int {
	if c.port == 0 {
		return defaultPort
	}
	return c.port
}

// serverArgs are the settings passed to postgres on every start, so that
// a reused data directory always gets the options of this run.
func (c *Cluster) serverArgs() string {
	listen := ""
	if c.port != 0 {
		listen = "127.0.0.1"
	}
	settings := []string{
		"port=" + strconv.Itoa(c.effectivePort()),
		"listen_addresses=" + listen,
		"unix_socket_directories=" + quoteListItem(c.socketDir),
		"max_connections=200",
		"shared_buffers=128MB",
	}
	if !c.durable {
		settings = append(settings, "fsync=off", "synchronous_commit=off", "full_page_writes=off")
	}
	settings = append(settings, c.settings...)
	var b strings.Builder
	for i, s := range settings {
		if i > 0 {
			b.WriteByte(' ')
		}
		// pg_ctl hands -o to /bin/sh.
		b.WriteString("-c ")
		b.WriteString(shellQuote(s))
	}
	return b.String()
}

// Start starts the server again after Stop, with the same directory,
// socket and port. It is a no-op when the server is running.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("start postgres: cluster closed")
	}
	if c.running {
		return nil
	}
	if err := c.stopLeftover(ctx); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	if err := clearStale(ctx, c.dir, c.socketDir, c.effectivePort()); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	logFile := c.logFile()
	out, err := c.run(ctx, c.pgCtl, "start", "-D", c.dir, "-w", "-t", "60",
		"-l", logFile, "-o", c.serverArgs())
	if err != nil {
		// A timed-out or cancelled start may leave a server behind.
		_, _ = c.run(context.WithoutCancel(ctx), c.pgCtl, "stop", "-D", c.dir, "-m", "immediate", "-w", "-t", "10")
		tail := lastLines(out, 5)
		if log, rerr := os.ReadFile(logFile); rerr == nil {
			tail = lastLines(log, 20)
		}
		c.report(logFile, tail)
		return fmt.Errorf("start postgres in %s: %w; last lines of %s:\n%s", c.dir, err, logFile, tail)
	}
	c.running = true
	return nil
}

// stopLeftover stops a server that an earlier, killed run left running in
// this data directory; its settings may differ from ours.
func (c *Cluster) stopLeftover(ctx context.Context) error {
	if serverPID(c.dir) == 0 {
		return nil
	}
	out, err := c.run(ctx, c.pgCtl, "stop", "-D", c.dir, "-m", "fast", "-w", "-t", "60")
	if err != nil && serverPID(c.dir) != 0 {
		return fmt.Errorf("stop server left running in %s: %w: %s", c.dir, err, bytes.TrimSpace(out))
	}
	// Gone, possibly dying on its own while pg_ctl looked: clearStale
	// deals with what it left.
	return nil
}

// Stop stops the server (fast mode: connections are closed, data is
// kept) and waits for it to exit. It is a no-op when the server is not
// running.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stop(ctx, "fast")
}

func (c *Cluster) stop(ctx context.Context, mode string) error {
	if !c.running {
		return nil
	}
	out, err := c.run(ctx, c.pgCtl, "stop", "-D", c.dir, "-m", mode, "-w", "-t", "60")
	// pg_ctl also fails when the server is already gone (killed, or
	// stopped by another Cluster on the same directory): the goal is met.
	if err != nil && (serverPID(c.dir) != 0 || !hasProc()) {
		return fmt.Errorf("stop postgres in %s: %w: %s", c.dir, err, bytes.TrimSpace(out))
	}
	c.running = false
	return nil
}

// Restart stops the server and starts it again.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.Stop(ctx); err != nil {
		return err
	}
	return c.Start(ctx)
}

// Crash stops the server as a crash would (pg_ctl -m immediate: no
// checkpoint, connections cut, recovery at the next start) and waits for
// it to exit.
func (c *Cluster) Crash(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stop(ctx, "immediate")
}

// Running reports whether the server was started and not stopped since.
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// Close stops the server in immediate mode when it is running and removes
// a socket directory Start made under /tmp. The data directory is kept.
// The cluster cannot be started again.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	err := c.stop(context.Background(), "immediate")
	c.closed = true
	c.removeTempSocket()
	return err
}

func (c *Cluster) removeTempSocket() {
	if c.tempSocket {
		_ = os.RemoveAll(c.socketDir)
	}
}

// Dir returns the absolute path of the data directory.
func (c *Cluster) Dir() string { return c.dir }

// Durable reports whether the server runs with PostgreSQL's durable
// defaults (Options.Durable).
func (c *Cluster) Durable() bool { return c.durable }

// SocketDir returns the directory holding the server's unix socket.
func (c *Cluster) SocketDir() string { return c.socketDir }

// ConnString returns a libpq key=value connection string for dbname over
// the unix socket, as user postgres without password.
func (c *Cluster) ConnString(dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable",
		quoteConnValue(c.socketDir), c.effectivePort(), quoteConnValue(dbname))
}

// URL returns the postgres:// URL form of ConnString, the socket
// directory given as the host query parameter.
func (c *Cluster) URL(dbname string) string {
	q := url.Values{}
	q.Set("host", c.socketDir)
	q.Set("port", strconv.Itoa(c.effectivePort()))
	q.Set("sslmode", "disable")
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     "",
		Path:     "/" + dbname,
		RawQuery: q.Encode(),
	}
	return u.String()
}

func (c *Cluster) logFile() string { return filepath.Join(c.dir, "server.log") }

// run runs a PostgreSQL program as the server's user and returns its
// combined output.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	// The caller's working directory may be closed to the postgres user.
	cmd.Dir = "/"
	cmd.Env = c.user.serverEnv()
	cmd.SysProcAttr = c.user.sysProcAttr()
	// Should a server inherit the output pipe, do not wait for it forever.
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

// serverEnv is the environment without PG* variables, which would
// otherwise change the server's port or the data directory of pg_ctl.
// serverEnv is the environment of the server's programs: ours without
// the PG* variables, and, when the server runs as another user, that
// user's HOME (libpq in the server, as Citus uses it between nodes, looks
// for ~/.postgresql there; root's is not readable to it).
func (u *serverUser) serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || u.home != "" && strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	if u.home != "" {
		env = append(env, "HOME="+u.home)
	}
	return env
}

func (c *Cluster) report(what, tail string) {
	if c.log != nil {
		fmt.Fprintf(c.log, "pgcluster: %s:\n%s\n", what, tail)
	}
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// quoteListItem quotes a directory for a list-valued server setting, which
// splits on commas and trims spaces.
func quoteListItem(s string) string {
	if !strings.ContainsAny(s, ` ,"`) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quoteConnValue quotes a libpq key=value value when needed.
func quoteConnValue(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
