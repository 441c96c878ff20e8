package sink

import (
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

// TestPlanTouchesNothing: a plan names the tables and columns writing
// would create, for a new table and for one that exists, and creates
// nothing.
func TestPlanTouchesNothing(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+pgx.Identifier{schema, "old"}.Sanitize()+" (time timestamptz NOT NULL, host text)"); err != nil {
		t.Fatal(err)
	}
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 10, FlushInterval: time.Hour, Writers: 1}, NewMetrics(nil), quiet)
	pl := s.NewPlanner()
	pl.Add(dbtest.Line(t, "old,host=a v=1.5,n=2i 1000"))
	pl.Add(dbtest.Line(t, "old,host=b v=2.5 2000"))
	pl.Add(dbtest.Line(t, "new,host=a,time=x host=1i 1000"))
	got, err := pl.Plan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	closeSink(t, s)
	want := []PlannedTable{
		{Measurement: "new", Table: "new", Rows: 1, NewColumns: []PlannedColumn{
			{Name: "host", Type: "text", Tag: true, Key: "host"},
			{Name: "time_tag", Type: "text", Tag: true, Key: "time"},
			{Name: "host_field", Type: "bigint", Key: "host"},
		}},
		{Measurement: "old", Table: "old", Exists: true, Rows: 2, NewColumns: []PlannedColumn{
			{Name: "v", Type: "double precision", Key: "v"},
			{Name: "n", Type: "bigint", Key: "n"},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	dbtest.Equal(t, "tables", dbtest.Query(t, pool, "SELECT tablename FROM pg_tables WHERE schemaname = '"+schema+"' ORDER BY 1"), []string{"old"})
	dbtest.Equal(t, "columns of old", dbtest.Columns(t, pool, schema, "old"), []string{"time timestamp with time zone", "host text"})
}
