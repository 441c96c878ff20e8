package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
)

// EnvRequireExtensions names the environment variable that turns the skip
// of a test needing a PostgreSQL extension that is not installed into a
// failure. CI sets it to 1: there, every extension test must run.
const EnvRequireExtensions = "PGINFLUX_REQUIRE_EXTENSIONS"

// NeedExtension skips the test unless the server binaries have the
// extension name (timescaledb, citus) installed, or fails it when
// PGINFLUX_REQUIRE_EXTENSIONS=1. The message says how to install it.
func NeedExtension(t testing.TB, name string) {
	t.Helper()
	if err := extensionInstalled(name); err != nil {
		msg := fmt.Sprintf("pgtest: PostgreSQL extension %s is not installed (%v); install it with ../shared/ext/install.sh %s (as root)", name, err, name)
		if os.Getenv(EnvRequireExtensions) == "1" {
			t.Fatalf("%s; %s=1 makes this a failure", msg, EnvRequireExtensions)
		}
		t.Skip(msg)
	}
}

// extensionInstalled looks for the extension's control file in the
// server's share directory.
func extensionInstalled(name string) error {
	dir, err := shareDir()
	if err != nil {
		return err
	}
	control := filepath.Join(dir, "extension", name+".control")
	if _, err := os.Stat(control); err != nil {
		return fmt.Errorf("no %s", control)
	}
	return nil
}

// shareDir is the server's share directory: pg_config's answer when
// pg_config is beside postgres, else Debian's /usr/share/postgresql/<major>
// for /usr/lib/postgresql/<major>/bin.
func shareDir() (string, error) {
	postgres, err := pgcluster.FindBin("postgres")
	if err != nil {
		return "", err
	}
	// PATH may hold a symlink to the real binary (/usr/local/bin/postgres).
	if real, err := filepath.EvalSymlinks(postgres); err == nil {
		postgres = real
	}
	bin := filepath.Dir(postgres)
	if out, err := exec.Command(filepath.Join(bin, "pg_config"), "--sharedir").Output(); err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	major := filepath.Base(filepath.Dir(bin))
	return filepath.Join("/usr/share/postgresql", major), nil
}

// NewCluster starts a throwaway cluster for this test alone, with opts
// (Dir is set here; Settings, Port and Durable are the caller's), and
// stops it and removes its directory at cleanup, or when the test binary
// dies. Use it for servers with other settings than the shared one's, such
// as shared_preload_libraries.
func NewCluster(t testing.TB, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: create cluster directory: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("pgtest: create cluster directory: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	opts.Dir = filepath.Join(dir, "data")
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	c, err := pgcluster.Start(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("pgtest: %v", err)
	}
	if err := chownLike(dir, c.Dir()); err != nil {
		c.Close()
		os.RemoveAll(dir)
		t.Fatalf("pgtest: %v", err)
	}
	stop, err := c.StopOnExit(dir)
	if err != nil {
		c.Close()
		os.RemoveAll(dir)
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
		stop()
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("pgtest: remove %s: %v", dir, err)
		}
	})
	return c
}
