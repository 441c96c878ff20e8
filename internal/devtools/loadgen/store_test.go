package loadgen

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

func TestStoreCount(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	s, err := OpenStore(t.Context(), testConnConfig(t), schema, []string{"cpu", "mem"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())

	from, to := testBase, testBase.Add(time.Second)
	// No tables yet: nothing stored, no error.
	if n, per, err := s.Count(t.Context(), from, to); err != nil || n != 0 || per["cpu"] != 0 {
		t.Fatalf("got %d, %v, %v; want 0 and no error", n, per, err)
	}
	cpu := pgx.Identifier{schema, "cpu"}.Sanitize()
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+cpu+" (time timestamptz, tags jsonb, fields jsonb)"); err != nil {
		t.Fatal(err)
	}
	// Rows at the edges of the range count; rows outside (an earlier run)
	// do not.
	for _, ts := range []time.Time{from.Add(-time.Microsecond), from, from.Add(time.Millisecond), to, to.Add(time.Microsecond)} {
		if _, err := pool.Exec(t.Context(), "INSERT INTO "+cpu+" VALUES ($1, '{}', '{}')", ts); err != nil {
			t.Fatal(err)
		}
	}
	n, per, err := s.Count(t.Context(), from, to)
	if err != nil || n != 3 || per["cpu"] != 3 || per["mem"] != 0 {
		t.Fatalf("got %d, %v, %v; want 3 in cpu", n, per, err)
	}
	if err := s.Truncate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.Count(t.Context(), from, to); err != nil || n != 0 {
		t.Fatalf("after Truncate: got %d, %v; want 0", n, err)
	}
}
