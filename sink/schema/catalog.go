package schema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"

	"github.com/jackc/pgx/v5"
)

// Table is what the writers need to know of a measurement's table in
// jsonb storage, or of the rejected table. It is never changed once made.
type Table struct {
	Name    string // the table's name in PostgreSQL (see TableName)
	Ident   string // schema and name, quoted
	CopySQL string // the COPY of a row as the sink encodes it
	Point   bool   // the table has a point key (see hasPointKey)
}

// ErrTableMismatch marks a table that exists with a layout pginflux cannot
// write into. No retry fixes it.
var ErrTableMismatch = errors.New("table layout does not match the storage mode")

// ErrCreateFailed marks a table that could not be created because the
// --create-table-sql template failed; its rows go to the rejected table.
var ErrCreateFailed = errors.New("the table template failed")

// Config is what a Catalog needs of the sink's configuration.
type Config struct {
	Schema     string // the schema of every table
	MaxColumns int    // a table's columns at most (see sink.Config.MaxColumns)
	// UintType is the type of new columns for unsigned fields: "numeric"
	// or "bigint".
	UintType string
	// RejectedTable is the name of the rejected table in Schema.
	RejectedTable string
	// CreateTableSQL, when not nil, runs after a table is created, in the
	// same transaction (see ParseTemplate).
	CreateTableSQL *template.Template
	// PartitionBy makes new tables partitioned by range of time: "day",
	// "week", "month", or "" for plain tables.
	PartitionBy string
	// Merge gives the tables pginflux makes a point key.
	Merge bool
	// SeriesHash, for tests, replaces the hash that proposes a tag set's
	// series id (to force collisions); nil in production.
	SeriesHash func(tagsJSON []byte) int64
}

// Catalog creates the schema and the measurement tables and remembers the
// ones it has seen. Safe for concurrent use.
//
// DDL on one table is serialized across every pginflux process by a
// transaction-level advisory lock on "pginflux:<schema>.<table>", so that
// two processes seeing a new measurement at once both succeed.
type Catalog struct {
	schema       string
	maxColumns   int
	uintType     string
	rejectedName string
	metrics      *Metrics
	log          *slog.Logger
	// testSeriesHash: see Config.SeriesHash.
	testSeriesHash func(tagsJSON []byte) int64

	template   *template.Template // --create-table-sql, or nil
	refused    error              // why no table may be made (see Validate), or nil
	partitions *Partitions        // --partition-by, or nil
	merge      bool               // new tables get a point key

	commitsMu      sync.Mutex   // held while the commit marker table is made or cleaned
	commitsCleaned atomic.Int64 // see commitsReady
	commitsOff     atomic.Bool  // the commit marker table cannot be used
	noKeyLogged    sync.Map     // table names

	mu          sync.Mutex
	schemaReady bool
	tables      map[string]*Table      // jsonb storage, by measurement name
	typed       map[string]*TypedTable // columns storage, by measurement name
	rejected    *Table
	series      map[string]*Series // by table name
	names       map[string]string  // measurement -> table name, when not TableName's
	seriesMade  bool
}

// New returns the catalog of cfg.Schema. A configuration that cannot
// work (see Validate) is logged: such a catalog makes no table.
func New(cfg Config, m *Metrics, log *slog.Logger) *Catalog {
	var parts *Partitions
	if cfg.PartitionBy != "" {
		parts = newPartitions(cfg.PartitionBy, cfg.Schema, m)
	}
	refused := Validate(cfg.PartitionBy, cfg.CreateTableSQL)
	if refused != nil {
		log.Error("pginflux's configuration cannot work; it creates no table, and rows of measurements without one go to the rejected table (fix the flags, then restart pginflux)",
			"schema", cfg.Schema, "err", refused)
	}
	return &Catalog{
		testSeriesHash: cfg.SeriesHash,
		refused:        refused,
		template:       cfg.CreateTableSQL,
		partitions:     parts,
		schema:         cfg.Schema,
		maxColumns:     cfg.MaxColumns,
		uintType:       cfg.UintType,
		rejectedName:   cfg.RejectedTable,
		merge:          cfg.Merge,
		series:         make(map[string]*Series),
		names:          make(map[string]string),
		metrics:        m,
		log:            log,
		tables:         make(map[string]*Table),
		typed:          make(map[string]*TypedTable),
	}
}

// jsonbColumns is the layout of a table in jsonb storage, in the order the
// sink encodes rows.
var jsonbColumns = []struct{ name, typ string }{
	{"time", "timestamptz"},
	{"tags", "jsonb"},
	{"fields", "jsonb"},
}

