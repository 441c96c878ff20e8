package daemon

import "github.com/pginflux/pginflux/config"

// Memory the garbage collector aims to stay within: what the bounds let
// pginflux hold at once — the datagram queue (whose buffers can be twice
// what it counts), the rows between parsing and commit, and room for the
// rest — so that after a burst the heap is collected down to that rather
// than allowed to double (GOGC) on top of it.
const (
	memoryBase          = 64 << 20
	memoryPerPendingRow = 512 // bytes: a row as batched, encoded and queued
)

// MemoryLimit returns the soft memory limit for a daemon of cfg, in
// bytes. The command sets it for the process (debug.SetMemoryLimit)
// unless GOMEMLIMIT is set: a soft limit, which pginflux never fails for.
func MemoryLimit(cfg config.Config) int64 {
	return int64(memoryBase) + 2*int64(cfg.QueueMaxBytes) + int64(cfg.MaxPendingRows)*memoryPerPendingRow
}
