package sink

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

func partitions(t *testing.T, pool *pgxpool.Pool, schema, parent string) []string {
	t.Helper()
	return dbtest.Query(t, pool, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = '`+pgx.Identifier{schema, parent}.Sanitize()+`'::regclass ORDER BY 1`)
}

// TestPartitionsOnDemand: rows over many days, far in the past and the
// future, all land, each in a partition made before it was written.
func TestPartitionsOnDemand(t *testing.T) {
	t.Parallel()
	bothStorages(t, func(t *testing.T, storage string) {
		pool, schema := pgtest.Schema(t)
		s := New(pool, Config{Schema: schema, Storage: storage, BatchSize: 1000, FlushInterval: time.Hour, Writers: 2, PartitionBy: "day"}, NewMetrics(nil), quiet)
		b := s.NewBatcher()
		days := []time.Time{
			time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 20, 23, 59, 59, 0, time.UTC),
			time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
			time.Date(2200, 6, 1, 0, 0, 0, 0, time.UTC),
		}
		for i, d := range days {
			b.Add(pt("parted", float64(i), d.UnixNano()), origin)
		}
		b.Flush()
		closeSink(t, s)
		if got := dbtest.Count(t, pool, schema, "parted"); got != len(days) {
			t.Errorf("got %d rows, want %d", got, len(days))
		}
		dbtest.Equal(t, "partitions", partitions(t, pool, schema, "parted"), []string{
			"parted_p19700101", "parted_p19700102", "parted_p20261120", "parted_p20261121", "parted_p20261122",
			"parted_p20261125", "parted_p20261126", "parted_p22000601", "parted_p22000602",
		})
	})
}

// TestRetention drops exactly the partitions that ended before the
// retention, and only pginflux's.
func TestRetention(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	m := NewMetrics(nil)
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1,
		PartitionBy: "day", Retention: 30 * 24 * time.Hour}, m, quiet)
	b := s.NewBatcher()
	for _, ago := range []int{45, 31, 30, 29, 0} {
		b.Add(pt("kept", float64(ago), now.AddDate(0, 0, -ago).UnixNano()), origin)
	}
	b.Flush()
	dbtest.WaitFor(t, func() bool { return dbtest.TryCount(t, pool, schema, "kept") == 5 })
	// A partition someone else made is never dropped.
	_, err := pool.Exec(t.Context(), fmt.Sprintf(`CREATE TABLE %s PARTITION OF %s FOR VALUES FROM ('2000-01-01') TO ('2000-01-02')`,
		pgx.Identifier{schema, "mine"}.Sanitize(), pgx.Identifier{schema, "kept"}.Sanitize()))
	if err != nil {
		t.Fatal(err)
	}
	s.maintainOnce(now)
	closeSink(t, s)
	// Ended by 2026-10-22T12:00: the days of 45 and 31 days ago and the
	// days after them; the day of 30 days ago ends 2026-10-23, after.
	dbtest.Equal(t, "partitions", partitions(t, pool, schema, "kept"), []string{
		"kept_p20261022", "kept_p20261023", "kept_p20261024", "kept_p20261121", "kept_p20261122", "mine",
	})
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT v FROM "+pgx.Identifier{schema, "kept"}.Sanitize()+" ORDER BY time"), []string{"30", "29", "0"})
	if got := testutil.ToFloat64(m.PartitionsDropped); got != 3 {
		t.Errorf("got %v dropped, want 3; created %v", got, testutil.ToFloat64(m.PartitionsCreated))
	}
}

// TestTemplate runs --create-table-sql with the table, in the transaction
// that creates it.
func TestTemplate(t *testing.T) {
	t.Parallel()
	bothStorages(t, func(t *testing.T, storage string) {
		pool, schema := pgtest.Schema(t)
		tmpl := mustTemplate(t, `CREATE INDEX ON {{.Table}} USING brin ({{.TimeColumn}});
			COMMENT ON COLUMN {{.Table}}.{{.TimeColumn}} IS {{.Measurement}}`)
		s := New(pool, Config{Schema: schema, Storage: storage, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1, CreateTableSQL: tmpl}, NewMetrics(nil), quiet)
		b := s.NewBatcher()
		b.Add(pt(`it's "odd"`, 1, 1000, "host=a"), origin)
		b.Flush()
		closeSink(t, s)
		table := pgx.Identifier{schema, `it's "odd"`}.Sanitize()
		var indexes int
		var comment string
		err := pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = $1::regclass AND a.amname = 'brin'), col_description($1::regclass, 1)`, table).Scan(&indexes, &comment)
		if err != nil {
			t.Fatal(err)
		}
		if indexes != 1 || comment != `it's "odd"` {
			t.Errorf("got %d brin indexes and comment %q, want 1 and %q", indexes, comment, `it's "odd"`)
		}
	})
}

