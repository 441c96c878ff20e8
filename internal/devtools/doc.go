// Package devtools holds what pginflux's engineers use and its users do
// not run in production, apart from the product:
//
//   - loadgen: the load generator and checker behind pginflux bench.
//   - pgcluster: a throwaway PostgreSQL cluster (initdb, start, stop).
//   - pgtest: a real database for tests, a schema each, and TimescaleDB
//     and Citus clusters.
//   - devrun: make run's development PostgreSQL in front of pginflux.
//   - testcert: a self-signed certificate for TLS tests.
package devtools
