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
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// newCluster checks opts, makes the data directory (with initdb when it
// holds no cluster) and chooses the socket directory; it starts nothing.
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

// initdb creates a cluster in c.dir, trusting local connections.
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

// effectivePort is the port the server listens on, or names its socket
// after.
func (c *Cluster) effectivePort() int {
	if c.port == 0 {
		return defaultPort
	}
	return c.port
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

// quoteConnValue quotes a libpq key=value value when needed.
func quoteConnValue(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
