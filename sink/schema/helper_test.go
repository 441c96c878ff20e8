package schema_test

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

// The schema layer is tested through a sink, as pginflux uses it: rows go
// in, and the tables, columns and rejected rows they make are read back.

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// origin is where the test's rows come from.
var origin = sink.Origin{Source: netip.MustParseAddrPort("192.0.2.1:5555"), Received: time.Unix(1_700_000_000, 0)}

// write sends lines through a fresh columns-storage sink, as one batch,
// and closes it.
func write(t *testing.T, pool *pgxpool.Pool, schema string, cfg sink.Config, lines ...string) *sink.Metrics {
	t.Helper()
	cfg.Schema, cfg.Storage = schema, sink.StorageColumns
	cfg.Writers = 2
	cfg.FlushInterval = time.Hour
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 100_000
	}
	if cfg.RejectedTable == "" {
		cfg.RejectedTable = "pginflux_rejected"
	}
	m := sink.NewMetrics(nil)
	s := sink.New(pool, cfg, m, quiet)
	b := s.NewBatcher()
	for _, l := range lines {
		b.Add(dbtest.Line(t, l), origin)
	}
	b.Flush()
	closeSink(t, s)
	return m
}

func closeSink(t *testing.T, s *sink.Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
