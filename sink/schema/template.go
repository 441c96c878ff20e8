package schema

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/jackc/pgx/v5"
)

// TemplateData is what --create-table-sql may use, every value quoted for
// its place: identifiers as identifiers, literals as literals.
type TemplateData struct {
	Schema      string // "metrics"
	Table       string // "metrics"."cpu"
	TableName   string // "cpu"
	TimeColumn  string // "time"
	Measurement string // 'cpu' (a literal: the measurement's full name)
	// TableLiteral and TimeColumnLiteral are literals, for functions that
	// take names as text or regclass, such as create_hypertable.
	TableLiteral      string // '"metrics"."cpu"'
	TimeColumnLiteral string // 'time'
}

// ParseTemplate checks SQL run after pginflux creates a table.
func ParseTemplate(text string) (*template.Template, error) {
	t, err := template.New("create-table-sql").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	// Execute once on sample data, so that a bad field name fails at start.
	if err := t.Execute(&bytes.Buffer{}, templateData("metrics", "cpu", "cpu")); err != nil {
		return nil, err
	}
	return t, nil
}

func templateData(schema, table, measurement string) TemplateData {
	qualified := pgx.Identifier{schema, table}.Sanitize()
	return TemplateData{
		Schema:            pgx.Identifier{schema}.Sanitize(),
		Table:             qualified,
		TableName:         pgx.Identifier{table}.Sanitize(),
		TimeColumn:        pgx.Identifier{"time"}.Sanitize(),
		Measurement:       dollarQuote(measurement),
		TableLiteral:      dollarQuote(qualified),
		TimeColumnLiteral: dollarQuote("time"),
	}
}

// dollarQuote quotes s as a dollar-quoted literal, which needs no escapes
// and means the same whatever standard_conforming_strings says.
func dollarQuote(s string) string {
	tag := "$p$"
	for i := 0; strings.Contains(s, tag); i++ {
		tag = fmt.Sprintf("$p%d$", i)
	}
	return tag + s + tag
}

// Validate reports settings that cannot work together, in words a user
// can act on; nil when there are none. One so far: --partition-by
// (partitionBy) with a --create-table-sql (tmpl) that calls TimescaleDB's
// create_hypertable. --partition-by makes every new table PARTITION BY
// RANGE (time), and TimescaleDB makes no hypertable of a partitioned table
// (SQLSTATE 42809, "table is already partitioned"). A Catalog made with
// such a Config creates no table: see runTemplate.
func Validate(partitionBy string, tmpl *template.Template) error {
	if partitionBy != "" && makesHypertables(tmpl) {
		return errors.New("--partition-by and --create-table-sql: the template calls create_hypertable, and TimescaleDB makes no hypertable of a table that --partition-by has made partitioned; use one or the other (a hypertable is partitioned by time already)")
	}
	return nil
}

// makesHypertables reports whether the table template t, run for a sample
// table, calls TimescaleDB's create_hypertable: a recipe that makes every
// new table a hypertable.
func makesHypertables(t *template.Template) bool {
	if t == nil {
		return false
	}
	var sql bytes.Buffer
	if err := t.Execute(&sql, templateData("metrics", "cpu", "cpu")); err != nil {
		return false // ParseTemplate ran it on the same data already
	}
	return strings.Contains(strings.ToLower(sql.String()), "create_hypertable")
}

// runTemplate runs the table template for a table just created, in the
// transaction that created it: a failing template leaves no table.
func (c *Catalog) runTemplate(ctx context.Context, tx pgx.Tx, table, measurement string) error {
	if c.template == nil {
		return nil
	}
	if c.refused != nil {
		// The configuration cannot work (see Validate): no table is
		// made, and its rows go to the rejected table, replayable.
		return fmt.Errorf("--create-table-sql for %s: %w: %w", pgx.Identifier{c.schema, table}.Sanitize(), c.refused, ErrCreateFailed)
	}
	var sql bytes.Buffer
	if err := c.template.Execute(&sql, templateData(c.schema, table, measurement)); err != nil {
		return fmt.Errorf("--create-table-sql: %w", err)
	}
	if _, err := tx.Exec(ctx, sql.String()); err != nil {
		if IsTemporary(err) || isInternal(err) {
			// Not the template's fault (a connection lost, the server
			// restarting, a Citus worker away: XX000): the rows are held
			// and the table made again on the next try.
			return fmt.Errorf("--create-table-sql for %s: %w", pgx.Identifier{c.schema, table}.Sanitize(), err)
		}
		return fmt.Errorf("--create-table-sql for %s: %w: %w", pgx.Identifier{c.schema, table}.Sanitize(), err, ErrCreateFailed)
	}
	return nil
}
