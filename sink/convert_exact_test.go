package sink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
	"github.com/pginflux/pginflux/sink/schema"
)

// feed parses data as the daemon does and sends its points and rejected
// lines through a fresh sink of the given storage, then closes it.
func feed(t *testing.T, pool *pgxpool.Pool, schema, storage, data string) {
	t.Helper()
	s := New(pool, Config{Schema: schema, Storage: storage, BatchSize: 100_000, FlushInterval: time.Hour, Writers: 2,
		RejectedTable: "pginflux_rejected"}, NewMetrics(nil), quiet)
	b := s.NewBatcher()
	p := parse.NewParser(parse.Nanosecond)
	p.Reset([]byte(data), time.Unix(0, 0))
	for {
		pt, err := p.Next()
		if err == io.EOF {
			break
		}
		var le *parse.LineError
		if errors.As(err, &le) {
			b.Reject(p.Line(le.Line), "", le.Reason.String(), le.Error(), origin)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Add(pt, origin)
	}
	b.Flush()
	closeSink(t, s)
}

// values returns "key=value" of every field of every row of a table, in
// time order: the columns named in typed storage, the fields object in
// jsonb storage.
func values(t *testing.T, pool *pgxpool.Pool, schema, storage, table string, keys ...string) []string {
	t.Helper()
	ident := pgx.Identifier{schema, table}.Sanitize()
	if storage == StorageJSONB {
		return dbtest.Query(t, pool, "SELECT fields::text FROM "+ident+" ORDER BY time")
	}
	var cols []string
	for _, k := range keys {
		cols = append(cols, "coalesce("+pgx.Identifier{k}.Sanitize()+"::text, '∅')")
	}
	return dbtest.Query(t, pool, "SELECT "+strings.Join(cols, " || ' ' || ")+" FROM "+ident+" ORDER BY time")
}

// TestUserColumnsExact: a table a user made with narrower types than
// pginflux's. A value its column cannot hold exactly is a conflict of that
// one value: the rest of its row lands, nothing is rounded, and nothing
// makes PostgreSQL refuse the row.
func TestUserColumnsExact(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	table := pgx.Identifier{schema, "m"}.Sanitize()
	_, err := pool.Exec(t.Context(), `CREATE DOMAIN `+pgx.Identifier{schema, "small"}.Sanitize()+` AS numeric(3,1);
		CREATE TABLE `+table+` (
		time timestamptz NOT NULL,
		n numeric(5,2),
		r real,
		s smallint,
		i integer,
		vc varchar(3),
		c char(3),
		ts timestamp,
		d date,
		dom `+pgx.Identifier{schema, "small"}.Sanitize()+`)`)
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		line   string
		row    string // n r s i vc c w
		reject string // reason of the rejected value, "" for none
	}
	tests := []tc{
		{`m n=1.234,w=1i 1000`, "∅ ∅ ∅ ∅ ∅ ∅ 1", "out_of_range: m n=1.234 1000"},
		{`m n=12345.6,w=2i 2000`, "∅ ∅ ∅ ∅ ∅ ∅ 2", "out_of_range: m n=12345.6 2000"},
		{`m n=123.45,w=3i 3000`, "123.45 ∅ ∅ ∅ ∅ ∅ 3", ""},
		{`m n=-999.99,w=4i 4000`, "-999.99 ∅ ∅ ∅ ∅ ∅ 4", ""},
		{`m n=999.995,w=5i 5000`, "∅ ∅ ∅ ∅ ∅ ∅ 5", "out_of_range: m n=999.995 5000"},
		{`m n=1000i,w=6i 6000`, "∅ ∅ ∅ ∅ ∅ ∅ 6", "out_of_range: m n=1000i 6000"},
		{`m n=999u,w=7i 7000`, "999.00 ∅ ∅ ∅ ∅ ∅ 7", ""},
		{`m n=0.1,w=8i 8000`, "0.10 ∅ ∅ ∅ ∅ ∅ 8", ""},
		{`m n=1e-300,w=9i 9000`, "∅ ∅ ∅ ∅ ∅ ∅ 9", "out_of_range: m n=1e-300 9000"},

		{`m r=95.9,w=10i 10000`, "∅ 95.9 ∅ ∅ ∅ ∅ 10", ""},
		{`m r=0.1,w=11i 11000`, "∅ 0.1 ∅ ∅ ∅ ∅ 11", ""},
		{`m r=1.0000001234,w=12i 12000`, "∅ ∅ ∅ ∅ ∅ ∅ 12", "out_of_range: m r=1.0000001234 12000"},
		{`m r=1e-50,w=13i 13000`, "∅ ∅ ∅ ∅ ∅ ∅ 13", "out_of_range: m r=1e-50 13000"},
		{`m r=1e39,w=14i 14000`, "∅ ∅ ∅ ∅ ∅ ∅ 14", "out_of_range: m r=1e+39 14000"},
		{`m r=16777217i,w=15i 15000`, "∅ ∅ ∅ ∅ ∅ ∅ 15", "out_of_range: m r=16777217i 15000"},
		{`m r=16777216i,w=16i 16000`, "∅ 1.6777216e+07 ∅ ∅ ∅ ∅ 16", ""},

		{`m s=32767i,w=17i 17000`, "∅ ∅ 32767 ∅ ∅ ∅ 17", ""},
		{`m s=32768i,w=18i 18000`, "∅ ∅ ∅ ∅ ∅ ∅ 18", "out_of_range: m s=32768i 18000"},
		{`m s=2.0,w=19i 19000`, "∅ ∅ 2 ∅ ∅ ∅ 19", ""},
		{`m s=2.5,w=20i 20000`, "∅ ∅ ∅ ∅ ∅ ∅ 20", "out_of_range: m s=2.5 20000"},
		{`m i=2147483648i,w=21i 21000`, "∅ ∅ ∅ ∅ ∅ ∅ 21", "out_of_range: m i=2147483648i 21000"},
		{`m i=18446744073709551615u,w=22i 22000`, "∅ ∅ ∅ ∅ ∅ ∅ 22", "out_of_range: m i=18446744073709551615u 22000"},

		{`m vc="abcd",w=23i 23000`, "∅ ∅ ∅ ∅ ∅ ∅ 23", `too_long: m vc="abcd" 23000`},
		{`m vc="äöü",w=24i 24000`, "∅ ∅ ∅ ∅ äöü ∅ 24", ""},
		{`m c="ab",w=26i 26000`, "∅ ∅ ∅ ∅ ∅ ab 26", ""},
		{`m c="abcd",w=27i 27000`, "∅ ∅ ∅ ∅ ∅ ∅ 27", `too_long: m c="abcd" 27000`},
		{`m vc="a   ",w=28i 28000`, "∅ ∅ ∅ ∅ ∅ ∅ 28", `too_long: m vc="a   " 28000`},
	}
	var lines, wantRows, wantRejected []string
	for _, tt := range tests {
		lines = append(lines, tt.line)
		wantRows = append(wantRows, tt.row)
		if tt.reject != "" {
			wantRejected = append(wantRejected, tt.reject)
		}
	}
	// Columns the sink cannot write (timestamp, date) are left alone:
	// their keys get columns of their own, and nothing is lost. A domain
	// without constraints is written as its base type.
	lines = append(lines, `m ts=5i,d="x",dom=1.5,w=29i 29000`, `m dom=1.25,w=-29i 29500`)
	wantRejected = append(wantRejected, "out_of_range: m dom=1.25 29500")
	wantRows = append(wantRows, "∅ ∅ ∅ ∅ ∅ ∅ 29", "∅ ∅ ∅ ∅ ∅ ∅ -29")
	write(t, pool, schema, Config{}, lines...)

	gotRows := dbtest.Query(t, pool, `SELECT coalesce(n::text, '∅') || ' ' || coalesce(r::text, '∅') || ' ' || coalesce(s::text, '∅') || ' ' ||
		coalesce(i::text, '∅') || ' ' || coalesce(vc::text, '∅') || ' ' || coalesce(c::text, '∅') || ' ' || w FROM `+table+" ORDER BY time")
	for i := range max(len(gotRows), len(wantRows)) {
		if i >= len(gotRows) || i >= len(wantRows) || gotRows[i] != wantRows[i] {
			t.Errorf("row %d: got %q, want %q", i, gotRows[i:min(i+1, len(gotRows))], wantRows[i:min(i+1, len(wantRows))])
		}
	}
	got := dbtest.RejectedLines(t, pool, schema)
	dbtest.Equal(t, "rejected", sortedCopy(got), sortedCopy(wantRejected))
	dbtest.Equal(t, "left alone", dbtest.Query(t, pool, "SELECT ts_field || ' ' || d_field || ' ' || dom FROM "+table+" WHERE w = 29"), []string{"5 x 1.5"})

	// A tag into a varchar(n) column, in a batch of its own (with a field
	// of the same name in the batch, the tag would get the column).
	write(t, pool, schema, Config{}, `m,vc=abcd w=30i 30000`, `m,vc=abc w=31i 31000`)
	dbtest.Equal(t, "tags", dbtest.Query(t, pool, "SELECT coalesce(vc, '∅') FROM "+table+" WHERE w >= 30 ORDER BY w"), []string{"∅", "abc"})
	dbtest.Equal(t, "tag rejected", dbtest.RejectedLines(t, pool, schema)[len(wantRejected):], []string{"too_long: m,vc=abcd w=30i 30000"})
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// TestNumericTypmod checks the precision and scale rules against what
// PostgreSQL itself does with the same text: a value fits exactly when the
// cast neither fails nor changes it.
func TestNumericTypmod(t *testing.T) {
	t.Parallel()
	pool, sch := pgtest.Schema(t)
	types := []string{"numeric(5,2)", "numeric(3,0)", "numeric(1,1)", "numeric(4)", "numeric(10,5)", "numeric(2,-2)", "numeric(2,4)"}
	texts := []string{"0", "1", "-1", "9.99", "99.999", "123.45", "1234.5", "999", "1000", "0.1", "0.05", "0.001", "0.0001",
		"1e+02", "1.5e+03", "1200", "99000", "100000", "1e-05", "2.5e-05", "-0.01", "12345.67891", "99999.99999", "0.0099"}
	for i, typ := range types {
		// The typmod as the catalog has it, from a table with a column of
		// the type.
		tm := pgx.Identifier{sch, fmt.Sprintf("tm%d", i)}.Sanitize()
		if _, err := pool.Exec(t.Context(), "CREATE TABLE "+tm+" (x "+typ+")"); err != nil {
			// A negative scale, or one above the precision, needs
			// PostgreSQL 15.
			t.Logf("%s: %v", typ, err)
			continue
		}
		var typmod int32
		if err := pool.QueryRow(t.Context(), "SELECT atttypmod FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'x'", tm).Scan(&typmod); err != nil {
			t.Fatal(err)
		}
		ct := schema.Type{OID: schema.OIDNumeric, Typmod: typmod, Name: typ}
		for _, text := range texts {
			var same bool
			err := pool.QueryRow(t.Context(), "SELECT $1::numeric = $1::numeric::"+typ, text).Scan(&same)
			want := err == nil && same
			_, cf := appendNumericAs(nil, ct, []byte(text))
			if got := cf == nil; got != want {
				t.Errorf("%s holds %s: got %v, PostgreSQL says %v (err %v)", typ, text, got, want, err)
			}
		}
	}
}

// TestRealHolds checks which floats a real column holds as sent.
func TestRealHolds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f    float64
		want bool
	}{
		{0, true}, {math.Copysign(0, -1), true}, {1, true}, {0.1, true}, {95.9, true}, {-2.5e-3, true},
		{3.4028234663852886e38, true}, {1e-45, true}, {16777216, true},
		{1.0000001234, false}, {1e-50, false}, {1e39, false}, {3.5e38, false}, {16777217, false}, {0.30000000000000004, false},
	}
	for _, tt := range tests {
		if got := realHolds(tt.f); got != tt.want {
			t.Errorf("realHolds(%v): got %v, want %v", tt.f, got, tt.want)
		}
	}
}

