package sink

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pginflux/pginflux/sink/schema"
)

// Reasons a row is dropped for good by the sink; the closed label set of
// pginflux_sink_dropped_rows_total. Rows and values that could not be
// stored but were kept in the rejected table are counted apart, in
// pginflux_sink_rejected_total.
const (
	// DropPermanentError: an error no retry fixed (a permission missing,
	// say) persisted through every attempt.
	DropPermanentError = "permanent_error"
	// DropAbandoned: the shutdown timeout passed before the row was written.
	DropAbandoned = "abandoned"
	// DropDenied: PostgreSQL refused the rows for a privilege the sink's
	// role lacks (Config.DeniedRefuses), and the request was told.
	DropDenied = "denied"
	// ReasonRefused and ReasonTableMismatch (rows their table would not
	// take) count here only when there is no rejected table to keep them.
)

// Reasons for rejected table entries not listed in convert.go.
const (
	ReasonTableMismatch = "table_mismatch" // the table exists with a layout pginflux cannot fill
	ReasonReservedName  = "reserved_name"  // the measurement has the rejected table's name
	ReasonCreateFailed  = "create_failed"  // --create-table-sql failed, so the table does not exist
	ReasonColumnFailed  = "column_failed"  // the key's column could not be added (a privilege missing, say)
)

var dropReasons = []string{DropPermanentError, DropAbandoned, DropDenied, ReasonRefused, ReasonTableMismatch}

// rejectReasons is the closed label set of pginflux_sink_rejected_total:
// the parser's reasons for lines, and the sink's for values and rows.
var rejectReasons = []string{"syntax", "out_of_range", "nul_byte", "invalid_utf8",
	ReasonTypeConflict, ReasonTooLong, ReasonRefused, ReasonOverflow, ReasonTableMismatch, ReasonReservedName, ReasonCreateFailed, ReasonColumnFailed}

// Metrics counts what the sink writes and drops, and (its schema.Metrics)
// what it creates. Safe for concurrent use.
type Metrics struct {
	*schema.Metrics // tables, columns, partitions and series made

	RowsWritten    prometheus.Counter
	BatchesWritten prometheus.Counter
	BatchDuration  prometheus.Histogram
	RowsDropped    *prometheus.CounterVec // reason
	CopyErrors     *prometheus.CounterVec // sqlstate_class
	Retries        prometheus.Counter
	PendingRows    prometheus.Gauge
	Rejected       *prometheus.CounterVec // reason
	OverflowValues prometheus.Counter
	Latency        prometheus.Histogram
	SpooledRows    prometheus.Counter
	ReplayedRows   prometheus.Counter
	SpoolBytes     prometheus.Gauge
	// SpoolAppendErrors and SpoolCorruptSegments: see spool.go.
	SpoolAppendErrors    prometheus.Counter
	SpoolCorruptSegments prometheus.Counter
	// Point identity: see merge.go and subresolution.go.
	MergedRows              prometheus.Counter
	SubresolutionMergedRows prometheus.Counter // a part of MergedRows
	UpsertBatches           prometheus.Counter
}

// NewMetrics creates the sink's metrics and registers them with reg (nil
// for none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Metrics: schema.NewMetrics(reg),

		RowsWritten:    counter("pginflux_sink_written_rows_total", "Rows committed to PostgreSQL."),
		BatchesWritten: counter("pginflux_sink_written_batches_total", "COPY batches committed to PostgreSQL."),
		BatchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pginflux_sink_batch_duration_seconds",
			Help:    "Time to COPY one batch, including table lookups.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		RowsDropped: counterVec("pginflux_sink_dropped_rows_total",
			"Rows lost for good, by reason: permanent_error, abandoned, and refused or table_mismatch when there is no rejected table to keep them.", "reason"),
		CopyErrors: counterVec("pginflux_sink_copy_errors_total",
			"Failed COPY attempts by SQLSTATE class (two characters; none when the error came without one, such as a lost connection).", "sqlstate_class"),
		Retries: counter("pginflux_sink_retries_total", "COPY attempts repeated after a temporary error."),
		PendingRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pginflux_sink_pending_rows",
			Help: "Rows accepted by the sink and not yet committed or dropped.",
		}),
		Rejected: counterVec("pginflux_sink_rejected_total",
			"Lines, rows and values that could not be stored as they were, by reason; kept in the rejected table when there is one.", "reason"),
		OverflowValues: counter("pginflux_sink_overflow_values_total",
			"Values stored in a table's overflow jsonb column because the table is at --max-columns."),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pginflux_sink_receive_to_commit_seconds",
			Help:    "Time from receiving the oldest row of a batch to committing the batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),

		SpooledRows:  counter("pginflux_sink_spooled_rows_total", "Rows written to the spool (--spool-dir) because PostgreSQL could not take them then."),
		ReplayedRows: counter("pginflux_sink_replayed_rows_total", "Rows replayed from the spool into PostgreSQL."),
		SpoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pginflux_sink_spool_bytes",
			Help: "Bytes the spool holds on disk.",
		}),
		SpoolAppendErrors: counter("pginflux_sink_spool_append_errors_total",
			"Appends to the spool that failed (a full disk, say): nothing of them was kept, and their rows stayed in memory."),
		SpoolCorruptSegments: counter("pginflux_sink_spool_corrupt_segments_total",
			"Spool segments found damaged (a bad record with more after it): written up to the damage and kept as <name>.corrupt."),

		MergedRows: counter("pginflux_sink_merged_rows_total",
			"Rows merged in memory into an earlier row of the same point (measurement, tag set and time as the time column keeps it) of their batch."),
		SubresolutionMergedRows: counter("pginflux_sink_subresolution_merged_rows_total",
			"Of pginflux_sink_merged_rows_total, the rows whose time in nanoseconds was that of no earlier row of their point: points InfluxDB keeps apart, merged because the time column keeps microseconds (or its precision)."),
		UpsertBatches: counter("pginflux_sink_upsert_batches_total",
			"Batches merged into points already stored, through a staging table and INSERT ... ON CONFLICT, instead of a plain COPY."),
	}
	for _, r := range dropReasons {
		m.RowsDropped.WithLabelValues(r)
	}
	for _, r := range rejectReasons {
		m.Rejected.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.RowsWritten, m.BatchesWritten, m.BatchDuration, m.RowsDropped,
			m.CopyErrors, m.Retries, m.PendingRows,
			m.Rejected, m.OverflowValues, m.Latency,
			m.SpooledRows, m.ReplayedRows, m.SpoolBytes, m.SpoolAppendErrors, m.SpoolCorruptSegments,
			m.MergedRows, m.SubresolutionMergedRows, m.UpsertBatches)
	}
	return m
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func counterVec(name, help, label string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
}
