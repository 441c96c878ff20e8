package importer

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/sink"
)

// WriteSummary writes what an import did, a few lines for a person, each
// starting with "pginflux import:".
func WriteSummary(w io.Writer, res Result, cfg Config) {
	const p = "pginflux import: "
	verb := "imported"
	if cfg.DryRun {
		verb = "parsed (dry run, nothing written)"
	}
	fmt.Fprintf(w, "%s%s %s (%s from %s) in %s, %s lines/s\n", p, verb,
		plural(res.Lines, "line"), Bytes(res.Bytes), plural(int64(res.Inputs), "input"), Duration(res.Elapsed), Count(perSecond(res.Lines, res.Elapsed)))
	if !cfg.DryRun {
		fmt.Fprintf(w, "%s%s written into %s (%s created, %s added)\n", p,
			plural(res.Rows, "row"), schemaList(res.Schemas), plural(res.TablesCreated, "table"), plural(res.ColumnsCreated, "column"))
	}
	if n := sum(res.Rejected); n > 0 {
		where := "counted only (--rejected-table is empty)"
		switch {
		case cfg.Sink.RejectedTable == "":
		case cfg.DryRun:
			where = "would be kept in table " + cfg.Sink.RejectedTable + " of the schema"
		default:
			where = "kept in table " + cfg.Sink.RejectedTable + " of the schema"
		}
		fmt.Fprintf(w, "%s%s rejected (%s), %s\n", p, plural(n, "line, row or value"), byReason(res.Rejected), where)
	} else {
		fmt.Fprintf(w, "%snothing rejected\n", p)
	}
	if n := sum(res.Dropped); n > 0 {
		fmt.Fprintf(w, "%s%s NOT written (%s)\n", p, plural(n, "row"), byReason(res.Dropped))
	}
	if res.DDLLines > 0 {
		fmt.Fprintf(w, "%sskipped %s of the export's DDL section (CREATE DATABASE ...)\n", p, plural(res.DDLLines, "line"))
	}
	if len(res.Databases) > 0 && !cfg.SchemaFromDB {
		went := "went"
		if cfg.DryRun {
			went = "would go"
		}
		fmt.Fprintf(w, "%sthe input names database %s; its lines %s to schema %s (--schema-from-db writes each database into the schema of its name)\n",
			p, strings.Join(res.Databases, ", "), went, quote(cfg.Sink.Schema))
	}
}

// WritePlan writes the tables and columns a dry run found writing would
// create.
func WritePlan(w io.Writer, res Result, cfg Config) {
	fmt.Fprintln(w, "Dry run: nothing was written. Writing these lines would:")
	for _, sp := range res.Plans {
		if sp.Exists {
			fmt.Fprintf(w, "in schema %s:\n", quote(sp.Schema))
		} else {
			fmt.Fprintf(w, "create schema %s, and in it:\n", quote(sp.Schema))
		}
		if len(sp.Tables) == 0 {
			fmt.Fprintln(w, "  (no rows)")
		}
		for _, t := range sp.Tables {
			name := quote(t.Table)
			if t.Table != t.Measurement {
				name += fmt.Sprintf(" (measurement %q)", t.Measurement)
			}
			rows := plural(int64(t.Rows), "row")
			switch {
			case !t.Exists:
				fmt.Fprintf(w, "  create table %s for %s:\n", name, rows)
				fmt.Fprintln(w, "      time timestamptz")
				if cfg.Sink.WriteMode != sink.WriteAppend {
					if cfg.Sink.TimeNanos {
						fmt.Fprintln(w, "      series_id bigint  (the tag set)")
						fmt.Fprintln(w, "      time_ns smallint  (nanoseconds beyond the microsecond; primary key (time, series_id, time_ns))")
					} else {
						fmt.Fprintln(w, "      series_id bigint  (the tag set; primary key (time, series_id))")
					}
				}
				if cfg.Sink.Storage == sink.StorageJSONB {
					fmt.Fprintln(w, "      tags jsonb\n      fields jsonb")
				}
			case len(t.NewColumns) == 0 && t.Overflow == 0:
				fmt.Fprintf(w, "  write %s into table %s (exists; no new columns)\n", rows, name)
				continue
			default:
				fmt.Fprintf(w, "  write %s into table %s (exists), adding:\n", rows, name)
			}
			for _, c := range t.NewColumns {
				role := "field"
				if c.Tag {
					role = "tag"
				}
				fmt.Fprintf(w, "      %s %s  (%s %s)\n", quote(c.Name), c.Type, role, c.Key)
			}
			if t.Overflow > 0 {
				fmt.Fprintf(w, "      %s more, beyond --max-columns, into the jsonb column pginflux_overflow\n", plural(int64(t.Overflow), "key"))
			}
		}
	}
	if n := sum(res.Rejected); n > 0 {
		fmt.Fprintf(w, "reject %s (%s)", plural(n, "line"), byReason(res.Rejected))
		if cfg.Sink.RejectedTable != "" {
			fmt.Fprintf(w, " into table %s", quote(cfg.Sink.RejectedTable))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Values that do not fit the type of an existing column are only found when writing.")
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

func schemaList(schemas []string) string {
	if len(schemas) == 0 {
		return "no schema"
	}
	q := make([]string, len(schemas))
	for i, s := range schemas {
		q[i] = quote(s)
	}
	if len(q) == 1 {
		return "schema " + q[0]
	}
	return "schemas " + strings.Join(q, ", ")
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// byReason formats counts by reason: "syntax 2, too_long 1".
func byReason(m map[string]int64) string {
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %s", r, Count(m[r])))
	}
	return strings.Join(parts, ", ")
}

// plural formats a count of things: "1 row", "2 rows", "1 line, row or
// value", "3 lines, rows or values".
func plural(n int64, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	words := strings.Split(thing, " ")
	for i, w := range words {
		switch {
		case w == "or":
		case strings.HasSuffix(w, ","):
			words[i] = strings.TrimSuffix(w, ",") + "s,"
		default:
			words[i] = w + "s"
		}
	}
	return Count(n) + " " + strings.Join(words, " ")
}
