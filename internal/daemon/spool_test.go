package daemon_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// The spool (--spool-dir): what PostgreSQL cannot take is kept on disk
// across a stop, and written once by the next pginflux, even one killed
// while it replays. (Spooled HTTP writes: TestWriteWhileDatabaseDown; with
// a Citus worker away: TestCitusWorkerStopped.)

// TestSpoolAcrossRestart: pginflux with --spool-dir and no database keeps
// what it receives on disk at shutdown (nothing abandoned), and the next
// pginflux, with the database, writes all of it once.
func TestSpoolAcrossRestart(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	dir := t.TempDir()
	down := daemontest.Start(t, schema, "--spool-dir", dir, "--shutdown-timeout", "2s", "--batch-size", "100", "--database-url", daemontest.Unreachable)
	daemontest.Send(t, down.UDP, distinctLines("spooled", 500, 10)...)
	down.Stop(t)
	if segs, _ := filepath.Glob(filepath.Join(dir, "seg-*")); len(segs) == 0 {
		t.Fatal("nothing was spooled")
	}

	up := daemontest.Start(t, schema, "--spool-dir", dir)
	table := pgx.Identifier{schema, "spooled"}.Sanitize()
	daemontest.WaitRows(t, pool, table, 500)
	up.Stop(t)
	if n, distinct := countRows(t, pool, table); n != 500 || distinct != 500 {
		t.Errorf("got %d rows (%d distinct), want 500", n, distinct)
	}
}

// TestSpoolKillMidReplay kills pginflux (SIGKILL) while it replays its
// spool, then starts it again: every line is in PostgreSQL exactly once.
func TestSpoolKillMidReplay(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	dir := t.TempDir()
	const lines = 1000
	// One row a batch, so that the replay has many records to be
	// killed in the middle of.
	down := daemontest.Start(t, schema, "--spool-dir", dir, "--shutdown-timeout", "5s", "--batch-size", "1", "--database-url", daemontest.Unreachable)
	daemontest.Send(t, down.UDP, distinctLines("killed", lines, 10)...)
	down.Stop(t)

	child := daemontest.StartChild(t, "--database-url", pgtest.ConnString(t), "--schema", schema, "--spool-dir", dir,
		"--udp-address", "127.0.0.1:0", "--http-address", "", "--log-level", "warn")
	markers := pgx.Identifier{schema, "pginflux_spool"}.Sanitize()
	deadline := time.Now().Add(daemontest.Patience)
	var replayed int
	for replayed < 50 && time.Now().Before(deadline) {
		pool.QueryRow(t.Context(), "SELECT count(*) FROM "+markers).Scan(&replayed)
		time.Sleep(10 * time.Millisecond) // polling the replay, to kill it early
	}
	child.Kill()
	if replayed < 50 {
		t.Fatalf("the child replayed %d records in %v\n%s", replayed, daemontest.Patience, child.Log)
	}
	// Killed 50 records into 1,000: the rest of the replay cannot have
	// happened between the query and the kill.
	if segs, _ := filepath.Glob(filepath.Join(dir, "seg-*")); len(segs) == 0 {
		t.Fatalf("the replay had finished before the kill (%d records replayed); nothing was tested", replayed)
	}

	up := daemontest.Start(t, schema, "--spool-dir", dir)
	table := pgx.Identifier{schema, "killed"}.Sanitize()
	daemontest.WaitRows(t, pool, table, lines)
	up.Stop(t)
	if n, distinct := countRows(t, pool, table); n != lines || distinct != lines {
		t.Errorf("got %d rows (%d distinct), want %d", n, distinct, lines)
	}
}

// TestStopWithSpoolSaysSo: on SIGTERM with PostgreSQL away and a spool,
// the log says how many rows went to the spool, not that everything
// received was written.
func TestStopWithSpoolSaysSo(t *testing.T) {
	t.Parallel()
	_, schema := pgtest.Schema(t)
	const n = 500
	p := daemontest.Config{ConnString: daemontest.Unreachable}.Start(t, schema, "--spool-dir", t.TempDir(), "--shutdown-timeout", "5s")
	daemontest.Send(t, p.UDP, distinctLines("spooled", n, 10)...)
	daemontest.WaitMetric(t, p.Base, "pginflux_sink_spooled_rows_total", nil, n)
	p.Stop(t)
	line := p.Log.WaitFor(t, `level=\w+ msg="stopped;.*`)
	if !strings.HasPrefix(line, "level=WARN") || !strings.Contains(line, "spooled_rows=500") || strings.Contains(line, "everything received was written") {
		t.Errorf("got %q, want a warning with spooled_rows=500", line)
	}
}
