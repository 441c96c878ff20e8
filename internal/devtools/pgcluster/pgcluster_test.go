package pgcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// tempDir returns a new directory the server's user may use. t.TempDir is
// not suitable when running as root: the postgres user cannot enter it.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	u, err := lookupServerUser()
	if err != nil {
		t.Fatal(err)
	}
	if err := u.chown(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// start starts a cluster and closes it at the end of the test.
func start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	begin := time.Now()
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster in %s started in %v", opts.Dir, time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), connString)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryInt(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(t.Context(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestStopStartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t, Options{Dir: filepath.Join(tempDir(t), "data")})
	if !c.Running() {
		t.Fatal("Running() = false after Start")
	}
	if got, want := c.SocketDir(), c.Dir(); got != want {
		t.Errorf("SocketDir() = %q, want %q (the data directory)", got, want)
	}

	conn := connect(t, c.ConnString("postgres"))
	if got := queryInt(t, conn, "select 1"); got != 1 {
		t.Fatalf("select 1: got %d, want 1", got)
	}
	if _, err := conn.Exec(ctx, "create table kept (v int); insert into kept values (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Running() {
		t.Error("Running() = true after Stop")
	}
	if err := c.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if conn, err := pgx.Connect(ctx, c.ConnString("postgres")+" connect_timeout=5"); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped server")
	}

	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn = connect(t, c.URL("postgres"))
	if got := queryInt(t, conn, "select v from kept"); got != 42 {
		t.Errorf("after Start: got %d, want 42", got)
	}
	conn.Close(ctx)

	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	conn = connect(t, c.ConnString("postgres"))
	if got := queryInt(t, conn, "select v from kept"); got != 42 {
		t.Errorf("after Restart: got %d, want 42", got)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "show fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" {
		t.Errorf("fsync after Restart: got %q, want off", fsync)
	}
}

// TestDurable starts the same data directory fast, then durable: the
// durable server has PostgreSQL's defaults back, whatever the last start
// had.
func TestDurable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(tempDir(t), "data")
	settings := func(c *Cluster) string {
		t.Helper()
		conn := connect(t, c.ConnString("postgres"))
		defer conn.Close(ctx)
		var s string
		err := conn.QueryRow(ctx, "select current_setting('fsync') || ',' || current_setting('synchronous_commit') || ',' || current_setting('full_page_writes')").Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		durable bool
		want    string
	}{
		{"fast", false, "off,off,off"},
		{"durable", true, "on,on,on"},
	} {
		c := start(t, Options{Dir: dir, Durable: tc.durable})
		if got := settings(c); got != tc.want {
			t.Errorf("%s: fsync, synchronous_commit, full_page_writes: got %s, want %s", tc.name, got, tc.want)
		}
		if c.Durable() != tc.durable {
			t.Errorf("%s: Durable() = %v, want %v", tc.name, c.Durable(), tc.durable)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLongSocketPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(tempDir(t), strings.Repeat("d", 100))
	c := start(t, Options{Dir: dir})
	if c.SocketDir() == c.Dir() || !strings.HasPrefix(c.SocketDir(), "/tmp/") {
		t.Errorf("SocketDir() = %q, want a short directory under /tmp", c.SocketDir())
	}
	conn := connect(t, c.ConnString("postgres"))
	if got := queryInt(t, conn, "select 1"); got != 1 {
		t.Fatalf("select 1: got %d, want 1", got)
	}
	conn.Close(t.Context())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.SocketDir()); !os.IsNotExist(err) {
		t.Errorf("socket directory %s left behind after Close (stat: %v)", c.SocketDir(), err)
	}
}

