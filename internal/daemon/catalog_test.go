package daemon

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pginflux/pginflux/ingest/httpapi"
)

// TestCatalogErr: /query answers 503 when PostgreSQL cannot be reached or
// turns the connection away (starting up, too many connections), and
// passes on what it answered to a statement.
func TestCatalogErr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err         error
		unavailable bool
	}{
		{errors.New("dial tcp 127.0.0.1:1: connection refused"), true},
		{fmt.Errorf("connect: %w", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}), true},
		{fmt.Errorf("connect: %w", &pgconn.PgError{Code: "53300", Message: "too many connections"}), true},
		{fmt.Errorf("query: %w", &pgconn.PgError{Code: "08006"}), true},
		{fmt.Errorf("query: %w", &pgconn.PgError{Code: "42501", Message: "permission denied"}), false},
		{fmt.Errorf("query: %w", &pgconn.PgError{Code: "42P01"}), false},
	} {
		err := catalogErr("show measurements", tt.err)
		if got := errors.Is(err, httpapi.ErrUnavailable); got != tt.unavailable {
			t.Errorf("%v: unavailable (503) %v, want %v", tt.err, got, tt.unavailable)
		}
	}
}
