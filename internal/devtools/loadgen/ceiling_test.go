package loadgen

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func testConnConfig(t *testing.T) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgtest.ConnString(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func schemaExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestCeiling(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	scratch := schema + "_ceiling"
	res, err := Ceiling(t.Context(), CeilingConfig{
		Database:  testConnConfig(t),
		Schema:    scratch,
		Workload:  mustWorkload(t, "mix", 2, 2),
		Rows:      3001,
		Storages:  []string{StorageJSONB, StorageColumns},
		Writers:   2,
		BatchSize: 500,
		Duration:  time.Minute,
		Progress:  os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Variants) != 4 {
		t.Fatalf("got %d variants, want 4 (2 storages × 2 methods): %+v", len(res.Variants), res.Variants)
	}
	for _, v := range res.Variants {
		if v.Rows != 3001 || !v.Complete || v.Rate <= 0 {
			t.Errorf("%s, %s: got %d rows (complete %v) at %v rows/s, want 3001", v.Storage, v.Method, v.Rows, v.Complete, v.Rate)
		}
	}
	if b := res.Best(StorageJSONB); b == nil || b.Storage != StorageJSONB {
		t.Errorf("Best(jsonb): got %+v", b)
	}
	if schemaExists(t, pool, scratch) {
		t.Errorf("scratch schema %s left behind", scratch)
	}
}

func TestCeilingKeepsForeignSchema(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	// A schema of the scratch name that the ceiling did not make.
	_, err := Ceiling(t.Context(), CeilingConfig{
		Database: testConnConfig(t), Schema: schema, Workload: mustWorkload(t, "cpu", 1, 1),
		Rows: 10, Storages: []string{StorageJSONB}, Writers: 1, BatchSize: 10, Duration: time.Minute,
	})
	if err == nil || !strings.Contains(err.Error(), "not made by pginflux bench") {
		t.Fatalf("got %v, want a refusal", err)
	}
	if !schemaExists(t, pool, schema) {
		t.Fatalf("schema %s was dropped", schema)
	}
}

// TestCeilingRows writes the rows both ways into tables of the test's
// schema and finds the same rows, holding what the lines say.
func TestCeilingRows(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	w := mustWorkload(t, "mix", 2, 2)
	conn, err := pgx.ConnectConfig(t.Context(), testConnConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	r := &ceilingRun{
		cfg:   CeilingConfig{Schema: schema, Workload: w, Rows: 1000, Writers: 1, BatchSize: 300, Duration: time.Minute},
		admin: conn, conns: []*pgx.Conn{conn}, base: testBase,
	}
	for _, storage := range Storages {
		tables, err := r.createTables(t.Context(), storage)
		if err != nil {
			t.Fatal(err)
		}
		for _, method := range []string{MethodPgx, MethodBinary} {
			v, err := r.variant(t.Context(), storage, method, tables)
			if err != nil || v.Rows != 1000 {
				t.Fatalf("%s, %s: wrote %d rows, %v", storage, method, v.Rows, err)
			}
			// Snapshot the result of this method for comparison.
			for _, m := range w.Measurements {
				src := pgx.Identifier{schema, m.Name + "_" + storage}.Sanitize()
				dst := pgx.Identifier{schema, m.Name + "_" + storage + "_" + strings.Fields(method)[0]}.Sanitize()
				if _, err := pool.Exec(t.Context(), "CREATE TABLE "+dst+" AS SELECT * FROM "+src); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, m := range w.Measurements {
			a := pgx.Identifier{schema, m.Name + "_" + storage + "_pgx"}.Sanitize()
			b := pgx.Identifier{schema, m.Name + "_" + storage + "_binary"}.Sanitize()
			var diff, total int
			err := pool.QueryRow(t.Context(), "SELECT (SELECT count(*) FROM ((TABLE "+a+" EXCEPT TABLE "+b+") UNION ALL (TABLE "+b+" EXCEPT TABLE "+a+")) d), (SELECT count(*) FROM "+a+")").Scan(&diff, &total)
			if err != nil {
				t.Fatal(err)
			}
			if diff != 0 || total == 0 {
				t.Errorf("%s %s: %d rows differ between the methods (of %d)", storage, m.Name, diff, total)
			}
		}
	}

	// The stored values are what the line says.
	g := NewGenerator(w, testBase, 0, 1)
	line := g.AppendLine(nil) // seq 0: cpu, host-0000, cpu0
	dec := lineprotocol.NewDecoderWithBytes(line)
	dec.Next()
	if _, err := dec.Measurement(); err != nil {
		t.Fatal(err)
	}
	for k, _, _ := dec.NextTag(); k != nil; k, _, _ = dec.NextTag() {
	}
	k, v, err := dec.NextField() // usage_guest
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	var fieldsJSON string
	err = pool.QueryRow(t.Context(), "SELECT c.usage_guest, j.fields->>'usage_guest' FROM "+
		pgx.Identifier{schema, "cpu_columns_pgx"}.Sanitize()+" c JOIN "+pgx.Identifier{schema, "cpu_jsonb_pgx"}.Sanitize()+
		" j USING (time) WHERE time = $1 AND c.host = 'host-0000' AND c.cpu = 'cpu0'", testBase.Truncate(time.Microsecond)).Scan(&got, &fieldsJSON)
	if err != nil {
		t.Fatal(err)
	}
	if string(k) != "usage_guest" || got != v.FloatV() {
		t.Errorf("usage_guest of line %q: stored %v, want %v", line, got, v.FloatV())
	}
	if f, err := strconv.ParseFloat(fieldsJSON, 64); err != nil || f != v.FloatV() {
		t.Errorf("jsonb usage_guest of line %q: stored %s, want %v", line, fieldsJSON, v.FloatV())
	}
}
