package pgcluster

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// watchScript waits until its stdin reaches end of file, which happens when
// the process holding the other end of the pipe exits however it exits,
// then stops the server and removes the given paths. It runs in its own
// session so that a Ctrl-C meant for the test run does not kill it first.
const watchScript = `read _ignored
"$0" stop -D "$1" -m immediate -w -t 30 >/dev/null 2>&1
shift
rm -rf -- "$@"`

// StopOnExit starts a small watcher process that stops the server
// (immediate mode) and removes the paths in remove once the current
// process has exited, even when it exits without running its cleanup: a
// test binary killed by go test -timeout, a log.Fatal, a panic. The
// watcher runs as the server's user, so it can only remove what that user
// may remove. Call the returned cancel function after a normal shutdown to
// end the watcher without it doing anything; cancel is safe to call more
// than once.
func (c *Cluster) StopOnExit(remove ...string) (cancel func(), err error) {
	r, w, err := os.Pipe() // close-on-exec: only this process holds w
	if err != nil {
		return nil, fmt.Errorf("watch postgres: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchScript, c.pgCtl, c.dir}, remove...)...)
	cmd.Dir = "/"
	cmd.Env = c.user.serverEnv()
	cmd.Stdin = r
	attr := c.user.sysProcAttr()
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	attr.Setsid = true
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch postgres: %w", err)
	}
	// The cluster keeps w reachable: were it garbage collected, its
	// finalizer would close it and set the watcher off.
	c.mu.Lock()
	c.watchPipes = append(c.watchPipes, w)
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			w.Close()
		})
	}, nil
}
