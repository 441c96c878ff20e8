package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/pginflux/pginflux/internal/plural"
)

// Reading the spool back: the closed segments, oldest first, each read
// up to its end or its damage, then removed or set aside.

// ClosedSegments ends the segment being appended to, so that it can be
// read, and lists all, oldest first.
func (sp *Spool) ClosedSegments() ([]Segment, error) {
	sp.mu.Lock()
	sp.appending = false
	sp.mu.Unlock()
	return sp.segments()
}

// ErrCorrupt says a segment holds a bad record with data after it: not a
// torn end, damage.
var ErrCorrupt = errors.New("corrupt spool segment")

// Read calls record with each record of segment g, in order: its index in
// the segment and its payload, valid only during the call. A record whose
// checksum fails, that is empty, or for which record returns an error
// (its payload does not decode), is bad. A bad or torn record at the segment's end (a crash
// while appending) ends it without an error; a bad record with more after
// it ends it with an error wrapping ErrCorrupt.
func (sp *Spool) Read(g Segment, record func(index int64, payload []byte) error) error {
	data, err := os.ReadFile(sp.Path(g))
	if err != nil {
		return fmt.Errorf("read spool segment: %w", err)
	}
	off := 0
	for i := int64(0); off < len(data); i++ {
		rest := data[off:]
		if len(rest) < 8 || 8+int64(binary.BigEndian.Uint32(rest)) > int64(len(rest)) {
			return nil // torn: the record runs past the end
		}
		end := 8 + int(binary.BigEndian.Uint32(rest))
		rec := rest[8:end]
		switch {
		case len(rec) == 0:
			// Never appended (see Append): zeros, as a crash may leave.
			err = errors.New("empty record")
		case crc32.Checksum(rec, crc32c) == binary.BigEndian.Uint32(rest[4:]):
			err = record(i, rec)
		default:
			err = errors.New("bad checksum")
		}
		if err != nil {
			if end == len(rest) || allZero(rest) {
				// The last bytes of the file, or zeros a crash left
				// after them: a torn end.
				return nil
			}
			return fmt.Errorf("%w %s: record %d at byte %d: %v, and %s",
				ErrCorrupt, g.Name(), i, off, err, plural.Of(len(rest)-end, "byte follows", "bytes follow"))
		}
		off += end
	}
	return nil
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// Remove deletes a segment that was read.
func (sp *Spool) Remove(g Segment) error {
	return sp.drop(g, "")
}

// Quarantine renames a corrupt segment <name>.corrupt, out of the reader's
// way, and stops counting it; the file stays for the operator. It returns
// the new name.
func (sp *Spool) Quarantine(g Segment) (string, error) {
	to := sp.Path(g) + CorruptSuffix
	return to, sp.drop(g, to)
}

// drop removes segment g from the spool: deleted, or renamed to.
func (sp *Spool) drop(g Segment, to string) error {
	path := sp.Path(g)
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
