package schema

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	Nanos   bool   // the point key includes NanosColumn (see hasPointKey)
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
	// TimeNanos adds NanosColumn to the point key of the tables pginflux
	// makes in merge mode.
	TimeNanos bool
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
	timeNanos  bool               // and NanosColumn in it

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
		timeNanos:      cfg.TimeNanos,
		series:         make(map[string]*Series),
		names:          make(map[string]string),
		metrics:        m,
		log:            log,
		tables:         make(map[string]*Table),
		typed:          make(map[string]*TypedTable),
	}
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

// Partitions returns what the catalog knows of partitions, or nil without
// --partition-by.
func (c *Catalog) Partitions() *Partitions { return c.partitions }

// Schema returns the name of the catalog's schema.
func (c *Catalog) Schema() string { return c.schema }
