package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/daemontest"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

// TestRefusedAtStart: a configuration the server refuses outright stops
// pginflux at once with an error (exit status 1, not 2) that names the
// problem and never the password; only an unreachable server is waited
// for (TestDatabaseDownAtStart).
func TestRefusedAtStart(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	cluster := pgtest.Cluster(t) // trust on its unix socket; skips for an external server
	ident := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	admin := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(context.WithoutCancel(t.Context()), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	suffix := schema[len(schema)-8:]
	bare := "pginflux_bare_" + suffix // may log in, nothing more
	secret := "pginflux_pw_" + suffix // password authentication
	const password = "right-Pa55word"
	admin("CREATE ROLE " + ident(bare) + " LOGIN")
	admin("CREATE ROLE " + ident(secret) + " LOGIN PASSWORD '" + password + "'")
	t.Cleanup(func() {
		admin("DROP ROLE " + ident(bare))
		admin("DROP ROLE " + ident(secret))
	})
	base := cluster.ConnString("postgres")
	requirePassword(t, pool, base+" user="+secret, cluster.Dir(), secret)

	for _, tc := range []struct {
		name, conn, schema string
		want               []string
	}{
		{"wrong password", base + " user=" + secret + " password=wrong-Pa55word", schema,
			[]string{"password authentication failed", "28P01"}},
		{"no such role", base + " user=pginflux_nobody_" + suffix, schema, []string{"28000"}},
		{"no such database", cluster.ConnString("pginflux_nodb_" + suffix), schema,
			[]string{"database does not exist", "3D000"}},
		{"no usage on the schema", base + " user=" + bare, schema,
			[]string{"no USAGE privilege on schema " + schema, "GRANT USAGE, CREATE ON SCHEMA"}},
		{"may not create the schema", base + " user=" + bare, "pginflux_new_" + suffix,
			[]string{"schema pginflux_new_" + suffix + " does not exist", "may not create it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Start's error is no usage error: pginflux exits 1 for it.
			start := time.Now()
			p, err := daemontest.Config{ConnString: tc.conn}.TryStart(t, tc.schema)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("Start: got nil after %v, want a refusal at once", took)
			}
			logs := p.Log
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if s := err.Error() + logs.String(); strings.Contains(s, "Pa55word") {
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
	reload := func() {
		if _, err := pool.Exec(context.WithoutCancel(t.Context()), "SELECT pg_reload_conf()"); err != nil {
			t.Errorf("reload: %v", err)
		}
	}
	t.Cleanup(func() {
		if err := os.WriteFile(hba, orig, fi.Mode()); err != nil {
			t.Errorf("restore pg_hba.conf: %v", err)
		}
		reload()
	})
	reload()
	// The server reloads in the background: wait until it asks.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := pgx.Connect(t.Context(), connString)
		if err != nil {
			return
		}
		conn.Close(t.Context())
		if time.Now().After(deadline) {
			t.Fatal("the server still lets the role in without a password")
		}
		time.Sleep(20 * time.Millisecond) // polling the server's reload
	}
}
