package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Store counts the rows pginflux stored for a workload: one table per
// measurement, named after it, in one schema. It holds one connection,
// made again when the server restarted under it (a bench may restart the
// server on purpose), and is not safe for concurrent use.
type Store struct {
	cfg    *pgx.ConnConfig
	conn   *pgx.Conn
	tables []string // measurement names
	idents []string // quoted schema.table
}

// OpenStore connects to the database of cfg for counting rows of the
// given measurements in schema.
func OpenStore(ctx context.Context, cfg *pgx.ConnConfig, schema string, measurements []string) (*Store, error) {
	cfg = cfg.Copy()
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "pginflux-bench"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	s := &Store{cfg: cfg, conn: conn, tables: measurements}
	for _, m := range measurements {
		s.idents = append(s.idents, pgx.Identifier{schema, m}.Sanitize())
	}
	return s, nil
}

// Close closes the connection.
func (s *Store) Close(ctx context.Context) error { return s.conn.Close(ctx) }

// missing reports whether err says the table or its schema does not exist
// (yet): no rows.
func missing(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000")
}

// Count returns the number of rows with a time in [from, to] in each
// table, and their sum. A table that does not exist has none.
func (s *Store) Count(ctx context.Context, from, to time.Time) (int64, map[string]int64, error) {
	per := make(map[string]int64, len(s.tables))
	var total int64
	for i, id := range s.idents {
		var n int64
		err := s.conn.QueryRow(ctx, "SELECT count(*) FROM "+id+" WHERE time >= $1 AND time <= $2", from, to).Scan(&n)
		if err != nil && s.conn.IsClosed() {
			// The connection died (the server restarted): once more on a
			// new one.
			var c *pgx.Conn
			if c, err = pgx.ConnectConfig(ctx, s.cfg); err == nil {
				s.conn = c
				err = s.conn.QueryRow(ctx, "SELECT count(*) FROM "+id+" WHERE time >= $1 AND time <= $2", from, to).Scan(&n)
			}
		}
		if err != nil && !missing(err) {
			return 0, nil, fmt.Errorf("count rows in %s: %w", id, err)
		}
		per[s.tables[i]] = n
		total += n
	}
	return total, per, nil
}

// Truncate empties the tables that exist.
func (s *Store) Truncate(ctx context.Context) error {
	for _, id := range s.idents {
		if _, err := s.conn.Exec(ctx, "TRUNCATE "+id); err != nil && !missing(err) {
			return fmt.Errorf("truncate %s: %w", id, err)
		}
	}
	return nil
}
