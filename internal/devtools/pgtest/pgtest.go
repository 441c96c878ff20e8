// Package pgtest gives tests a real PostgreSQL database: the server named
// by PGINFLUX_TEST_DATABASE_URL when that is set, otherwise a throwaway
// cluster (see package pgcluster) started on first use and shared by the
// tests of one test binary. Every test gets a schema of its own.
//
// A package using pgtest must call Main from its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// The shared cluster listens on a unix socket only, so the test binaries
// of several packages, which go test runs in parallel, do not collide.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
)

// EnvDatabaseURL names the environment variable that points the tests at
// an existing server instead of a throwaway cluster.
const EnvDatabaseURL = "PGINFLUX_TEST_DATABASE_URL"

// startTimeout bounds initdb plus server start; they take a second or two.
const startTimeout = 2 * time.Minute

var (
	mainCalled atomic.Bool

	once      sync.Once
	shared    *pgcluster.Cluster
	sharedDir string // holds the data directory; removed by Main
	unwatch   func()
	startErr  error
)

// Main runs the package's tests, then stops the shared cluster (if one was
// started) and removes its directory, and exits with the tests' status.
// Should the test binary die without getting there (a go test -timeout
// panic, say), a watcher process stops the cluster and removes the
// directory instead.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
		unwatch()
		if err := os.RemoveAll(sharedDir); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: remove %s: %v\n", sharedDir, err)
		}
	}
	os.Exit(code)
}

// ConnString returns a connection string for tests: the value of
// PGINFLUX_TEST_DATABASE_URL when set, otherwise one for database postgres
// of the shared throwaway cluster, which it starts on first use. It fails
// the test when neither is possible.
func ConnString(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: add func TestMain(m *testing.M) { pgtest.Main(m) } to this package's tests")
	}
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		return u
	}
	return cluster(t).ConnString("postgres")
}

// Cluster returns the shared throwaway cluster, for tests that stop and
// start the server. Such a test must not run in parallel with other tests
// of its package, which use the same server, and must leave it running.
// It skips the test when PGINFLUX_TEST_DATABASE_URL is set: an external
// server cannot be stopped.
func Cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: add func TestMain(m *testing.M) { pgtest.Main(m) } to this package's tests")
	}
	if os.Getenv(EnvDatabaseURL) != "" {
		t.Skipf("pgtest: %s is set; an external server cannot be stopped", EnvDatabaseURL)
	}
	return cluster(t)
}

func cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	once.Do(func() { startErr = startShared() })
	if startErr != nil {
		t.Fatalf("pgtest: no PostgreSQL for tests: set %s to a database URL, or install the PostgreSQL server so that a throwaway one can start: %v", EnvDatabaseURL, startErr)
	}
	return shared
}

func startShared() error {
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return fmt.Errorf("create cluster directory: %w", err)
	}
	// pgcluster gives the data directory to the server's user; the
	// directory around it must at least be enterable by that user.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("create cluster directory: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "data"), Log: os.Stderr})
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	// The watcher runs as the server's user and must be able to remove dir.
	if err := chownLike(dir, c.Dir()); err != nil {
		c.Close()
		os.RemoveAll(dir)
		return err
	}
	stop, err := c.StopOnExit(dir)
	if err != nil {
		c.Close()
		os.RemoveAll(dir)
		return err
	}
	shared, sharedDir, unwatch = c, dir, stop
	return nil
}

// chownLike gives dir the owner of model; a no-op unless root, when the
// server runs as the postgres user.
func chownLike(dir, model string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(model)
	if err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := os.Chown(dir, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dir, err)
	}
	return nil
}

// Schema creates a schema for this test alone, named after t.Name() with a
// random suffix, and returns a pool whose connections have it as their
// search_path, so unqualified names land in it. At cleanup the pool is
// closed and the schema dropped with everything in it.
func Schema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	connString := ConnString(t)
	name := schemaName(t.Name())
	ctx := t.Context()

	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "create schema "+ident); err != nil {
		t.Fatalf("pgtest: create schema %s: %v", name, err)
	}

	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		t.Fatalf("pgtest: parse connection string: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = ident
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: create pool: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, connString)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "drop schema "+ident+" cascade"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return pool, name
}

// schemaName turns a test name into a schema name: lowercase letters,
// digits and underscores, starting with a letter, then an underscore and 8
// random hex digits, 63 bytes at most (the server's limit).
func schemaName(testName string) string {
	const suffixLen = 1 + 8
	var b strings.Builder
	underscore := true // no leading underscore
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			underscore = false
		case !underscore:
			b.WriteByte('_')
			underscore = true
		}
	}
	base := strings.TrimRight(b.String(), "_")
	if base == "" || base[0] >= '0' && base[0] <= '9' {
		base = "t_" + base
	}
	if len(base) > 63-suffixLen {
		base = strings.TrimRight(base[:63-suffixLen], "_")
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // never fails
	return base + "_" + hex.EncodeToString(rnd[:])
}

// Unreachable returns a pool whose every connection attempt fails at once
// (connection refused on 127.0.0.1 port 1), for tests of how pginflux
// behaves while the database is away. The pool is closed at cleanup.
func Unreachable(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pc, err := pgxpool.ParseConfig("host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