// TestReuseAfterCrash covers the leftovers of runs that were killed
// rather than stopped: a server still running, a postmaster killed with
// its children, a postmaster.pid naming an unrelated live process.
func TestReuseAfterCrash(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/cwd"); err != nil {
		t.Skip("needs /proc")
	}
	ctx := t.Context()
	opts := Options{Dir: filepath.Join(tempDir(t), "data")}
	first := start(t, opts)
	conn := connect(t, first.ConnString("postgres"))
	if _, err := conn.Exec(ctx, "create table kept (v int); insert into kept values (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	check := func(t *testing.T) {
		t.Helper()
		c := start(t, opts)
		conn := connect(t, c.ConnString("postgres"))
		if got := queryInt(t, conn, "select v from kept"); got != 7 {
			t.Errorf("got %d, want 7", got)
		}
		conn.Close(ctx)
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("server left running", check) // first is never stopped

	t.Run("postmaster killed", func(t *testing.T) {
		c := start(t, opts)
		pid := readLockPID(filepath.Join(c.Dir(), "postmaster.pid"))
		if pid == 0 {
			t.Fatal("no pid in postmaster.pid")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid)
		check(t)
	})

	t.Run("pid reused", func(t *testing.T) {
		pidFile := filepath.Join(first.Dir(), "postmaster.pid")
		stale := strconv.Itoa(os.Getpid()) + "\n" + first.Dir() + "\n"
		if err := os.WriteFile(pidFile, []byte(stale), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t)
	})
}

// waitGone waits until pid has exited, as a killed process of an earlier
// run has.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil || procZombie(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after SIGKILL", pid)
		}
		runtime.Gosched()
	}
}

func TestStartFailureShowsLog(t *testing.T) {
	t.Parallel()
	c := start(t, Options{Dir: filepath.Join(tempDir(t), "data")})
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(c.Dir(), "postgresql.auto.conf")
	if err := os.WriteFile(conf, []byte("no_such_setting_xyz = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := c.Start(t.Context())
	if err == nil {
		t.Fatal("Start with a broken configuration succeeded")
	}
	if !strings.Contains(err.Error(), "no_such_setting_xyz") {
		t.Errorf("error does not quote the server log: %v", err)
	}
}

func TestFindBin(t *testing.T) {
	t.Parallel()
	if _, err := FindBin("pg_ctl"); err != nil {
		t.Errorf("FindBin(pg_ctl): %v", err)
	}
	_, err := FindBin("pginflux-no-such-program")
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("FindBin of a missing program: got %v, want an error saying how to install", err)
	}
}

func TestFindBinOffPath(t *testing.T) {
	// Not parallel: t.Setenv changes PATH for the whole process.
	dirs := debianBinDirs()
	if len(dirs) == 0 {
		t.Skip("no " + debianRoot)
	}
	t.Setenv("PATH", t.TempDir())
	got, err := FindBin("pg_ctl")
	if want := filepath.Join(dirs[0], "pg_ctl"); err != nil || got != want {
		t.Errorf("FindBin(pg_ctl) without PATH: got %q, %v, want %q", got, err, want)
	}
}

func TestInaccessibleDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	dir, err := os.MkdirTemp("", "pgcluster-closed-") // mode 0700, owned by root
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_, err = Start(t.Context(), Options{Dir: filepath.Join(dir, "data")})
	if !errors.Is(err, ErrInaccessible) {
		t.Errorf("got %v, want ErrInaccessible", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("data directory created anyway (stat: %v)", err)
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := start(t, Options{Dir: filepath.Join(tempDir(t), "data"), Settings: []string{"work_mem=7MB", "cluster_name=it's mine"}})
	conn := connect(t, c.ConnString("postgres"))
	defer conn.Close(ctx)
	var wm, name string
	if err := conn.QueryRow(ctx, "select current_setting('work_mem'), current_setting('cluster_name')").Scan(&wm, &name); err != nil {
		t.Fatal(err)
	}
	if wm != "7MB" {
		t.Errorf("work_mem = %q, want 7MB", wm)
	}
	if name != "it's mine" {
		t.Errorf("cluster_name = %q, want it's mine (quoted through pg_ctl's shell)", name)
	}
}