// Lookup returns the jsonb-storage table of a measurement, creating it
// (and the schema) when needed, on conn.
func (c *Catalog) Lookup(ctx context.Context, conn *pgx.Conn, measurement string) (*Table, error) {
	c.mu.Lock()
	t, ok := c.tables[measurement]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	if err := c.Ready(ctx, conn); err != nil {
		return nil, err
	}
	t, err := c.ensureTable(ctx, conn, measurement)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tables[measurement] = t
	c.mu.Unlock()
	return t, nil
}

// Forget drops what is known of a measurement's table (or of all tables and
// the schema, when someone dropped them), so that the next lookup checks
// again.
func (c *Catalog) Forget(measurement string, schemaToo bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if schemaToo {
		c.schemaReady = false
		clear(c.tables)
		clear(c.typed)
		clear(c.series)
		c.seriesMade = false
		c.commitsCleaned.Store(0)
		c.rejected = nil
		if c.partitions != nil {
			c.partitions.forget("")
		}
		return
	}
	delete(c.tables, measurement)
	delete(c.typed, measurement)
	if c.partitions != nil {
		c.partitions.forget(c.nameOf(measurement))
	}
}

// ForgetOwn drops what is known of pginflux's own tables (the rejected,
// series and commit marker tables), so that the next use checks, and makes
// them again when someone dropped them.
func (c *Catalog) ForgetOwn() {
	c.mu.Lock()
	c.rejected = nil
	c.seriesMade = false
	c.mu.Unlock()
	c.commitsCleaned.Store(0)
	c.commitsOff.Store(false)
}

// partitionClause makes new tables partitioned when asked to.
func (c *Catalog) partitionClause() string {
	if c.partitions == nil {
		return ""
	}
	return c.partitions.partitionedDDL()
}

// Ready makes sure the schema exists, once.
func (c *Catalog) Ready(ctx context.Context, conn *pgx.Conn) error {
	c.mu.Lock()
	ready := c.schemaReady
	c.mu.Unlock()
	if ready {
		return nil
	}
	return c.ensureSchema(ctx, conn)
}

// RejectedTable returns the rejected table, creating it when missing.
func (c *Catalog) RejectedTable(ctx context.Context, conn *pgx.Conn) (*Table, error) {
	c.mu.Lock()
	t := c.rejected
	c.mu.Unlock()
	if t != nil {
		return t, nil
	}
	if err := c.Ready(ctx, conn); err != nil {
		return nil, err
	}
	ident := pgx.Identifier{c.schema, c.rejectedName}.Sanitize()
	created, err := c.createOwn(ctx, conn, c.rejectedName, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, rejectedDDL(ident)); err != nil {
			return err
		}
		return commentOn(ctx, tx, "TABLE "+ident, "pginflux: lines, rows and values that could not be stored; replay with: psql -Atc 'SELECT line FROM <this table>' | pginflux send", true)
	})
	if err != nil {
		return nil, err
	}
	if created {
		c.log.Info("rejected table created", "schema", c.schema, "table", c.rejectedName)
	}
	t = &Table{Name: c.rejectedName, Ident: ident, CopySQL: rejectedCopySQL(ident)}
	c.mu.Lock()
	c.rejected = t
	c.mu.Unlock()
	return t, nil
}

// createOwn makes one of pginflux's own tables, name in the schema, when
// it is missing: make runs in a transaction under the table's DDL lock,
// after a look at the catalog. created says it was made now.
func (c *Catalog) createOwn(ctx context.Context, conn *pgx.Conn, name string, make func(tx pgx.Tx) error) (created bool, err error) {
	ident := pgx.Identifier{c.schema, name}.Sanitize()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "pginflux:"+c.schema+"."+name); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		created = true
		return make(tx)
	})
	if err != nil {
		return false, fmt.Errorf("create table %s: %w", ident, err)
	}
	return created, nil
}

func (c *Catalog) ensureSchema(ctx context.Context, conn *pgx.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", c.schema).Scan(&exists); err != nil {
		return fmt.Errorf("look up schema %s: %w", c.schema, err)
	}
	if !exists {
		// Only when missing: a role without CREATE on the database can
		// still use a schema an administrator made for it.
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "pginflux:"+c.schema); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{c.schema}.Sanitize())
			return err
		})
		if err != nil {
			return fmt.Errorf("create schema %s: %w", c.schema, err)
		}
		c.log.Info("schema created", "schema", c.schema)
	}
	c.mu.Lock()
	c.schemaReady = true
	c.mu.Unlock()
	return nil
}

