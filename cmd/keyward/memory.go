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

// setMemoryLimit gives the Go runtime a soft memory limit of the cache
// budget plus headroom, unless GOMEMLIMIT sets one. Without it the heap
// grows to twice its live size between collections (GOGC=100), so a
// node whose cache is full would hold twice the budget. The limit is soft:
// past it the collector runs more often, never refuses an allocation.
func setMemoryLimit(log *slog.Logger, cacheBytes int) int64 {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return debug.SetMemoryLimit(-1) // the runtime already read it
	}
	limit := int64(cacheBytes) + memoryHeadroom
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit", slog.Int64("bytes", limit))
	return limit
}
