package contract

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// testTakeAll checks what authority.Limiter.TakeAll guarantees: all or
// nothing across takes, costs, cost 0 as a read, fixed windows restarting
// at the boundary, the sliding two-window count at known instants, keys
// counted apart from Take's and per window length, bad takes refused with
// an error before anything is counted, MaxLimitTakes takes (the bound)
// counted in one call, and exact counts under concurrency. The instants
// come from a fake clock passed as now.
func testTakeAll(t *testing.T, newLimiter func(t *testing.T) authority.Limiter) {
	t.Run("TakeAll: a full limit refuses the call and nothing is counted on the others", func(t *testing.T) {
		l, now := newLimiter(t), newClock().Now()
		a := fixed(uniqueKey(), 2, 1, time.Hour)
		b := sliding(uniqueKey(), 5, 1, time.Hour)
		c := fixed(uniqueKey(), 9, 1, time.Minute)
		for i := 1; i <= 2; i++ {
			mustTakeAll(t, l, now, true, []int64{2 - int64(i), 5 - int64(i), 9 - int64(i)}, a, b, c)
		}
		// a is full, wherever it stands in the call.
		for range 3 {
			mustTakeAll(t, l, now, false, []int64{0, 3, 7}, a, b, c)
			mustTakeAll(t, l, now, false, []int64{7, 3, 0}, c, b, a)
			mustTakeAll(t, l, now, false, []int64{3, 0}, b, a)
		}
		mustTakeAll(t, l, now, true, []int64{3, 5}, read(b), withCost(c, 2))
	})

	t.Run("TakeAll: a cost counts that many units and must fit whole", func(t *testing.T) {
		l, now := newLimiter(t), newClock().Now()
		for _, k := range []authority.LimitTake{fixed(uniqueKey(), 10, 4, time.Hour), sliding(uniqueKey(), 10, 4, time.Hour)} {
			mustTakeAll(t, l, now, true, []int64{6}, k)
			mustTakeAll(t, l, now, true, []int64{2}, k)
			mustTakeAll(t, l, now, false, []int64{2}, k)
			mustTakeAll(t, l, now, true, []int64{0}, withCost(k, 2))
			mustTakeAll(t, l, now, false, []int64{0}, withCost(k, 1))
			fresh := withCost(k, 11)
			fresh.Key = uniqueKey()
			mustTakeAll(t, l, now, false, []int64{10}, fresh) // more than the limit never fits
		}
	})

	t.Run("TakeAll: cost 0 reads the state without counting", func(t *testing.T) {
		l, now := newLimiter(t), newClock().Now()
		k := fixed(uniqueKey(), 5, 0, time.Hour)
		for range 3 {
			mustTakeAll(t, l, now, true, []int64{5}, k)
		}
		mustTakeAll(t, l, now, true, []int64{2}, withCost(k, 3))
		for range 3 {
			mustTakeAll(t, l, now, true, []int64{2}, k)
		}
	})

	t.Run("TakeAll: a fixed window restarts at its boundary, not before", func(t *testing.T) {
		l, clock := newLimiter(t), newClock()
		k := fixed(uniqueKey(), 2, 1, time.Hour)
		start := clock.Now()
		mustTakeAll(t, l, start, true, []int64{1}, k)
		mustTakeAll(t, l, start.Add(30*time.Minute), true, []int64{0}, k)
		last := start.Add(time.Hour - time.Millisecond)
		_, states := mustTakeAll(t, l, last, false, []int64{0}, k)
		if !states[0].Reset.Equal(start.Add(time.Hour)) {
			t.Fatalf("reset %v, want the window's end %v", states[0].Reset, start.Add(time.Hour))
		}
		_, states = mustTakeAll(t, l, start.Add(time.Hour), true, []int64{1}, k)
		if !states[0].Reset.Equal(start.Add(2 * time.Hour)) {
			t.Fatalf("reset %v in the next window, want %v", states[0].Reset, start.Add(2*time.Hour))
		}
	})

	t.Run("TakeAll: a sliding limit weighs the previous window by its share of the span", func(t *testing.T) {
		l, clock := newLimiter(t), newClock()
		s := clock.Now() // a window start
		k := sliding(uniqueKey(), 20, 10, time.Hour)
		mustTakeAll(t, l, s.Add(10*time.Minute), true, []int64{10}, k)
		// At the boundary the whole previous window is in the span: a
		// fixed window would start afresh, the sliding one holds at 10.
		mustTakeAll(t, l, s.Add(time.Hour), true, []int64{10}, read(k))
		// A quarter in, three quarters of 10 count: 7.
		at := s.Add(time.Hour + 15*time.Minute)
		mustTakeAll(t, l, at, true, []int64{13}, read(k))
		mustTakeAll(t, l, at, false, []int64{13}, withCost(k, 14))
		mustTakeAll(t, l, at, true, []int64{0}, withCost(k, 13))
		mustTakeAll(t, l, at, false, []int64{0}, withCost(k, 1))
		// Half way: 13 + 5 = 18, and the next unit frees up just after,
		// when the previous window's share drops below a half.
		at = s.Add(time.Hour + 30*time.Minute)
		_, states := mustTakeAll(t, l, at, true, []int64{2}, read(k))
		if want := at.Add(time.Millisecond); !states[0].Reset.Equal(want) {
			t.Fatalf("reset %v, want %v", states[0].Reset, want)
		}
		mustTakeAll(t, l, at, true, []int64{0}, withCost(k, 2))
		// Two windows on, the previous window is 15 units, half of which count.
		mustTakeAll(t, l, s.Add(2*time.Hour+30*time.Minute), true, []int64{13}, read(k))
		mustTakeAll(t, l, s.Add(3*time.Hour), true, []int64{20}, read(k))
	})

	t.Run("TakeAll: counters are per key and window length, apart from Take's", func(t *testing.T) {
		l, now := newLimiter(t), newClock().Now()
		key := uniqueKey()
		hourly := fixed(key, 1, 1, time.Hour)
		mustTakeAll(t, l, now, true, []int64{0}, hourly)
		mustTakeAll(t, l, now, false, []int64{0}, hourly)
		mustTakeAll(t, l, now, true, []int64{0}, fixed(key, 1, 1, time.Minute))
		mustTakeAll(t, l, now, true, []int64{0}, fixed(uniqueKey(), 1, 1, time.Hour))
		start, end := windowAt(now)
		if ok, n, err := l.Take(context.Background(), key, 1, start, end); err != nil || !ok || n != 1 {
			t.Fatalf("Take on a key TakeAll filled: (%v, %d, %v), want (true, 1, nil)", ok, n, err)
		}
		mustTakeAll(t, l, now, false, []int64{0}, hourly)
	})

	t.Run("TakeAll: bad takes are errors and count nothing", func(t *testing.T) {
		l, now := newLimiter(t), newClock().Now()
		good := fixed(uniqueKey(), 3, 1, time.Hour)
		many := make([]authority.LimitTake, authority.MaxLimitTakes+1)
		for i := range many {
			many[i] = fixed(uniqueKey(), 3, 1, time.Hour)
		}
		many[0] = good
		for _, c := range []struct {
			name string
			bad  authority.LimitTake
			code credential.Code
		}{
			{"limit 0", fixed(uniqueKey(), 0, 1, time.Hour), credential.CodeInvalid},
			{"negative cost", fixed(uniqueKey(), 3, -1, time.Hour), credential.CodeInvalid},
			{"a window under a second", fixed(uniqueKey(), 3, 1, 500*time.Millisecond), credential.CodeInvalid},
			{"a window over 30 days", fixed(uniqueKey(), 3, 1, 31*24*time.Hour), credential.CodeInvalid},
			{"an unknown algorithm", authority.LimitTake{Key: uniqueKey(), Limit: 3, Cost: 1, Window: time.Hour, Algorithm: "leaky"}, credential.CodeInvalid},
			{"no key", fixed("", 3, 1, time.Hour), credential.CodeMissing},
			{"a repeated key", withCost(good, 0), credential.CodeConstraint},
		} {
			ok, _, err := l.TakeAll(context.Background(), now, []authority.LimitTake{good, c.bad})
			if err == nil || ok || !credential.IsCode(err, c.code) {
				t.Errorf("%s: (%v, %v), want refused with code %s", c.name, ok, err, c.code)
			}
		}
		if ok, _, err := l.TakeAll(context.Background(), now, many); err == nil || ok || !credential.IsCode(err, credential.CodeTooMany) {
			t.Errorf("%d takes: (%v, %v), want refused with code %s", len(many), ok, err, credential.CodeTooMany)
		}
		mustTakeAll(t, l, now, true, []int64{3}, read(good))
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := l.TakeAll(cancelled, now, []authority.LimitTake{good}); !errors.Is(err, context.Canceled) {
			t.Errorf("an ended context: err = %v, want context.Canceled", err)
		}
		if ok, states, err := l.TakeAll(context.Background(), now, nil); err != nil || !ok || len(states) != 0 {
			t.Errorf("no takes: (%v, %v, %v), want admitted with no states", ok, states, err)
		}
		mustTakeAll(t, l, now, true, []int64{3}, read(good))
	})

	t.Run("TakeAll: MaxLimitTakes takes, the bound, are counted all or nothing", func(t *testing.T) {
		// A verify's credential and identity limits together: half fixed,
		// half sliding (which also reads its previous window).
		l, now := newLimiter(t), newClock().Now()
		takes := make([]authority.LimitTake, authority.MaxLimitTakes)
		for i := range takes {
			takes[i] = fixed(uniqueKey(), 2, 1, time.Hour)
			if i%2 == 1 {
				takes[i] = sliding(uniqueKey(), 2, 1, time.Hour)
			}
		}
		each := func(n int64, k int) []int64 { return slices.Repeat([]int64{n}, k) }
		mustTakeAll(t, l, now, true, each(1, len(takes)), takes...)
		last := takes[len(takes)-1]
		mustTakeAll(t, l, now, true, []int64{0}, last)
		mustTakeAll(t, l, now, false, append(each(1, len(takes)-1), 0), takes...)
		mustTakeAll(t, l, now, true, each(0, len(takes)-1), takes[:len(takes)-1]...)
	})

	t.Run("TakeAll: concurrent calls are counted exactly", func(t *testing.T) {
		TestTakeAllExact(t, []authority.Limiter{newLimiter(t)})
	})
}

