package sink

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/parse"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
	"github.com/pginflux/pginflux/sink/schema"
)

// The harness the sink's tests share. Each test gets a schema of its own
// (pgtest.Schema) in a throwaway cluster; rows go in through a Sink and
// are read back with package dbtest.

func TestMain(m *testing.M) { pgtest.Main(m) }

// minInt64Bits is math.MinInt64 as Field.Num holds it.
const minInt64Bits = 1 << 63

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// pt builds a point: tags as "k=v" pairs, one float field v.
func pt(measurement string, v float64, unixNanos int64, tags ...string) *parse.Point {
	p := &parse.Point{Measurement: []byte(measurement), Time: unixNanos}
	for _, kv := range tags {
		k, val, _ := strings.Cut(kv, "=")
		p.Tags = append(p.Tags, parse.Tag{Key: []byte(k), Value: []byte(val)})
	}
	p.Fields = []parse.Field{{Key: []byte("v"), Kind: parse.Float, Num: math.Float64bits(v)}}
	return p
}

// origin is where the test's rows come from.
var origin = Origin{Source: netip.MustParseAddrPort("192.0.2.1:5555"), Received: time.Unix(1_700_000_000, 0)}

func newSink(t *testing.T, pool *pgxpool.Pool, schema, storage string) (*Sink, *Metrics) {
	t.Helper()
	m := NewMetrics(nil)
	s := New(pool, Config{Schema: schema, Storage: storage, BatchSize: 100_000, FlushInterval: time.Hour, Writers: 2,
		RejectedTable: "pginflux_rejected"}, m, quiet)
	return s, m
}

// bothStorages runs f as a subtest for each storage mode, in parallel.
func bothStorages(t *testing.T, f func(t *testing.T, storage string)) {
	for _, st := range []string{StorageJSONB, StorageColumns} {
		t.Run(st, func(t *testing.T) {
			t.Parallel()
			f(t, st)
		})
	}
}

func closeSink(t *testing.T, s *Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// newCatalog returns a catalog of schema s, for tests that prepare a
// schema as a sink would.
func newCatalog(s string) *schema.Catalog {
	return schema.New(schema.Config{Schema: s}, schema.NewMetrics(nil), quiet)
}

// write sends lines through a fresh columns-storage sink and closes it.
func write(t *testing.T, pool *pgxpool.Pool, schema string, cfg Config, lines ...string) *Metrics {
	t.Helper()
	cfg.Schema, cfg.Storage = schema, StorageColumns
	return writeBatches(t, pool, cfg, lines)
}

// writeBatches writes each group of lines as a batch of its own, one after
// the other (each committed before the next is added), through one sink.
func writeBatches(t *testing.T, pool *pgxpool.Pool, cfg Config, groups ...[]string) *Metrics {
	t.Helper()
	cfg.Writers = 2
	cfg.FlushInterval = time.Hour
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 100_000
	}
	if cfg.RejectedTable == "" {
		cfg.RejectedTable = "pginflux_rejected"
	}
	m := NewMetrics(nil)
	s := New(pool, cfg, m, quiet)
	b := s.NewBatcher()
	for _, g := range groups {
		tk := NewTicket()
		for _, l := range g {
			if b.addRow(dbtest.Line(t, l), origin, tk) {
				b.waitRoom(t.Context())
			}
		}
		b.Flush()
		tk.Seal()
		if _, err := tk.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	closeSink(t, s)
	return m
}

// mustTemplate parses a --create-table-sql template.
func mustTemplate(t *testing.T, text string) *template.Template {
	t.Helper()
	tmpl, err := schema.ParseTemplate(text)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}
