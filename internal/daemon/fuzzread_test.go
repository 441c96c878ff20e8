package daemon_test

// How FuzzUDPToPostgres reads back what PostgreSQL holds.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink"
)

// deadLetter is a row of the rejected table, with its line parsed back.
type deadLetter struct {
	reason      string
	measurement *string
	line        []byte // raw when set, else line
	detail      string
	parsed      *point // the line parsed back, when it parses
}

type actual struct {
	rows   map[string][]point // by measurement
	dead   []deadLetter
	tables []string
	// How the column of each key stores numbers, by measurement; a key
	// without a column (jsonb storage, the overflow column) is decimal.
	stores map[string]map[string]store
}

func decodeJSON(s string) (map[string]any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	return m, d.Decode(&m)
}

// readBack reads every table of schema.
func readBack(t *testing.T, ctx context.Context, pool *pgxpool.Pool, schema, storage string) actual {
	t.Helper()
	a := actual{rows: make(map[string][]point), stores: make(map[string]map[string]store)}
	rows, err := pool.Query(ctx, `SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`, schema)
	if err != nil {
		t.Fatal(err)
	}
	type tbl struct{ name, comment string }
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tbl, error) {
		var x tbl
		return x, r.Scan(&x.name, &x.comment)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if pginfluxTables[tb.name] {
			continue // pginflux's bookkeeping, not a measurement
		}
		a.tables = append(a.tables, tb.name)
		ident := pgx.Identifier{schema, tb.name}.Sanitize()
		if tb.name == fuzzRejected {
			a.dead = readRejected(t, ctx, pool, ident)
			continue
		}
		// The comment holds the measurement when the name was shortened.
		m := tb.name
		if tb.comment != "" {
			m = tb.comment
		}
		if storage == sink.StorageJSONB {
			a.rows[m] = readJSONBTable(t, ctx, pool, ident, m)
		} else {
			a.rows[m], a.stores[m] = readTypedTable(t, ctx, pool, ident, m)
		}
	}
	return a
}

// pginfluxTables are the tables pginflux keeps for itself besides the
// rejected table: series ids, commit markers of tables without a point
// key, spool markers. A measurement of one of these names would find its
// rows missing, and compare says so.
var pginfluxTables = map[string]bool{"pginflux_series": true, "pginflux_commits": true, "pginflux_spool": true}

func readRejected(t *testing.T, ctx context.Context, pool *pgxpool.Pool, ident string) []deadLetter {
	t.Helper()
	rows, err := pool.Query(ctx, "SELECT reason, measurement, line, raw, coalesce(detail, '') FROM "+ident)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (deadLetter, error) {
		var d deadLetter
		var line string
		var raw []byte
		if err := r.Scan(&d.reason, &d.measurement, &line, &raw, &d.detail); err != nil {
			return d, err
		}
		d.line = []byte(line)
		if raw != nil {
			d.line = raw
		}
		return d, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range dead {
		d := &dead[i]
		if d.measurement == nil {
			continue // a line the parser rejected: compared as bytes
		}
		pr := parse.NewParser(parse.Nanosecond)
		pr.Reset(d.line, time.Unix(0, 0))
		pt, err := pr.Next()
		if err != nil {
			t.Errorf("rejected-table line %q (%s) does not parse back: %v", d.line, d.reason, err)
			continue
		}
		p := toPoint(pt)
		d.parsed = &p
		if _, err := pr.Next(); err != io.EOF {
			t.Errorf("rejected-table line %q (%s) holds more than one line", d.line, d.reason)
		}
	}
	return dead
}

func readJSONBTable(t *testing.T, ctx context.Context, pool *pgxpool.Pool, ident, m string) []point {
	t.Helper()
	rows, err := pool.Query(ctx, "SELECT (extract(epoch FROM time) * 1000000)::bigint, tags::text, fields::text FROM "+ident)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (point, error) {
		p := point{measurement: m, values: make(map[string]string)}
		var tags, fields string
		if err := r.Scan(&p.micros, &tags, &fields); err != nil {
			return p, err
		}
		tm, err := decodeJSON(tags)
		if err != nil {
			return p, fmt.Errorf("tags %s: %w", tags, err)
		}
		fm, err := decodeJSON(fields)
		if err != nil {
			return p, fmt.Errorf("fields %s: %w", fields, err)
		}
		for k, v := range tm {
			p.values["t:"+k] = canonJSON(v, storeDecimal)
		}
		for k, v := range fm {
			p.values["f:"+k] = canonJSON(v, storeDecimal)
		}
		return p, nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", ident, err)
	}
	return pts
}

func readTypedTable(t *testing.T, ctx context.Context, pool *pgxpool.Pool, ident, m string) ([]point, map[string]store) {
	t.Helper()
	// The key each column serves is in its comment.
	rows, err := pool.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod), coalesce(col_description(attrelid, attnum), '')
		FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, ident)
	if err != nil {
		t.Fatal(err)
	}
	type col struct {
		key   string // "t:..." or "f:..."
		store store
	}
	cols := make(map[string]col)
	stores := make(map[string]store)
	for rows.Next() {
		var name, typ, comment string
		if err := rows.Scan(&name, &typ, &comment); err != nil {
			t.Fatal(err)
		}
		switch {
		case name == "time" || name == "pginflux_overflow":
		case strings.HasPrefix(comment, "pginflux tag "):
			cols[name] = col{key: "t:" + strings.TrimPrefix(comment, "pginflux tag ")}
		case strings.HasPrefix(comment, "pginflux field "):
			c := col{key: "f:" + strings.TrimPrefix(comment, "pginflux field ")}
			switch typ {
			case "double precision", "real":
				c.store = storeDouble
			case "bigint", "integer", "smallint":
				c.store = storeInteger
			}
			cols[name] = c
			stores[c.key] = c.store
		default:
			t.Errorf("%s: column %q (%s) has no owner comment (%q)", ident, name, typ, comment)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = pool.Query(ctx, "SELECT (extract(epoch FROM time) * 1000000)::bigint, (to_jsonb(r.*) - 'time')::text FROM "+ident+" AS r")
	if err != nil {
		t.Fatal(err)
	}
	pts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (point, error) {
		p := point{measurement: m, values: make(map[string]string)}
		var js string
		if err := r.Scan(&p.micros, &js); err != nil {
			return p, err
		}
		obj, err := decodeJSON(js)
		if err != nil {
			return p, err
		}
		for name, v := range obj {
			if v == nil {
				continue
			}
			if name == "pginflux_overflow" {
				over, ok := v.(map[string]any)
				if !ok {
					return p, fmt.Errorf("overflow %v is not an object", v)
				}
				for role, prefix := range map[string]string{"tags": "t:", "fields": "f:"} {
					kv, _ := over[role].(map[string]any)
					for k, x := range kv {
						p.values[prefix+k] = canonJSON(x, storeDecimal)
					}
				}
				continue
			}
			c, ok := cols[name]
			if !ok {
				return p, fmt.Errorf("column %q serves no key", name)
			}
			p.values[c.key] = canonJSON(v, c.store)
		}
		return p, nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", ident, err)
	}
	return pts, stores
}
