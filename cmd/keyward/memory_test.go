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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOMEMLIMIT", "")
	if got := setMemoryLimit(log, 16<<20); got != 16<<20+memoryHeadroom || debug.SetMemoryLimit(-1) != got {
		t.Errorf("limit = %d (runtime %d), want the 16 MiB budget + %d", got, debug.SetMemoryLimit(-1), memoryHeadroom)
	}

	debug.SetMemoryLimit(1 << 40) // as if the runtime had read GOMEMLIMIT
	t.Setenv("GOMEMLIMIT", "1TiB")
	if got := setMemoryLimit(log, 16<<20); got != 1<<40 {
		t.Errorf("with GOMEMLIMIT set, the limit became %d; want it left alone", got)
	}
}
