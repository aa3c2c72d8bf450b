// Package contract holds the test suites every implementation of an
// authority port must pass: TestLimiter for authority.Limiter and TestBus
// for authority.Bus. Each implementation's tests call them with a
// constructor, so inmem, redisbus, pgbus and sqlstore are held to the same
// guarantees; what only one implementation promises stays in its own tests.
package contract

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/testkit"
)

// window is the length of the windows the limiter suite uses.
const window = time.Hour

// TestLimiter checks what authority.Limiter guarantees: at most limit
// admitted calls per key and window, exactly counted under concurrency;
// refused calls not counted; a new window starting at zero at the
// boundary; keys independent; a limit of zero or less admitting and
// counting everything; bad windows and ended contexts refused with an
// error; and TakeAll's named limits (see testTakeAll). newLimiter returns a fresh limiter whose counts no other test
// shares.
//
// The windows are whole hours, starting at the next hour of the wall
// clock and moved by a fake clock: Redis expires a window's key by its own
// clock, so a window must not end, by that clock, while the test runs.
func TestLimiter(t *testing.T, newLimiter func(t *testing.T) authority.Limiter) {
	t.Helper()
	t.Run("admits exactly limit calls and refuses the rest without counting them", func(t *testing.T) {
		l, clock := newLimiter(t), newClock()
		key := uniqueKey()
		const limit = 5
		for i := 1; i <= limit+3; i++ {
			want := taken{admitted: i <= limit, count: min(i, limit)}
			if got := take(t, l, key, limit, clock); got != want {
				t.Fatalf("call %d = %+v, want %+v", i, got, want)
			}
		}
	})

	t.Run("concurrent calls admit exactly limit, each with its own count", func(t *testing.T) {
		l, clock := newLimiter(t), newClock()
		key := uniqueKey()
		const limit, calls, workers = 200, 240, 16
		start, end := windowAt(clock.Now())
		var (
			mu       sync.Mutex
			counts   = map[int]int{} // count returned to an admitted call → calls
			refused  int
			wg       sync.WaitGroup
			next     = make(chan struct{}, calls)
			failures = make(chan error, workers)
		)
		for range calls {
			next <- struct{}{}
		}
		close(next)
		for range workers {
			wg.Go(func() {
				for range next {
					ok, n, err := l.Take(context.Background(), key, limit, start, end)
					if err != nil {
						failures <- err
						return
					}
					mu.Lock()
					if ok {
						counts[n]++
					} else {
						refused++
						if n != limit {
							failures <- errors.New("a refused call did not report the full count")
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(failures)
		for err := range failures {
			t.Fatal(err)
		}
		if len(counts) != limit || refused != calls-limit {
			t.Fatalf("admitted %d distinct counts, refused %d; want %d and %d", len(counts), refused, limit, calls-limit)
		}
		for n := 1; n <= limit; n++ {
			if counts[n] != 1 {
				t.Fatalf("count %d was returned to %d admitted calls, want 1", n, counts[n])
			}
		}
	})

	t.Run("a new window starts at zero at the boundary, not before", func(t *testing.T) {
		l, clock := newLimiter(t), newClock()
		key := uniqueKey()
		const limit = 2
		take(t, l, key, limit, clock)
		take(t, l, key, limit, clock)
		clock.Advance(window - time.Millisecond) // the last millisecond of the window
		if got := take(t, l, key, limit, clock); got != (taken{false, limit}) {
			t.Fatalf("just before the boundary: %+v, want refused at %d", got, limit)
		}
		clock.Advance(time.Millisecond)
		if got := take(t, l, key, limit, clock); got != (taken{true, 1}) {
			t.Fatalf("at the boundary: %+v, want admitted at 1", got)
		}
	})

	t.Run("keys are independent", func(t *testing.T) {
		l, clock := newLimiter(t), newClock()
		a, b := uniqueKey(), uniqueKey()
		const limit = 1
		take(t, l, a, limit, clock)
		if got := take(t, l, a, limit, clock); got.admitted {
			t.Fatalf("key a over its limit: %+v, want refused", got)
		}
		if got := take(t, l, b, limit, clock); got != (taken{true, 1}) {
			t.Fatalf("key b after key a is exhausted: %+v, want admitted at 1", got)
		}
	})

	t.Run("a limit of zero or less admits and counts every call", func(t *testing.T) {
		l, clock := newLimiter(t), newClock()
		for _, limit := range []int{0, -1} {
			key := uniqueKey()
			for i := 1; i <= 3; i++ {
				if got := take(t, l, key, limit, clock); got != (taken{true, i}) {
					t.Fatalf("limit %d, call %d: %+v, want admitted at %d", limit, i, got, i)
				}
			}
		}
	})

	t.Run("bad calls are errors", func(t *testing.T) {
		l, clock := newLimiter(t), newClock()
		now := clock.Now()
		ctx := context.Background()
		if _, _, err := l.Take(ctx, uniqueKey(), 1, now, now); err == nil {
			t.Error("an empty window: no error")
		}
		if _, _, err := l.Take(ctx, uniqueKey(), 1, now, now.Add(-time.Second)); err == nil {
			t.Error("a window ending before it starts: no error")
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := l.Take(cancelled, uniqueKey(), 1, now, now.Add(window)); !errors.Is(err, context.Canceled) {
			t.Errorf("an ended context: err = %v, want context.Canceled", err)
		}
	})

	testTakeAll(t, newLimiter)
}

type taken struct {
	admitted bool
	count    int
}

// take calls Take for key in the window holding clock's time and fails the
// test on an error.
func take(t *testing.T, l authority.Limiter, key string, limit int, clock *testkit.Clock) taken {
	t.Helper()
	start, end := windowAt(clock.Now())
	ok, n, err := l.Take(context.Background(), key, limit, start, end)
	if err != nil {
		t.Fatalf("Take(%q, %d, %v): %v", key, limit, start, err)
	}
	return taken{ok, n}
}

func windowAt(t time.Time) (start, end time.Time) {
	start = t.Truncate(window)
	return start, start.Add(window)
}

// newClock returns a fake clock at the start of the next wall-clock hour
// (see TestLimiter).
func newClock() *testkit.Clock {
	c := testkit.NewClock()
	c.Set(time.Now().Truncate(window).Add(window))
	return c
}

// uniqueKey returns a key no other test, or earlier run against the same
// server, has used.
func uniqueKey() string {
	var b [8]byte
	rand.Read(b[:])
	return "contract-" + hex.EncodeToString(b[:])
}
