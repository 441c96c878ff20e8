package daemontest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/daemon"
)

// childEnv, in a child process of a test binary, holds the command line
// (JSON) of the daemon ChildMain runs there.
const childEnv = "PGINFLUX_TEST_DAEMON_CHILD"

// ChildMain, in a test binary that StartChild started again, runs the
// daemon of its command line until SIGTERM or SIGINT, as pginflux does,
// and exits: 0 after a clean stop, 1 for a failure, 2 for bad flags. In
// any other process it returns at once. Call it first in TestMain.
func ChildMain() {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	noEnv := func(string) string { return "" }
	cfg, err := config.Load(args, noEnv, io.Discard)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := daemon.Start(ctx, cfg, daemon.Options{Version: Version, Log: os.Stderr, Args: args, Getenv: noEnv, CommitTimeout: CommitTimeout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	select {
	case <-ctx.Done():
	case <-d.Failed():
	}
	if err := d.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Child is a daemon in a process of its own (the test binary, started
// again), for tests that kill it or need several processes.
type Child struct {
	Cmd *exec.Cmd
	Log *Log // its standard output and error
}

// StartChild starts a daemon with exactly args (no defaults) in a process
// of its own and returns at once; the process is killed at cleanup unless
// it has ended. The test binary's TestMain must call ChildMain.
func StartChild(t testing.TB, args ...string) *Child {
	t.Helper()
	spec, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	c := &Child{Cmd: exec.Command(os.Args[0], "-test.run=^$"), Log: &Log{}}
	c.Cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	c.Cmd.Stdout, c.Cmd.Stderr = c.Log, c.Log
	if err := c.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.Cmd.ProcessState == nil {
			_ = c.Cmd.Process.Kill()
			_ = c.Cmd.Wait()
		}
	})
	return c
}

// Base waits for the child to log the address it serves HTTP on, then
// for its /readyz to answer 200, and returns its URL (http://host:port).
func (c *Child) Base(t testing.TB) string {
	t.Helper()
	addr := regexp.MustCompile(`transport=http address=(\S+)`).FindStringSubmatch(c.Log.WaitFor(t, `transport=http address=\S+`))[1]
	base := "http://" + addr
	WaitReady(t, base, c.Log)
	return base
}

// UDP waits for the child to log the addresses it listens on, and
// returns its UDP address (host:port), to which other children may bind
// too (SO_REUSEPORT).
func (c *Child) UDP(t testing.TB) string {
	t.Helper()
	return regexp.MustCompile(`msg=listening udp=(\S+)`).FindStringSubmatch(c.Log.WaitFor(t, `msg=listening udp=\S+`))[1]
}

// Stop sends the child SIGTERM and waits for it to exit, failing the
// test unless it exits 0.
func (c *Child) Stop(t testing.TB) {
	t.Helper()
	if err := c.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.Cmd.Wait(); err != nil {
		t.Fatalf("pginflux after SIGTERM: %v\n%s", err, c.Log)
	}
}

// Kill kills the child (SIGKILL) and waits for it.
func (c *Child) Kill() {
	_ = c.Cmd.Process.Kill()
	_ = c.Cmd.Wait()
}

// WaitReady polls base's /readyz until it answers 200, failing the test
// after Patience with log (which may be nil).
func WaitReady(t testing.TB, base string, log fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	var poll Poller
	for {
		resp, err := Client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %v: %v\n%v", base, Patience, err, log)
		}
		poll.Sleep()
	}
}
