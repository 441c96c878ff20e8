package daemon_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// keepRunning makes sure the shared cluster runs when the test ends,
// whatever happens to the test.
func keepRunning(t *testing.T, c *pgcluster.Cluster) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Start(ctx); err != nil {
			t.Errorf("start PostgreSQL again: %v", err)
		}
	})
}

// distinctLines returns n distinct lines of measurement m, packed
// per datagrams.
func distinctLines(m string, n, per int) []string {
	var out []string
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s,host=h%d v=%di,s=\"line %d\" %d\n", m, i%13, i, i, 1_700_000_000_000_000_000+int64(i)*1000)
		if (i+1)%per == 0 || i == n-1 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	return out
}

// countRows returns count(*) and count(DISTINCT v) of a table.
func countRows(t *testing.T, pool *pgxpool.Pool, table string) (rows, distinct int) {
	t.Helper()
	if err := pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT v) FROM "+table).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// TestDatabaseDownAtStart: with PostgreSQL down, pginflux starts, listens,
// says so in its log and on /readyz, holds what it receives, and writes
// all of it once PostgreSQL is up.
func TestDatabaseDownAtStart(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	cluster := pgtest.Cluster(t)
	keepRunning(t, cluster)
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := daemontest.Start(t, schema)
	base, logs := p.Base, p.Log
	// Back before pginflux stops (cleanups run last first), so that it
	// does not wait out its shutdown timeout.
	keepRunning(t, cluster)

	// Logged before listening.
	logs.WaitFor(t, `level=INFO msg="starting pginflux".*`)
	logs.WaitFor(t, `level=WARN msg="database not reachable yet; receiving anyway and retrying".* err=.*`)
	body := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable)
	if !strings.HasPrefix(body, "database unreachable: ") {
		t.Errorf("/readyz: got %q, want the reason", body)
	}

	const n = 1000
	daemontest.Send(t, p.UDP, distinctLines("downatstart", n, 10)...)
	// Every row is held, none lost, while the writers retry.
	daemontest.WaitMetric(t, base, "pginflux_sink_pending_rows", nil, n)
	logs.WaitFor(t, `level=WARN msg="database unavailable; holding rows and retrying".*`)

	if err := cluster.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{schema, "downatstart"}.Sanitize()
	daemontest.WaitRows(t, pool, table, n)
	if rows, distinct := countRows(t, pool, table); rows != n || distinct != n {
		t.Errorf("got %d rows (%d distinct), want %d", rows, distinct, n)
	}
	logs.WaitFor(t, `level=INFO msg="database available again"`)
	waitStatus(t, base+"/readyz", http.StatusOK)
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"pginflux_sink_dropped_rows_total", nil},
		{"pginflux_ingest_dropped_datagrams_total", nil},
		{"pginflux_udp_kernel_dropped_datagrams_total", nil},
	} {
		if v := daemontest.Metric(t, base, c.name, c.labels); v != 0 {
			t.Errorf("%s: got %v, want 0", c.name, v)
		}
	}
	p.Stop(t)
}

// TestDatabaseRestartMidStream restarts PostgreSQL while a paced sender
// sends, well below capacity, 20,000 distinct lines: every one lands
// exactly once, through the retries of the writers and the atomicity of
// COPY.
func TestDatabaseRestartMidStream(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	cluster := pgtest.Cluster(t)
	p := daemontest.Start(t, schema)
	base := p.Base
	keepRunning(t, cluster)

	const n, perDatagram = 20_000, 10
	// Stop, then start: the restart takes a second or so, during which
	// the writers' COPYs fail and are retried.
	streamBreaking(t, p, distinctLines("restart", n, perDatagram), func() {
		if err := cluster.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
	})

	table := pgx.Identifier{schema, "restart"}.Sanitize()
	daemontest.WaitRows(t, pool, table, n)
	if rows, distinct := countRows(t, pool, table); rows != n || distinct != n {
		t.Errorf("got %d rows (%d distinct), want %d: lost or duplicated rows", rows, distinct, n)
	}
	if v := daemontest.Metric(t, base, "pginflux_sink_retries_total", nil); v == 0 {
		t.Error("pginflux_sink_retries_total is 0: no COPY met the restart, the test proved nothing")
	}
	for _, name := range []string{"pginflux_sink_dropped_rows_total", "pginflux_ingest_dropped_datagrams_total",
		"pginflux_udp_kernel_dropped_datagrams_total", "pginflux_sink_rejected_total"} {
		if v := daemontest.Metric(t, base, name, nil); v != 0 {
			t.Errorf("%s: got %v, want 0", name, v)
		}
	}
	p.Stop(t)
}

