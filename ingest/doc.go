// Package ingest is where line protocol enters pginflux. Its packages are
// the first steps of the data path, in order:
//
//   - udp, tcp and httpapi: the transports, side by side. Each receives
//     bytes and hands them on; none knows line protocol or PostgreSQL.
//   - pipeline: between the transports and the sink. It parses what they
//     received (package parse) into the rows of a sink.Batcher or
//     sink.Shared, over bounded queues that count what they drop.
//
// The sink (package sink) writes the rows into PostgreSQL. The daemon
// (internal/daemon) wires the steps together.
package ingest
