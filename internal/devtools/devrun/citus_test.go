package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// childCitus reports what the database devrun provides looks like, in
// the file named by DEVRUN_TEST_READY ("workers work_mem libraries
// extensions"),
// and exits with 42 on SIGTERM.
func childCitus() int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("PGINFLUX_DATABASE_URL"))
	if err != nil {
		os.Stderr.WriteString("child: " + err.Error() + "\n")
		return 10
	}
	var workers int
	var workMem, libs, exts string
	err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM citus_get_active_worker_nodes()), current_setting('work_mem'),
		current_setting('shared_preload_libraries'), (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension)`).Scan(&workers, &workMem, &libs, &exts)
	if err != nil {
		os.Stderr.WriteString("child: " + err.Error() + "\n")
		return 11
	}
	// A distributed table, to see that the workers take rows.
	for _, s := range []string{"CREATE TABLE t (k int)", "SELECT create_distributed_table('t', 'k')", "INSERT INTO t SELECT generate_series(1, 100)"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			os.Stderr.WriteString("child: " + s + ": " + err.Error() + "\n")
			return 12
		}
	}
	conn.Close(ctx)
	if err := os.WriteFile(os.Getenv("DEVRUN_TEST_READY"), fmt.Appendf(nil, "%d %s %s %s", workers, workMem, libs, exts), 0o600); err != nil {
		return 13
	}
	<-term
	return 42
}

// freePorts returns the first of n consecutive TCP ports on 127.0.0.1
// that were free a moment ago.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := freePort(t)
		if base+n > 65535 {
			continue
		}
		var ls []net.Listener
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// TestCitusDevrun: devrun --citus-workers 2 starts a coordinator and two
// workers, with the settings and extensions asked for, and the program
// it runs gets the coordinator, where tables are distributed over both
// workers. Everything is stopped when the program exits.
func TestCitusDevrun(t *testing.T) {
	t.Parallel()
	pgtest.NeedExtension(t, "citus")
	base, err := os.MkdirTemp("", "devrun-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(base, "data")
	ready := filepath.Join(base, "ready")
	port := freePorts(t, 3)

	environ := append(withoutVar(withoutVar(os.Environ(), "PGINFLUX_DATABASE_URL"), "DATABASE_URL"),
		childEnv+"=citus", "DEVRUN_TEST_READY="+ready)
	signals := make(chan os.Signal, 1)
	var stderr bytes.Buffer
	code := make(chan int, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		code <- run([]string{"--data-dir", dataDir, "--port", strconv.Itoa(port), "--fsync=false", "--citus-workers", "2",
			"--settings", "work_mem=9MB", "--settings", "shared_preload_libraries=pg_stat_statements", "--extension", "pg_trgm",
			"--", os.Args[0]}, environ, &stderr, signals)
	}()
	waitFile(t, ready, done)
	signals <- syscall.SIGTERM
	<-done
	if got := <-code; got != 42 {
		t.Fatalf("exit code: got %d, want 42; stderr:\n%s", got, stderr.String())
	}
	report, err := os.ReadFile(ready)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(report), "2 9MB citus,pg_stat_statements citus,pg_trgm,plpgsql"; got != want {
		t.Errorf("the child saw %q, want %q", got, want)
	}
	out := stderr.String()
	for _, want := range []string{
		fmt.Sprintf("workers at 127.0.0.1:%d, 127.0.0.1:%d", port+1, port+2),
		"--create-table-sql \"SELECT create_distributed_table({{.TableLiteral}}, 'series_id')\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	for _, d := range []string{dataDir, dataDir + "-worker1", dataDir + "-worker2"} {
		if _, err := os.Stat(filepath.Join(d, "postmaster.pid")); !os.IsNotExist(err) {
			t.Errorf("server in %s still running after devrun returned (stat postmaster.pid: %v)", d, err)
		}
	}
}

func TestCitusSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		settings []string
		want     string // the last shared_preload_libraries
	}{
		{name: "none", settings: nil, want: "citus"},
		{name: "another library", settings: []string{"shared_preload_libraries=timescaledb"}, want: "citus,timescaledb"},
		{name: "citus not first", settings: []string{"shared_preload_libraries=timescaledb, citus"}, want: "citus,timescaledb"},
		{name: "the last wins", settings: []string{"shared_preload_libraries=a", "work_mem=1MB", "shared_preload_libraries=b"}, want: "citus,b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := citusSettings(tt.settings)
			if !slices.Equal(got[:len(tt.settings)], tt.settings) {
				t.Errorf("citusSettings(%q) = %q: the settings given are not kept first", tt.settings, got)
			}
			if last := got[len(got)-1]; last != "shared_preload_libraries="+tt.want {
				t.Errorf("citusSettings(%q) ends with %q, want shared_preload_libraries=%s", tt.settings, last, tt.want)
			}
		})
	}
}
