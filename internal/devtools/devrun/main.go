// Command devrun runs a program against a throwaway PostgreSQL server; it
// is what `make run` uses:
//
//	go run ./internal/devtools/devrun [--data-dir DIR] [--port N] [--fsync=false]
//	    [--settings NAME=VALUE]... [--extension NAME]... [--citus-workers N] -- BINARY [ARGS...]
//
// When PGINFLUX_DATABASE_URL or DATABASE_URL is set, or ARGS hold
// --database-url, a database is configured and devrun just runs BINARY.
// Otherwise it starts (or reuses) a cluster in DIR (default .pgdata),
// listening on 127.0.0.1:PORT (default 54329) and on a unix socket, with
// PostgreSQL's durable defaults (fsync on; --fsync=false turns fsync,
// synchronous_commit and full_page_writes off for speed), prints
// how to send it a line and query it, and runs BINARY with
// PGINFLUX_DATABASE_URL pointing at database postgres. SIGINT, SIGTERM and
// SIGHUP are passed on to BINARY; when it has exited the cluster is
// stopped and devrun exits with BINARY's exit code.
//
// --settings adds a server setting (repeat it for more), such as
// shared_preload_libraries=timescaledb; --extension creates an extension
// in database postgres once the server is up. --citus-workers N makes a
// Citus cluster: the server in DIR is the coordinator, and N workers run
// in DIR-worker1 ... DIR-workerN on 127.0.0.1:PORT+1 ... PORT+N, all with
// Citus preloaded (first, as it must be) and the extension created, the
// workers added to the coordinator. BINARY connects to the coordinator.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	os.Exit(run(os.Args[1:], os.Environ(), os.Stderr, signals))
}

// stopTimeout bounds the fast shutdown of the cluster after the child
// exited.
const stopTimeout = time.Minute

// options are devrun's command line.
type options struct {
	dataDir      string
	port         int
	fsync        bool
	settings     []string
	extensions   []string
	citusWorkers int
	child        []string // BINARY [ARGS...]
}

// run runs devrun with command-line args (without the program name) and
// the environment environ, reporting to stderr, and returns the exit code.
// Signals arriving on signals are forwarded to the child.
func run(args, environ []string, stderr io.Writer, signals <-chan os.Signal) int {
	o, ok := parseArgs(args, stderr)
	if !ok {
		return 2
	}
	getenv := lookup(environ)
	if getenv("PGINFLUX_DATABASE_URL") != "" || getenv("DATABASE_URL") != "" || flagValue(o.child[1:], "database-url") != nil {
		return runChild(o.child, environ, stderr, signals)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startDone, watchDone := make(chan struct{}), make(chan struct{})
	go func() { // Ctrl-C while the server starts: give up
		defer close(watchDone)
		select {
		case <-signals:
			cancel()
		case <-startDone:
		}
	}()
	servers, shown, err := startServers(ctx, o, stderr)
	defer stopServers(servers, stderr)
	close(startDone)
	<-watchDone
	if ctx.Err() != nil { // interrupted while the servers came up
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "pginflux dev: %v\n", err)
		return 1
	}

	c := servers[0]
	printHowTo(stderr, c, shown, o.port, o.child, getenv)
	if o.citusWorkers > 0 {
		printCitus(stderr, servers[1:], o.port)
	}
	environ = append(withoutVar(environ, "PGINFLUX_DATABASE_URL"), "PGINFLUX_DATABASE_URL="+c.URL("postgres"))
	return runChild(o.child, environ, stderr, signals)
}

