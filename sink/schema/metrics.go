package schema

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what a Catalog makes. Safe for concurrent use.
type Metrics struct {
	TablesCreated     prometheus.Counter
	ColumnsCreated    prometheus.Counter
	PartitionsCreated prometheus.Counter
	PartitionsDropped prometheus.Counter
	SeriesRegistered  prometheus.Counter
	SeriesCollisions  prometheus.Counter
}

// NewMetrics creates the catalog's metrics and registers them with reg
// (nil for none). Their names are the sink's (pginflux_sink_...): they
// are the sink's work as an operator sees it.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		TablesCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_sink_created_tables_total",
			Help: "Measurement tables created.",
		}),
		ColumnsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_sink_created_columns_total",
			Help: "Columns added to measurement tables (columns storage).",
		}),
		PartitionsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_sink_created_partitions_total",
			Help: "Partitions created (--partition-by), ahead of the data or on demand.",
		}),
		PartitionsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_sink_dropped_partitions_total",
			Help: "Partitions dropped because they ended before --retention.",
		}),
		SeriesRegistered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_sink_series_registered_total",
			Help: "Tag sets given a series id in the series table (pginflux_series).",
		}),
		SeriesCollisions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pginflux_sink_series_collisions_total",
			Help: "Series ids found taken by another tag set, so that the next number was used.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.TablesCreated, m.ColumnsCreated, m.PartitionsCreated, m.PartitionsDropped,
			m.SeriesRegistered, m.SeriesCollisions)
	}
	return m
}
