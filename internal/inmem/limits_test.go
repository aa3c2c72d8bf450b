package inmem_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
)

func takeAll(t *testing.T, l *inmem.Limiter, now time.Time, takes ...authority.LimitTake) (bool, []authority.LimitState) {
	t.Helper()
	ok, states, err := l.TakeAll(context.Background(), now, takes)
	if err != nil {
		t.Fatal(err)
	}
	return ok, states
}

// Counters are dropped once no call can need them (a window after they
// end, plus a minute's grace), by a call at most a minute of the callers'
// clock after the last sweep; refused calls and reads create none.
func TestTakeAllSweepsCountersNoLongerNeeded(t *testing.T) {
	l := inmem.NewLimiter()
	minute := func(key string, cost int64) authority.LimitTake {
		return authority.LimitTake{Key: key, Limit: 5, Cost: cost, Window: time.Minute, Algorithm: authority.LimitSliding}
	}
	for i := range 1000 {
		takeAll(t, l, hour0, minute("k"+strconv.Itoa(i), 1))
	}
	takeAll(t, l, hour0, minute("read", 0))
	takeAll(t, l, hour0, minute("refused", 6))
	if n := inmem.NamedLen(l); n != 1000 {
		t.Fatalf("%d counters after 1000 counted calls, a read and a refusal; want 1000", n)
	}
	// Two windows on, plus the grace: the counters of hour0's window are
	// still kept at 10:03:00 (kept until 10:02, grace a minute) …
	takeAll(t, l, hour0.Add(3*time.Minute), minute("live", 1))
	if n := inmem.NamedLen(l); n != 1001 {
		t.Fatalf("at 10:03: %d counters, want 1001", n)
	}
	// … and gone by the next sweep, a minute later; the live one stays.
	ok, states := takeAll(t, l, hour0.Add(4*time.Minute), minute("live", 0))
	if n := inmem.NamedLen(l); n != 1 || !ok || states[0].Remaining != 4 {
		t.Fatalf("at 10:04: %d counters, live read (%v, %+v); want 1 counter, remaining 4", n, ok, states)
	}
}
