package sink

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
	"github.com/pginflux/pginflux/sink/schema"
)

// Table names through the sink: measurements whose names clash with
// another's shortened name, with pginflux's own tables, or that try to
// escape their quoting each get a table of their own.

// TestNameClash: a measurement named like another's shortened table name
// gets a table of its own, whichever comes first.
func TestNameClash(t *testing.T) {
	t.Parallel()
	bothStorages(t, testNameClash)
}

func testNameClash(t *testing.T, storage string) {
	long := strings.Repeat("m", 70)
	short := schema.TableName(long)
	for _, order := range [][]string{{long, short}, {short, long}} {
		pool, sch := pgtest.Schema(t)
		for i, m := range order {
			writeBatches(t, pool, Config{Schema: sch, Storage: storage}, []string{fmt.Sprintf("%s,host=h v=%di 1000", m, i)})
		}
		got := dbtest.Query(t, pool, `SELECT c.relname || '|' || coalesce(obj_description(c.oid, 'pg_class'), '') FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '`+sch+`' AND c.relkind IN ('r', 'p') AND c.relname LIKE 'mmm%' ORDER BY 1`)
		if len(got) != 2 {
			t.Fatalf("order %d: got tables %q, want two", len(order[0]), got)
		}
		for i, m := range order {
			var table string
			for _, g := range got {
				name, comment, _ := strings.Cut(g, "|")
				if schema.TableOwner(name, comment) == m {
					table = name
				}
			}
			if table == "" {
				t.Fatalf("no table serves %q: %q", m, got)
			}
			v := "v"
			if storage == StorageJSONB {
				v = "fields->>'v'"
			}
			dbtest.Equal(t, m[:5]+"...", dbtest.Query(t, pool, "SELECT "+v+" FROM "+pgx.Identifier{sch, table}.Sanitize()), []string{fmt.Sprint(i)})
		}
	}
}

// TestNamedLikeOwnTables: measurements named like pginflux's own tables
// or partitions get tables of their own.
func TestNamedLikeOwnTables(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	day := int64(24 * time.Hour)
	writeBatches(t, pool, Config{Schema: schema, Storage: StorageColumns, PartitionBy: "day"},
		[]string{fmt.Sprintf("cpu,host=a v=1i %d", day)},
		[]string{fmt.Sprintf("pginflux_series,host=a v=2i %d", day), fmt.Sprintf("cpu_p19700102,host=a v=3i %d", day), fmt.Sprintf("pginflux_commits v=4i %d", day)},
	)
	// The measurement cpu_p19700102 gets the next name (see
	// schema.TableName), its partition-like name being taken.
	other := dbtest.Query(t, pool, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = '`+schema+`' AND obj_description(c.oid, 'pg_class') = 'cpu_p19700102'`)
	if len(other) != 1 || other[0] == "cpu_p19700102" {
		t.Fatalf("tables serving cpu_p19700102: %q, want one of another name", other)
	}
	dbtest.Equal(t, "series", dbtest.Query(t, pool, "SELECT table_name FROM "+pgx.Identifier{schema, "pginflux_series"}.Sanitize()+" WHERE table_name LIKE 'cpu%' ORDER BY 1"), []string{"cpu", other[0]})
	dbtest.Equal(t, "partition", dbtest.Query(t, pool, "SELECT host || v FROM "+pgx.Identifier{schema, "cpu_p19700102"}.Sanitize()), []string{"a1"})
	dbtest.Equal(t, "measurements", dbtest.Query(t, pool, `SELECT obj_description(c.oid, 'pg_class') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = '`+schema+`' AND c.relkind IN ('r', 'p') AND obj_description(c.oid, 'pg_class') IN ('cpu_p19700102', 'pginflux_series', 'pginflux_commits') ORDER BY 1`),
		[]string{"cpu_p19700102", "pginflux_commits", "pginflux_series"})
}

// TestHostileNames: names are always quoted, so a measurement that looks
// like SQL is only a name; long names get their documented short form and
// keep the full name as the table's comment.
func TestHostileNames(t *testing.T) {
	t.Parallel()
	bothStorages(t, testHostileNames)
}

func testHostileNames(t *testing.T, storage string) {
	pool, sch := pgtest.Schema(t)
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+pgx.Identifier{sch, "y"}.Sanitize()+" (a int)"); err != nil {
		t.Fatal(err)
	}
	injection := fmt.Sprintf(`x"; DROP TABLE "%s".y; --`, sch)
	long := "a.very.long.measurement.name." + strings.Repeat("Ünïcødé ", 10)
	names := []string{injection, long, "Mixed Case.dots;semi", "cpu", "CPU", "'single'"}

	s, _ := newSink(t, pool, sch, storage)
	b := s.NewBatcher()
	for i, n := range names {
		b.Add(pt(n, float64(i), int64(i)), origin)
	}
	b.Flush()
	closeSink(t, s)

	for _, n := range names {
		if got := dbtest.Count(t, pool, sch, schema.TableName(n)); got != 1 {
			t.Errorf("%q: got %d rows, want 1", n, got)
		}
	}
	if got := dbtest.Count(t, pool, sch, "y"); got != 0 {
		t.Errorf("table y: got %d rows", got)
	}
	var comment string
	err := pool.QueryRow(t.Context(), "SELECT obj_description($1::regclass, 'pg_class')",
		pgx.Identifier{sch, schema.TableName(long)}.Sanitize()).Scan(&comment)
	if err != nil {
		t.Fatal(err)
	}
	if comment != long {
		t.Errorf("got comment %q, want %q", comment, long)
	}
}
