package sink

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pginflux/pginflux/internal/devtools/pgtest"
	"github.com/pginflux/pginflux/sink/internal/dbtest"
	"github.com/pginflux/pginflux/sink/spool"
)

// spoolBatch is a batch of n rows of measurement m, values from first on.
func spoolBatch(t *testing.T, m string, first, n int) *batch {
	t.Helper()
	b := &batch{measurement: m, tagIDs: map[string]uint32{}, fieldIDs: map[string]uint32{}}
	for i := first; i < first+n; i++ {
		b.appendTypedRow(pt(m, float64(i), int64(i+1)*1000))
		b.ends = append(b.ends, len(b.buf))
		b.addOrigin(origin)
	}
	return b
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// mountTmpfs mounts a tmpfs of size bytes on dir, skipping the test when
// that is not allowed (not root); it is unmounted at cleanup.
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

func resizeTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput(); err != nil {
		t.Fatalf("resize the tmpfs: %v: %s", err, out)
	}
}

// TestSpoolDiskFull: with PostgreSQL away, requests are spooled onto a
// small tmpfs until the disk is full (ENOSPC, for real). The request that
// does not fit is not acknowledged while there is no room, and is once
// there is room again; every acknowledged row is replayed, once, and the
// failed appends left no damage behind.
func TestSpoolDiskFull(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, dir, 64<<10)
	pool, schema := pgtest.Schema(t)
	cfg := Config{Schema: schema, Storage: StorageColumns, BatchSize: 25, FlushInterval: time.Hour, Writers: 1}
	down := NewMetrics(nil)
	a := New(pgtest.Unreachable(t), cfg, down, quiet)
	if err := a.UseSpool(dir, 1<<30); err != nil {
		t.Fatal(err)
	}
	sh := a.NewShared()
	request := func(k int) *Ticket {
		tk := NewTicket()
		pr := sh.Begin()
		for i := range 25 {
			pr.Add(pt("full", float64(k*25+i), int64(k*25+i+1)*1000), origin, tk)
		}
		pr.End()
		tk.Seal()
		return tk
	}
	wait := func(tk *Ticket, d time.Duration) error {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		_, err := tk.Wait(ctx)
		return err
	}
	// Acknowledged (spooled) until the disk is full: then an append
	// fails, and the request's rows are held in memory.
	k := 0
	var held *Ticket
	for ; k < 1000 && held == nil; k++ {
		failed := testutil.ToFloat64(down.SpoolAppendErrors)
		tk := request(k)
		acked := false
		dbtest.WaitFor(t, func() bool {
			select {
			case <-tk.done:
				acked = true
				return true
			default:
				return testutil.ToFloat64(down.SpoolAppendErrors) > failed
			}
		})
		if !acked {
			held = tk
		} else if _, err := tk.Wait(t.Context()); err != nil {
			t.Fatalf("request %d: %v", k, err)
		}
	}
	if held == nil {
		t.Fatal("the tmpfs never filled up")
	}
	if testutil.ToFloat64(down.SpoolAppendErrors) == 0 {
		t.Error("no failed append counted")
	}
	t.Logf("%d requests spooled before the disk was full", k-1)

	resizeTmpfs(t, dir, 4<<20)
	if err := wait(held, 30*time.Second); err != nil {
		t.Fatalf("the request held while the disk was full: %v", err)
	}
	for range 5 {
		if err := wait(request(k), 30*time.Second); err != nil {
			t.Fatalf("request %d, with room again: %v", k, err)
		}
		k++
	}
	sh.Close()
	closeSink(t, a)

	up := NewMetrics(nil)
	c := New(pool, cfg, up, quiet)
	if err := c.UseSpool(dir, 1<<30); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, func() bool { return len(segmentFiles(t, dir)) == 0 })
	closeSink(t, c)
	want := fmt.Sprintf("%d|%d", k*25, k*25)
	dbtest.Equal(t, "rows", dbtest.Query(t, pool, "SELECT count(*), count(DISTINCT time) FROM "+pgx.Identifier{schema, "full"}.Sanitize()), []string{want})
	if got := testutil.ToFloat64(up.SpoolCorruptSegments); got != 0 {
		t.Errorf("%v corrupt segments", got)
	}
}

