// Package schema is the sink's knowledge of the database's catalog: the
// schema, the measurement tables and their columns, the names they get,
// the table template (--create-table-sql), partitions (--partition-by),
// and pginflux's own tables (the rejected table, the series table, the
// commit and spool marker tables). It makes them as rows need them, under
// advisory locks shared by every pginflux process, and remembers what it
// has seen until told to forget it.
//
// It never touches a batch or a row: the sink (package sink) asks a
// Catalog for a table and encodes rows for what it returns. Preflight and
// Refusal check a role's privileges before a sink starts.
package schema
