package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// memoryHeadroom is what the Go heap may hold beyond the verify cache
// before the collector works harder: requests in flight, pools, the
// stores' buffers.
const memoryHeadroom = 32 << 20

// gcPercent is serve's GOGC while the soft memory limit is its own. The
// limit already bounds the heap, whatever GOGC says; GOGC=100 on top of it
// collected whenever the heap doubled a small live size, which at a few
// MiB live (a cache still filling, or a working set that fits it) meant
// several collections a second under load, each one CPU off the verify
// path. With 400 a node collects when its heap is five times its live
// size or reaches the limit, whichever comes first: the most it holds is
// the same.
const gcPercent = 400

// setMemoryLimit gives the Go runtime a soft memory limit of the cache
// budget plus headroom, unless GOMEMLIMIT sets one. Without it the heap
// grows to twice its live size between collections (GOGC=100), so a
// node whose cache is full would hold twice the budget. The limit is soft:
// past it the collector runs more often, never refuses an allocation.
// Under its own limit serve also sets GOGC to gcPercent, unless GOGC is
// set.
func setMemoryLimit(log *slog.Logger, cacheBytes int) int64 {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return debug.SetMemoryLimit(-1) // the runtime already read it
	}
	limit := int64(cacheBytes) + memoryHeadroom
	debug.SetMemoryLimit(limit)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	log.Debug("memory limit", slog.Int64("bytes", limit))
	return limit
}