// TestSpoolStaleMarkers: markers an earlier run could not delete (here a
// rule makes every DELETE do nothing) never mark the segments of a later
// run as replayed, though their numbers start again at 1.
func TestSpoolStaleMarkers(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	markers := pgx.Identifier{schema, "pginflux_spool"}.Sanitize()
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	err = newCatalog(schema).MarkersReady(t.Context(), conn.Conn())
	conn.Release()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), "CREATE RULE keep AS ON DELETE TO "+markers+" DO INSTEAD NOTHING"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := Config{Schema: schema, Storage: StorageColumns, BatchSize: 50, FlushInterval: time.Hour, Writers: 1}
	spoolAndReplay := func(m string) {
		a := New(pgtest.Unreachable(t), cfg, NewMetrics(nil), quiet)
		if err := a.UseSpool(dir, 1<<30); err != nil {
			t.Fatal(err)
		}
		b := a.NewBatcher()
		for i := range 500 {
			b.Add(pt(m, float64(i), int64(i+1)*1000), origin)
		}
		b.Flush()
		closeSink(t, a)
		if segs := segmentFiles(t, dir); len(segs) != 1 || !strings.Contains(segs[0], "seg-00000000000000000001-") {
			t.Fatalf("segments %v, want seg-...1-<tag>", segs)
		}
		c := New(pool, cfg, NewMetrics(nil), quiet)
		if err := c.UseSpool(dir, 1<<30); err != nil {
			t.Fatal(err)
		}
		dbtest.WaitFor(t, func() bool { return len(segmentFiles(t, dir)) == 0 })
		closeSink(t, c)
	}
	spoolAndReplay("first")
	spoolAndReplay("second")
	for _, m := range []string{"first", "second"} {
		dbtest.Equal(t, m, dbtest.Query(t, pool, "SELECT count(*), count(DISTINCT time) FROM "+pgx.Identifier{schema, m}.Sanitize()), []string{"500|500"})
	}
	dbtest.Equal(t, "markers", dbtest.Query(t, pool, "SELECT count(DISTINCT spool) FROM "+markers), []string{"2"})
}

// TestSpoolCorruptSegmentKept: a segment damaged in the middle is written
// up to the damage and kept, renamed, never deleted; a torn end is
// written up to the tear and deleted.
func TestSpoolCorruptSegmentKept(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	dir := t.TempDir()
	sp, ends := spoolThree(t, dir, "damaged")
	g := must(sp.ClosedSegments())[0]
	for i := range 2 {
		if ok, err := sp.Append(encodeBatch(nil, spoolBatch(t, "torn", i*10, 10), 0, 10), 10); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	torn := must(sp.ClosedSegments())[1]
	data := must(os.ReadFile(sp.Path(g)))
	data[ends[1]-1] ^= 1 // the second record's last byte
	if err := os.WriteFile(sp.Path(g), data, 0o600); err != nil {
		t.Fatal(err)
	}
	data = must(os.ReadFile(sp.Path(torn)))
	if err := os.WriteFile(sp.Path(torn), data[:len(data)-7], 0o600); err != nil {
		t.Fatal(err)
	}

	m := NewMetrics(nil)
	c := New(pool, Config{Schema: schema, Storage: StorageColumns, BatchSize: 50, FlushInterval: time.Hour, Writers: 1}, m, quiet)
	if err := c.UseSpool(dir, 1<<30); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, func() bool { return len(must(sp.ClosedSegments())) == 0 })
	closeSink(t, c)
	if got := testutil.ToFloat64(m.SpoolCorruptSegments); got != 1 {
		t.Errorf("got %v corrupt segments, want 1", got)
	}
	if _, err := os.Stat(sp.Path(g) + spool.CorruptSuffix); err != nil {
		t.Errorf("the damaged segment was not kept: %v", err)
	}
	dbtest.Equal(t, "damaged", dbtest.Query(t, pool, "SELECT count(*) FROM "+pgx.Identifier{schema, "damaged"}.Sanitize()), []string{"10"})
	dbtest.Equal(t, "torn", dbtest.Query(t, pool, "SELECT count(*) FROM "+pgx.Identifier{schema, "torn"}.Sanitize()), []string{"10"})
}

// spoolThree opens a spool in dir and appends three records of 10 rows of
// measurement to it; ends are the segment's sizes after each (a record is
// an 8-byte header and its payload).
func spoolThree(t *testing.T, dir, measurement string) (*spool.Spool, []int) {
	t.Helper()
	sp, err := spool.Open(dir, 1<<30, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ends []int
	size := 0
	for i := range 3 {
		rec := encodeBatch(nil, spoolBatch(t, measurement, i*10, 10), 0, 10)
		if ok, err := sp.Append(rec, 10); !ok || err != nil {
			t.Fatal(ok, err)
		}
		size += 8 + len(rec)
		ends = append(ends, size)
	}
	return sp, ends
}