// TestUintIntoFloat: an unsigned integer above 2^63-1 that is a float
// exactly goes into a double precision column.
func TestUintIntoFloat(t *testing.T) {
	t.Parallel()
	f8 := schema.Type{OID: schema.OIDFloat8, Typmod: -1, Name: "double precision"}
	if _, cf := appendValue(nil, f8, value{kind: parse.Uint, num: 1 << 63}); cf != nil {
		t.Errorf("2^63 into double precision: got %v", cf)
	}
	if _, cf := appendValue(nil, f8, value{kind: parse.Uint, num: math.MaxUint64}); cf == nil {
		t.Errorf("2^64-1 into double precision: got no conflict")
	}
}

// TestTimePrecision: a time column of timestamp(p) gets times floored to
// p digits, as microseconds are floored from nanoseconds.
func TestTimePrecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typmod int32
		nanos  int64
		micros int64 // Unix
	}{
		{-1, 1_700_000_000_123_456_789, 1_700_000_000_123_456},
		{6, 1_700_000_000_123_456_789, 1_700_000_000_123_456},
		{3, 1_700_000_000_123_456_789, 1_700_000_000_123_000},
		{0, 1_700_000_000_999_999_999, 1_700_000_000_000_000},
		{0, -1, -1_000_000},
		{2, -1_500_000_001, -1_510_000},
		{0, math.MinInt64, -9_223_372_037_000_000},
	}
	for _, tt := range tests {
		for _, oid := range []uint32{schema.OIDTimestamptz, schema.OIDTimestamp} {
			b := appendTimeAs(nil, schema.Type{OID: oid, Typmod: tt.typmod}, tt.nanos)
			got := int64(binary.BigEndian.Uint64(b[4:])) + pgEpochMicros
			if got != tt.micros {
				t.Errorf("timestamp(%d) of %d: got %d µs, want %d", tt.typmod, tt.nanos, got, tt.micros)
			}
		}
	}
}

