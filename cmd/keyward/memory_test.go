package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

func TestTheMemoryLimitFollowsTheCacheBudgetUnlessGOMEMLIMITIsSet(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	gcBefore := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(gcBefore) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	if got := setMemoryLimit(log, 16<<20); got != 16<<20+memoryHeadroom || debug.SetMemoryLimit(-1) != got {
		t.Errorf("limit = %d (runtime %d), want the 16 MiB budget + %d", got, debug.SetMemoryLimit(-1), memoryHeadroom)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("under its own limit GOGC = %d, want %d", got, gcPercent)
	}

	t.Setenv("GOGC", "50") // as if the runtime had read it
	debug.SetGCPercent(50)
	setMemoryLimit(log, 16<<20)
	if got := debug.SetGCPercent(100); got != 50 {
		t.Errorf("with GOGC set, GOGC became %d; want it left alone", got)
	}

	debug.SetMemoryLimit(1 << 40) // as if the runtime had read GOMEMLIMIT
	debug.SetGCPercent(100)
	t.Setenv("GOMEMLIMIT", "1TiB")
	t.Setenv("GOGC", "")
	if got := setMemoryLimit(log, 16<<20); got != 1<<40 {
		t.Errorf("with GOMEMLIMIT set, the limit became %d; want it left alone", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOMEMLIMIT set, GOGC became %d; want it left alone (no limit of serve's own bounds the heap)", got)
	}
}