// streamBreaking sends datagrams to p, 5 every 10 ms (2,000 take about
// 4 s), and calls breakIt a third of the way through; it returns once all
// are sent.
func streamBreaking(t *testing.T, p *daemontest.Instance, datagrams []string, breakIt func()) {
	t.Helper()
	conn, err := net.Dial("udp", p.UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	third := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(datagrams); {
			<-tick.C
			for j := 0; j < 5 && i < len(datagrams); j, i = j+1, i+1 {
				if _, err := conn.Write([]byte(datagrams[i])); err != nil {
					sent <- err
					return
				}
				if i == len(datagrams)/3 {
					close(third)
				}
			}
		}
		sent <- nil
	}()
	select {
	case <-third:
	case err := <-sent:
		t.Fatalf("sender stopped early: %v", err)
	}
	breakIt()
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
}

// TestShutdownWhileDatabaseDown: on SIGTERM with PostgreSQL down, pginflux
// gives up after --shutdown-timeout, exits 0, and its log says exactly how
// many rows were abandoned.
func TestShutdownWhileDatabaseDown(t *testing.T) {
	_, schema := pgtest.Schema(t)
	cluster := pgtest.Cluster(t)
	keepRunning(t, cluster)
	const timeout = time.Second
	p := daemontest.Start(t, schema, "--shutdown-timeout", timeout.String())
	base, logs := p.Base, p.Log
	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	const n = 500
	daemontest.Send(t, p.UDP, distinctLines("abandoned", n, 10)...)
	daemontest.WaitMetric(t, base, "pginflux_sink_pending_rows", nil, n)

	start := time.Now()
	err := p.Close()
	took := time.Since(start)
	if err != nil {
		t.Errorf("run returned %v, want nil (exit 0)", err)
	}
	// The timeout, the UDP readers' final drain and the unwinding.
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("run returned %v after SIGTERM, want between %v and %v", took, timeout, timeout+5*time.Second)
	}
	line := logs.WaitFor(t, `level=ERROR msg="stopped with rows not written".*`)
	if !strings.Contains(line, "abandoned_rows="+strconv.Itoa(n)) ||
		!strings.Contains(line, fmt.Sprintf("shutdown timeout passed: %d rows were not written", n)) {
		t.Errorf("got %q, want %d abandoned rows", line, n)
	}
}

// TestUDPAllowEndToEnd: with --udp-allow, a datagram from another source
// is dropped and counted, and one from an allowed source is written.
func TestUDPAllowEndToEnd(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	p := daemontest.Start(t, schema, "--udp-allow", "127.0.0.2/32, 10.0.0.0/8")
	base := p.Base

	daemontest.Send(t, p.UDP, "allowed v=1i 1000000000") // from 127.0.0.1
	c, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot bind 127.0.0.2: %v", err)
	}
	defer c.Close()
	if _, err := c.WriteTo([]byte("allowed v=2i 2000000000"), p.UDP); err != nil {
		t.Fatal(err)
	}
	table := pgx.Identifier{schema, "allowed"}.Sanitize()
	daemontest.WaitRows(t, pool, table, 1)
	daemontest.WaitMetric(t, base, "pginflux_udp_denied_datagrams_total", nil, 1)
	p.Stop(t)

	var v int64
	if err := pool.QueryRow(t.Context(), "SELECT v FROM "+table).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != 2 {
		t.Errorf("got the row with v=%d, want the one from 127.0.0.2 (v=2)", v)
	}
	var rejected int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM "+pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()).Scan(&rejected); err == nil && rejected != 0 {
		t.Errorf("the rejected table has %d rows, want none: a denied datagram is not parsed", rejected)
	}
}

