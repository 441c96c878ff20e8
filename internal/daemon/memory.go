package daemon

import (
	"github.com/pginflux/pginflux/config"
	"github.com/pginflux/pginflux/ingest/pipeline"
)

// Memory the garbage collector aims to stay within: the memory budget
// (--max-memory), which every buffer of received data draws from, and
// room for the rest (the program, connections, caches of tables and
// series, the batches being encoded), so that after a burst the heap is
// collected down to that rather than allowed to double (GOGC) on top of
// it.
const memoryBase = 32 << 20

// MemoryLimit returns the soft memory limit for a daemon of cfg, in
// bytes. The command sets it for the process (debug.SetMemoryLimit)
// unless GOMEMLIMIT is set: a soft limit, which pginflux never fails for.
func MemoryLimit(cfg config.Config) int64 {
	return memoryBase + cfg.MaxMemory
}

// What a write request being served draws from the memory budget before
// its body is read: its first read buffer (which draws more as it grows),
// and a decompressor when the body is gzipped.
const (
	requestMemory = pipeline.FirstReadSize
	gzipMemory    = 64 << 10
)
