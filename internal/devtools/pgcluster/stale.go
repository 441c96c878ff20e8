package pgcluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The functions here clean up after an earlier run in the same data
// directory that was killed instead of stopped. pg_ctl and postgres cope
// with a lock file naming a dead process, but not with one naming a live
// process that merely reuses the pid (common in containers), nor with
// server processes orphaned by a killed postmaster that still hold the
// shared memory. They rely on /proc and do nothing without it.

// hasProc reports whether /proc can tell the working directory of a
// process.
func hasProc() bool {
	_, err := os.Stat("/proc/self/cwd")
	return err == nil
}

// readLockPID returns the pid on the first line of a postgres lock file
// (postmaster.pid, .s.PGSQL.<port>.lock), or 0 when there is none.
func readLockPID(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// procCwd returns the working directory of pid; postgres processes chdir
// into their data directory, which identifies the cluster they serve.
func procCwd(pid int) (string, error) {
	return os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
}

// procZombie reports whether pid has exited but not been reaped yet: its
// pid still answers kill(pid, 0), which postgres takes for a live owner of
// a lock file. Init in a container may take its time reaping.
func procZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) state ...", where comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// procIsPostgres reports whether pid is alive and runs a postgres binary.
func procIsPostgres(pid int) bool {
	if procZombie(pid) {
		return false
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	switch {
	case err == nil:
		return filepath.Base(exe) == "postgres"
	case errors.Is(err, fs.ErrNotExist):
		// Gone, or exiting: its memory is released before it turns into a
		// zombie, though kill(pid, 0) still finds it.
		return false
	}
	// Another user's process: only its name is visible.
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "postgres"
}

// serverPID returns the pid of a live postmaster serving dataDir according
// to its postmaster.pid, or 0.
func serverPID(dataDir string) int {
	pid := readLockPID(filepath.Join(dataDir, "postmaster.pid"))
	if pid == 0 {
		return 0
	}
	if cwd, err := procCwd(pid); err == nil && cwd == dataDir {
		return pid
	}
	return 0
}

// clearStale removes lock files that name processes other than a server of
// this cluster, and kills server processes of this cluster whose
// postmaster is gone. It must be called when no server of dataDir runs.
func clearStale(ctx context.Context, dataDir, socketDir string, port int) error {
	if !hasProc() {
		return nil
	}
	if err := killOrphans(ctx, dataDir); err != nil {
		return err
	}
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	if readLockPID(pidFile) != 0 && serverPID(dataDir) == 0 {
		if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale %s: %w", pidFile, err)
		}
	}
	sock := filepath.Join(socketDir, ".s.PGSQL."+strconv.Itoa(port))
	if pid := readLockPID(sock + ".lock"); pid != 0 && !procIsPostgres(pid) {
		for _, p := range []string{sock + ".lock", sock} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove stale %s: %w", p, err)
			}
		}
	}
	return nil
}

// killOrphans kills postgres processes working in dataDir (children of a
// postmaster that was killed) and waits until they are gone, so that the
// next postmaster does not find its shared memory still in use.
func killOrphans(ctx context.Context, dataDir string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := procCwd(pid); err == nil && cwd == dataDir && procIsPostgres(pid) {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return nil
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		alive := 0
		for _, pid := range pids {
			// A zombie keeps its /proc entry but has no cwd any more.
			if cwd, err := procCwd(pid); err == nil && cwd == dataDir {
				alive++
			}
		}
		if alive == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d orphaned server processes in %s to exit: %w", alive, dataDir, ctx.Err())
		case <-tick.C:
		}
	}
}
