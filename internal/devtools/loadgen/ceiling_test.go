package loadgen

import (
	"encoding/binary"
	"os"
	"slices"
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
	if len(res.Variants) != 8 {
		t.Fatalf("got %d variants, want 8 (2 storages × 4 methods): %+v", len(res.Variants), res.Variants)
	}
	for _, v := range res.Variants {
		if v.Rows != 3001 || !v.Complete || v.Rate <= 0 {
			t.Errorf("%s, %s: got %d rows (complete %v) at %v rows/s, want 3001", v.Storage, v.Method, v.Rows, v.Complete, v.Rate)
		}
	}
	for _, key := range []bool{false, true} {
		if b := res.Best(StorageJSONB, key); b == nil || b.Storage != StorageJSONB || b.PointKey != key || keyed(b.Method) != key {
			t.Errorf("Best(jsonb, %v): got %+v", key, b)
		}
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
		tables, err := r.createTables(t.Context(), storage, false)
		if err != nil {
			t.Fatal(err)
		}
		keyTables, err := r.createTables(t.Context(), storage, true)
		if err != nil {
			t.Fatal(err)
		}
		for i, method := range ceilingMethods {
			into := tables
			if keyed(method) {
				into = keyTables
			}
			v, err := r.variant(t.Context(), storage, method, into)
			if err != nil || v.Rows != 1000 {
				t.Fatalf("%s, %s: wrote %d rows, %v", storage, method, v.Rows, err)
			}
			for _, m := range w.Measurements {
				snapshotVariant(t, pool, schema, m, storage, i)
			}
		}
		for _, m := range w.Measurements {
			for i := 1; i < len(ceilingMethods); i++ {
				a := pgx.Identifier{schema, m.Name + "_" + storage + "_0"}.Sanitize()
				b := pgx.Identifier{schema, m.Name + "_" + storage + "_" + strconv.Itoa(i)}.Sanitize()
				var diff, total int
				err := pool.QueryRow(t.Context(), "SELECT (SELECT count(*) FROM ((TABLE "+a+" EXCEPT ALL TABLE "+b+") UNION ALL (TABLE "+b+" EXCEPT ALL TABLE "+a+")) d), (SELECT count(*) FROM "+a+")").Scan(&diff, &total)
				if err != nil {
					t.Fatal(err)
				}
				if diff != 0 || total == 0 {
					t.Errorf("%s %s: %d rows differ between %s and %s (of %d)", storage, m.Name, diff, ceilingMethods[0], ceilingMethods[i], total)
				}
			}
		}
	}

	// The stored values are what the line says.
	g := NewGenerator(w, testBase, 0, 1)
	line := g.AppendLine(nil) // seq 0: cpu, host-0000, cpu-total
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
		pgx.Identifier{schema, "cpu_columns_0"}.Sanitize()+" c JOIN "+pgx.Identifier{schema, "cpu_jsonb_0"}.Sanitize()+
		" j ON j.time = c.time AND j.tags->>'host' = c.host AND j.tags->>'cpu' = c.cpu"+
		" WHERE c.time = $1 AND c.host = 'host-0000' AND c.cpu = 'cpu-total'", testBase.Truncate(time.Microsecond)).Scan(&got, &fieldsJSON)
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

// snapshotVariant copies what variant i of ceilingMethods wrote into m's
// table, without the series ids, into a table of its own for comparing
// the variants; with the point key, it checks that each tag set has one
// series id.
func snapshotVariant(t *testing.T, pool *pgxpool.Pool, schema string, m *Measurement, storage string, i int) {
	t.Helper()
	method := ceilingMethods[i]
	src := pgx.Identifier{schema, tableOf(m, storage, keyed(method))}.Sanitize()
	dst := pgx.Identifier{schema, m.Name + "_" + storage + "_" + strconv.Itoa(i)}.Sanitize()
	names, _ := columnsOf(m, storage, false)
	if _, err := pool.Exec(t.Context(), "CREATE TABLE "+dst+" AS SELECT "+quoteAll(names)+" FROM "+src); err != nil {
		t.Fatal(err)
	}
	if !keyed(method) {
		return
	}
	tags := "tags"
	if storage == StorageColumns {
		tags = "(" + quoteAll(m.TagKeys) + ")"
	}
	var ids, series int
	if err := pool.QueryRow(t.Context(), "SELECT count(DISTINCT series_id), count(DISTINCT "+tags+") FROM "+src).Scan(&ids, &series); err != nil {
		t.Fatal(err)
	}
	if ids != series || ids == 0 {
		t.Errorf("%s, %s, %s: %d series ids for %d tag sets, want one each", storage, method, m.Name, ids, series)
	}
}

// TestSortedBatches: the batches of MethodKeySorted hold the rows of
// MethodKeyArrival, each batch's in the order of the point key, which the
// rows as sent are not in when a round shares one timestamp.
func TestSortedBatches(t *testing.T) {
	t.Parallel()
	w, err := mustWorkload(t, "cpu", 50, 9).WithStamps(StampRound)
	if err != nil {
		t.Fatal(err)
	}
	cfg := CeilingConfig{Schema: "s", Workload: w, Rows: 2000, BatchSize: 700}
	keysOf := func(method string) (batches [][][2]int64, bodies []string) {
		bs, _ := buildBatches(cfg, StorageColumns, method, testBase)
		for _, b := range bs {
			var keys [][2]int64
			data := b.data[len(copyHeader) : len(b.data)-len(copyTrailer)]
			for len(data) > 0 {
				cols := int(binary.BigEndian.Uint16(data))
				at := 2
				for range cols {
					at += 4 + int(int32(binary.BigEndian.Uint32(data[at:])))
				}
				keys = append(keys, [2]int64{int64(binary.BigEndian.Uint64(data[6:])), int64(binary.BigEndian.Uint64(data[18:]))})
				bodies = append(bodies, string(data[:at]))
				data = data[at:]
			}
			batches = append(batches, keys)
		}
		return batches, bodies
	}
	arrival, sent := keysOf(MethodKeyArrival)
	sorted, stored := keysOf(MethodKeySorted)
	if len(arrival) != 3 || len(sorted) != 3 {
		t.Fatalf("got %d and %d batches, want 3 of at most 700 rows", len(arrival), len(sorted))
	}
	less := func(a, b [2]int64) bool { return a[0] < b[0] || a[0] == b[0] && a[1] < b[1] }
	unsorted := false
	for i := range sorted {
		for j := 1; j < len(sorted[i]); j++ {
			if !less(sorted[i][j-1], sorted[i][j]) {
				t.Fatalf("batch %d, row %d: key %v after %v, want rising keys", i, j, sorted[i][j], sorted[i][j-1])
			}
			unsorted = unsorted || !less(arrival[i][j-1], arrival[i][j])
		}
	}
	if !unsorted {
		t.Error("the rows as sent are in key order already: the test shows nothing")
	}
	slices.Sort(sent)
	slices.Sort(stored)
	if !slices.Equal(sent, stored) {
		t.Error("sorting changed the rows")
	}
}