// TestJSONBFloatForm: a float field keeps its float form in jsonb at every
// magnitude, and its value; an integer stays an integer.
func TestJSONBFloatForm(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	feed(t, pool, schema, StorageJSONB, strings.Join([]string{
		`m v=2.0 1000`, `m v=1000000.0 2000`, `m v=1e21 3000`, `m v=1e300 4000`, `m v=-1.5e16 5000`, `m v=1.7976931348623157e308 6000`,
		`m v=5e-324 7000`, `m v=-0.0 8000`, `m v=123456789012345680000.0 9000`, `m v=1000000i 10000`, `m v=1e6,w=1000000i 11000`,
	}, "\n"))
	ident := pgx.Identifier{schema, "m"}.Sanitize()
	// A float's text has a point; reading it back gives the same float64.
	dbtest.Equal(t, "float form", dbtest.Query(t, pool, `SELECT strpos(fields->>'v', '.') > 0, (fields->>'v')::float8::text FROM `+ident+" ORDER BY time"), []string{
		"true|2", "true|1000000", "true|1e+21", "true|1e+300", "true|-1.5e+16", "true|1.7976931348623157e+308",
		"true|5e-324", "true|0", "true|1.2345678901234568e+20", "false|1000000", "true|1000000",
	})
	dbtest.Equal(t, "integer stays integer", dbtest.Query(t, pool, `SELECT fields->>'w' FROM `+ident+" WHERE fields ? 'w'"), []string{"1000000"})
}