// TestReload changes settings in the file PGINFLUX_CONFIG_FILE names
// and reloads, as SIGHUP does: the batch size and log level change at once,
// a setting that needs a restart is named, and a broken file changes
// nothing.
func TestReload(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	file := filepath.Join(t.TempDir(), "pginflux.env")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is written before a reload: no batch fills, none gets old.
	write("# pginflux settings\nPGINFLUX_BATCH_SIZE=100000\nPGINFLUX_FLUSH_INTERVAL=1h\nPGINFLUX_LOG_LEVEL=warn\n")
	getenv := func(k string) string {
		if k == config.FileEnv {
			return file
		}
		return ""
	}
	p := daemontest.Config{Getenv: getenv}.Start(t, schema, "--udp-readers", "1", "--parsers", "1")
	base, logs := p.Base, p.Log
	// Reload is what SIGHUP does (TestSIGHUPReloads in package main).
	hup := p.Reload

	table := pgx.Identifier{schema, "reload"}.Sanitize()
	line := func(i int) string {
		return fmt.Sprintf("reload,host=a v=%di %d", i, 1_700_000_000_000_000_000+int64(i)*1000)
	}

	daemontest.Send(t, p.UDP, line(1), line(2), line(3))
	daemontest.WaitMetric(t, base, "pginflux_parse_lines_total", map[string]string{"transport": "udp"}, 3)
	if strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("info lines logged at level warn:\n%s", logs)
	}

	write("PGINFLUX_BATCH_SIZE=5\nPGINFLUX_FLUSH_INTERVAL=1h\nPGINFLUX_LOG_LEVEL=debug\nPGINFLUX_WRITERS=3\n")
	if err := hup(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	logs.WaitFor(t, `msg="setting changed" setting=log-level old=WARN new=DEBUG`)
	logs.WaitFor(t, `msg="setting changed" setting=batch-size old=100000 new=5`)
	logs.WaitFor(t, `level=WARN msg="changed settings need a restart to take effect; running on with their old values" settings=writers`)
	// The open batch of 3 rows fills at the new size of 5.
	daemontest.Send(t, p.UDP, line(4), line(5))
	daemontest.WaitRows(t, pool, table, 5)
	// Debug lines show now.
	daemontest.Send(t, p.UDP, "reload,host=a v=")
	logs.WaitFor(t, `level=DEBUG msg="rejected a line"`)

	// A broken file: an error, and the settings stay.
	write("PGINFLUX_BATCH_SIZE=five\n")
	if err := hup(); err == nil || !strings.Contains(err.Error(), "PGINFLUX_BATCH_SIZE") {
		t.Errorf("reload of a bad value: got %v, want an error naming PGINFLUX_BATCH_SIZE", err)
	}
	write("PGINFLUX_BATCH_SIZE 5\n")
	if err := hup(); err == nil || !strings.Contains(err.Error(), "line 1: not KEY=VALUE") {
		t.Errorf("reload of a bad line: got %v, want an error naming the line", err)
	}
	logs.WaitFor(t, `level=ERROR msg="cannot reload the configuration; running on with the current one"`)
	daemontest.Send(t, p.UDP, line(6), line(7), line(8), line(9), line(10))
	daemontest.WaitRows(t, pool, table, 10)
	p.Stop(t)
}

