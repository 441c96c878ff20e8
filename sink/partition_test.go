package sink

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

func TestPeriods(t *testing.T) {
	at := time.Date(2026, 11, 21, 15, 4, 5, 0, time.UTC) // a Saturday
	tests := []struct {
		by          string
		start, next string
		name        string
	}{
		{by: "day", start: "2026-11-21", next: "2026-11-22", name: "cpu_p20261121"},
		{by: "week", start: "2026-11-16", next: "2026-11-23", name: "cpu_p20261116"},
		{by: "month", start: "2026-11-01", next: "2026-12-01", name: "cpu_p202611"},
	}
	for _, tt := range tests {
		p := newPartitioner(tt.by, "s")
		s := p.start(at)
		if got := s.Format(time.DateOnly); got != tt.start {
			t.Errorf("%s: start got %s, want %s", tt.by, got, tt.start)
		}
		if got := p.next(s).Format(time.DateOnly); got != tt.next {
			t.Errorf("%s: next got %s, want %s", tt.by, got, tt.next)
		}
		if got := p.partitionName("cpu", s); got != tt.name {
			t.Errorf("%s: name got %s, want %s", tt.by, got, tt.name)
		}
	}
}

func partitions(t *testing.T, pool *pgxpool.Pool, schema, parent string) []string {
	t.Helper()
	return query(t, pool, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = '`+pgx.Identifier{schema, parent}.Sanitize()+`'::regclass ORDER BY 1`)
}

// TestPartitionsOnDemand: rows over many days, far in the past and the
// future, all land, each in a partition made before it was written.
func TestPartitionsOnDemand(t *testing.T) {
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
		if got := count(t, pool, schema, "parted"); got != len(days) {
			t.Errorf("got %d rows, want %d", got, len(days))
		}
		equal(t, "partitions", partitions(t, pool, schema, "parted"), []string{
			"parted_p19700101", "parted_p19700102", "parted_p20261120", "parted_p20261121", "parted_p20261122",
			"parted_p20261125", "parted_p20261126", "parted_p22000601", "parted_p22000602",
		})
	})
}

// TestRetention drops exactly the partitions that ended before the
// retention, and only pginflux's.
func TestRetention(t *testing.T) {
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
	waitFor(t, func() bool { return tableRows(t, pool, schema, "kept") == 5 })
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
	equal(t, "partitions", partitions(t, pool, schema, "kept"), []string{
		"kept_p20261022", "kept_p20261023", "kept_p20261024", "kept_p20261121", "kept_p20261122", "mine",
	})
	equal(t, "rows", query(t, pool, "SELECT v FROM "+pgx.Identifier{schema, "kept"}.Sanitize()+" ORDER BY time"), []string{"30", "29", "0"})
	if got := testutil.ToFloat64(m.PartitionsDropped); got != 3 {
		t.Errorf("got %v dropped, want 3; created %v", got, testutil.ToFloat64(m.PartitionsCreated))
	}
}

// TestTemplate runs --create-table-sql with the table, in the transaction
// that creates it.
func TestTemplate(t *testing.T) {
	bothStorages(t, func(t *testing.T, storage string) {
		pool, schema := pgtest.Schema(t)
		tmpl, err := ParseTemplate(`CREATE INDEX ON {{.Table}} USING brin ({{.TimeColumn}});
			COMMENT ON COLUMN {{.Table}}.{{.TimeColumn}} IS {{.Measurement}}`)
		if err != nil {
			t.Fatal(err)
		}
		s := New(pool, Config{Schema: schema, Storage: storage, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1, CreateTableSQL: tmpl}, NewMetrics(nil), quiet)
		b := s.NewBatcher()
		b.Add(pt(`it's "odd"`, 1, 1000, "host=a"), origin)
		b.Flush()
		closeSink(t, s)
		table := pgx.Identifier{schema, `it's "odd"`}.Sanitize()
		var indexes int
		var comment string
		err = pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
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
	pool, schema := pgtest.Schema(t)
	tmpl, err := ParseTemplate(`SELECT 1/0`)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1,
		CreateTableSQL: tmpl, RejectedTable: "pginflux_rejected"}, m, quiet)
	b := s.NewBatcher()
	b.Add(pt("broken", 1, 1000), origin)
	b.Add(pt("broken", 2, 2000), origin)
	b.Flush()
	closeSink(t, s)
	equal(t, "tables", query(t, pool, "SELECT tablename FROM pg_tables WHERE schemaname = '"+schema+"' ORDER BY 1"), []string{"pginflux_commits", "pginflux_rejected"})
	equal(t, "rejected", rejectedLines(t, pool, schema), []string{"create_failed: broken v=1 1000", "create_failed: broken v=2 2000"})
}

func TestParseTemplate(t *testing.T) {
	if _, err := ParseTemplate("{{.NoSuchField}}"); err == nil {
		t.Error("a template naming an unknown field parsed")
	}
	if _, err := ParseTemplate("{{"); err == nil {
		t.Error("a broken template parsed")
	}
	d := templateData("m", "t", "$p$x")
	if d.Measurement != "$p0$$p$x$p0$" {
		t.Errorf("got %s", d.Measurement)
	}
}

// TestPartitionDroppedBehindOurBack: a partition someone drops is made
// again for the next rows, which are not refused.
func TestPartitionDroppedBehindOurBack(t *testing.T) {
	pool, schema := pgtest.Schema(t)
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 1000, FlushInterval: time.Hour, Writers: 1,
		PartitionBy: "month", RejectedTable: "pginflux_rejected"}, m, quiet)
	b := s.NewBatcher()
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	b.Add(pt("gone", 1, day.UnixNano()), origin)
	b.Flush()
	waitFor(t, func() bool { return tableRows(t, pool, schema, "gone") == 1 })
	if _, err := pool.Exec(t.Context(), "DROP TABLE "+pgx.Identifier{schema, "gone_p202611"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	b.Add(pt("gone", 2, day.Add(time.Hour).UnixNano()), origin)
	b.Flush()
	closeSink(t, s)
	equal(t, "rows", query(t, pool, "SELECT v FROM "+pgx.Identifier{schema, "gone"}.Sanitize()), []string{"2"})
	if got := testutil.ToFloat64(m.Rejected.WithLabelValues(ReasonRefused)); got != 0 {
		t.Errorf("got %v refused rows, want 0", got)
	}
}
