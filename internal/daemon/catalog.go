package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/ingest/httpapi"
)

// The httpapi.Catalog of /query: what InfluxDB tools ask before they
// write, answered from PostgreSQL. A database is a schema: --schema, or
// with --schema-from-db the schema a db names, as for writes.

// pginflux's own tables in a schema, which are no measurements: the series
// table, the commit markers, the spool markers (the rejected table is
// --rejected-table). Their comments, and partitions', start with
// "pginflux".
var ownTables = []string{"pginflux_series", "pginflux_commits", "pginflux_spool"}

// createdComment marks a schema CREATE DATABASE made, so that SHOW
// DATABASES lists it before anything is written into it.
const createdComment = "pginflux: made by CREATE DATABASE"

// catalogPool returns the pool /query reads through, or ErrUnavailable
// while pginflux is starting or stopping.
func (w *httpWrites) catalogPool() (*pgxpool.Pool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case writesStarting:
		return nil, fmt.Errorf("%w: pginflux is starting", httpapi.ErrUnavailable)
	case writesStopping:
		return nil, fmt.Errorf("%w: pginflux is stopping", httpapi.ErrUnavailable)
	}
	return w.pool, nil
}

// schemaOf names the schema of database db, as writes do.
func (w *httpWrites) schemaOf(db string) string {
	if w.cfg.SchemaFromDB && db != "" {
		return db
	}
	return w.cfg.Schema
}

// catalogErr tells a failure PostgreSQL answered (500) from one of
// reaching it (503).
func catalogErr(what string, err error) error {
	if answered(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: the database is unreachable: %v", httpapi.ErrUnavailable, what, err)
}

// answered reports whether err is PostgreSQL's answer to a statement, as
// opposed to a failure to reach it: a connection refused, or refused by
// the server while it starts, stops or has no slot left (SQLSTATE classes
// 08, 57 and 53, which come with a connection attempt too).
func answered(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return false
	}
	switch pe.Code[:2] {
	case "08", "53", "57":
		return false
	}
	return true
}

// CreateDatabase makes the schema db names with --schema-from-db, as a
// sink does on first write (the role needs CREATE on the database), and
// marks it when it made it; without --schema-from-db it does nothing, as
// every database is --schema.
func (w *httpWrites) CreateDatabase(ctx context.Context, db string) error {
	if !w.cfg.SchemaFromDB {
		return nil
	}
	if err := validSchema(db); err != nil {
		return fmt.Errorf("%w: database %q cannot name a schema (--schema-from-db): %v", httpapi.ErrInvalid, db, err)
	}
	pool, err := w.catalogPool()
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// The lock the sinks take before they create a schema.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "pginflux:"+db); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", db).Scan(&exists); err != nil || exists {
			return err
		}
		ident := pgx.Identifier{db}.Sanitize()
		if _, err := tx.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "COMMENT ON SCHEMA "+ident+" IS '"+createdComment+"'")
		return err
	})
	if err != nil && answered(err) {
		return fmt.Errorf("%w: cannot create schema %s: %v", httpapi.ErrInvalid, db, err)
	}
	if err != nil {
		return catalogErr("create schema "+db, err)
	}
	return nil
}

// Databases lists --schema and, with --schema-from-db, the schemas
// pginflux has written into since it started, those holding pginflux's
// tables (the series table, the rejected table), and those CREATE
// DATABASE made.
func (w *httpWrites) Databases(ctx context.Context) ([]string, error) {
	names := []string{w.cfg.Schema}
	if !w.cfg.SchemaFromDB {
		return names, nil
	}
	pool, err := w.catalogPool()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	for _, sw := range w.schemas {
		names = append(names, sw.schema)
	}
	w.mu.Unlock()
	rows, err := pool.Query(ctx, `
		SELECT n.nspname FROM pg_namespace n
		WHERE obj_description(n.oid, 'pg_namespace') = $1
		   OR EXISTS (SELECT 1 FROM pg_class c
		              WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
		                AND (c.relname = ANY ($2) OR obj_description(c.oid, 'pg_class') LIKE 'pginflux: %'))`,
		createdComment, append(slices.Clone(ownTables), w.cfg.RejectedTable))
	if err != nil {
		return nil, catalogErr("list schemas", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, catalogErr("list schemas", err)
	}
	names = append(names, found...)
	slices.Sort(names)
	return slices.Compact(names), nil
}

// querySchema names the schema /query reads for database db, and says
// whether it must exist for db to (with --schema-from-db, a schema that
// is not --schema).
func (w *httpWrites) querySchema(db string) (schema string, mustExist bool) {
	schema = w.schemaOf(db)
	return schema, schema != w.cfg.Schema
}

// schemaExists returns ErrNotFound when db, named with --schema-from-db,
// has no schema.
func (w *httpWrites) schemaExists(ctx context.Context, pool *pgxpool.Pool, db, schema string) error {
	if schema == w.cfg.Schema {
		return nil
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return catalogErr("look up schema "+schema, err)
	}
	if !exists {
		return fmt.Errorf("%w: %s", httpapi.ErrNotFound, db)
	}
	return nil
}

// Retention returns --retention, for every database that exists.
func (w *httpWrites) Retention(ctx context.Context, db string) (time.Duration, error) {
	pool, err := w.catalogPool()
	if err != nil {
		return 0, err
	}
	if err := w.schemaExists(ctx, pool, db, w.schemaOf(db)); err != nil {
		return 0, err
	}
	return w.cfg.Retention, nil
}
