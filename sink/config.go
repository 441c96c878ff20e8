package sink

import (
	"os"
	"text/template"
	"time"

	"github.com/pginflux/pginflux/internal/budget"
	"github.com/pginflux/pginflux/sink/schema"
)

// Storage modes: how tags and fields are laid out in a table.
const (
	StorageJSONB   = "jsonb"   // time, tags jsonb, fields jsonb
	StorageColumns = "columns" // time, one column per tag and field
)

// Config configures a Sink.
type Config struct {
	Schema        string        // the schema of every table pginflux writes
	Storage       string        // StorageJSONB or StorageColumns
	BatchSize     int           // rows per COPY at most
	FlushInterval time.Duration // longest a row waits in an open batch
	Writers       int           // connections writing in parallel
	// UintType is the type of new columns for unsigned fields: "numeric"
	// (exact) or "bigint" (values above 2^63-1 are conflicts).
	UintType string
	// MaxColumns bounds the columns of a table (dropped ones included, as
	// PostgreSQL counts them); keys beyond go to its overflow column.
	MaxColumns int
	// RejectedTable is the table in Schema for lines, rows and values that
	// could not be stored; "" counts them and keeps nothing.
	RejectedTable string
	// MaxPendingRows bounds the rows taken in and not yet committed,
	// rejected or dropped; producers wait while it is reached.
	MaxPendingRows int
	// CreateTableSQL, when not nil, runs after pginflux creates a table, in
	// the same transaction (see schema.ParseTemplate).
	CreateTableSQL *template.Template
	// PartitionBy makes new tables partitioned by range of time: "day",
	// "week", "month", or "" for plain tables.
	PartitionBy string
	// Retention drops pginflux's partitions wholly older than this; 0
	// keeps them.
	Retention time.Duration
	// WriteMode is how the tables pginflux creates are keyed: WriteMerge
	// (the default; one row per point) or WriteAppend.
	WriteMode string
	// TimeNanos gives the tables pginflux creates in merge mode the column
	// schema.NanosColumn, in their point key: points less than a
	// microsecond apart are rows of their own.
	TimeNanos bool
	// DeniedRefuses makes a missing privilege (SQLSTATE 42501, which a
	// row-level security policy raises too) refuse the rows of the write,
	// their tickets told ErrPermissionDenied, rather than hold them until
	// someone grants it: for a sink that writes as a tenant's role, whose
	// privileges are the tenant's business.
	DeniedRefuses bool
	// Memory is what the rows taken in draw from the memory budget: the
	// buffers of the batches that hold them, from their first row until
	// they are written. Producers wait while the budget is spent, as they
	// do at MaxPendingRows. Nil for no budget.
	Memory *budget.Account
	// Seams lets a test reach inside one sink; zero in production.
	Seams Seams
}

// Seams are hooks for tests, set per Sink through Config.Seams: tests that
// set them can run in parallel. Every field is nil (or false) in
// production.
type Seams struct {
	// SeriesHash replaces the hash that proposes a tag set's series id,
	// to force collisions.
	SeriesHash func(tagsJSON []byte) int64
	// NoFastRow makes every row of columns storage take the general
	// encoding path, to compare fastRow with it.
	NoFastRow bool
	// CommitLost is asked after each attempt that committed; true makes
	// the attempt fail as if the connection broke before the commit was
	// confirmed.
	CommitLost func() bool
	// SpoolWrite writes a record's bytes to a spool segment in place of
	// f.Write, to fail as a full disk would.
	SpoolWrite func(f *os.File, p []byte) (int, error)
	// Replayed is called after each replayed spool record; true stops the
	// replay there, as a crash would.
	Replayed func(segment, item int64) bool
}

// catalogConfig is what the schema layer needs of c.
func (c Config) catalogConfig() schema.Config {
	return schema.Config{
		Schema:         c.Schema,
		MaxColumns:     c.MaxColumns,
		UintType:       c.UintType,
		RejectedTable:  c.RejectedTable,
		CreateTableSQL: c.CreateTableSQL,
		PartitionBy:    c.PartitionBy,
		Merge:          c.WriteMode != WriteAppend,
		TimeNanos:      c.TimeNanos,
		SeriesHash:     c.Seams.SeriesHash,
	}
}

// Validate reports settings of c that cannot work together, in words a
// user can act on; nil when there are none (see schema.Validate). A sink
// made with such a Config creates no table.
func (c Config) Validate() error { return schema.Validate(c.PartitionBy, c.CreateTableSQL) }

// DefaultMaxPendingRows is the default of Config.MaxPendingRows: about
// 50 MiB of Telegraf cpu lines.
const DefaultMaxPendingRows = 200_000

// DefaultMaxColumns is the default of Config.MaxColumns: well below
// PostgreSQL's 1600, which dropped columns count toward too.
const DefaultMaxColumns = 1000
