package sink

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pginflux/pginflux/parse"
)

// The spool (--spool-dir) keeps batches on disk while PostgreSQL cannot
// take them, instead of holding them in memory or dropping datagrams at the
// door, and a replayer writes them back in order once it can. It survives a
// restart of pginflux.
//
// On disk: a file ID naming the spool, and segment files seg-<n> of
// records, each a uint32 length, a uint32 CRC-32C of the payload, and the
// payload, a batch (see encodeBatch). A record is appended with one write
// and an fsync; a torn record at the end of a segment (a crash while
// appending) fails its CRC and ends the segment.
//
// Replay is exactly once: each record is written in one transaction with a
// row in the marker table (pginflux_spool) naming the spool, segment,
// record and row range; a record whose marker exists is skipped. A segment
// is deleted once replayed, and its markers only after that, so a crash at
// any point leaves either the segment and its markers (nothing is
// replayed twice) or neither.
type spool struct {
	dir      string
	id       string
	maxBytes int64

	mu      sync.Mutex
	cur     *os.File // segment being appended to, or nil
	curSeq  int64
	curSize int64
	size    int64 // bytes in all segments
	wake    chan struct{}
}

const (
	spoolSegmentMax = 8 << 20
	spoolVersion    = 1
	markerTable     = "pginflux_spool"
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
		var r [8]byte
		rand.Read(r[:])
		id = []byte(hex.EncodeToString(r[:]))
		if err := writeFileSync(idPath, id); err != nil {
			return nil, fmt.Errorf("open spool %s: %w", dir, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	sp := &spool{dir: dir, id: strings.TrimSpace(string(id)), maxBytes: maxBytes, wake: make(chan struct{}, 1)}
	segs, err := sp.segments()
	if err != nil {
		return nil, err
	}
	for _, seq := range segs {
		if fi, err := os.Stat(sp.segPath(seq)); err == nil {
			sp.size += fi.Size()
		}
		sp.curSeq = max(sp.curSeq, seq)
	}
	return sp, nil
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

func (sp *spool) segPath(seq int64) string {
	return filepath.Join(sp.dir, fmt.Sprintf("seg-%020d", seq))
}

// segments lists the segment numbers in order.
func (sp *spool) segments() ([]int64, error) {
	ents, err := os.ReadDir(sp.dir)
	if err != nil {
		return nil, fmt.Errorf("read spool %s: %w", sp.dir, err)
	}
	var out []int64
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), "seg-"); ok {
			if seq, err := strconv.ParseInt(n, 10, 64); err == nil {
				out = append(out, seq)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// bytes returns how much the spool holds.
func (sp *spool) bytes() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.size
}

// append writes rows lo..hi-1 of b as one record. It returns false, and
// writes nothing, when the spool would grow past its limit.
func (sp *spool) append(b *batch, lo, hi int) (bool, error) {
	rec := encodeBatch(nil, b, lo, hi)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	n := int64(8 + len(rec))
	if sp.size+n > sp.maxBytes {
		return false, nil
	}
	if sp.cur == nil || sp.curSize+n > spoolSegmentMax {
		if err := sp.rotateLocked(); err != nil {
			return false, err
		}
		f, err := os.OpenFile(sp.segPath(sp.curSeq+1), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return false, fmt.Errorf("spool: %w", err)
		}
		sp.cur, sp.curSeq, sp.curSize = f, sp.curSeq+1, 0
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(rec)))
	frame = binary.BigEndian.AppendUint32(frame, crc32.Checksum(rec, crc32c))
	frame = append(frame, rec...)
	if _, err := sp.cur.Write(frame); err != nil {
		return false, fmt.Errorf("spool: %w", err)
	}
	if err := sp.cur.Sync(); err != nil {
		return false, fmt.Errorf("spool: %w", err)
	}
	sp.curSize += n
	sp.size += n
	select {
	case sp.wake <- struct{}{}:
	default:
	}
	return true, nil
}

// rotateLocked closes the segment being appended to, so that it can be
// replayed.
func (sp *spool) rotateLocked() error {
	if sp.cur == nil {
		return nil
	}
	err := sp.cur.Close()
	sp.cur = nil
	return err
}

// closedSegments closes the current segment and lists all, oldest first.
func (sp *spool) closedSegments() ([]int64, error) {
	sp.mu.Lock()
	err := sp.rotateLocked()
	sp.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return sp.segments()
}

// spoolRecord is one record of a segment.
type spoolRecord struct {
	seq, index int64
	b          *batch
}

// readSegment returns the records of segment seq; a torn or corrupt record
// ends it.
func (sp *spool) readSegment(seq int64) ([]spoolRecord, error) {
	f, err := os.Open(sp.segPath(seq))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var out []spoolRecord
	for i := int64(0); ; i++ {
		var head [8]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return out, nil
		}
		rec := make([]byte, binary.BigEndian.Uint32(head[:4]))
		if _, err := io.ReadFull(r, rec); err != nil || crc32.Checksum(rec, crc32c) != binary.BigEndian.Uint32(head[4:]) {
			return out, nil
		}
		b, err := decodeBatch(rec)
		if err != nil {
			return out, nil
		}
		out = append(out, spoolRecord{seq: seq, index: i, b: b})
	}
}

// remove deletes a replayed segment.
func (sp *spool) remove(seq int64) error {
	fi, err := os.Stat(sp.segPath(seq))
	if err != nil {
		return err
	}
	if err := os.Remove(sp.segPath(seq)); err != nil {
		return err
	}
	if d, err := os.Open(sp.dir); err == nil {
		d.Sync()
		d.Close()
	}
	sp.mu.Lock()
	sp.size -= fi.Size()
	sp.mu.Unlock()
	return nil
}

// encodeBatch appends rows lo..hi-1 of b, with what they need to be
// written again (origins, keys), as a spool record payload.
func encodeBatch(out []byte, b *batch, lo, hi int) []byte {
	u32 := func(v int) { out = binary.BigEndian.AppendUint32(out, uint32(v)) }
	str := func(s string) { u32(len(s)); out = append(out, s...) }
	out = append(out, spoolVersion)
	flags := byte(0)
	if b.rejected {
		flags = 1
	}
	out = append(out, flags)
	str(b.measurement)
	rows := b.rowBytes(lo, hi)
	u32(len(rows))
	out = append(out, rows...)
	start := 0
	if lo > 0 {
		start = b.ends[lo-1]
	}
	u32(hi - lo)
	for r := lo; r < hi; r++ {
		u32(b.ends[r] - start)
		o := b.origin(r)
		src := ""
		if o.Source.IsValid() {
			src = o.Source.String()
		}
		str(src)
		out = binary.BigEndian.AppendUint64(out, uint64(o.Received.UnixNano()))
	}
	u32(len(b.keys))
	for _, k := range b.keys {
		str(k.name)
		tag := byte(0)
		if k.tag {
			tag = 1
		}
		out = append(out, tag, byte(k.first))
		for _, c := range k.counts {
			u32(int(c))
		}
	}
	return out
}

var errBadRecord = errors.New("bad spool record")

// decodeBatch reads a spool record payload back into a batch.
func decodeBatch(p []byte) (b *batch, err error) {
	defer func() {
		if recover() != nil {
			b, err = nil, errBadRecord
		}
	}()
	if len(p) < 2 || p[0] != spoolVersion {
		return nil, errBadRecord
	}
	i := 2
	u32 := func() int { v := int(binary.BigEndian.Uint32(p[i:])); i += 4; return v }
	bytesOf := func() []byte { n := u32(); v := p[i : i+n]; i += n; return v }
	b = &batch{rejected: p[1] == 1, tagIDs: map[string]uint32{}, fieldIDs: map[string]uint32{}}
	b.measurement = string(bytesOf())
	b.buf = slices.Clone(bytesOf())
	n := u32()
	for range n {
		b.ends = append(b.ends, u32())
		var o Origin
		if src := string(bytesOf()); src != "" {
			o.Source, _ = netip.ParseAddrPort(src)
		}
		o.Received = time.Unix(0, int64(binary.BigEndian.Uint64(p[i:])))
		i += 8
		b.addOrigin(o)
	}
	nk := u32()
	for id := range nk {
		k := batchKey{name: string(bytesOf())}
		k.tag = p[i] == 1
		k.first = parse.Kind(p[i+1])
		i += 2
		for c := range k.counts {
			k.counts[c] = uint32(u32())
		}
		b.keys = append(b.keys, k)
		if k.tag {
			b.tagIDs[k.name] = uint32(id)
		} else {
			b.fieldIDs[k.name] = uint32(id)
		}
	}
	if len(b.ends) > 0 && b.ends[len(b.ends)-1] != len(b.buf) {
		return nil, errBadRecord
	}
	return b, nil
}

// spoolMark names the record a replayed batch came from.
type spoolMark struct {
	spool         string
	segment, item int64
}

// markerDDL makes the table of replayed records.
func markerDDL(ident string) string {
	return "CREATE TABLE IF NOT EXISTS " + ident + ` (spool text NOT NULL, segment bigint NOT NULL, record bigint NOT NULL,
		lo int NOT NULL, hi int NOT NULL, replayed timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (spool, segment, record, lo, hi))`
}

// errPartlyReplayed says part of a replayed record's rows were written
// before (a crash while its batch was being split): split it the same way
// and write only what is missing.
var errPartlyReplayed = errors.New("part of the spool record was replayed before")

// replayed looks up the markers of rows lo..hi-1 of a replayed record:
// full when exactly that range was written, partial when some range
// inside it was.
func (s *Sink) replayed(ctx context.Context, conn *pgx.Conn, m *spoolMark, lo, hi int) (full, partial bool, err error) {
	var exact, inner int
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE lo = $4 AND hi = $5), count(*) FROM `+
		pgx.Identifier{s.cfg.Schema, markerTable}.Sanitize()+
		` WHERE spool = $1 AND segment = $2 AND record = $3 AND lo >= $4 AND hi <= $5`,
		m.spool, m.segment, m.item, lo, hi).Scan(&exact, &inner)
	if err != nil {
		return false, false, fmt.Errorf("look up replayed spool records: %w", err)
	}
	return exact > 0, inner > 0, nil
}

// testHookReplayed, when set, is called after each replayed record; true
// stops the replay there as a crash would.
var testHookReplayed func(segment, item int64) bool

// replay writes what the spool holds whenever something was spooled, and
// every few seconds, until the sink closes.
func (s *Sink) replay() {
	w := new(writerState)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.spool.wake:
		case <-tick.C:
		case <-s.maintenanceCtx.Done():
			return
		}
		if s.spool.bytes() == 0 {
			continue
		}
		if err := s.replayAll(w); err != nil {
			s.log.Warn("spool replay stopped; trying again later", "err", err)
		}
		s.metrics.SpoolBytes.Set(float64(s.spool.bytes()))
	}
}

// replayAll writes every closed segment, oldest first, deleting each once
// all its records are written, then its markers.
func (s *Sink) replayAll(w *writerState) error {
	ctx := s.maintenanceCtx
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	err = s.catalog.ready(ctx, conn.Conn())
	if err == nil {
		_, err = conn.Exec(ctx, markerDDL(pgx.Identifier{s.cfg.Schema, markerTable}.Sanitize()))
	}
	conn.Release()
	if err != nil {
		return fmt.Errorf("prepare the spool's marker table: %w", err)
	}
	segs, err := s.spool.closedSegments()
	if err != nil {
		return err
	}
	for _, seq := range segs {
		recs, err := s.spool.readSegment(seq)
		if err != nil {
			return err
		}
		w.replayFailed = false
		for _, r := range recs {
			if ctx.Err() != nil || w.replayFailed {
				return nil
			}
			r.b.mark = &spoolMark{spool: s.spool.id, segment: seq, item: r.index}
			n := r.b.rows()
			s.metrics.PendingRows.Add(float64(n))
			s.limit.addN(n)
			s.writeRange(w, r.b, 0, n, false)
			if testHookReplayed != nil && testHookReplayed(seq, r.index) {
				return nil // a crash, for tests: nothing after this happens
			}
		}
		if ctx.Err() != nil || w.replayFailed || s.abandon.Err() != nil {
			return nil
		}
		if err := s.spool.remove(seq); err != nil {
			return fmt.Errorf("remove replayed spool segment: %w", err)
		}
		// Only now: a crash before this leaves markers of a deleted
		// segment, which are harmless.
		if c, err := s.pool.Acquire(ctx); err == nil {
			_, err = c.Exec(ctx, "DELETE FROM "+pgx.Identifier{s.cfg.Schema, markerTable}.Sanitize()+
				" WHERE spool = $1 AND segment = $2", s.spool.id, seq)
			c.Release()
			if err != nil {
				s.log.Debug("could not delete the markers of a replayed segment", "err", err)
			}
		}
		s.log.Info("replayed a spool segment", "segment", seq, "records", len(recs))
	}
	return nil
}