// TestTakeAllExact sends 100 concurrent TakeAll calls of cost 1, spread
// over nodes (limiters sharing their counts), against two limits of 50
// and 70, one fixed and one sliding: exactly 50 must be admitted, each
// seeing a distinct remaining count, and both counters must end at 50.
// It logs the counts.
func TestTakeAllExact(t *testing.T, nodes []authority.Limiter) {
	t.Helper()
	now := newClock().Now().Add(20 * time.Minute)
	a := fixed(uniqueKey(), 50, 1, time.Hour)
	b := sliding(uniqueKey(), 70, 1, time.Hour)
	const calls = 100
	var (
		admitted, refused atomic.Int64
		seen              [50]atomic.Int32 // remaining of a after an admitted call → calls
		wg                sync.WaitGroup
		errs              = make(chan error, calls)
	)
	for i := range calls {
		l := nodes[i%len(nodes)]
		wg.Go(func() {
			ok, states, err := l.TakeAll(context.Background(), now, []authority.LimitTake{a, b})
			switch {
			case err != nil:
				errs <- err
			case !ok:
				refused.Add(1)
				if states[0].Remaining != 0 {
					errs <- fmt.Errorf("a refused call saw %d remaining on the full limit", states[0].Remaining)
				}
			case states[0].Remaining < 0 || states[0].Remaining >= 50 || states[1].Remaining != states[0].Remaining+20:
				errs <- fmt.Errorf("an admitted call saw remaining %d and %d", states[0].Remaining, states[1].Remaining)
			default:
				admitted.Add(1)
				seen[states[0].Remaining].Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if admitted.Load() != 50 || refused.Load() != calls-50 {
		t.Fatalf("%d nodes: admitted %d, refused %d; want 50 and 50", len(nodes), admitted.Load(), refused.Load())
	}
	for r := range seen {
		if n := seen[r].Load(); n != 1 {
			t.Fatalf("remaining %d was seen by %d admitted calls, want 1", r, n)
		}
	}
	for i, l := range nodes { // every node sees the same counts
		_, states := mustTakeAll(t, l, now, true, []int64{0, 20}, read(a), read(b))
		if i == 0 {
			t.Logf("%d node(s), %d concurrent calls of cost 1 against limits of 50 and 70: %d admitted, counts %d and %d",
				len(nodes), calls, admitted.Load(), a.Limit-states[0].Remaining, b.Limit-states[1].Remaining)
		}
	}
}

func fixed(key string, limit, cost int64, window time.Duration) authority.LimitTake {
	return authority.LimitTake{Key: key, Limit: limit, Cost: cost, Window: window, Algorithm: authority.LimitFixed}
}

func sliding(key string, limit, cost int64, window time.Duration) authority.LimitTake {
	return authority.LimitTake{Key: key, Limit: limit, Cost: cost, Window: window, Algorithm: authority.LimitSliding}
}

func withCost(t authority.LimitTake, cost int64) authority.LimitTake {
	t.Cost = cost
	return t
}

func read(t authority.LimitTake) authority.LimitTake { return withCost(t, 0) }

// mustTakeAll calls TakeAll and fails the test on an error, an admission
// other than admitted, or remaining counts other than remaining; each
// state must also carry its take's limit and a reset after now.
func mustTakeAll(t *testing.T, l authority.Limiter, now time.Time, admitted bool, remaining []int64, takes ...authority.LimitTake) (bool, []authority.LimitState) {
	t.Helper()
	ok, states, err := l.TakeAll(context.Background(), now, takes)
	if err != nil {
		t.Fatalf("TakeAll at %v: %v", now, err)
	}
	got := make([]int64, len(states))
	for i, s := range states {
		got[i] = s.Remaining
		if i < len(takes) && (s.Limit != takes[i].Limit || !s.Reset.After(now)) {
			t.Fatalf("TakeAll at %v: state %d = %+v, want limit %d and a reset after now", now, i, s, takes[i].Limit)
		}
	}
	if ok != admitted || fmt.Sprint(got) != fmt.Sprint(remaining) {
		t.Fatalf("TakeAll at %v = (%v, remaining %v), want (%v, %v)", now, ok, got, admitted, remaining)
	}
	return ok, states
}
