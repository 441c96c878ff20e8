package sink

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
)

// The spool (--spool-dir) keeps batches on disk while PostgreSQL cannot
// take them, instead of holding them in memory or dropping datagrams at the
// door, and a replayer writes them back in order once it can. It survives a
// restart of pginflux.
//
// On disk: a file ID naming the spool, and segment files
// seg-<n>-<random tag> of records, each a uint32 length, a uint32 CRC-32C
// of the payload, and the payload, a batch (see encodeBatch). n orders the
// segments; the tag, new for every segment, makes its identity unique for
// good, so that markers left from a segment of an earlier run (a delete
// that failed, a crash) can never match a new one. (Segments named seg-<n>
// come from before tags and are still replayed.)
//
// A record is appended with one write and an fsync. An append that fails
// (a full disk, an I/O error) is cut off again, truncating the segment to
// its last whole record, and the segment is closed: later records go to a
// new one, so no record ever follows torn bytes. A torn record can then
// only be the last bytes of a segment (a crash while appending, or a
// truncation that failed too), and replay stops there. A bad record with
// more data after it is damage: replay writes what comes before it and
// keeps the file, renamed <name>.corrupt, for the operator.
//
// Replay is exactly once: each record is written in one transaction with a
// row in the marker table (pginflux_spool) naming the spool and segment
// (with its tag), the segment's number, the record and the row range; a
// record whose marker exists is skipped. A segment is deleted once every
// record of it is written and it read back whole, and its markers only
// after that, so a crash at any point leaves either the segment and its
// markers (nothing is replayed twice) or neither.
type spool struct {
	dir      string
	id       string
	maxBytes int64

	mu        sync.Mutex
	appending bool // curSeg takes appends
	curSeg    segment
	curSize   int64
	lastSeq   int64 // highest segment number made or found
	size      int64 // bytes in all segments
	wake      chan struct{}
	// metrics, once the replayer has set it; appendErrors counts failed
	// appends until then.
	metrics      *Metrics
	appendErrors int
	// write, for tests, replaces f.Write of a record (Seams.SpoolWrite).
	write    func(f *os.File, p []byte) (int, error)
	appended int64 // rows appended since the spool opened
}

// segment names one segment file.
type segment struct {
	seq int64
	tag string // random, unique to the segment; "" for old segments
}

func (g segment) name() string {
	if g.tag == "" {
		return fmt.Sprintf("seg-%020d", g.seq)
	}
	return fmt.Sprintf("seg-%020d-%s", g.seq, g.tag)
}

// parseSegment reads a segment file name; quarantined and other files are
// not segments.
func parseSegment(name string) (segment, bool) {
	rest, ok := strings.CutPrefix(name, "seg-")
	if !ok {
		return segment{}, false
	}
	num, tag, tagged := strings.Cut(rest, "-")
	seq, err := strconv.ParseInt(num, 10, 64)
	if err != nil || seq < 0 {
		return segment{}, false
	}
	if tagged {
		if _, err := hex.DecodeString(tag); err != nil || len(tag) != 2*segmentTagBytes {
			return segment{}, false
		}
	}
	return segment{seq: seq, tag: tag}, true
}

