package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
)

// citusSettings returns settings with Citus first in
// shared_preload_libraries, as Citus requires, keeping the libraries a
// setting there names already (timescaledb, say).
func citusSettings(settings []string) []string {
	libs := []string{"citus"}
	for _, s := range settings {
		name, value, _ := strings.Cut(s, "=")
		if strings.TrimSpace(name) != "shared_preload_libraries" {
			continue
		}
		libs = libs[:1] // the last setting wins, as with -c
		for _, l := range strings.Split(value, ",") {
			if l = strings.TrimSpace(l); l != "" && l != "citus" {
				libs = append(libs, l)
			}
		}
	}
	return append(append([]string(nil), settings...), "shared_preload_libraries="+strings.Join(libs, ","))
}

// setUpCitus creates the Citus extension in database postgres of every
// server (the coordinator first, on 127.0.0.1:port; worker i on
// port+i), and adds the workers to the coordinator. Nodes know each
// other as 127.0.0.1 and their ports, names that stay the same when the
// data directories are used again; adding a node the coordinator has
// already changes nothing.
func setUpCitus(ctx context.Context, servers []*pgcluster.Cluster, port int) error {
	for i, s := range servers {
		// citus.local_hostname is how a node connects to itself; the
		// default, localhost, may resolve to ::1, where no server listens.
		// Nodes talk over loopback, without TLS: with it (Citus's
		// default, sslmode=require), libpq in the server would also look
		// for a client certificate in the home directory it inherits,
		// root's when devrun runs as root, which the postgres user
		// cannot read.
		if err := execOn(ctx, s, "CREATE EXTENSION IF NOT EXISTS citus",
			"ALTER SYSTEM SET citus.local_hostname = '127.0.0.1'",
			"ALTER SYSTEM SET citus.node_conninfo = 'sslmode=disable'",
			"SELECT pg_reload_conf()"); err != nil {
			return fmt.Errorf("citus on 127.0.0.1:%d: %w", port+i, err)
		}
	}
	stmts := []string{fmt.Sprintf("SELECT citus_set_coordinator_host('127.0.0.1', %d)", port)}
	for i := 1; i < len(servers); i++ {
		stmts = append(stmts, fmt.Sprintf("SELECT citus_add_node('127.0.0.1', %d)", port+i))
	}
	if err := execOn(ctx, servers[0], stmts...); err != nil {
		return fmt.Errorf("citus coordinator: %w", err)
	}
	return nil
}

// createExtensions creates each extension in database postgres of c,
// unless it is there already.
func createExtensions(ctx context.Context, c *pgcluster.Cluster, names []string) error {
	var stmts []string
	for _, n := range names {
		stmts = append(stmts, "CREATE EXTENSION IF NOT EXISTS "+pgx.Identifier{n}.Sanitize())
	}
	if len(stmts) == 0 {
		return nil
	}
	if err := execOn(ctx, c, stmts...); err != nil {
		return fmt.Errorf("create extensions: %w", err)
	}
	return nil
}

// execOn runs stmts, one by one, in database postgres of c over its unix
// socket.
func execOn(ctx context.Context, c *pgcluster.Cluster, stmts ...string) error {
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// printCitus says where the workers are and how pginflux distributes the
// tables it makes.
func printCitus(w io.Writer, workers []*pgcluster.Cluster, port int) {
	var addrs []string
	for i := range workers {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port+i+1))
	}
	fmt.Fprintf(w, "pginflux dev: Citus: the server above is the coordinator; workers at %s (data in %s: to start afresh, remove them too)\n",
		strings.Join(addrs, ", "), dirs(workers))
	fmt.Fprintf(w, "pginflux dev: to distribute the tables pginflux makes, run it with --create-table-sql \"SELECT create_distributed_table({{.TableLiteral}}, 'series_id')\"\n")
}

// dirs lists the data directories of servers.
func dirs(servers []*pgcluster.Cluster) string {
	var ds []string
	for _, s := range servers {
		ds = append(ds, s.Dir())
	}
	return strings.Join(ds, ", ")
}
