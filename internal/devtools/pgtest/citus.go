package pgtest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
)

// CitusCluster is a Citus cluster of one test's own, made by Citus: a
// coordinator and two workers, each a throwaway server (see NewCluster)
// with Citus preloaded and the extension created in database postgres,
// the workers added to the coordinator's metadata. Nodes listen on unix
// sockets only, each in its own directory, and Citus knows them by those
// directories (a node name that starts with a slash is a socket
// directory to libpq, which Citus connects with): no TCP port is taken,
// so parallel test binaries cannot collide. Start one per test function
// and give its subtests schemas of their own (Schema).
//
// Tests may stop and start a worker (Workers[i].Stop, Start, Crash); the
// coordinator reconnects by itself. Safe for concurrent use.
type CitusCluster struct {
	Coordinator *pgcluster.Cluster
	Workers     []*pgcluster.Cluster
}

// citusWorkers is how many workers Citus starts.
const citusWorkers = 2

// citusPort is the port a socket-only pgcluster names its socket after
// (pgcluster.Options.Port 0), and so the node port Citus is given.
const citusPort = 5432

// citusSettings are the server settings of every node. Four shards a
// table (Citus makes 32) keep the DDL of tests quick while every worker
// holds two. Citus commits what a worker had prepared when its COMMIT
// PREPARED failed (a worker stopped at that instant) in a background
// recovery, every recover_2pc_interval: a second here, a minute by
// default, so that such rows show up while the test waits for them.
var citusSettings = []string{
	"shared_preload_libraries=citus",
	"citus.shard_count=4",
	"citus.recover_2pc_interval=1s",
}

// Citus starts a Citus cluster for this test alone, stopped and removed
// at cleanup. It skips the test when Citus is not installed (see
// NeedExtension), and fails it when the cluster cannot be made.
func Citus(t testing.TB) *CitusCluster {
	t.Helper()
	NeedExtension(t, "citus")
	c := &CitusCluster{Coordinator: NewCluster(t, pgcluster.Options{Settings: citusSettings})}
	for range citusWorkers {
		c.Workers = append(c.Workers, NewCluster(t, pgcluster.Options{Settings: citusSettings}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for _, n := range append([]*pgcluster.Cluster{c.Coordinator}, c.Workers...) {
		// citus.local_hostname is how a node connects to itself, for a
		// few operations: "localhost" would be TCP, which no node serves.
		err := execAll(ctx, n.ConnString("postgres"),
			"CREATE EXTENSION citus",
			"ALTER SYSTEM SET citus.local_hostname = "+quoteLiteral(n.SocketDir()),
			"SELECT pg_reload_conf()")
		if err != nil {
			t.Fatalf("pgtest: citus node %s: %v", n.SocketDir(), err)
		}
	}
	stmts := []string{fmt.Sprintf("SELECT citus_set_coordinator_host(%s, %d)", quoteLiteral(c.Coordinator.SocketDir()), citusPort)}
	for _, w := range c.Workers {
		stmts = append(stmts, fmt.Sprintf("SELECT citus_add_node(%s, %d)", quoteLiteral(w.SocketDir()), citusPort))
	}
	if err := execAll(ctx, c.ConnString(), stmts...); err != nil {
		t.Fatalf("pgtest: citus coordinator: %v", err)
	}
	return c
}

// ConnString returns a connection string for database postgres on the
// coordinator, where clients connect.
func (c *CitusCluster) ConnString() string { return c.Coordinator.ConnString("postgres") }

// Schema creates a schema on the coordinator for this test (or subtest)
// alone, named as Schema names them, and returns a pool of connections to
// the coordinator, closed at cleanup, and the schema's name. The schema
// goes away with the cluster.
func (c *CitusCluster) Schema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	pool := c.Pool(t)
	name := schemaName(t.Name())
	if _, err := pool.Exec(t.Context(), "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", name, err)
	}
	return pool, name
}

// Pool returns a pool of connections to the coordinator, closed at
// cleanup.
func (c *CitusCluster) Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), c.ConnString())
	if err != nil {
		t.Fatalf("pgtest: connect to the coordinator: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// WorkerRows returns how many rows of a distributed table (a name as
// regclass takes it: "metrics.cpu", `"Metrics"."CPU"`) each worker
// holds: element i is Workers[i]'s, counted on the worker itself, shard
// by shard, as the coordinator's metadata places the shards.
func (c *CitusCluster) WorkerRows(t testing.TB, table string) []int64 {
	t.Helper()
	counts := make([]int64, len(c.Workers))
	c.eachShard(t, table, func(i int, conn *pgx.Conn, shard string) {
		var n int64
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+shard).Scan(&n); err != nil {
			t.Fatalf("pgtest: count rows of shard %s on worker %d: %v", shard, i, err)
		}
		counts[i] += n
	})
	return counts
}

// ShardColumns returns the columns of every shard of a distributed table
// (named as for WorkerRows), as each worker has them, by shard name.
func (c *CitusCluster) ShardColumns(t testing.TB, table string) map[string][]string {
	t.Helper()
	cols := make(map[string][]string)
	c.eachShard(t, table, func(i int, conn *pgx.Conn, shard string) {
		rows, err := conn.Query(t.Context(), "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", shard)
		if err != nil {
			t.Fatalf("pgtest: columns of shard %s on worker %d: %v", shard, i, err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("pgtest: columns of shard %s on worker %d: %v", shard, i, err)
		}
		cols[shard] = names
	})
	return cols
}

// eachShard calls f for every shard of a distributed table with the index
// of the worker that holds it, a connection to that worker and the
// shard's name (quoted where it must be). A table without shards, or a
// shard on a node that is no worker (the coordinator), fails the test.
func (c *CitusCluster) eachShard(t testing.TB, table string, f func(worker int, conn *pgx.Conn, shard string)) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, c.ConnString())
	if err != nil {
		t.Fatalf("pgtest: connect to the coordinator: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT shard_name, nodename, nodeport FROM citus_shards WHERE table_name = $1::regclass ORDER BY shardid", table)
	if err != nil {
		t.Fatalf("pgtest: shards of %s: %v", table, err)
	}
	shards := make([][]string, len(c.Workers))
	var nshards int
	for rows.Next() {
		var shard, node string
		var port int
		if err := rows.Scan(&shard, &node, &port); err != nil {
			t.Fatalf("pgtest: shards of %s: %v", table, err)
		}
		i := c.worker(node, port)
		if i < 0 {
			t.Fatalf("pgtest: shard %s of %s is on %s:%d, no worker", shard, table, node, port)
		}
		shards[i] = append(shards[i], shard)
		nshards++
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("pgtest: shards of %s: %v", table, err)
	}
	if nshards == 0 {
		t.Fatalf("pgtest: %s has no shards: not a distributed table", table)
	}
	for i, w := range c.Workers {
		if len(shards[i]) == 0 {
			continue
		}
		func() {
			wc, err := pgx.Connect(ctx, w.ConnString("postgres"))
			if err != nil {
				t.Fatalf("pgtest: connect to worker %d: %v", i, err)
			}
			defer wc.Close(context.Background())
			for _, s := range shards[i] {
				f(i, wc, s)
			}
		}()
	}
}

// worker returns the index of the worker that Citus calls node:port, or
// -1.
func (c *CitusCluster) worker(node string, port int) int {
	for i, w := range c.Workers {
		if w.SocketDir() == node && port == citusPort {
			return i
		}
	}
	return -1
}

// execAll runs stmts on a new connection to connString, one by one.
func execAll(ctx context.Context, connString string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal (the servers have
// standard_conforming_strings on, PostgreSQL's default).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
