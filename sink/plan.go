package sink

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/schema"
)

// Planner tells what a sink would create for some points — tables and
// columns — without writing anything: the dry run of an import. Not safe
// for concurrent use.
type Planner struct {
	s       *Sink
	batches map[string]*batch // keys seen, by measurement; no rows kept
	rows    map[string]int
}

// NewPlanner returns a Planner for the tables of s.
func (s *Sink) NewPlanner() *Planner {
	return &Planner{s: s, batches: make(map[string]*batch), rows: make(map[string]int)}
}

// Add notes the measurement and keys of p; p is not retained.
func (pl *Planner) Add(p *parse.Point) {
	b, ok := pl.batches[string(p.Measurement)]
	if !ok {
		b = &batch{measurement: string(p.Measurement), tagIDs: map[string]uint32{}, fieldIDs: map[string]uint32{}}
		pl.batches[b.measurement] = b
	}
	pl.rows[b.measurement]++
	if pl.s.cfg.Storage != StorageColumns {
		return
	}
	for i := range p.Tags {
		b.keyID(true, p.Tags[i].Key, kindTag)
	}
	for i := range p.Fields {
		b.keyID(false, p.Fields[i].Key, p.Fields[i].Kind)
	}
}

// PlannedTable is what a sink would do to one measurement's table.
type PlannedTable struct {
	Measurement string
	Table       string // in the sink's schema
	Exists      bool
	Rows        int             // rows the points would add
	NewColumns  []PlannedColumn // in the order they would be added
	Overflow    int             // keys that would go to the overflow column
}

// PlannedColumn is a column a sink would add.
type PlannedColumn struct {
	Name string
	Type string
	Tag  bool
	Key  string
}

// Plan reads the catalog (read-only) and returns, per measurement in name
// order, what writing the points added so far would create.
func (pl *Planner) Plan(ctx context.Context) ([]PlannedTable, error) {
	conn, err := pl.s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire a connection: %w", err)
	}
	defer conn.Release()
	names := make([]string, 0, len(pl.batches))
	for m := range pl.batches {
		names = append(names, m)
	}
	sort.Strings(names)
	var out []PlannedTable
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for _, m := range names {
			b := pl.batches[m]
			pt := PlannedTable{Measurement: m, Table: schema.TableName(m), Rows: pl.rows[m]}
			ident := pgx.Identifier{pl.s.cfg.Schema, pt.Table}.Sanitize()
			if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", ident).Scan(&pt.Exists); err != nil {
				return err
			}
			if pl.s.cfg.Storage != StorageColumns {
				out = append(out, pt)
				continue
			}
			t := schema.NewTypedTable(pt.Table, ident)
			t.Add(&schema.Column{Name: "time"})
			if pl.s.cfg.WriteMode != WriteAppend {
				t.Add(&schema.Column{Name: schema.SeriesColumn})
				t.Point = true
				if pl.s.cfg.TimeNanos {
					t.Add(&schema.Column{Name: schema.NanosColumn})
					t.Nanos = true
				}
			}
			if pt.Exists {
				var err error
				if t, err = schema.ReadTyped(ctx, tx, pt.Table, ident); err != nil {
					return err
				}
			}
			cols := t.ColumnsFor(b.keys)
			for i, k := range b.keys {
				if cols[i] != nil {
					continue
				}
				if t.Attrs >= pl.s.cfg.MaxColumns {
					pt.Overflow++
					continue
				}
				key := k.Key
				c := &schema.Column{Name: t.ColumnName(key), Owner: &key}
				t.Add(c)
				pt.NewColumns = append(pt.NewColumns, PlannedColumn{Name: c.Name, Type: schema.ColumnType(k, pl.s.cfg.UintType), Tag: k.Tag, Key: k.Name})
			}
			out = append(out, pt)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plan tables in %s: %w", pl.s.cfg.Schema, err)
	}
	return out, nil
}
