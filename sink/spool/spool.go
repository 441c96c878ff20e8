// Package spool keeps records on disk, durably, in order, until they are
// read back and removed: the sink's spool (--spool-dir), which holds the
// batches PostgreSQL cannot take for now, instead of holding them in
// memory or dropping datagrams at the door, and survives a restart. A
// record's payload is opaque here (the sink encodes a batch in it).
//
// On disk: a file ID naming the spool, and segment files
// seg-<n>-<random tag> of records, each a uint32 length, a uint32 CRC-32C
// of the payload, and the payload. n orders the segments; the tag, new for
// every segment, makes its identity (MarkerKey) unique for good, so that
// markers left from a segment of an earlier run (a delete that failed, a
// crash) can never match a new one. (Segments named seg-<n> come from
// before tags and are still read.)
//
// A record is appended with one write and an fsync. An append that fails
// (a full disk, an I/O error) is cut off again, truncating the segment to
// its last whole record, and the segment is closed: later records go to a
// new one, so no record ever follows torn bytes. A torn record can then
// only be the last bytes of a segment (a crash while appending, or a
// truncation that failed too), and reading stops there. A bad record with
// more data after it is damage: Read delivers what comes before it, and
// Quarantine keeps the file, renamed <name>.corrupt, for the operator.
package spool

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Spool is a directory of segments. Safe for concurrent use.
type Spool struct {
	dir      string
	id       string
	maxBytes int64

	mu        sync.Mutex
	appending bool // curSeg takes appends
	curSeg    Segment
	curSize   int64
	lastSeq   int64 // highest segment number made or found
	size      int64 // bytes in all segments
	wake      chan struct{}
	// appendErrors counts failed appends, once CountAppendErrors has set
	// it; failed counts them until then.
	appendErrors prometheus.Counter
	failed       int
	write        func(f *os.File, p []byte) (int, error) // Options.Write
	appended     int64                                   // rows appended since the spool opened
}

// Options are what a Spool may be told at Open.
type Options struct {
	// Write, for tests, writes a record's bytes to its segment in place
	// of f.Write, to fail as a full disk would; nil in production.
	Write func(f *os.File, p []byte) (int, error)
}

// Segment names one segment file.
type Segment struct {
	Seq int64  // orders the segments
	tag string // random, unique to the segment; "" for old segments
}

// Name is the segment's file name.
func (g Segment) Name() string {
	if g.tag == "" {
		return fmt.Sprintf("seg-%020d", g.Seq)
	}
	return fmt.Sprintf("seg-%020d-%s", g.Seq, g.tag)
}

// parseSegment reads a segment file name; quarantined and other files are
// not segments.
func parseSegment(name string) (Segment, bool) {
	rest, ok := strings.CutPrefix(name, "seg-")
	if !ok {
		return Segment{}, false
	}
	num, tag, tagged := strings.Cut(rest, "-")
	seq, err := strconv.ParseInt(num, 10, 64)
	if err != nil || seq < 0 {
		return Segment{}, false
	}
	if tagged {
		if _, err := hex.DecodeString(tag); err != nil || len(tag) != 2*segmentTagBytes {
			return Segment{}, false
		}
	}
	return Segment{Seq: seq, tag: tag}, true
}

const (
	segmentMax      = 8 << 20 // a segment's bytes, about
	segmentTagBytes = 8
)

// CorruptSuffix ends the name of a segment set aside by Quarantine.
const CorruptSuffix = ".corrupt"

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// Open opens (or makes) the spool in dir, which holds maxBytes at most.
// Wake has a signal already when the spool holds records from before.
func Open(dir string, maxBytes int64, opts Options) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	idPath := filepath.Join(dir, "ID")
	id, err := os.ReadFile(idPath)
	if errors.Is(err, os.ErrNotExist) {
		id = []byte(randomHex(8))
		if err := writeFileSync(idPath, id); err != nil {
			return nil, fmt.Errorf("open spool %s: %w", dir, err)
		}
		syncDir(dir)
	} else if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	sp := &Spool{dir: dir, id: strings.TrimSpace(string(id)), maxBytes: maxBytes, wake: make(chan struct{}, 1), write: opts.Write}
	segs, err := sp.segments()
	if err != nil {
		return nil, err
	}
	for _, g := range segs {
		if fi, err := os.Stat(sp.Path(g)); err == nil {
			sp.size += fi.Size()
		}
		sp.lastSeq = max(sp.lastSeq, g.Seq)
	}
	if sp.size > 0 {
		sp.wake <- struct{}{}
	}
	return sp, nil
}

