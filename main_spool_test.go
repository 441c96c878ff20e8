package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/pgtest"
)

// TestSpoolAcrossRestart: pginflux with --spool-dir and no database keeps
// what it receives on disk at shutdown (nothing abandoned), and the next
// pginflux, with the database, writes all of it once.
func TestSpoolAcrossRestart(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	dir := t.TempDir()
	down := start(t, schema, "--spool-dir", dir, "--shutdown-timeout", "2s", "--batch-size", "100",
		"--database-url", "host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=1")
	var datagrams []string
	for i := range 50 {
		var b strings.Builder
		for j := range 10 {
			fmt.Fprintf(&b, "spooled,host=h%d v=%di %d\n", j, i*10+j, 1_600_000_000_000_000_000+int64(i*10+j))
		}
		datagrams = append(datagrams, b.String())
	}
	send(t, down.addr, datagrams...)
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
