package sink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
)

func TestSpoolRecordRoundTrip(t *testing.T) {
	t.Parallel()
	b := &batch{measurement: "m", tagIDs: map[string]uint32{}, fieldIDs: map[string]uint32{}}
	for i, l := range []string{"m,host=a v=1,s=\"x\" 1000", "m,host=b v=2i 2000", "m v=true 3000"} {
		b.appendTypedRow(dbtest.Line(t, l))
		b.ends = append(b.ends, len(b.buf))
		b.addOrigin(Origin{Source: origin.Source, Received: time.Unix(int64(i), 0)})
	}
	got, err := decodeBatch(encodeBatch(nil, b, 1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if got.measurement != "m" || got.rows() != 2 || string(got.buf) != string(b.rowBytes(1, 3)) ||
		got.origin(0).Received.Unix() != 1 || got.origin(1).Source != origin.Source || len(got.keys) != len(b.keys) {
		t.Errorf("got %+v", got)
	}
	for i, k := range got.keys {
		if k != b.keys[i] {
			t.Errorf("key %d: got %+v, want %+v", i, k, b.keys[i])
		}
	}
	if _, err := decodeBatch([]byte{9, 9, 9}); err == nil {
		t.Error("a bad record decoded")
	}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSpoolOutageThenRestart: with the database unreachable, batches go to
// the spool instead of being held or abandoned; a later pginflux (a new
// sink on the same spool) replays them all, once, and empties the spool.
func TestSpoolOutageThenRestart(t *testing.T) {
	t.Parallel()
	bothStorages(t, func(t *testing.T, storage string) {
		pool, schema := pgtest.Schema(t)
		dir := t.TempDir()
		cfg := Config{Schema: schema, Storage: storage, BatchSize: 50, FlushInterval: time.Hour, Writers: 2, RejectedTable: "pginflux_rejected"}

		down := NewMetrics(nil)
		a := New(pgtest.Unreachable(t), cfg, down, quiet)
		if err := a.UseSpool(dir, 1<<30); err != nil {
			t.Fatal(err)
		}
		b := a.NewBatcher()
		for i := range 500 {
			b.Add(pt(fmt.Sprintf("spooled%d", i%2), float64(i), int64(i+1)*1000), origin)
		}
		b.Add(dbtest.Line(t, `spooled0 v="conflict" 999000`), origin)
		b.Flush()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Fatalf("close with the database down: %v", err)
		}
		if got := testutil.ToFloat64(down.SpooledRows); got != 501 {
			t.Errorf("got %v spooled rows, want 501", got)
		}
		if a.Abandoned() != 0 || len(segmentFiles(t, dir)) == 0 {
			t.Fatalf("abandoned %d, segments %v", a.Abandoned(), segmentFiles(t, dir))
		}

		up := NewMetrics(nil)
		c := New(pool, cfg, up, quiet)
		if err := c.UseSpool(dir, 1<<30); err != nil {
			t.Fatal(err)
		}
		dbtest.WaitFor(t, func() bool { return len(segmentFiles(t, dir)) == 0 })
		closeSink(t, c)
		dbtest.Equal(t, "rows", dbtest.Query(t, pool, fmt.Sprintf(`SELECT (SELECT count(*) FROM %[1]s.spooled0) + (SELECT count(*) FROM %[1]s.spooled1),
			(SELECT count(DISTINCT time) FROM %[1]s.spooled0) + (SELECT count(DISTINCT time) FROM %[1]s.spooled1)`, pgx.Identifier{schema}.Sanitize())),
			[]string{map[string]string{StorageColumns: "501|501", StorageJSONB: "501|501"}[storage]})
		if got := testutil.ToFloat64(up.ReplayedRows); got != 501 {
			t.Errorf("got %v replayed rows, want 501", got)
		}
		if storage == StorageColumns {
			dbtest.Equal(t, "rejected", dbtest.RejectedLines(t, pool, schema), []string{`type_conflict: spooled0 v="conflict" 999000`})
		}
	})
}

// TestSpoolCrashMidReplay: a replay that stops after some records are
// committed, before their segment is removed (a crash), is taken up by the
// next start without writing any row twice.
func TestSpoolCrashMidReplay(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	dir := t.TempDir()
	cfg := Config{Schema: schema, Storage: StorageColumns, BatchSize: 20, FlushInterval: time.Hour, Writers: 1}
	a := New(pgtest.Unreachable(t), cfg, NewMetrics(nil), quiet)
	if err := a.UseSpool(dir, 1<<30); err != nil {
		t.Fatal(err)
	}
	b := a.NewBatcher()
	for i := range 400 {
		b.Add(pt("crash", float64(i), int64(i+1)*1000), origin)
	}
	b.Flush()
	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	for _, stopAfter := range []int64{3, 11} {
		var replayed atomic.Int64
		crashing := cfg
		crashing.Seams.Replayed = func(_, _ int64) bool { return replayed.Add(1) >= stopAfter }
		c := New(pool, crashing, NewMetrics(nil), quiet)
		if err := c.UseSpool(dir, 1<<30); err != nil {
			t.Fatal(err)
		}
		dbtest.WaitFor(t, func() bool { return replayed.Load() >= stopAfter })
		closeSink(t, c)
		if len(segmentFiles(t, dir)) == 0 {
			t.Fatal("the crashed replay removed its segment")
		}
	}
	c := New(pool, cfg, NewMetrics(nil), quiet)
	if err := c.UseSpool(dir, 1<<30); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, func() bool { return len(segmentFiles(t, dir)) == 0 })
	closeSink(t, c)
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT count(*), count(DISTINCT time) FROM "+pgx.Identifier{schema, "crash"}.Sanitize()), []string{"400|400"})
	if entries, _ := os.ReadDir(dir); !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "ID" }) {
		t.Error("the spool lost its ID")
	}
}