// TestRepeatedFieldKey: `v=1i,v="s"` keeps "s", and in columns storage the
// new column is typed from it: no conflict, nothing rejected.
func TestRepeatedFieldKey(t *testing.T) {
	t.Parallel()
	bothStorages(t, testRepeatedFieldKey)
}

func testRepeatedFieldKey(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	feed(t, pool, schema, storage, "m v=1i,v=\"s\",w=2 1000\nm,t=x v=2.5,v=\"y\" 2000\n")
	want := []string{"s 2", "y ∅"}
	if storage == StorageJSONB {
		want = []string{`{"v": "s", "w": 2.0}`, `{"v": "y"}`}
	}
	dbtest.Equal(t, "values", values(t, pool, schema, storage, "m", "v", "w"), want)
	if storage == StorageColumns {
		dbtest.Equal(t, "columns", dbtest.Columns(t, pool, schema, "m")[2:], []string{"v text", "w double precision", "t text"})
	}
	var exists bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{schema, "pginflux_rejected"}.Sanitize()).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), nil)
	}
}

// TestMultiLineRejected: a bad line whose string value holds newlines goes
// to the rejected table whole, and nothing inside it becomes a row.
func TestMultiLineRejected(t *testing.T) {
	t.Parallel()
	bothStorages(t, testMultiLineRejected)
}

func testMultiLineRejected(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	bad := "m v=1x,s=\"one\nm v=2 2000\nm v=3\" 3000"
	feed(t, pool, schema, storage, "m v=1 1000\n"+bad+"\nm v=4 4000\n")
	want := []string{"1", "4"}
	if storage == StorageJSONB {
		want = []string{`{"v": 1.0}`, `{"v": 4.0}`}
	}
	dbtest.Equal(t, "values", values(t, pool, schema, storage, "m", "v"), want)
	dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), []string{"syntax: " + bad})
}

// TestForbiddenNumbers: numbers the line-protocol grammar forbids are
// syntax errors, not values.
func TestForbiddenNumbers(t *testing.T) {
	t.Parallel()
	bothStorages(t, testForbiddenNumbers)
}

func testForbiddenNumbers(t *testing.T, storage string) {
	pool, schema := pgtest.Schema(t)
	bad := []string{`m v=0x1p4 1000`, `m v=1_000 2000`, `m v=-Inf 3000`, `m v=0x10i 4000`, `m v=1_0i 5000`, `m v=+1 6000`, `m v=1e1_0 7000`, `m v=-NaN 8000`}
	feed(t, pool, schema, storage, strings.Join(bad, "\n")+"\nm v=1e+1 9000\n")
	want := []string{"10"}
	if storage == StorageJSONB {
		want = []string{`{"v": 10.0}`}
	}
	dbtest.Equal(t, "values", values(t, pool, schema, storage, "m", "v"), want)
	var wantRejected []string
	for _, l := range bad {
		wantRejected = append(wantRejected, "syntax: "+l)
	}
	dbtest.Equal(t, "rejected", sortedCopy(dbtest.RejectedLines(t, pool, schema)), sortedCopy(wantRejected))
}
