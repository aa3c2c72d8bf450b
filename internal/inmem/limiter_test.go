package inmem_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/inmem"
)

var hour0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// take calls l.Take for key in the clock hour starting at start and fails
// the test on an error.
func take(t testing.TB, l *inmem.Limiter, key string, limit int, start time.Time) (bool, int) {
	t.Helper()
	ok, n, err := l.Take(context.Background(), key, limit, start, start.Add(time.Hour))
	if err != nil {
		t.Fatalf("Take(%q, %d, %v) = %v", key, limit, start, err)
	}
	return ok, n
}

func TestAdmitsExactlyLimitSequentially(t *testing.T) {
	l := inmem.NewLimiter()
	const limit, extra = 10, 5
	for i := 1; i <= limit+extra; i++ {
		ok, n := take(t, l, "k", limit, hour0)
		switch {
		case i <= limit && (!ok || n != i):
			t.Fatalf("call %d = (%v, %d), want (true, %d)", i, ok, n, i)
		case i > limit && (ok || n != limit):
			t.Fatalf("call %d = (%v, %d), want (false, %d)", i, ok, n, limit)
		}
	}
}

func TestAdmitsExactlyLimitConcurrently(t *testing.T) {
	for _, tc := range []struct {
		name  string
		calls int
	}{
		{"admits all calls at the limit", 5000},
		{"refuses the calls past the limit", 5008},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const limit, workers = 5000, 32
			l := inmem.NewLimiter()
			var admitted, refused atomic.Int64
			var maxCount atomic.Int64
			var next atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for next.Add(1) <= int64(tc.calls) {
						ok, n, err := l.Take(context.Background(), "k", limit, hour0, hour0.Add(time.Hour))
						if err != nil {
							t.Error(err)
							return
						}
						if ok {
							admitted.Add(1)
						} else {
							refused.Add(1)
						}
						for {
							m := maxCount.Load()
							if int64(n) <= m || maxCount.CompareAndSwap(m, int64(n)) {
								break
							}
						}
					}
				})
			}
			wg.Wait()
			wantRefused := int64(tc.calls - limit)
			if admitted.Load() != limit || refused.Load() != wantRefused || maxCount.Load() != limit {
				t.Fatalf("admitted %d, refused %d, max count %d; want %d, %d, %d",
					admitted.Load(), refused.Load(), maxCount.Load(), limit, wantRefused, limit)
			}
		})
	}
}

func TestNextWindowStartsAtOne(t *testing.T) {
	l := inmem.NewLimiter()
	for range 3 {
		take(t, l, "k", 3, hour0)
	}
	if ok, n := take(t, l, "k", 3, hour0); ok || n != 3 {
		t.Fatalf("fourth call = (%v, %d), want (false, 3)", ok, n)
	}
	if ok, n := take(t, l, "k", 3, hour0.Add(time.Hour)); !ok || n != 1 {
		t.Fatalf("first call of the next window = (%v, %d), want (true, 1)", ok, n)
	}
}

func TestKeysAreIndependent(t *testing.T) {
	l := inmem.NewLimiter()
	take(t, l, "a", 1, hour0)
	if ok, n := take(t, l, "a", 1, hour0); ok || n != 1 {
		t.Fatalf("a's second call = (%v, %d), want (false, 1)", ok, n)
	}
	if ok, n := take(t, l, "b", 1, hour0); !ok || n != 1 {
		t.Fatalf("b's first call = (%v, %d), want (true, 1)", ok, n)
	}
}

func TestRefusedCallsDoNotCount(t *testing.T) {
	l := inmem.NewLimiter()
	const limit = 2
	for range limit {
		take(t, l, "k", limit, hour0)
	}
	for i := range 50 {
		if ok, n := take(t, l, "k", limit, hour0); ok || n != limit {
			t.Fatalf("refused call %d = (%v, %d), want (false, %d)", i, ok, n, limit)
		}
	}
	next := hour0.Add(time.Hour)
	for i := 1; i <= limit; i++ {
		if ok, n := take(t, l, "k", limit, next); !ok || n != i {
			t.Fatalf("next window call %d = (%v, %d), want (true, %d)", i, ok, n, i)
		}
	}
	if ok, n := take(t, l, "k", limit, next); ok || n != limit {
		t.Fatalf("next window past the limit = (%v, %d), want (false, %d)", ok, n, limit)
	}
}

