package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Partitioning without extensions (--partition-by): a new table is made
// PARTITION BY RANGE (time), and its partitions are made ahead of the data
// (the current and the next period, checked by the maintenance loop) and
// on demand for any row whose partition is missing, before the row is
// written, so that no row ever fails for a missing partition. With
// --retention, partitions wholly older than that are dropped.

// Partitions knows the partitions of the tables of one Catalog. Safe for
// concurrent use.
type Partitions struct {
	by      string // "day", "week" or "month"
	schema  string
	metrics *Metrics

	mu    sync.Mutex
	known map[string]map[int64]bool // parent table name -> partition starts (Unix s) known to exist
	plain map[string]bool           // tables that exist and are not partitioned: left alone
}

func newPartitions(by, schema string, m *Metrics) *Partitions {
	return &Partitions{by: by, schema: schema, metrics: m, known: map[string]map[int64]bool{}, plain: map[string]bool{}}
}

// Start returns the start of the period holding t, in UTC: midnight, the
// Monday of an ISO week, or the first of a month.
func (p *Partitions) Start(t time.Time) time.Time {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch p.by {
	case "week":
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	case "month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return d
}

// next returns the start of the period after the one starting at start.
func (p *Partitions) next(start time.Time) time.Time {
	switch p.by {
	case "week":
		return start.AddDate(0, 0, 7)
	case "month":
		return start.AddDate(0, 1, 0)
	}
	return start.AddDate(0, 0, 1)
}

// partitionName names the partition of table starting at start:
// <table>_p<YYYYMMDD> (<table>_p<YYYYMM> by month), shortened as table
// names are when over 63 bytes.
func (p *Partitions) partitionName(table string, start time.Time) string {
	layout := "20060102"
	if p.by == "month" {
		layout = "200601"
	}
	n := table + "_p" + start.Format(layout)
	if len(n) <= maxIdentifier {
		return n
	}
	return hashedName(table, n)
}

// partitionedDDL is the clause that makes a new table partitioned.
func (p *Partitions) partitionedDDL() string { return " PARTITION BY RANGE (time)" }

// Ensure makes the partitions of table for the periods starting at starts
// (from Start), and for the period after each, unless known to exist. A
// table that is not partitioned (made by a user, say) is left alone.
func (p *Partitions) Ensure(ctx context.Context, conn *pgx.Conn, table string, starts []time.Time) error {
	p.mu.Lock()
	if p.plain[table] {
		p.mu.Unlock()
		return nil
	}
	known := p.known[table]
	if known == nil {
		known = map[int64]bool{}
		p.known[table] = known
	}
	var need []time.Time
	for _, s := range starts {
		for _, t := range []time.Time{s, p.next(s)} {
			if !known[t.Unix()] {
				need = append(need, t)
			}
		}
	}
	p.mu.Unlock()
	for _, s := range need {
		created, partitioned, err := p.create(ctx, conn, table, s)
		if err != nil {
			return err
		}
		p.mu.Lock()
		if !partitioned {
			p.plain[table] = true
			p.mu.Unlock()
			return nil
		}
		known[s.Unix()] = true
		p.mu.Unlock()
		if created {
			p.metrics.PartitionsCreated.Inc()
		}
	}
	return nil
}

// create makes one partition under the table's advisory lock. A range
// already covered by a partition someone else made is fine.
func (p *Partitions) create(ctx context.Context, conn *pgx.Conn, table string, start time.Time) (created, partitioned bool, err error) {
	parent := pgx.Identifier{p.schema, table}.Sanitize()
	name := p.partitionName(table, start)
	ident := pgx.Identifier{p.schema, name}.Sanitize()
	end := p.next(start)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "pginflux:"+p.schema+"."+table); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_partitioned_table pt
			WHERE pt.partrelid = $1::regclass AND `+byTimeRange+`)`, parent).Scan(&partitioned); err != nil {
			return err
		}
		if !partitioned {
			return nil
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident).Scan(&exists); err != nil || exists {
			return err
		}
		_, err := tx.Exec(ctx, "SAVEPOINT p")
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, fmt.Sprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')",
			ident, parent, start.Format(time.RFC3339), end.Format(time.RFC3339)))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P17" { // overlaps a partition made by someone else
			_, err = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT p")
			return err
		}
		if err != nil {
			return err
		}
		created = true
		return commentOn(ctx, tx, "TABLE "+ident, partitionComment(table, start, end), true)
	})
	if err != nil {
		return false, false, fmt.Errorf("create partition %s: %w", ident, err)
	}
	return created, partitioned, nil
}

// forget drops what is known of the partitions of table ("" for all), so
// that they are checked again: someone may have dropped them.
func (p *Partitions) forget(table string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if table == "" {
		clear(p.known)
		clear(p.plain)
		return
	}
	delete(p.known, table)
	delete(p.plain, table)
}

// byTimeRange is true for a pg_partitioned_table row pt of a table
// partitioned by range of its time column alone: the only kind pginflux
// makes partitions for.
const byTimeRange = `pt.partstrat = 'r' AND pt.partnatts = 1 AND pt.partattrs[0] =
	(SELECT attnum FROM pg_attribute WHERE attrelid = pt.partrelid AND attname = 'time')`

// partitionComment marks a partition pginflux made, with its range, so
// that retention only ever drops those.
func partitionComment(parent string, start, end time.Time) string {
	return "pginflux partition from " + start.Format(time.RFC3339) + " to " + end.Format(time.RFC3339) + " of " + parent
}

func parsePartitionEnd(comment string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(comment, "pginflux partition from ")
	if !ok {
		return time.Time{}, false
	}
	_, rest, ok = strings.Cut(rest, " to ")
	if !ok {
		return time.Time{}, false
	}
	endText, _, _ := strings.Cut(rest, " ")
	end, err := time.Parse(time.RFC3339, endText)
	return end, err == nil
}

// Maintain makes the partitions of the current and next period for every
// partitioned table it knows, and drops pginflux's partitions that ended
// retention or more before now (none when retention is 0). dropped names
// the partitions it dropped, also when it fails later.
func (p *Partitions) Maintain(ctx context.Context, conn *pgx.Conn, now time.Time, retention time.Duration) (dropped []string, err error) {
	p.mu.Lock()
	var tables []string
	for t := range p.known {
		if !p.plain[t] {
			tables = append(tables, t)
		}
	}
	p.mu.Unlock()
	for _, t := range tables {
		if err := p.Ensure(ctx, conn, t, []time.Time{p.Start(now)}); err != nil {
			return nil, err
		}
	}
	if retention <= 0 {
		return nil, nil
	}
	rows, err := conn.Query(ctx, `SELECT parent.relname, c.relname, d.description
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class parent ON parent.oid = i.inhparent
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
		WHERE n.nspname = $1 AND d.description LIKE 'pginflux partition from %'`, p.schema)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	type part struct{ parent, name string }
	var old []part
	for rows.Next() {
		var pt part
		var comment string
		if err := rows.Scan(&pt.parent, &pt.name, &comment); err != nil {
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		if end, ok := parsePartitionEnd(comment); ok && !end.After(now.Add(-retention)) {
			old = append(old, pt)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	for _, pt := range old {
		gone := false
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "pginflux:"+p.schema+"."+pt.parent); err != nil {
				return err
			}
			// Another round (another process) may have dropped it meanwhile.
			ident := pgx.Identifier{p.schema, pt.name}.Sanitize()
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident).Scan(&exists); err != nil || !exists {
				return err
			}
			_, err := tx.Exec(ctx, "DROP TABLE "+ident)
			gone = err == nil
			return err
		})
		if err != nil {
			return dropped, fmt.Errorf("drop partition %s: %w", pt.name, err)
		}
		if !gone {
			continue
		}
		dropped = append(dropped, pt.name)
		p.metrics.PartitionsDropped.Inc()
		p.mu.Lock()
		for s := range p.known[pt.parent] {
			if !time.Unix(s, 0).After(now.Add(-retention)) {
				delete(p.known[pt.parent], s)
			}
		}
		p.mu.Unlock()
	}
	return dropped, nil
}

// LoadPartitioned learns the partitioned tables of the schema, so that
// partitions are made ahead for them after a restart too.
func (p *Partitions) LoadPartitioned(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_partitioned_table pt
		JOIN pg_class c ON c.oid = pt.partrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND `+byTimeRange, p.schema)
	if err != nil {
		return fmt.Errorf("list partitioned tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list partitioned tables: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		if p.known[n] == nil {
			p.known[n] = map[int64]bool{}
		}
	}
	return nil
}
