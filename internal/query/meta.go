package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/influxdata/influxql"
	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/sink/schema"
)

// fieldType is a field's type as InfluxDB names it.
type fieldType int

const (
	typeFloat fieldType = iota + 1
	typeInteger
	typeString
	typeBoolean
)

func (t fieldType) String() string {
	switch t {
	case typeFloat:
		return "float"
	case typeInteger:
		return "integer"
	case typeString:
		return "string"
	case typeBoolean:
		return "boolean"
	}
	return "unknown"
}

func (t fieldType) numeric() bool { return t == typeFloat || t == typeInteger }

// table is what a query needs of a measurement's table: which SQL
// expression reads each tag and field.
type table struct {
	measurement string
	ident       string // quoted, with its schema
	name        string // the table's name, unquoted
	schema      string
	jsonb       bool
	nanos       bool              // a time_ns column adds nanoseconds to time
	tags        map[string]string // tag key → SQL of its value (text, NULL when absent)
	fields      map[string]field
	// series says rows carry a series_id registered in the schema's
	// series table, whose tags hold every key of seriesTags: a condition
	// on those tags can pick series ids first (see seriesFilter).
	series     bool
	seriesTags map[string]bool
}

// field is a field key's column.
type field struct {
	typ fieldType
	sql string // its value, of typ's SQL type (double precision, bigint, text, boolean), NULL when absent
	raw string // its value as stored, for raw points
	// json says raw is the text of a jsonb value.
	json bool
}

// key reads what ref names in t: a tag (the SQL of its value) or a
// field, a type annotation (::tag, ::field, a field's type) choosing.
func (t *table) key(ref *influxql.VarRef) (tag string, isTag bool, f field, isField bool) {
	tag, isTag = t.tags[ref.Val]
	f, isField = t.fields[ref.Val]
	switch ref.Type {
	case influxql.Tag:
		isField = false
	case influxql.Float, influxql.Integer, influxql.String, influxql.Boolean:
		isTag = false
	}
	return tag, isTag, f, isField
}

