package query

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// pginflux's own tables in a schema, which are no measurements: the
// series table, the commit markers, the spool markers (and the rejected
// table). Their comments, and partitions', start with "pginflux".
var ownTables = []string{seriesTable, "pginflux_commits", "pginflux_spool"}

// allMeasurements lists the measurements of schema sch: its tables with
// a time column, less pginflux's own tables and partitions, each under
// its measurement's name (a table of a measurement name over 63 bytes,
// shortened, has the whole name as its comment), sorted.
func (r *run) allMeasurements(ctx context.Context, sch string) ([]string, error) {
	rows, err := r.tx.Query(ctx, `
		SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND EXISTS (SELECT 1 FROM pg_attribute a
		              WHERE a.attrelid = c.oid AND a.attname = 'time' AND a.attnum > 0 AND NOT a.attisdropped)`, sch)
	if err != nil {
		return nil, err
	}
	var names []string
	var name, comment string
	_, err = pgx.ForEachRow(rows, []any{&name, &comment}, func() error {
		if m, ok := r.measurementOf(name, comment); ok {
			names = append(names, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// measurementOf returns the measurement table name holds, or false for
// one of pginflux's own tables.
func (r *run) measurementOf(name, comment string) (string, bool) {
	rejected := r.e.opt.RejectedTable
	if slices.Contains(ownTables, name) || (rejected != "" && name == rejected) ||
		strings.HasPrefix(comment, "pginflux: ") || strings.HasPrefix(comment, "pginflux partition ") {
		return "", false
	}
	// A shortened name is the start of the measurement's, "_" and 12 hex
	// digits (schema.TableName); the comment holds the whole name.
	if n := len(name) - 13; comment != "" && n > 0 && name[n] == '_' && strings.HasPrefix(comment, name[:n]) {
		if _, err := hex.DecodeString(name[n+1:]); err == nil {
			return comment, true
		}
	}
	return name, true
}