// parseArgs parses the command line. When it is wrong, parseArgs says so
// on stderr and returns false.
func parseArgs(args []string, stderr io.Writer) (options, bool) {
	var o options
	fs := flag.NewFlagSet("devrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dataDir, "data-dir", ".pgdata", "PostgreSQL data `directory`; created when missing, reused otherwise")
	fs.IntVar(&o.port, "port", 54329, "TCP `port` of the server on 127.0.0.1; 0: unix socket only")
	fs.BoolVar(&o.fsync, "fsync", true, "keep PostgreSQL's durable defaults; false turns fsync, synchronous_commit and full_page_writes off\n(faster, not crash-safe: benchmark figures are then an upper bound)")
	fs.Func("settings", "a server `setting` NAME=VALUE for every server, passed as -c (repeat for more):\nshared_preload_libraries=timescaledb", func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
			return errors.New("want NAME=VALUE")
		}
		o.settings = append(o.settings, v)
		return nil
	})
	fs.Func("extension", "create the `extension` in database postgres once the server is up (repeat for more): timescaledb", func(v string) error {
		if v == "" {
			return errors.New("want an extension name")
		}
		o.extensions = append(o.extensions, v)
		return nil
	})
	fs.IntVar(&o.citusWorkers, "citus-workers", 0, "make a Citus cluster: the server in --data-dir is the coordinator, and `N` workers run in DIR-worker1...\non 127.0.0.1 ports PORT+1...; 0: no Citus")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: devrun [--data-dir DIR] [--port N] [--fsync=false] [--settings NAME=VALUE]... [--extension NAME]... [--citus-workers N] -- BINARY [ARGS...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, false
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return o, false
	}
	if o.citusWorkers < 0 || o.citusWorkers > 0 && (o.port == 0 || o.port+o.citusWorkers > 65535) {
		fmt.Fprintln(stderr, "devrun: --citus-workers needs a TCP --port, with room for a port a worker after it")
		return o, false
	}
	o.child = fs.Args()
	return o, true
}

// startServers starts the server in o.dataDir, and o.citusWorkers workers
// after it made a Citus cluster with it, and creates o.extensions. It
// returns the servers started, the coordinator first, even when it fails
// part of the way, and the directory of the coordinator to show the user.
func startServers(ctx context.Context, o options, stderr io.Writer) ([]*pgcluster.Cluster, string, error) {
	opts := pgcluster.Options{Dir: o.dataDir, Port: o.port, Log: stderr, Durable: o.fsync, Settings: o.settings}
	if o.citusWorkers > 0 {
		opts.Settings = citusSettings(o.settings)
	}
	c, shown, err := startCluster(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	servers := []*pgcluster.Cluster{c}
	for i := 1; i <= o.citusWorkers; i++ {
		wopts := opts
		wopts.Dir, wopts.Port = fmt.Sprintf("%s-worker%d", o.dataDir, i), o.port+i
		w, _, err := startCluster(ctx, wopts)
		if err != nil {
			return servers, shown, err
		}
		servers = append(servers, w)
	}
	if o.citusWorkers > 0 {
		if err := setUpCitus(ctx, servers, o.port); err != nil {
			return servers, shown, err
		}
	}
	return servers, shown, createExtensions(ctx, c, o.extensions)
}

// startCluster starts a cluster in opts.Dir, or in a directory under
// /var/tmp when the server's user cannot reach it (running as root in
// /root, say). It also returns the directory to show the user.
func startCluster(ctx context.Context, opts pgcluster.Options) (*pgcluster.Cluster, string, error) {
	dir, stderr := opts.Dir, opts.Log
	c, err := pgcluster.Start(ctx, opts)
	if errors.Is(err, pgcluster.ErrInaccessible) {
		abs, aerr := filepath.Abs(dir)
		if aerr != nil {
			return nil, "", err
		}
		sum := sha256.Sum256([]byte(abs))
		opts.Dir = filepath.Join("/var/tmp", "pginflux-dev-"+hex.EncodeToString(sum[:6]))
		fmt.Fprintf(stderr, "pginflux dev: cannot use %s: %v\npginflux dev: using %s instead\n", dir, err, opts.Dir)
		dir = opts.Dir
		c, err = pgcluster.Start(ctx, opts)
	}
	return c, dir, err
}

// stopServers stops the servers (a fast shutdown, within stopTimeout) and
// closes them.
func stopServers(servers []*pgcluster.Cluster, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	for _, c := range servers {
		if err := c.Stop(ctx); err != nil {
			fmt.Fprintf(stderr, "pginflux dev: %v\n", err)
		}
		c.Close()
	}
}

// runChild runs argv with environ, passing signals on, and returns its
// exit code. The child gets its own process group so that a Ctrl-C
// reaches it once, through devrun, rather than twice.
func runChild(argv, environ []string, stderr io.Writer, signals <-chan os.Signal) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = environ
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "pginflux dev: %v\n", err)
		return 127
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-signals:
				_ = cmd.Process.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	return exitCode(err, stderr)
}

// exitCode returns the shell's exit code for a child that ended with err.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		fmt.Fprintf(stderr, "pginflux dev: %v\n", err)
		return 1
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return exit.ExitCode()
}

// lookup returns a getenv over environ; the last setting wins, as in
// os.Getenv.
func lookup(environ []string) func(string) string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) string { return m[k] }
}

// withoutVar returns environ without settings of name.
func withoutVar(environ []string, name string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
