package sink

import (
	"slices"
	"time"

	"github.com/pginflux/pginflux/sink/schema"
)

// Why rows are held rather than written, for /readyz, the log and HTTP's
// early answers. Two kinds, so that one table's trouble does not look like
// the database's:
//
//   - The database takes no rows: it cannot be reached, or is restarting
//     or out of resources (isTemporary). Any write that succeeds ends it.
//     While it lasts, HTTP answers 503 before reading a body (unless the
//     spool has room), and a request waiting for its commit hears 503 at
//     once.
//   - PostgreSQL refuses one table's rows for a reason that needs someone
//     to act (a privilege, a read-only table, a setting, a lock timeout):
//     that table's rows are held until a write of that table succeeds;
//     other tables are written meanwhile, and HTTP goes on taking
//     requests (one for that table waits for its commit timeout).
//
// Blocked reports either, and stays reported while the rows are held
// rather than flipping with each other table's write.

// downLogEvery is how often rows still held are logged again.
const downLogEvery = 30 * time.Second

// blockedReason is why the database takes no rows, for Blocked.
type blockedReason struct{ err error }

// heldKey names what b's rows are held for.
func heldKey(b *batch) string {
	if b.rejected {
		return "the rejected table"
	}
	return b.measurement
}

// blocked notes that b's rows are held because of err.
func (s *Sink) blocked(b *batch, err error) {
	temp := schema.IsTemporary(err)
	if temp {
		s.blockedBy.Store(&blockedReason{err})
		s.down.Store(true)
	} else {
		// The database answered: it is up, this table's rows are what
		// it refuses.
		if s.down.CompareAndSwap(true, false) {
			s.blockedBy.Store(nil)
		}
		s.heldMu.Lock()
		if s.heldTables == nil {
			s.heldTables = make(map[string]error)
		}
		s.heldTables[heldKey(b)] = err
		s.heldMu.Unlock()
	}
	now := time.Now().UnixNano()
	first, again := "cannot write to PostgreSQL; holding rows and retrying", "still cannot write to PostgreSQL; holding rows and retrying"
	if temp {
		first, again = "database unavailable; holding rows and retrying", "database still unavailable; holding rows and retrying"
	}
	attrs := []any{"sqlstate_class", sqlstateClass(err), "err", err}
	if !temp {
		attrs = append(attrs, "measurement", heldKey(b))
	}
	if s.holding.CompareAndSwap(false, true) {
		s.lastDownLog.Store(now)
		s.downTemp.Store(temp)
		s.log.Warn(first, attrs...)
		return
	}
	// Every 30 s, or at once when the kind of reason changes (the server
	// back from a restart, but refusing the rows for a setting, say).
	last := s.lastDownLog.Load()
	changed := s.downTemp.Load() != temp
	if (changed || now-last >= int64(downLogEvery)) && s.lastDownLog.CompareAndSwap(last, now) {
		s.downTemp.Store(temp)
		if changed {
			again = first
		}
		s.log.Warn(again, attrs...)
	}
}

// writing notes that rows of b were written: the database takes rows, and
// b's table too.
func (s *Sink) writing(b *batch) {
	if s.down.CompareAndSwap(true, false) {
		s.blockedBy.Store(nil)
		s.log.Info("database available again")
	}
	if !s.holding.Load() {
		return
	}
	s.heldMu.Lock()
	key := heldKey(b)
	if _, ok := s.heldTables[key]; ok {
		delete(s.heldTables, key)
		s.log.Info("rows written again", "measurement", key)
	}
	if len(s.heldTables) == 0 && !s.down.Load() {
		s.holding.Store(false)
	}
	s.heldMu.Unlock()
}

// Blocked returns why the sink holds rows instead of writing them: the
// last error of a write it retries, the database's or, when the database
// takes rows, that of the first table (by name) whose rows it holds; nil
// when it holds none. Safe for concurrent use.
func (s *Sink) Blocked() error {
	if s.down.Load() {
		if r := s.blockedBy.Load(); r != nil {
			return r.err
		}
	}
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	if len(s.heldTables) == 0 {
		return nil
	}
	keys := make([]string, 0, len(s.heldTables))
	for k := range s.heldTables {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return s.heldTables[keys[0]]
}
