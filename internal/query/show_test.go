package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// showPoint is a row of a SHOW test's tables.
type showPoint struct {
	m      string
	tags   map[string]string
	fields map[string]any // float64, int64, string or bool
	at     time.Time
}

// showPoints is the data the SHOW tests read: "app" is a table in append
// mode (no series_id, no series), "uptime" has no tags, "dis k,1" needs
// escaping in a series key.
func showPoints() []showPoint {
	showT0, h := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour
	return []showPoint{
		{"cpu", map[string]string{"host": "h1", "cpu": "cpu0"}, map[string]any{"usage_idle": 90.5, "usage_user": 2.5}, showT0},
		{"cpu", map[string]string{"host": "h1", "cpu": "cpu1"}, map[string]any{"usage_idle": 80.5}, showT0},
		{"cpu", map[string]string{"host": "h2", "cpu": "cpu0"}, map[string]any{"usage_idle": 70.5, "usage_user": 3.5}, showT0.Add(h)},
		{"mem", map[string]string{"host": "h1"}, map[string]any{"total": int64(100), "used_percent": 30.5}, showT0},
		{"mem", map[string]string{"host": "h2"}, map[string]any{"total": int64(200), "used_percent": 40.5}, showT0.Add(h)},
		{"dis k,1", map[string]string{"pa th": "/a=b,c", "dev": "sda"}, map[string]any{"free": int64(5), "ro": false, "label": "x y"}, showT0},
		{"uptime", nil, map[string]any{"v": int64(1)}, showT0},
		{"app", map[string]string{"host": "h9"}, map[string]any{"load": 1.5}, showT0},
	}
}

// showFixture makes the tables of points as pginflux does in storage
// (columns or jsonb), with the series of every table but "app" in the
// series table, and returns an Engine whose database "telegraf" they are.
func showFixture(t *testing.T, storage string, points []showPoint) (*Engine, *pgxpool.Pool, string) {
	t.Helper()
	pool, sch := pgtest.Schema(t)
	ctx := t.Context()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	series := pgx.Identifier{sch, "pginflux_series"}.Sanitize()
	exec(`CREATE TABLE ` + series + ` (table_name text NOT NULL, series_id bigint NOT NULL, tags jsonb NOT NULL,
		created timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (table_name, series_id))`)

	var measurements []string
	byM := map[string][]showPoint{}
	for _, p := range points {
		if byM[p.m] == nil {
			measurements = append(measurements, p.m)
		}
		byM[p.m] = append(byM[p.m], p)
	}
	slices.Sort(measurements)
	for _, m := range measurements {
		ident := pgx.Identifier{sch, m}.Sanitize()
		point := m != "app"
		tagKeys, fieldTypes := map[string]bool{}, map[string]string{}
		for _, p := range byM[m] {
			for k := range p.tags {
				tagKeys[k] = true
			}
			for k, v := range p.fields {
				fieldTypes[k] = map[string]string{"float64": "double precision", "int64": "bigint", "string": "text", "bool": "boolean"}[fmt.Sprintf("%T", v)]
			}
		}
		cols := []string{"time timestamptz NOT NULL"}
		if point {
			cols = append(cols, "series_id bigint NOT NULL")
		}
		var comments []string
		if storage == "jsonb" {
			cols = append(cols, "tags jsonb NOT NULL", "fields jsonb NOT NULL")
		} else {
			for _, k := range sortedKeys(tagKeys) {
				cols = append(cols, pgx.Identifier{k}.Sanitize()+" text")
				comments = append(comments, "COMMENT ON COLUMN "+ident+"."+pgx.Identifier{k}.Sanitize()+" IS "+quoteLiteral("pginflux tag "+k))
			}
			for _, k := range sortedKeys(fieldTypes) {
				cols = append(cols, pgx.Identifier{k}.Sanitize()+" "+fieldTypes[k])
				comments = append(comments, "COMMENT ON COLUMN "+ident+"."+pgx.Identifier{k}.Sanitize()+" IS "+quoteLiteral("pginflux field "+k))
			}
		}
		if point {
			cols = append(cols, "PRIMARY KEY (time, series_id)")
		}
		exec("CREATE TABLE " + ident + " (" + strings.Join(cols, ", ") + ")")
		for _, c := range comments {
			exec(c)
		}

		ids := map[string]int64{}
		for _, p := range byM[m] {
			tags, err := json.Marshal(showOrEmpty(p.tags))
			if err != nil {
				t.Fatal(err)
			}
			id, ok := ids[string(tags)]
			if !ok {
				id = int64(len(ids) + 1)
				ids[string(tags)] = id
				if point {
					exec("INSERT INTO "+series+" (table_name, series_id, tags) VALUES ($1, $2, $3::jsonb)", m, id, string(tags))
				}
			}
			names := []string{"time"}
			vals := []any{p.at}
			if point {
				names, vals = append(names, "series_id"), append(vals, id)
			}
			if storage == "jsonb" {
				names = append(names, "tags", "fields")
				vals = append(vals, string(tags), showFieldsJSON(p.fields))
			} else {
				for k, v := range p.tags {
					names, vals = append(names, k), append(vals, v)
				}
				for k, v := range p.fields {
					names, vals = append(names, k), append(vals, v)
				}
			}
			marks := make([]string, len(names))
			for i := range names {
				marks[i] = "$" + strconv.Itoa(i+1)
				names[i] = pgx.Identifier{names[i]}.Sanitize()
			}
			exec("INSERT INTO "+ident+" ("+strings.Join(names, ", ")+") VALUES ("+strings.Join(marks, ", ")+")", vals...)
		}
	}

	e := New(Options{
		Pool: func() (*pgxpool.Pool, error) { return pool, nil },
		Schema: func(db string) (string, bool) {
			if db != "telegraf" {
				return "no_such_" + db, true
			}
			return sch, false
		},
	})
	return e, pool, sch
}

