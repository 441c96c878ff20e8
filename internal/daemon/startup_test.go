package daemon_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
)

// What stops pginflux at start: a configuration the server refuses, an
// address in use, nothing to listen on. (A server that cannot be reached
// yet is waited for: TestDatabaseDownAtStart.)

// TestRefusedAtStart: a configuration the server refuses outright stops
// pginflux at once with an error (exit status 1, not 2) that names the
// problem and never the password; only an unreachable server is waited
// for (TestDatabaseDownAtStart). The server is one of the test's own: the
// test changes its pg_hba.conf.
func TestRefusedAtStart(t *testing.T) {
	t.Parallel()
	cluster, pool, schema := ownServer(t) // trust on its unix socket
	ident := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	admin := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(context.WithoutCancel(t.Context()), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin("CREATE SCHEMA " + ident(schema))
	const (
		bare     = "pginflux_bare" // may log in, nothing more
		secret   = "pginflux_pw"   // password authentication
		password = "right-Pa55word"
	)
	admin("CREATE ROLE " + ident(bare) + " LOGIN")
	admin("CREATE ROLE " + ident(secret) + " LOGIN PASSWORD '" + password + "'")
	base := cluster.ConnString("postgres")
	requirePassword(t, pool, base+" user="+secret, cluster.Dir(), secret)

	for _, tc := range []struct {
		name, conn, schema string
		want               []string
	}{
		{"wrong password", base + " user=" + secret + " password=wrong-Pa55word", schema,
			[]string{"password authentication failed", "28P01"}},
		{"no such role", base + " user=pginflux_nobody", schema, []string{"28000"}},
		{"no such database", cluster.ConnString("pginflux_nodb"), schema,
			[]string{"database does not exist", "3D000"}},
		{"no usage on the schema", base + " user=" + bare, schema,
			[]string{"no USAGE privilege on schema " + schema, "GRANT USAGE, CREATE ON SCHEMA"}},
		{"may not create the schema", base + " user=" + bare, "pginflux_new",
			[]string{"schema pginflux_new does not exist", "may not create it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Start's error is no usage error: pginflux exits 1 for it.
			start := time.Now()
			p, err := daemontest.Config{ConnString: tc.conn}.TryStart(t, tc.schema)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("Start: got nil after %v, want a refusal at once", took)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if s := err.Error() + p.Log.String(); strings.Contains(s, "Pa55word") {
				t.Errorf("the password shows: %s", s)
			}
			t.Logf("%v: %v", took.Round(time.Millisecond), err)
		})
	}
}

// requirePassword makes the cluster ask role for its password (SCRAM) on
// its unix socket, until the test ends; everyone else keeps trust.
func requirePassword(t *testing.T, pool *pgxpool.Pool, connString, dataDir, role string) {
	t.Helper()
	hba := filepath.Join(dataDir, "pg_hba.conf")
	orig, err := os.ReadFile(hba)
	if err != nil {
		t.Skipf("cannot change pg_hba.conf: %v", err)
	}
	fi, err := os.Stat(hba)
	if err != nil {
		t.Fatal(err)
	}
	line := "local all " + role + " scram-sha-256\n"
	if err := os.WriteFile(hba, append([]byte(line), orig...), fi.Mode()); err != nil {
		t.Skipf("cannot change pg_hba.conf: %v", err)
	}
	if _, err := pool.Exec(t.Context(), "SELECT pg_reload_conf()"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	// The server reloads in the background: wait until it asks.
	deadline := time.Now().Add(daemontest.Patience)
	var poll daemontest.Poller
	for {
		conn, err := pgx.Connect(t.Context(), connString)
		if err != nil {
			return
		}
		conn.Close(t.Context())
		if time.Now().After(deadline) {
			t.Fatalf("the server still lets the role in without a password after %v", daemontest.Patience)
		}
		poll.Sleep()
	}
}

// TestHTTPAddressInUse: a port that cannot be bound stops pginflux before
// anything starts.
func TestHTTPAddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := daemontest.Config{ConnString: daemontest.Unreachable}.TryStart(t, "unused", "--http-address", ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "listen on http") {
		t.Fatalf("got %v, want the HTTP address in use", err)
	}
	if strings.Contains(p.Log.String(), "transport=udp") || strings.Contains(p.Log.String(), "database reachable") {
		t.Errorf("pginflux went on after failing on its HTTP address:\n%s", p.Log)
	}
}

// TestNothingToListenOn: with neither UDP, TCP nor HTTP, pginflux refuses
// to start; it says it is a usage error (TestCLIUsageErrors).
func TestNothingToListenOn(t *testing.T) {
	t.Parallel()
	_, err := daemontest.Config{ConnString: daemontest.Unreachable}.TryStart(t, "unused", "--udp-address", "", "--http-address", "")
	if err == nil || !strings.Contains(err.Error(), "nothing to listen on") {
		t.Errorf("nothing enabled: got %v, want nothing to listen on", err)
	}
}

// TestUDPAddressInUse: a UDP port that cannot be bound, after TCP and
// HTTP have started, stops pginflux with an error naming it, and what
// had started is closed: its TCP and HTTP ports can be bound again.
func TestUDPAddressInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.ListenPacket("udp", "127.0.0.1:0") // no SO_REUSEPORT: pginflux cannot share it
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	tcpAddr, httpAddr := free(), free()
	_, err = daemontest.Config{}.TryStart(t, "unused",
		"--udp-address", taken.LocalAddr().String(), "--tcp-address", tcpAddr, "--http-address", httpAddr)
	if err == nil || !strings.Contains(err.Error(), "listen on udp") {
		t.Fatalf("got %v, want the UDP address in use", err)
	}
	for _, addr := range []string{tcpAddr, httpAddr} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("after the failed start: %v, want %s closed", err, addr)
			continue
		}
		ln.Close()
	}
}
