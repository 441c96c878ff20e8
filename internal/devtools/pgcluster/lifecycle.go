package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A Cluster's server is started and stopped with pg_ctl, run as the
// server's user; the settings of this run are passed on every start.

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

// stop stops the server in pg_ctl's mode (fast or immediate); c.mu is
// held.
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

// removeTempSocket removes the socket directory Start made, if it did.
func (c *Cluster) removeTempSocket() {
	if c.tempSocket {
		_ = os.RemoveAll(c.socketDir)
	}
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

// logFile is where pg_ctl writes the server's log.
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

// report writes the tail of a failed program's output or log to
// Options.Log.
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
