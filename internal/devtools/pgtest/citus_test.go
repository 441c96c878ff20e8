package pgtest

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestCitusCluster starts a coordinator and two workers that know each
// other by socket directory, distributes a table over them, counts its
// rows on each worker, and stops and starts a worker under it.
func TestCitusCluster(t *testing.T) {
	t.Parallel()
	c := Citus(t)
	ctx := t.Context()
	pool, schema := c.Schema(t)

	var workers int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM citus_get_active_worker_nodes()").Scan(&workers); err != nil {
		t.Fatal(err)
	}
	if workers != 2 || len(c.Workers) != 2 {
		t.Fatalf("got %d active workers (%d clusters), want 2", workers, len(c.Workers))
	}
	for i, w := range c.Workers {
		var listen string
		if err := execScan(t, w.ConnString("postgres"), "SHOW listen_addresses", &listen); err != nil {
			t.Fatal(err)
		}
		if listen != "" {
			t.Errorf("worker %d listens on %q, want no TCP address", i, listen)
		}
	}

	table := pgx.Identifier{schema, "t"}.Sanitize()
	for _, s := range []string{
		"CREATE TABLE " + table + " (k int, v text)",
		"SELECT create_distributed_table('" + table + "', 'k')",
		"INSERT INTO " + table + " SELECT g, 'x' FROM generate_series(1, 1000) g",
		"ALTER TABLE " + table + " ADD COLUMN w int",
	} {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	shards := c.ShardColumns(t, table)
	if len(shards) != 4 {
		t.Errorf("got %d shards, want 4 (citus.shard_count)", len(shards))
	}
	for shard, cols := range shards {
		if got := strings.Join(cols, ","); got != "k,v,w" {
			t.Errorf("shard %s has columns %s, want k,v,w", shard, got)
		}
	}
	counts := c.WorkerRows(t, table)
	if counts[0]+counts[1] != 1000 || counts[0] == 0 || counts[1] == 0 {
		t.Errorf("rows on the workers: got %v, want 1000 spread over both", counts)
	}

	// A worker stopped: the coordinator says so, and writes once it is
	// back. A session whose cached connection to the worker broke gets
	// XX000 ("failure on connection marked as essential") first; then
	// connecting fails, 08006.
	if err := c.Workers[1].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for range 3 {
		_, err := pool.Exec(ctx, "INSERT INTO "+table+" SELECT g, 'y' FROM generate_series(1001, 1100) g")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Fatalf("insert with a worker stopped: got %v, want an error with a SQLSTATE", err)
		}
		codes = append(codes, pgErr.Code)
		if pgErr.Code == "08006" {
			break
		}
		if pgErr.Code != "XX000" {
			t.Errorf("insert with a worker stopped: got %v, want SQLSTATE XX000 or 08006", err)
		}
	}
	if codes[len(codes)-1] != "08006" {
		t.Errorf("inserts with a worker stopped: got SQLSTATEs %v, want 08006 at last", codes)
	}
	if err := c.Workers[1].Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO "+table+" SELECT g, 'y' FROM generate_series(1001, 1100) g"); err != nil {
		t.Fatalf("insert with the worker back: %v", err)
	}
	counts = c.WorkerRows(t, table)
	if counts[0]+counts[1] != 1100 {
		t.Errorf("rows on the workers: got %v, want 1100 in all", counts)
	}
}

// execScan runs query on a new connection to connString and scans its one
// row into dest.
func execScan(t *testing.T, connString, query string, dest ...any) error {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), connString)
	if err != nil {
		return err
	}
	defer conn.Close(t.Context())
	return conn.QueryRow(t.Context(), query).Scan(dest...)
}