const (
	spoolSegmentMax = 8 << 20
	spoolVersion    = 1
	segmentTagBytes = 8
	corruptSuffix   = ".corrupt"
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// openSpool opens (or makes) the spool in dir.
func openSpool(dir string, maxBytes int64) (*spool, error) {
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
	sp := &spool{dir: dir, id: strings.TrimSpace(string(id)), maxBytes: maxBytes, wake: make(chan struct{}, 1)}
	segs, err := sp.segments()
	if err != nil {
		return nil, err
	}
	for _, g := range segs {
		if fi, err := os.Stat(sp.segPath(g)); err == nil {
			sp.size += fi.Size()
		}
		sp.lastSeq = max(sp.lastSeq, g.seq)
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

func (sp *spool) segPath(g segment) string {
	return filepath.Join(sp.dir, g.name())
}

// markerKey is the spool column of g's markers: the spool's ID, and the
// segment's tag, which no other segment ever has.
func (sp *spool) markerKey(g segment) string {
	if g.tag == "" {
		return sp.id
	}
	return sp.id + "/" + g.tag
}

// segments lists the segments in order.
func (sp *spool) segments() ([]segment, error) {
	ents, err := os.ReadDir(sp.dir)
	if err != nil {
		return nil, fmt.Errorf("read spool %s: %w", sp.dir, err)
	}
	var out []segment
	for _, e := range ents {
		if g, ok := parseSegment(e.Name()); ok {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b segment) int {
		if c := cmp.Compare(a.seq, b.seq); c != 0 {
			return c
		}
		return strings.Compare(a.tag, b.tag)
	})
	return out, nil
}

// bytes returns how much the spool holds.
func (sp *spool) bytes() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.size
}

// Spooled returns how many rows this sink put in its spool, and how many
// bytes the spool holds now, rows not yet replayed: both 0 without a
// spool.
func (s *Sink) Spooled() (rows, bytes int64) {
	if s.spool == nil {
		return 0, 0
	}
	s.spool.mu.Lock()
	defer s.spool.mu.Unlock()
	return s.spool.appended, s.spool.size
}

// setMetrics makes the spool count into m.
func (sp *spool) setMetrics(m *Metrics) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.metrics = m
	m.SpoolAppendErrors.Add(float64(sp.appendErrors))
	sp.appendErrors = 0
}

// append writes rows lo..hi-1 of b as one record, durably. It returns
// false, and writes nothing, when the spool would grow past its limit; on
// an error nothing of the record is left to replay, unless the truncation
// that undoes it failed too, when its torn bytes end their segment.
func (sp *spool) append(b *batch, lo, hi int) (bool, error) {
	rec := encodeBatch(nil, b, lo, hi)
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
	if !sp.appending || sp.curSize+n > spoolSegmentMax {
		if err := sp.newSegmentLocked(); err != nil {
			sp.countAppendErrorLocked()
			return false, err
		}
	}
	// Opened for each record: nothing stays open once the sink is
	// closed, and an fsync per record costs far more anyway.
	f, err := os.OpenFile(sp.segPath(sp.curSeg), os.O_WRONLY|os.O_APPEND, 0)
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
	sp.appended += int64(hi - lo)
	select {
	case sp.wake <- struct{}{}:
	default:
	}
	return true, nil
}

func (sp *spool) countAppendErrorLocked() {
	if sp.metrics != nil {
		sp.metrics.SpoolAppendErrors.Inc()
	} else {
		sp.appendErrors++
	}
}

// newSegmentLocked ends the segment being appended to and makes the
// next one.
func (sp *spool) newSegmentLocked() error {
	sp.appending = false
	g := segment{seq: sp.lastSeq + 1, tag: randomHex(segmentTagBytes)}
	f, err := os.OpenFile(sp.segPath(g), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create spool segment: %w", err)
	}
	f.Close()
	syncDir(sp.dir)
	sp.appending, sp.curSeg, sp.curSize, sp.lastSeq = true, g, 0, g.seq
	return nil
}

// undoLocked cuts the segment being appended to, open as f, back to its
// last whole record after a failed append (cause), closes f and ends the
// segment: the next append goes to a new one. It returns the error to
// report.
func (sp *spool) undoLocked(f *os.File, cause error) error {
	g, good := sp.curSeg, sp.curSize
	sp.appending = false
	err := fmt.Errorf("append to spool segment %s: %w", g.name(), cause)
	terr := f.Truncate(good)
	if terr == nil {
		terr = f.Sync()
	}
	f.Close()
	if terr != nil {
		// The torn bytes end the segment, and nothing follows them:
		// replay stops there. They count until it is removed.
		if fi, serr := os.Stat(sp.segPath(g)); serr == nil {
			sp.size += fi.Size() - good
		}
		return fmt.Errorf("%w; cutting off the torn record failed too, so it ends the segment: %v", err, terr)
	}
	if good == 0 {
		if os.Remove(sp.segPath(g)) == nil {
			syncDir(sp.dir)
		}
	}
	return err
}