func randomHex(n int) string {
	r := make([]byte, n)
	rand.Read(r) // never fails
	return hex.EncodeToString(r)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes the entries of dir (a file made, removed or renamed)
// durable; what it cannot do, the next crash may undo, which every caller
// can live with.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Path is the file of segment g.
func (sp *Spool) Path(g Segment) string {
	return filepath.Join(sp.dir, g.Name())
}

// MarkerKey names segment g for good, among every segment of every spool
// there ever was: the spool's ID, and the segment's tag, which no other
// segment ever has.
func (sp *Spool) MarkerKey(g Segment) string {
	if g.tag == "" {
		return sp.id
	}
	return sp.id + "/" + g.tag
}

// segments lists the segments in order.
func (sp *Spool) segments() ([]Segment, error) {
	ents, err := os.ReadDir(sp.dir)
	if err != nil {
		return nil, fmt.Errorf("read spool %s: %w", sp.dir, err)
	}
	var out []Segment
	for _, e := range ents {
		if g, ok := parseSegment(e.Name()); ok {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b Segment) int {
		if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
			return c
		}
		return strings.Compare(a.tag, b.tag)
	})
	return out, nil
}

// Bytes returns how much the spool holds.
func (sp *Spool) Bytes() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.size
}

// MaxBytes returns how much the spool may hold.
func (sp *Spool) MaxBytes() int64 { return sp.maxBytes }

// Stats returns how many rows were appended since the spool opened, and
// how many bytes it holds now.
func (sp *Spool) Stats() (rows, bytes int64) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.appended, sp.size
}

// Wake receives a signal after an append (one for any number of them),
// for the reader.
func (sp *Spool) Wake() <-chan struct{} { return sp.wake }

// CountAppendErrors makes the spool count failed appends into c, those
// that failed before included.
func (sp *Spool) CountAppendErrors(c prometheus.Counter) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.appendErrors = c
	c.Add(float64(sp.failed))
	sp.failed = 0
}

// Append writes rec, a record of rows rows, durably; rec is not empty. It returns false,
// and writes nothing, when the spool would grow past its limit; on an
// error nothing of the record is left to read, unless the truncation that
// undoes it failed too, when its torn bytes end their segment.
func (sp *Spool) Append(rec []byte, rows int) (bool, error) {
	if len(rec) == 0 {
		return false, errors.New("append to spool: an empty record")
	}
	frame := make([]byte, 8, 8+len(rec))
	binary.BigEndian.PutUint32(frame, uint32(len(rec)))
	binary.BigEndian.PutUint32(frame[4:], crc32.Checksum(rec, crc32c))
	frame = append(frame, rec...)
	n := int64(len(frame))

	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.size+n > sp.maxBytes {
		return false, nil
	}
	if !sp.appending || sp.curSize+n > segmentMax {
		if err := sp.newSegmentLocked(); err != nil {
			sp.countAppendErrorLocked()
			return false, err
		}
	}
	// Opened for each record: nothing stays open once the sink is
	// closed, and an fsync per record costs far more anyway.
	f, err := os.OpenFile(sp.Path(sp.curSeg), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		sp.appending = false
		sp.countAppendErrorLocked()
		return false, fmt.Errorf("open spool segment: %w", err)
	}
	if sp.write != nil {
		_, err = sp.write(f, frame)
	} else {
		_, err = f.Write(frame)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		sp.countAppendErrorLocked()
		return false, sp.undoLocked(f, err)
	}
	f.Close() // after the fsync: what it could report is known
	sp.curSize += n
	sp.size += n
	sp.appended += int64(rows)
	select {
	case sp.wake <- struct{}{}:
	default:
	}
	return true, nil
}

func (sp *Spool) countAppendErrorLocked() {
	if sp.appendErrors != nil {
		sp.appendErrors.Inc()
	} else {
		sp.failed++
	}
}

// newSegmentLocked ends the segment being appended to and makes the
// next one.
func (sp *Spool) newSegmentLocked() error {
	sp.appending = false
	g := Segment{Seq: sp.lastSeq + 1, tag: randomHex(segmentTagBytes)}
	f, err := os.OpenFile(sp.Path(g), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create spool segment: %w", err)
	}
	f.Close()
	syncDir(sp.dir)
	sp.appending, sp.curSeg, sp.curSize, sp.lastSeq = true, g, 0, g.Seq
	return nil
}

// undoLocked cuts the segment being appended to, open as f, back to its
// last whole record after a failed append (cause), closes f and ends the
// segment: the next append goes to a new one. It returns the error to
// report.
func (sp *Spool) undoLocked(f *os.File, cause error) error {
	g, good := sp.curSeg, sp.curSize
	sp.appending = false
	err := fmt.Errorf("append to spool segment %s: %w", g.Name(), cause)
	terr := f.Truncate(good)
	if terr == nil {
		terr = f.Sync()
	}
	f.Close()
	if terr != nil {
		// The torn bytes end the segment, and nothing follows them:
		// replay stops there. They count until it is removed.
		if fi, serr := os.Stat(sp.Path(g)); serr == nil {
			sp.size += fi.Size() - good
		}
		return fmt.Errorf("%w; cutting off the torn record failed too, so it ends the segment: %v", err, terr)
	}
	if good == 0 {
		if os.Remove(sp.Path(g)) == nil {
			syncDir(sp.dir)
		}
	}
	return err
}