func (c *Catalog) ensureTable(ctx context.Context, conn *pgx.Conn, measurement string) (*Table, error) {
	var name, ident string
	created := false
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var exists bool
		var err error
		if name, exists, err = c.claimName(ctx, tx, measurement); err != nil {
			return err
		}
		ident = pgx.Identifier{c.schema, name}.Sanitize()
		if exists {
			return nil
		}
		cols := make([]string, len(jsonbColumns))
		for i, col := range jsonbColumns {
			cols[i] = pgx.Identifier{col.name}.Sanitize() + " " + col.typ + " NOT NULL"
		}
		if c.merge {
			cols = append(cols[:1], append([]string{SeriesColumn + " bigint NOT NULL"}, cols[1:]...)...)
			cols = append(cols, pointKeyDDL)
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE "+ident+" ("+strings.Join(cols, ", ")+")"+c.partitionClause()); err != nil {
			return err
		}
		created = true
		if err := commentOn(ctx, tx, "TABLE "+ident, measurement, name != measurement); err != nil {
			return err
		}
		return c.runTemplate(ctx, tx, name, measurement)
	})
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", ident, err)
	}
	if created {
		c.metrics.TablesCreated.Inc()
		c.log.Info("table created", "schema", c.schema, "table", name, "measurement", measurement)
	}
	if err := c.checkColumns(ctx, conn, ident); err != nil {
		return nil, err
	}
	point, err := hasPointKey(ctx, conn, ident)
	if err != nil {
		return nil, err
	}
	cols := make([]string, len(jsonbColumns))
	for i, col := range jsonbColumns {
		cols[i] = pgx.Identifier{col.name}.Sanitize()
	}
	return &Table{
		Name:    name,
		Ident:   ident,
		Point:   point,
		CopySQL: "COPY " + ident + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)",
	}, nil
}

// checkColumns makes sure a table, perhaps made by a user beforehand, has
// the columns the binary rows are encoded for. Extra columns are fine when
// they have defaults or allow NULL.
func (c *Catalog) checkColumns(ctx context.Context, conn *pgx.Conn, ident string) error {
	rows, err := conn.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod)
		FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, ident)
	if err != nil {
		return fmt.Errorf("read columns of %s: %w", ident, err)
	}
	types := make(map[string]string)
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return fmt.Errorf("read columns of %s: %w", ident, err)
		}
		types[name] = typ
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read columns of %s: %w", ident, err)
	}
	var problems []string
	for _, col := range jsonbColumns {
		got, ok := types[col.name]
		want := col.typ
		if want == "timestamptz" {
			want = "timestamp with time zone"
		}
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("no column %q", col.name))
		case got != want && !(col.name == "time" && got == "timestamp without time zone"):
			problems = append(problems, fmt.Sprintf("column %q is %s, not %s", col.name, got, want))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("table %s: %s: %w", ident, strings.Join(problems, "; "), ErrTableMismatch)
	}
	return nil
}

// pointKeyDDL is the point key of the tables pginflux makes in merge mode:
// it includes time, as partitioned tables and TimescaleDB hypertables
// require of a unique key, and starts with it, so that rows arriving in
// time order go to the right edge of the index (PostgreSQL's fast path
// for rising keys): the server spends less on them than with series_id
// first.
const pointKeyDDL = "PRIMARY KEY (time, " + SeriesColumn + ")"

// hasPointKey reports whether a table has a point key pginflux can merge
// into: a bigint column series_id and a unique, immediate, valid index (a
// primary key or unique constraint included) on exactly (series_id, time),
// in either order, without expressions, predicate or included columns.
func hasPointKey(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, ident string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (
		SELECT 1 FROM pg_index i
		WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indimmediate AND i.indisvalid
			AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnatts = 2
			AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
				WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) = ARRAY['series_id', 'time'])
		AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'series_id'
			AND atttypid = 'bigint'::regtype AND NOT attisdropped)`, ident).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up the key of %s: %w", ident, err)
	}
	return ok, nil
}

// NoKey says once per table, in merge mode, that a table without a point
// key is written in append mode.
func (c *Catalog) NoKey(table string) {
	if !c.merge {
		return
	}
	if _, seen := c.noKeyLogged.LoadOrStore(table, struct{}{}); !seen {
		c.log.Warn("the table has no point key (a unique key on time and series_id); writing it in append mode, where a point written twice is two rows (see README, Converting a table)",
			"schema", c.schema, "table", table)
	}
}

// Partitions returns what the catalog knows of partitions, or nil without
// --partition-by.
func (c *Catalog) Partitions() *Partitions { return c.partitions }

// Schema returns the name of the catalog's schema.
func (c *Catalog) Schema() string { return c.schema }