// tagKeys and fieldKeys are the keys, sorted.
func (t *table) tagKeys() []string   { return sortedKeys(t.tags) }
func (t *table) fieldKeys() []string { return sortedKeys(t.fields) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// metaCache keeps what was read of jsonb tables' keys for a while: those
// are read from the rows, not the catalog.
type metaCache struct {
	mu      sync.Mutex
	entries map[string]metaEntry
}

type metaEntry struct {
	at         time.Time
	tags       []string
	fromSeries bool // tags were read from the series table
	fields     map[string]fieldType
}

// jsonbTTL is how long the keys of a jsonb table are taken as read.
const jsonbTTL = 10 * time.Second

// jsonbSample is how many of a jsonb table's latest rows its field keys
// and types are read from, when it has no series table to read tags from.
const jsonbSample = 10000

// table returns the table of measurement m in schema sch, or nil when it
// has none.
func (r *run) table(ctx context.Context, sch, m string) (*table, error) {
	name := schema.TableName(m)
	ident := pgx.Identifier{sch, name}.Sanitize()
	rows, err := r.tx.Query(ctx, `SELECT a.attname, coalesce(b.typcategory, t.typcategory), coalesce(b.typname, t.typname),
			coalesce(col_description(a.attrelid, a.attnum), '')
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, ident)
	if err != nil {
		return nil, err
	}
	var cols []column
	var c column
	if _, err := pgx.ForEachRow(rows, []any{&c.name, &c.cat, &c.typ, &c.comment}, func() error {
		cols = append(cols, c)
		return nil
	}); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, nil
	}
	t := &table{measurement: m, ident: ident, name: name, schema: sch, tags: map[string]string{}, fields: map[string]field{}}
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.name] = c
	}
	if byName["time"].name == "" {
		return nil, nil // not a table of points
	}
	_, t.nanos = byName[schema.NanosColumn]
	if byName[schema.NanosColumn].typ != "int2" {
		t.nanos = false
	}
	if _, ok := byName[schema.SeriesColumn]; ok {
		ident := pgx.Identifier{sch, seriesTable}.Sanitize()
		if err := r.tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL AND has_table_privilege($1, 'SELECT')", ident).Scan(&t.series); err != nil {
			return nil, err
		}
	}
	t.seriesTags = map[string]bool{}
	if tg, fs := byName["tags"], byName["fields"]; tg.typ == "jsonb" && fs.typ == "jsonb" && !strings.HasPrefix(tg.comment, "pginflux tag") {
		t.jsonb = true
		return t, r.jsonbKeys(ctx, t)
	}
	t.typedColumns(cols)
	return t, nil
}

// column is a column of a table as the catalog tells it: its name, type
// category and name (of the base type for a domain), and comment.
type column struct{ name, cat, typ, comment string }

// typedColumns reads which tag or field each column of a table in
// columns storage serves: those pginflux made say so in their comment.
func (t *table) typedColumns(cols []column) {
	var unowned []column
	for _, c := range cols {
		switch {
		case c.name == "time", c.name == schema.SeriesColumn, c.name == schema.OverflowColumn, t.nanos && c.name == schema.NanosColumn:
		case strings.HasPrefix(c.comment, "pginflux tag "):
			k := strings.TrimPrefix(c.comment, "pginflux tag ")
			t.tags[k] = pgx.Identifier{c.name}.Sanitize()
			t.seriesTags[k] = true
		case strings.HasPrefix(c.comment, "pginflux field "):
			if f, ok := typedField(c.name, c.cat, c.typ); ok {
				t.fields[strings.TrimPrefix(c.comment, "pginflux field ")] = f
			}
		default:
			unowned = append(unowned, c)
		}
	}
	// A column someone else made serves the key of its name: a tag when
	// text (and not a field the series table knows nothing of), else a
	// field.
	for _, c := range unowned {
		if _, taken := t.tags[c.name]; taken {
			continue
		}
		if _, taken := t.fields[c.name]; taken {
			continue
		}
		if c.cat == "S" {
			t.tags[c.name] = pgx.Identifier{c.name}.Sanitize()
		} else if f, ok := typedField(c.name, c.cat, c.typ); ok {
			t.fields[c.name] = f
		}
	}
}

// typedField is the field of a column of type typ (category cat).
func typedField(name, cat, typ string) (field, bool) {
	q := pgx.Identifier{name}.Sanitize()
	switch {
	case typ == "int2" || typ == "int4" || typ == "int8":
		return field{typ: typeInteger, sql: q + "::bigint", raw: q}, true
	case typ == "float4" || typ == "float8":
		return field{typ: typeFloat, sql: q + "::double precision", raw: q}, true
	case typ == "numeric":
		// pginflux makes numeric columns for unsigned integers.
		return field{typ: typeInteger, sql: q, raw: q}, true
	case cat == "S":
		return field{typ: typeString, sql: q + "::text", raw: q + "::text"}, true
	case typ == "bool":
		return field{typ: typeBoolean, sql: q, raw: q}, true
	}
	return field{}, false
}

// jsonbKeys reads the tag and field keys of a table in jsonb storage:
// tags from the series table when it has some, fields (and tags
// otherwise) from its latest rows, whose values give the fields' types.
func (r *run) jsonbKeys(ctx context.Context, t *table) error {
	cache := &r.e.meta
	cache.mu.Lock()
	ent, ok := cache.entries[t.ident]
	cache.mu.Unlock()
	if !ok || time.Since(ent.at) > jsonbTTL {
		var err error
		if ent, err = r.readJSONBKeys(ctx, t); err != nil {
			return err
		}
		cache.mu.Lock()
		if cache.entries == nil {
			cache.entries = map[string]metaEntry{}
		}
		cache.entries[t.ident] = ent
		cache.mu.Unlock()
	}
	for _, k := range ent.tags {
		t.tags[k] = "(tags->>" + quoteLiteral(k) + ")"
		t.seriesTags[k] = ent.fromSeries
	}
	for k, typ := range ent.fields {
		t.fields[k] = jsonbField(k, typ)
	}
	return nil
}

// jsonbField is the field of key k of type typ in jsonb storage: a value
// of another type reads as NULL.
func jsonbField(k string, typ fieldType) field {
	v := "fields->" + quoteLiteral(k)
	text := "fields->>" + quoteLiteral(k)
	f := field{typ: typ, raw: "(" + v + ")::text", json: true}
	switch typ {
	case typeFloat, typeInteger:
		f.sql = "(CASE WHEN jsonb_typeof(" + v + ") = 'number' THEN (" + text + ")::double precision END)"
		if typ == typeInteger {
			f.sql = "(CASE WHEN jsonb_typeof(" + v + ") = 'number' THEN (" + text + ")::numeric END)"
		}
	case typeString:
		f.sql = "(CASE WHEN jsonb_typeof(" + v + ") = 'string' THEN " + text + " END)"
	case typeBoolean:
		f.sql = "(CASE WHEN jsonb_typeof(" + v + ") = 'boolean' THEN (" + text + ")::boolean END)"
	}
	return f
}

func (r *run) readJSONBKeys(ctx context.Context, t *table) (metaEntry, error) {
	ent := metaEntry{at: time.Now(), fields: map[string]fieldType{}}
	series := pgx.Identifier{t.schema, seriesTable}.Sanitize()
	var hasSeries bool
	if err := r.tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", series).Scan(&hasSeries); err != nil {
		return ent, err
	}
	if hasSeries {
		rows, err := r.tx.Query(ctx, "SELECT DISTINCT k FROM "+series+" s, jsonb_object_keys(s.tags) k WHERE s.table_name = $1", t.name)
		if err != nil {
			return ent, err
		}
		if ent.tags, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return ent, err
		}
		ent.fromSeries = len(ent.tags) > 0
	}
	sample := fmt.Sprintf("(SELECT tags, fields FROM %s ORDER BY time DESC LIMIT %d) s", t.ident, jsonbSample)
	if len(ent.tags) == 0 {
		rows, err := r.tx.Query(ctx, "SELECT DISTINCT k FROM "+sample+", jsonb_object_keys(s.tags) k")
		if err != nil {
			return ent, err
		}
		if ent.tags, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return ent, err
		}
	}
	rows, err := r.tx.Query(ctx, `SELECT e.key, jsonb_typeof(e.value), bool_or(jsonb_typeof(e.value) = 'number' AND e.value::text ~ '[.eE]')
		FROM `+sample+`, jsonb_each(s.fields) e GROUP BY 1, 2`)
	if err != nil {
		return ent, err
	}
	var k, typ string
	var fractional bool
	_, err = pgx.ForEachRow(rows, []any{&k, &typ, &fractional}, func() error {
		ft := map[string]fieldType{"string": typeString, "boolean": typeBoolean}[typ]
		if typ == "number" {
			ft = typeInteger
			if fractional {
				ft = typeFloat
			}
		}
		// Of several types, the first of float, integer, string, boolean,
		// as InfluxDB's SHOW FIELD KEYS of shards that disagree.
		if old, ok := ent.fields[k]; ft != 0 && (!ok || ft < old) {
			ent.fields[k] = ft
		}
		return nil
	})
	return ent, err
}

// seriesTable is the schema's table of series (see docs/tables.md).
const seriesTable = "pginflux_series"

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