func TestUnlimitedAdmitsAndCounts(t *testing.T) {
	l := inmem.NewLimiter()
	for _, limit := range []int{0, -1} {
		key := "k" + strconv.Itoa(limit)
		for i := 1; i <= 100; i++ {
			if ok, n := take(t, l, key, limit, hour0); !ok || n != i {
				t.Fatalf("limit %d call %d = (%v, %d), want (true, %d)", limit, i, ok, n, i)
			}
		}
	}
}

func TestLateTakeDoesNotResetNewerWindow(t *testing.T) {
	l := inmem.NewLimiter()
	next := hour0.Add(time.Hour)
	take(t, l, "k", 2, hour0)
	take(t, l, "k", 2, next)
	take(t, l, "k", 2, next)
	for i := range 3 {
		if ok, n := take(t, l, "k", 2, hour0); !ok || n != 0 {
			t.Fatalf("late call %d = (%v, %d), want (true, 0)", i, ok, n)
		}
	}
	if ok, n := take(t, l, "k", 2, next); ok || n != 2 {
		t.Fatalf("newer window after late calls = (%v, %d), want (false, 2)", ok, n)
	}
}

func TestRejectsBadCalls(t *testing.T) {
	l := inmem.NewLimiter()
	if _, _, err := l.Take(context.Background(), "k", 1, hour0, hour0); err == nil {
		t.Error("Take with an empty window: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := l.Take(ctx, "k", 1, hour0, hour0.Add(time.Hour)); err == nil {
		t.Error("Take with a cancelled context: no error")
	}
	if n := inmem.Len(l); n != 0 {
		t.Errorf("failed Takes left %d keys", n)
	}
}

func TestSweepsEndedWindows(t *testing.T) {
	l := inmem.NewLimiter()
	const keys = 100_000
	for i := range keys {
		take(t, l, "old"+strconv.Itoa(i), 10, hour0)
	}
	if n := inmem.Len(l); n != keys {
		t.Fatalf("after %d keys: %d held", keys, n)
	}
	later := hour0.Add(2 * time.Hour)
	take(t, l, "live", 10, later)
	if n := inmem.Len(l); n != 1 {
		t.Fatalf("after a Take two hours later: %d keys held, want 1", n)
	}
	// The live window survives later sweeps and keeps its count.
	for i := range keys {
		take(t, l, "new"+strconv.Itoa(i), 10, later.Add(time.Hour))
	}
	take(t, l, "x", 10, later.Add(3*time.Hour))
	if n := inmem.Len(l); n != 1 {
		t.Fatalf("after the second sweep: %d keys held, want 1", n)
	}
}

func TestSweepKeepsLiveWindows(t *testing.T) {
	l := inmem.NewLimiter()
	for i := range 1000 {
		take(t, l, "k"+strconv.Itoa(i), 10, hour0)
	}
	// A daily window starting at the same hour outlives the hourly ones.
	if _, _, err := l.Take(context.Background(), "daily", 10, hour0, hour0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	take(t, l, "live", 10, hour0.Add(time.Hour))
	if n := inmem.Len(l); n != 2 {
		t.Fatalf("after the hour turned: %d keys held, want 2 (live and daily)", n)
	}
	if ok, n, _ := l.Take(context.Background(), "daily", 10, hour0, hour0.Add(24*time.Hour)); !ok || n != 2 {
		t.Fatalf("daily window after the sweep = (%v, %d), want (true, 2)", ok, n)
	}
}

func TestDeferredSweepRunsOncePaidFor(t *testing.T) {
	l := inmem.NewLimiter()
	day := func(key string) {
		if _, _, err := l.Take(context.Background(), key, 10, hour0, hour0.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10_000 {
		day("d" + strconv.Itoa(i))
	}
	for i := range 5000 {
		take(t, l, "h"+strconv.Itoa(i), 10, hour0.Add(time.Hour))
	}
	// The hour turns after fewer Takes than there are keys: the sweep waits.
	take(t, l, "x", 10, hour0.Add(2*time.Hour))
	if n := inmem.Len(l); n != 15_001 {
		t.Fatalf("after the hour turned early: %d keys held, want 15001", n)
	}
	for i := range 20_000 {
		take(t, l, "y"+strconv.Itoa(i), 10, hour0.Add(2*time.Hour))
	}
	if n := inmem.Len(l); n != 30_001 {
		t.Fatalf("after enough Takes: %d keys held, want 30001 (the ended hour swept)", n)
	}
}

func BenchmarkTakeParallel(b *testing.B) {
	l := inmem.NewLimiter()
	const nkeys = 10_000
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = "cred_" + strconv.Itoa(i)
	}
	ctx := context.Background()
	end := hour0.Add(time.Hour)
	var seed atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, _, err := l.Take(ctx, keys[i%nkeys], 1_000_000, hour0, end); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