// TestMinimalPrivileges runs pginflux as a role that is no superuser and
// has no privilege on the database beyond PUBLIC's CONNECT and TEMP: only
// USAGE and CREATE on a schema an administrator made. Its tables and the
// rejected table are created and filled. A second role, with USAGE on the
// schema and INSERT on tables made for it, writes into those.
func TestMinimalPrivileges(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	cluster := pgtest.Cluster(t) // trust on its unix socket; skips for an external server
	role := "pginflux_min_" + schema[len(schema)-8:]
	roleRO := role + "_ins"
	admin := func(sql string) {
		t.Helper()
		// Also from the cleanup, when t.Context is done.
		if _, err := pool.Exec(context.WithoutCancel(t.Context()), sql); err != nil {
			t.Errorf("%s: %v", sql, err)
		}
	}
	ident := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	admin("CREATE ROLE " + ident(role) + " LOGIN")
	admin("CREATE ROLE " + ident(roleRO) + " LOGIN")
	t.Cleanup(func() {
		// Before the schema goes: the roles own tables in it.
		for _, r := range []string{role, roleRO} {
			admin("DROP OWNED BY " + ident(r))
			admin("DROP ROLE " + ident(r))
		}
	})
	admin("GRANT USAGE, CREATE ON SCHEMA " + ident(schema) + " TO " + ident(role))
	var super, createDB, createOnDB bool
	if err := pool.QueryRow(t.Context(), `SELECT rolsuper, rolcreatedb, has_database_privilege($1, current_database(), 'CREATE')
		FROM pg_roles WHERE rolname = $1`, role).Scan(&super, &createDB, &createOnDB); err != nil {
		t.Fatal(err)
	}
	if super || createDB || createOnDB {
		t.Fatalf("role %s: superuser %v, createdb %v, CREATE on the database %v; want none", role, super, createDB, createOnDB)
	}

	t.Run("create", func(t *testing.T) {
		p := daemontest.Config{ConnString: cluster.ConnString("postgres") + " user=" + role}.Start(t, schema)
		logs := p.Log
		daemontest.Send(t, p.UDP, "minpriv,host=a v=1i,s=\"x\" 1000000000\nminpriv,host=b v=2i 2000000000\nminpriv,host=c v=\n")
		daemontest.WaitRows(t, pool, pgx.Identifier{schema, "minpriv"}.Sanitize(), 2)
		daemontest.WaitRows(t, pool, pgx.Identifier{schema, "pginflux_rejected"}.Sanitize(), 1)
		p.Stop(t)
		var owner string
		if err := pool.QueryRow(t.Context(), "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'minpriv'", schema).Scan(&owner); err != nil {
			t.Fatal(err)
		}
		if owner != role {
			t.Errorf("table owner: got %s, want %s", owner, role)
		}
		if strings.Contains(logs.String(), "schema created") {
			t.Error("pginflux created the schema, which existed")
		}
	})

	t.Run("insert only", func(t *testing.T) {
		for _, sql := range []string{
			"CREATE TABLE " + ident(schema) + ".preset (time timestamptz NOT NULL, host text, v bigint)",
			"GRANT USAGE ON SCHEMA " + ident(schema) + " TO " + ident(roleRO),
			"GRANT INSERT ON " + ident(schema) + ".preset TO " + ident(roleRO),
		} {
			admin(sql)
		}
		p := daemontest.Config{ConnString: cluster.ConnString("postgres") + " user=" + roleRO}.Start(t, schema, "--rejected-table", "")
		base := p.Base
		daemontest.Send(t, p.UDP, "preset,host=a v=1i 1000000000\npreset,host=b v=2i 2000000000\n")
		daemontest.WaitRows(t, pool, pgx.Identifier{schema, "preset"}.Sanitize(), 2)
		if v := daemontest.Metric(t, base, "pginflux_sink_dropped_rows_total", nil); v != 0 {
			t.Errorf("dropped rows: got %v, want 0", v)
		}
		p.Stop(t)
	})
}
