// Package query answers InfluxQL, as InfluxDB 1.x's /query does, from the
// tables pginflux writes: each statement, parsed by InfluxDB's own parser
// (github.com/influxdata/influxql), becomes SQL that PostgreSQL runs in a
// read-only transaction, as the querying credential's role when it has
// one.
//
// A SELECT is planned in select.go: what aggregates and bucketing SQL can
// do runs in PostgreSQL (aggregate.go builds the SQL, where.go the
// condition); what it cannot — fill(previous|linear), the derivatives and
// other transformations across windows, SLIMIT — is finished in Go on the
// aggregated rows (fill.go, transform.go, eval.go). meta.go reads which
// columns of a table serve which tags and fields, in both storages; show.go
// answers the SHOW statements Grafana and Chronograf send to find their
// way.
package query
