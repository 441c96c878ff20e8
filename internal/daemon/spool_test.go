package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestSpoolAcrossRestart: pginflux with --spool-dir and no database keeps
// what it receives on disk at shutdown (nothing abandoned), and the next
// pginflux, with the database, writes all of it once.
func TestSpoolAcrossRestart(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	dir := t.TempDir()
	down := start(t, schema, "--spool-dir", dir, "--shutdown-timeout", "2s", "--batch-size", "100",
		"--database-url", "host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=1")
	send(t, down.addr, numberedDatagrams("spooled", 500)...)
	down.stop(t)
	if segs, _ := filepath.Glob(filepath.Join(dir, "seg-*")); len(segs) == 0 {
		t.Fatal("nothing was spooled")
	}

	up := start(t, schema, "--spool-dir", dir)
	table := pgx.Identifier{schema, "spooled"}.Sanitize()
	waitRows(t, pool, table, 500)
	up.stop(t)
	var n, distinct int
	if err := pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT v) FROM "+table).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 500 || distinct != 500 {
		t.Errorf("got %d rows (%d distinct), want 500", n, distinct)
	}
}

// envDaemonChild, in a child process of the test binary, holds the
// arguments (JSON) of the pginflux daemon that TestDaemonHelperProcess
// runs in it.
const envDaemonChild = "PGINFLUX_TEST_DAEMON_CHILD"

// TestDaemonHelperProcess is not a test: it is the pginflux daemon in a
// process of its own, for tests that kill it.
func TestDaemonHelperProcess(t *testing.T) {
	spec := os.Getenv(envDaemonChild)
	if spec == "" {
		t.Skip("runs only as a child of another test")
	}
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, args, func(string) string { return "" }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestSpoolKillMidReplay kills pginflux (SIGKILL) while it replays its
// spool, then starts it again: every line is in PostgreSQL exactly once.
func TestSpoolKillMidReplay(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	dir := t.TempDir()
	const lines = 2000
	// One row a batch, so that the replay has many records to be
	// killed in the middle of.
	down := start(t, schema, "--spool-dir", dir, "--shutdown-timeout", "5s", "--batch-size", "1",
		"--database-url", "host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=1")
	send(t, down.addr, numberedDatagrams("killed", lines)...)
	down.stop(t)

	args, err := json.Marshal([]string{"--database-url", pgtest.ConnString(t), "--schema", schema, "--spool-dir", dir,
		"--udp-address", "127.0.0.1:0", "--http-address", "", "--log-level", "warn"})
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestDaemonHelperProcess$", "-test.count=1")
	child.Env = append(os.Environ(), envDaemonChild+"="+string(args))
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	markers := pgx.Identifier{schema, "pginflux_spool"}.Sanitize()
	deadline := time.Now().Add(60 * time.Second)
	var replayed int
	for replayed < 50 && time.Now().Before(deadline) {
		pool.QueryRow(t.Context(), "SELECT count(*) FROM "+markers).Scan(&replayed)
		time.Sleep(2 * time.Millisecond)
	}
	child.Process.Kill()
	child.Wait()
	if replayed < 50 {
		t.Fatalf("the child replayed %d records in 60s\n%s", replayed, out.String())
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "seg-*")); len(segs) == 0 {
		t.Fatalf("the replay had finished before the kill (%d records replayed); nothing was tested", replayed)
	}

	up := start(t, schema, "--spool-dir", dir)
	table := pgx.Identifier{schema, "killed"}.Sanitize()
	waitRows(t, pool, table, lines)
	up.stop(t)
	var n, distinct int
	if err := pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT v) FROM "+table).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != lines || distinct != lines {
		t.Errorf("got %d rows (%d distinct), want %d", n, distinct, lines)
	}
}