// TestTemplateFails: a failing template leaves no table, and the rows go
// to the rejected table.
func TestTemplateFails(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	writeWithTemplate(t, pool, schema, `SELECT 1/0`, "broken")
	dbtest.Equal(t, "tables", dbtest.Query(t, pool, "SELECT tablename FROM pg_tables WHERE schemaname = '"+schema+"' ORDER BY 1"), []string{"pginflux_commits", "pginflux_rejected"})
	dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), []string{"create_failed: broken v=1 1000", "create_failed: broken v=2 2000"})
}

// writeWithTemplate writes two points of measurement (v=1 at 1000, v=2
// at 2000) through a sink whose table template is tmpl, with a rejected
// table, and closes the sink.
func writeWithTemplate(t *testing.T, pool *pgxpool.Pool, schema, tmpl, measurement string) {
	t.Helper()
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1,
		CreateTableSQL: mustTemplate(t, tmpl), RejectedTable: "pginflux_rejected"}, NewMetrics(nil), quiet)
	b := s.NewBatcher()
	b.Add(pt(measurement, 1, 1000), origin)
	b.Add(pt(measurement, 2, 2000), origin)
	b.Flush()
	closeSink(t, s)
}

// TestTemplateConnectionLost: a template that fails because its
// connection is lost (here it terminates its own backend, once) is no
// failure of the template: the rows are held, the table made on the next
// try, and nothing goes to the rejected table.
func TestTemplateConnectionLost(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	seq := pgx.Identifier{schema, "template_once"}.Sanitize()
	if _, err := pool.Exec(t.Context(), "CREATE SEQUENCE "+seq); err != nil {
		t.Fatal(err)
	}
	writeWithTemplate(t, pool, schema, `DO $do$ BEGIN IF nextval('`+seq+`') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; END $do$`, "lost")
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT v::text FROM "+pgx.Identifier{schema, "lost"}.Sanitize()+" ORDER BY time"), []string{"1", "2"})
	dbtest.Equal(t, "tables", dbtest.Query(t, pool, "SELECT tablename FROM pg_tables WHERE schemaname = '"+schema+"' ORDER BY 1"),
		[]string{"lost", "pginflux_series"}) // no rejected table: nothing rejected
	var n int64
	if err := pool.QueryRow(t.Context(), "SELECT last_value FROM "+seq).Scan(&n); err != nil || n < 2 {
		t.Errorf("the template ran %d times (%v), want at least 2: the first try's connection was lost", n, err)
	}
}

// TestPartitionDroppedBehindOurBack: a partition someone drops is made
// again for the next rows, which are not refused.
func TestPartitionDroppedBehindOurBack(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1,
		PartitionBy: "month", RejectedTable: "pginflux_rejected"}, m, quiet)
	b := s.NewBatcher()
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	b.Add(pt("gone", 1, day.UnixNano()), origin)
	b.Flush()
	dbtest.WaitFor(t, func() bool { return dbtest.TryCount(t, pool, schema, "gone") == 1 })
	if _, err := pool.Exec(t.Context(), "DROP TABLE "+pgx.Identifier{schema, "gone_p202611"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	b.Add(pt("gone", 2, day.Add(time.Hour).UnixNano()), origin)
	b.Flush()
	closeSink(t, s)
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT v FROM "+pgx.Identifier{schema, "gone"}.Sanitize()), []string{"2"})
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(ReasonRefused)); got != 0 {
		t.Errorf("got %v refused rows, want 0", got)
	}
}
