package sink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/pginflux/pginflux/internal/plural"
)

// Reading the spool back: the closed segments, oldest first, each read
// up to its end or its damage, then removed or set aside (see spool.go).

// closedSegments ends the segment being appended to, so that it can be
// replayed, and lists all, oldest first.
func (sp *spool) closedSegments() ([]segment, error) {
	sp.mu.Lock()
	sp.appending = false
	sp.mu.Unlock()
	return sp.segments()
}

// spoolRecord is one record of a segment.
type spoolRecord struct {
	index int64
	b     *batch
}

// errCorruptSegment says a segment holds a bad record with data after it:
// not a torn end, damage.
var errCorruptSegment = errors.New("corrupt spool segment")

// readSegment returns the records of segment g. A torn record at its end
// (a crash while appending) ends it without an error; a bad record with
// more after it returns the records before it and an error wrapping
// errCorruptSegment.
func (sp *spool) readSegment(g segment) ([]spoolRecord, error) {
	data, err := os.ReadFile(sp.segPath(g))
	if err != nil {
		return nil, fmt.Errorf("read spool segment: %w", err)
	}
	var out []spoolRecord
	off := 0
	for i := int64(0); off < len(data); i++ {
		rest := data[off:]
		if len(rest) < 8 || 8+int64(binary.BigEndian.Uint32(rest)) > int64(len(rest)) {
			return out, nil // torn: the record runs past the end
		}
		end := 8 + int(binary.BigEndian.Uint32(rest))
		rec := rest[8:end]
		var b *batch
		if crc32.Checksum(rec, crc32c) == binary.BigEndian.Uint32(rest[4:]) {
			b, err = decodeBatch(rec)
		} else {
			err = errors.New("bad checksum")
		}
		if err != nil {
			if end == len(rest) || allZero(rest) {
				// The last bytes of the file, or zeros a crash left
				// after them: a torn end.
				return out, nil
			}
			return out, fmt.Errorf("%w %s: record %d at byte %d: %v, and %s",
				errCorruptSegment, g.name(), i, off, err, plural.Of(len(rest)-end, "byte follows", "bytes follow"))
		}
		out = append(out, spoolRecord{index: i, b: b})
		off += end
	}
	return out, nil
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// remove deletes a replayed segment.
func (sp *spool) remove(g segment) error {
	return sp.drop(g, "")
}

// quarantine renames a corrupt segment <name>.corrupt, out of replay's
// way, and stops counting it; the file stays for the operator.
func (sp *spool) quarantine(g segment) (string, error) {
	to := sp.segPath(g) + corruptSuffix
	return to, sp.drop(g, to)
}

// drop removes segment g from the spool: deleted, or renamed to.
func (sp *spool) drop(g segment, to string) error {
	path := sp.segPath(g)
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if to == "" {
		err = os.Remove(path)
	} else {
		err = os.Rename(path, to)
	}
	if err != nil {
		return err
	}
	syncDir(sp.dir)
	sp.mu.Lock()
	sp.size -= fi.Size()
	sp.mu.Unlock()
	return nil
}
