// Package devtools holds what pginflux's engineers use and its users do
// not run in production, apart from the product:
//
//   - loadgen: the load generator and checker behind pginflux bench.
//   - pgcluster: a throwaway PostgreSQL cluster (initdb, start, stop).
//   - pgtest: a real database for tests, a schema each, and TimescaleDB
//     and Citus clusters.
//   - devrun: make run's development PostgreSQL in front of pginflux.
//   - testcert: a self-signed certificate for TLS tests.
//   - daemontest: the harness of the end-to-end tests; doccheck: docs
//     checked by tests.
//   - hostile: hostile clients (gzip bombs, big bodies, slow clients, a
//     long TCP line) against a running pginflux, and their peak RSS.
//   - influxref: records InfluxDB 1.8's answers to a corpus of InfluxQL
//     queries as golden files (testdata/influxql), InfluxDB being the
//     reference for /query.
package devtools
