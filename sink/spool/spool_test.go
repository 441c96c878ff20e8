package spool

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// payload is the record the tests append as number i.
func payload(i int) []byte { return fmt.Appendf(nil, "record %d", i) }

// readAll reads every segment of sp and returns its records' payloads,
// failing on damage.
func readAll(t *testing.T, sp *Spool) []string {
	t.Helper()
	segs, err := sp.ClosedSegments()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range segs {
		err := sp.Read(g, func(_ int64, p []byte) error {
			got = append(got, string(p))
			return nil
		})
		if err != nil {
			t.Fatalf("segment %s: %v", g.Name(), err)
		}
	}
	return got
}

// TestFailedAppendLeavesNothing: an append cut short (half its bytes
// written, then ENOSPC) or failing outright leaves no bytes behind, and the
// records appended after it are read back whole, with no damage between.
func TestFailedAppendLeavesNothing(t *testing.T) {
	t.Parallel()
	fail := map[int]bool{2: true, 3: true, 6: true}
	n := 0
	write := func(f *os.File, p []byte) (int, error) {
		n++
		if fail[n] {
			w, _ := f.Write(p[:len(p)/2])
			return w, syscall.ENOSPC
		}
		return f.Write(p)
	}
	sp, err := Open(t.TempDir(), 1<<30, Options{Write: write})
	if err != nil {
		t.Fatal(err)
	}
	appendErrors := prometheus.NewCounter(prometheus.CounterOpts{Name: "append_errors"})
	sp.CountAppendErrors(appendErrors)
	var want []string
	for i := range 8 {
		ok, err := sp.Append(payload(i), 10)
		if fail[i+1] {
			if ok || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append %d: got %v, %v; want false and ENOSPC", i, ok, err)
			}
			continue
		}
		if !ok || err != nil {
			t.Fatalf("append %d: %v, %v", i, ok, err)
		}
		want = append(want, string(payload(i)))
	}
	if got := readAll(t, sp); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got records %q, want %q", got, want)
	}
	if got := testutil.ToFloat64(appendErrors); got != 3 {
		t.Errorf("got %v append errors, want 3", got)
	}
	var onDisk int64
	for _, g := range must(sp.segments()) {
		fi, err := os.Stat(sp.Path(g))
		if err != nil {
			t.Fatal(err)
		}
		onDisk += fi.Size()
	}
	if onDisk != sp.Bytes() {
		t.Errorf("the spool counts %d bytes, its segments hold %d", sp.Bytes(), onDisk)
	}
	if rows, _ := sp.Stats(); rows != 50 {
		t.Errorf("got %d rows appended, want 50", rows)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestReadSegment: a torn end is not damage; a bad record with more after
// it is. So is a record the reader cannot decode.
func TestReadSegment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		damage  func(data []byte, recEnds []int) []byte
		records int
		corrupt bool
	}{
		{"whole", func(d []byte, _ []int) []byte { return d }, 3, false},
		{"torn header", func(d []byte, e []int) []byte { return d[:e[1]+5] }, 2, false},
		{"torn payload", func(d []byte, e []int) []byte { return d[:e[2]-1] }, 2, false},
		{"zeros after a crash", func(d []byte, e []int) []byte {
			return append(d[:e[1]], make([]byte, 300)...)
		}, 2, false},
		{"bad last record", func(d []byte, e []int) []byte { d[e[2]-1] ^= 1; return d }, 2, false},
		{"bad middle record", func(d []byte, e []int) []byte { d[e[1]-1] ^= 1; return d }, 1, true},
		{"bad length in the middle", func(d []byte, e []int) []byte { d[e[0]+3] ^= 1; return d }, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, ends := three(t)
			segs := must(sp.ClosedSegments())
			path := sp.Path(segs[0])
			data := must(os.ReadFile(path))
			if err := os.WriteFile(path, tc.damage(data, ends), 0o600); err != nil {
				t.Fatal(err)
			}
			records := 0
			err := sp.Read(segs[0], func(int64, []byte) error { records++; return nil })
			if records != tc.records || errors.Is(err, ErrCorrupt) != tc.corrupt {
				t.Errorf("got %d records, err %v; want %d, corrupt %v", records, err, tc.records, tc.corrupt)
			}
		})
	}
	t.Run("undecodable middle record", func(t *testing.T) {
		sp, _ := three(t)
		segs := must(sp.ClosedSegments())
		records := 0
		err := sp.Read(segs[0], func(i int64, _ []byte) error {
			if i == 1 {
				return errors.New("does not decode")
			}
			records++
			return nil
		})
		if records != 1 || !errors.Is(err, ErrCorrupt) {
			t.Errorf("got %d records, err %v; want 1, corrupt", records, err)
		}
	})
}

// three opens a spool and appends three records to it; ends are the
// segment's sizes after each.
func three(t *testing.T) (*Spool, []int) {
	t.Helper()
	sp, err := Open(t.TempDir(), 1<<30, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ends []int
	for i := range 3 {
		if ok, err := sp.Append(payload(i), 10); !ok || err != nil {
			t.Fatal(ok, err)
		}
		ends = append(ends, int(sp.curSize))
	}
	return sp, ends
}

// TestReopen: a spool opened again finds its segments, its size and its
// ID, signals Wake at once when it holds records, and makes new segments
// after the old ones.
func TestReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := must(Open(dir, 1<<30, Options{}))
	select {
	case <-a.Wake():
		t.Error("an empty spool signals Wake at open")
	default:
	}
	must(a.Append(payload(1), 1))
	first := must(a.ClosedSegments())
	b := must(Open(dir, 1<<30, Options{}))
	select {
	case <-b.Wake():
	default:
		t.Error("a spool holding records does not signal Wake at open")
	}
	if b.Bytes() != a.Bytes() || b.MarkerKey(first[0]) != a.MarkerKey(first[0]) {
		t.Errorf("reopened: %d bytes, key %s; want %d, %s", b.Bytes(), b.MarkerKey(first[0]), a.Bytes(), a.MarkerKey(first[0]))
	}
	must(b.Append(payload(2), 1))
	segs := must(b.ClosedSegments())
	if len(segs) != 2 || segs[1].Seq <= segs[0].Seq || b.MarkerKey(segs[1]) == b.MarkerKey(segs[0]) {
		t.Errorf("segments %v: want a second one, after the first, with a key of its own", segs)
	}
}
