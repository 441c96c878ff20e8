package daemon

import (
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestReadinessHidesPassword: the reason /readyz gives never holds the
// password of the connection string.
func TestReadinessHidesPassword(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	pool, err := pgxpool.New(t.Context(), "postgres://someone:s3cr3t-pw@"+closed+"/db?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var r readiness
	ready, _ := r.probes()
	if err := ready(t.Context()); err == nil || !strings.Contains(err.Error(), "not listening") {
		t.Errorf("before listening: got %v, want not listening", err)
	}
	r.pool.Store(pool)
	r.listening.Store(true)
	err = ready(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "database unreachable: ") {
		t.Fatalf("got %v, want database unreachable", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("the reason %q holds the password", err)
	}
}
