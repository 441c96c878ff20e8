package daemon_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestSpoolAcrossRestart: pginflux with --spool-dir and no database keeps
// what it receives on disk at shutdown (nothing abandoned), and the next
// pginflux, with the database, writes all of it once.
func TestSpoolAcrossRestart(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	dir := t.TempDir()
	down := daemontest.Start(t, schema, "--spool-dir", dir, "--shutdown-timeout", "2s", "--batch-size", "100", "--database-url", daemontest.Unreachable)
	daemontest.Send(t, down.UDP, numberedDatagrams("spooled", 500)...)
	down.Stop(t)
	if segs, _ := filepath.Glob(filepath.Join(dir, "seg-*")); len(segs) == 0 {
		t.Fatal("nothing was spooled")
	}

	up := daemontest.Start(t, schema, "--spool-dir", dir)
	table := pgx.Identifier{schema, "spooled"}.Sanitize()
	daemontest.WaitRows(t, pool, table, 500)
	up.Stop(t)
	var n, distinct int
	if err := pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT v) FROM "+table).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 500 || distinct != 500 {
		t.Errorf("got %d rows (%d distinct), want 500", n, distinct)
	}
}

// TestSpoolKillMidReplay kills pginflux (SIGKILL) while it replays its
// spool, then starts it again: every line is in PostgreSQL exactly once.
func TestSpoolKillMidReplay(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	dir := t.TempDir()
	const lines = 2000
	// One row a batch, so that the replay has many records to be
	// killed in the middle of.
	down := daemontest.Start(t, schema, "--spool-dir", dir, "--shutdown-timeout", "5s", "--batch-size", "1", "--database-url", daemontest.Unreachable)
	daemontest.Send(t, down.UDP, numberedDatagrams("killed", lines)...)
	down.Stop(t)

	child := daemontest.StartChild(t, "--database-url", pgtest.ConnString(t), "--schema", schema, "--spool-dir", dir,
		"--udp-address", "127.0.0.1:0", "--http-address", "", "--log-level", "warn")
	markers := pgx.Identifier{schema, "pginflux_spool"}.Sanitize()
	deadline := time.Now().Add(60 * time.Second)
	var replayed int
	for replayed < 50 && time.Now().Before(deadline) {
		pool.QueryRow(t.Context(), "SELECT count(*) FROM "+markers).Scan(&replayed)
		time.Sleep(2 * time.Millisecond)
	}
	child.Kill()
	if replayed < 50 {
		t.Fatalf("the child replayed %d records in 60s\n%s", replayed, child.Log)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "seg-*")); len(segs) == 0 {
		t.Fatalf("the replay had finished before the kill (%d records replayed); nothing was tested", replayed)
	}

	up := daemontest.Start(t, schema, "--spool-dir", dir)
	table := pgx.Identifier{schema, "killed"}.Sanitize()
	daemontest.WaitRows(t, pool, table, lines)
	up.Stop(t)
	var n, distinct int
	if err := pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT v) FROM "+table).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != lines || distinct != lines {
		t.Errorf("got %d rows (%d distinct), want %d", n, distinct, lines)
	}
}