func showOrEmpty(tags map[string]string) map[string]string {
	if tags == nil {
		return map[string]string{}
	}
	return tags
}

// showFieldsJSON writes fields as pginflux does: a float always with a
// decimal point.
func showFieldsJSON(fields map[string]any) string {
	var parts []string
	for _, k := range sortedKeys(fields) {
		kj, _ := json.Marshal(k)
		var v string
		switch x := fields[k].(type) {
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
			if !strings.Contains(v, ".") {
				v += ".0"
			}
		default:
			b, _ := json.Marshal(x)
			v = string(b)
		}
		parts = append(parts, string(kj)+": "+v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// showRun runs one statement against database telegraf.
func showRun(t *testing.T, e *Engine, q string) ([]Series, error) {
	t.Helper()
	st, err := influxql.ParseStatement(q)
	if err != nil {
		t.Fatalf("parse %s: %v", q, err)
	}
	var out []Series
	err = e.Run(t.Context(), st, Request{DB: "telegraf", Now: time.Now()}, func(s Series) error {
		out = append(out, s)
		return nil
	})
	return out, err
}

// showCol is a series of one column.
func showCol(name, column string, vals ...string) Series {
	s := Series{Name: name, Columns: []string{column}}
	for _, v := range vals {
		s.Values = append(s.Values, []any{v})
	}
	return s
}

// showCol2 is a series of two columns, vals given row after row.
func showCol2(name string, columns []string, vals ...string) Series {
	s := Series{Name: name, Columns: columns}
	for i := 0; i+1 < len(vals); i += 2 {
		s.Values = append(s.Values, []any{vals[i], vals[i+1]})
	}
	return s
}

type showCase struct {
	name string
	q    string
	want []Series
}

// showCases runs cases against the fixture, in both storages.
func showCases(t *testing.T, cases []showCase) {
	for _, storage := range []string{"columns", "jsonb"} {
		t.Run(storage, func(t *testing.T) {
			t.Parallel()
			e, _, _ := showFixture(t, storage, showPoints())
			showCheck(t, e, cases)
		})
	}
}

// showCheck runs cases against e.
func showCheck(t *testing.T, e *Engine, cases []showCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := showRun(t, e, c.q)
			if err != nil {
				t.Fatalf("%s: %v", c.q, err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s:\ngot  %v\nwant %v", c.q, got, c.want)
			}
		})
	}
}

func TestShowMeasurements(t *testing.T) {
	t.Parallel()
	ms := func(names ...string) []Series { return []Series{showCol("measurements", "name", names...)} }
	showCases(t, []showCase{
		{"all", `SHOW MEASUREMENTS`, ms("app", "cpu", "dis k,1", "mem", "uptime")},
		{"on", `SHOW MEASUREMENTS ON "telegraf"`, ms("app", "cpu", "dis k,1", "mem", "uptime")},
		{"limit offset", `SHOW MEASUREMENTS LIMIT 2 OFFSET 1`, ms("cpu", "dis k,1")},
		{"offset past the end", `SHOW MEASUREMENTS OFFSET 5`, nil},
		{"with regex", `SHOW MEASUREMENTS WITH MEASUREMENT =~ /^(cpu|mem)$/`, ms("cpu", "mem")},
		{"with name", `SHOW MEASUREMENTS WITH MEASUREMENT = "mem"`, ms("mem")},
		{"with absent name", `SHOW MEASUREMENTS WITH MEASUREMENT = "nosuch"`, nil},
		{"where tag", `SHOW MEASUREMENTS WHERE "host" = 'h2'`, ms("cpu", "mem")},
		{"where tag of a table in append mode", `SHOW MEASUREMENTS WHERE "host" =~ /9/`, ms("app")},
		{"where absent tag", `SHOW MEASUREMENTS WHERE "host" = ''`, ms("dis k,1", "uptime")},
		{"where time", `SHOW MEASUREMENTS WHERE time > '2024-01-01T00:30:00Z'`, ms("cpu", "mem")},
		{"where tag and time", `SHOW MEASUREMENTS WHERE "host" = 'h1' AND time > '2024-01-01T00:30:00Z'`, nil},
		{"where field", `SHOW MEASUREMENTS WHERE "total" > 150`, ms("mem")},
		{"with and where and limit", `SHOW MEASUREMENTS WITH MEASUREMENT =~ /m/ WHERE "host" = 'h1' LIMIT 1`, ms("mem")},
	})
}

func TestShowTagKeys(t *testing.T) {
	t.Parallel()
	tk := func(m string, keys ...string) Series { return showCol(m, "tagKey", keys...) }
	showCases(t, []showCase{
		{"all", `SHOW TAG KEYS`, []Series{tk("app", "host"), tk("cpu", "cpu", "host"), tk("dis k,1", "dev", "pa th"), tk("mem", "host")}},
		{"from", `SHOW TAG KEYS FROM "cpu"`, []Series{tk("cpu", "cpu", "host")}},
		{"from a table without tags", `SHOW TAG KEYS FROM "uptime"`, nil},
		{"from regex and absent", `SHOW TAG KEYS FROM /^(cpu|mem)$/, "nosuch"`, []Series{tk("cpu", "cpu", "host"), tk("mem", "host")}},
		{"from with database", `SHOW TAG KEYS FROM "telegraf"."autogen"."mem"`, []Series{tk("mem", "host")}},
		{"limit offset", `SHOW TAG KEYS FROM "cpu" LIMIT 1 OFFSET 1`, []Series{tk("cpu", "host")}},
		{"where tag", `SHOW TAG KEYS WHERE "host" = 'h2'`, []Series{tk("cpu", "cpu", "host"), tk("mem", "host")}},
		{"where other tag", `SHOW TAG KEYS WHERE "dev" = 'sda'`, []Series{tk("dis k,1", "dev", "pa th")}},
		{"where time", `SHOW TAG KEYS WHERE time >= '2024-01-01T00:30:00Z'`, []Series{tk("cpu", "cpu", "host"), tk("mem", "host")}},
	})
}

func TestShowTagValues(t *testing.T) {
	t.Parallel()
	kv := []string{"key", "value"}
	showCases(t, []showCase{
		{"from", `SHOW TAG VALUES FROM "cpu" WITH KEY = "host"`, []Series{showCol2("cpu", kv, "host", "h1", "host", "h2")}},
		{"every measurement with the key", `SHOW TAG VALUES WITH KEY = "host"`, []Series{
			showCol2("app", kv, "host", "h9"), showCol2("cpu", kv, "host", "h1", "host", "h2"), showCol2("mem", kv, "host", "h1", "host", "h2"),
		}},
		{"in", `SHOW TAG VALUES FROM "cpu" WITH KEY IN ("host", "cpu")`, []Series{showCol2("cpu", kv, "cpu", "cpu0", "cpu", "cpu1", "host", "h1", "host", "h2")}},
		{"regex", `SHOW TAG VALUES FROM "cpu" WITH KEY =~ /^c/`, []Series{showCol2("cpu", kv, "cpu", "cpu0", "cpu", "cpu1")}},
		{"not regex", `SHOW TAG VALUES FROM "cpu" WITH KEY !~ /^c/`, []Series{showCol2("cpu", kv, "host", "h1", "host", "h2")}},
		{"not equal", `SHOW TAG VALUES FROM "cpu" WITH KEY != "cpu"`, []Series{showCol2("cpu", kv, "host", "h1", "host", "h2")}},
		{"absent key", `SHOW TAG VALUES WITH KEY = "nosuch"`, nil},
		{"grafana's variable", `SHOW TAG VALUES FROM "cpu" WITH KEY = "cpu" WHERE "host" =~ /^h1$/`, []Series{showCol2("cpu", kv, "cpu", "cpu0", "cpu", "cpu1")}},
		{"where and limit", `SHOW TAG VALUES FROM "cpu" WITH KEY = "cpu" WHERE "host" = 'h1' LIMIT 1 OFFSET 1`, []Series{showCol2("cpu", kv, "cpu", "cpu1")}},
		{"where matches nothing", `SHOW TAG VALUES FROM "cpu" WITH KEY = "cpu" WHERE "host" = 'h7'`, nil},
		{"where time", `SHOW TAG VALUES WITH KEY = "host" WHERE time >= '2024-01-01T00:30:00Z'`, []Series{
			showCol2("cpu", kv, "host", "h2"), showCol2("mem", kv, "host", "h2"),
		}},
		{"where field", `SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "usage_idle" > 85`, []Series{showCol2("cpu", kv, "host", "h1")}},
		{"special characters", `SHOW TAG VALUES FROM "dis k,1" WITH KEY = "pa th"`, []Series{showCol2("dis k,1", kv, "pa th", "/a=b,c")}},
	})
}

func TestShowFieldKeys(t *testing.T) {
	t.Parallel()
	cols := []string{"fieldKey", "fieldType"}
	showCases(t, []showCase{
		{"all", `SHOW FIELD KEYS`, []Series{
			showCol2("app", cols, "load", "float"),
			showCol2("cpu", cols, "usage_idle", "float", "usage_user", "float"),
			showCol2("dis k,1", cols, "free", "integer", "label", "string", "ro", "boolean"),
			showCol2("mem", cols, "total", "integer", "used_percent", "float"),
			showCol2("uptime", cols, "v", "integer"),
		}},
		{"from", `SHOW FIELD KEYS FROM "mem"`, []Series{showCol2("mem", cols, "total", "integer", "used_percent", "float")}},
		{"limit", `SHOW FIELD KEYS FROM "mem" LIMIT 1`, []Series{showCol2("mem", cols, "total", "integer")}},
		{"absent", `SHOW FIELD KEYS FROM "nosuch"`, nil},
	})
}

func TestShowSeries(t *testing.T) {
	t.Parallel()
	keys := func(k ...string) []Series { return []Series{showCol("", "key", k...)} }
	showCases(t, []showCase{
		{"all", `SHOW SERIES`, keys(
			"app,host=h9", "cpu,cpu=cpu0,host=h1", "cpu,cpu=cpu0,host=h2", "cpu,cpu=cpu1,host=h1",
			`dis\ k\,1,dev=sda,pa\ th=/a\=b\,c`, "mem,host=h1", "mem,host=h2", "uptime")},
		{"from", `SHOW SERIES FROM "mem"`, keys("mem,host=h1", "mem,host=h2")},
		{"escaped", `SHOW SERIES FROM "dis k,1"`, keys(`dis\ k\,1,dev=sda,pa\ th=/a\=b\,c`)},
		{"limit offset", `SHOW SERIES LIMIT 2 OFFSET 1`, keys("cpu,cpu=cpu0,host=h1", "cpu,cpu=cpu0,host=h2")},
		{"where tag", `SHOW SERIES WHERE "host" = 'h1'`, keys("cpu,cpu=cpu0,host=h1", "cpu,cpu=cpu1,host=h1", "mem,host=h1")},
		{"where not tag", `SHOW SERIES WHERE "host" != 'h1'`, keys(
			"app,host=h9", "cpu,cpu=cpu0,host=h2", `dis\ k\,1,dev=sda,pa\ th=/a\=b\,c`, "mem,host=h2", "uptime")},
		{"where regex", `SHOW SERIES FROM "cpu" WHERE "cpu" =~ /1$/ OR "host" = 'h2'`, keys("cpu,cpu=cpu0,host=h2", "cpu,cpu=cpu1,host=h1")},
		{"where time", `SHOW SERIES WHERE time > '2024-01-01T00:00:00Z'`, keys("cpu,cpu=cpu0,host=h2", "mem,host=h2")},
		{"where time before the hour", `SHOW SERIES WHERE time < '2024-01-01T01:00:00Z'`, keys(
			"app,host=h9", "cpu,cpu=cpu0,host=h1", "cpu,cpu=cpu1,host=h1", `dis\ k\,1,dev=sda,pa\ th=/a\=b\,c`, "mem,host=h1", "uptime")},
		{"where time before", `SHOW SERIES FROM "uptime", "mem" WHERE time <= '2024-01-01T00:00:00Z'`, keys("mem,host=h1", "uptime")},
		{"where field", `SHOW SERIES WHERE "usage_user" > 3`, keys("cpu,cpu=cpu0,host=h2")},
		{"nothing", `SHOW SERIES WHERE "host" = 'h7'`, nil},
	})
}

// TestShowSeriesTable checks which tag sets answer: without a time range
// the series table's (which keeps a series whose rows are gone), with one
// the rows'; a tag column pginflux did not make is read from the rows.
func TestShowSeriesTable(t *testing.T) {
	t.Parallel()
	e, pool, sch := showFixture(t, "columns", showPoints())
	ctx := t.Context()
	series := pgx.Identifier{sch, "pginflux_series"}.Sanitize()
	for _, sql := range []string{
		`INSERT INTO ` + series + ` (table_name, series_id, tags) VALUES ('cpu', 99, '{"host": "h0", "cpu": "cpu9"}')`,
		`ALTER TABLE ` + pgx.Identifier{sch, "mem"}.Sanitize() + ` ADD COLUMN rack text DEFAULT 'r1'`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	kv := []string{"key", "value"}
	showCheck(t, e, []showCase{
		{"series table", `SHOW TAG VALUES FROM "cpu" WITH KEY = "host"`, []Series{showCol2("cpu", kv, "host", "h0", "host", "h1", "host", "h2")}},
		{"rows in a time range", `SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE time > '2000-01-01T00:00:00Z'`, []Series{showCol2("cpu", kv, "host", "h1", "host", "h2")}},
		{"series", `SHOW SERIES FROM "cpu" WHERE "cpu" = 'cpu9'`, []Series{showCol("", "key", "cpu,cpu=cpu9,host=h0")}},
		{"column not in the series table", `SHOW TAG VALUES FROM "mem" WITH KEY = "rack"`, []Series{showCol2("mem", kv, "rack", "r1")}},
		{"condition on a column not in the series table", `SHOW TAG VALUES FROM "mem" WITH KEY = "host" WHERE "rack" = 'r1'`, []Series{showCol2("mem", kv, "host", "h1", "host", "h2")}},
		{"series with a column not in the series table", `SHOW SERIES FROM "mem"`, []Series{showCol("", "key", "mem,host=h1,rack=r1", "mem,host=h2,rack=r1")}},
	})
}

// TestShowTimeNanos checks a time range on a table that keeps
// nanoseconds (time_ns).
func TestShowTimeNanos(t *testing.T) {
	t.Parallel()
	e, pool, sch := showFixture(t, "columns", showPoints())
	ident := pgx.Identifier{sch, "ev"}.Sanitize()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 1000, time.UTC) // 1 µs
	for _, sql := range []string{
		`CREATE TABLE ` + ident + ` (time timestamptz NOT NULL, series_id bigint NOT NULL, time_ns smallint NOT NULL DEFAULT 0,
			host text, v bigint, PRIMARY KEY (time, series_id, time_ns))`,
		`COMMENT ON COLUMN ` + ident + `.host IS 'pginflux tag host'`,
		`COMMENT ON COLUMN ` + ident + `.v IS 'pginflux field v'`,
		`INSERT INTO ` + ident + ` VALUES ('` + t0.Format(time.RFC3339Nano) + `', 1, 500, 'a', 1), ('` + t0.Format(time.RFC3339Nano) + `', 2, 900, 'b', 1)`,
	} {
		if _, err := pool.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	kv := []string{"key", "value"}
	showCheck(t, e, []showCase{
		{"after", `SHOW TAG VALUES FROM "ev" WITH KEY = "host" WHERE time >= '2024-01-01T00:00:00.000001600Z'`, []Series{showCol2("ev", kv, "host", "b")}},
		{"before", `SHOW TAG VALUES FROM "ev" WITH KEY = "host" WHERE time <= '2024-01-01T00:00:00.000001600Z'`, []Series{showCol2("ev", kv, "host", "a")}},
		{"at", `SHOW SERIES FROM "ev" WHERE time = '2024-01-01T00:00:00.000001900Z'`, []Series{showCol("", "key", "ev,host=b")}},
		{"between", `SHOW SERIES FROM "ev" WHERE time > '2024-01-01T00:00:00.000001500Z' AND time < '2024-01-01T00:00:00.000001900Z'`, nil},
	})
}

func TestShowErrors(t *testing.T) {
	t.Parallel()
	e, _, _ := showFixture(t, "columns", showPoints())
	for _, c := range []struct{ q, err string }{
		{`SHOW MEASUREMENTS ON "nosuchdb"`, "database not found: nosuchdb"},
		{`SHOW TAG KEYS ON "nosuchdb"`, "database not found: nosuchdb"},
		{`SHOW TAG VALUES FROM "nosuchdb"."autogen"."cpu" WITH KEY = "host"`, "database not found: nosuchdb"},
		{`SHOW FIELD KEYS ON "nosuchdb"`, "database not found: nosuchdb"},
		{`SHOW SERIES ON "nosuchdb"`, "database not found: nosuchdb"},
		{`SHOW SERIES WHERE time > 'yesterday'`, ""},
	} {
		t.Run(c.q, func(t *testing.T) {
			_, err := showRun(t, e, c.q)
			switch {
			case err == nil:
				t.Fatalf("%s: got no error", c.q)
			case c.err != "" && err.Error() != c.err:
				t.Errorf("%s: got %v, want %s", c.q, err, c.err)
			case c.err == "" && !errors.Is(err, ErrStatement):
				t.Errorf("%s: got %v, want a statement error", c.q, err)
			}
		})
	}
}
