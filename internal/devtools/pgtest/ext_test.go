package pgtest

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/pgcluster"
)

// TestNewClusterSettings starts a cluster of the test's own with a setting
// the shared one does not have.
func TestNewClusterSettings(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, pgcluster.Options{Settings: []string{"work_mem=9MB"}})
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var wm string
	if err := conn.QueryRow(ctx, "select current_setting('work_mem')").Scan(&wm); err != nil {
		t.Fatal(err)
	}
	if wm != "9MB" {
		t.Errorf("work_mem = %q, want 9MB", wm)
	}
}

func TestExtensionInstalled(t *testing.T) {
	if err := extensionInstalled("plpgsql"); err != nil {
		t.Errorf("plpgsql, which every server has: %v", err)
	}
	if err := extensionInstalled("no_such_extension_here"); err == nil {
		t.Error("no_such_extension_here: reported installed")
	}
}
