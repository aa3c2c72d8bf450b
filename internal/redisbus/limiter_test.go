package redisbus_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/redisbus"
)

// hour returns the clock hour holding t.
func hour(t time.Time) (start, end time.Time) {
	start = t.Truncate(time.Hour)
	return start, start.Add(time.Hour)
}

// redisKey is the Limiter's key for a window starting at a whole second.
func redisKey(key string, start time.Time) string {
	return redisbus.KeyPrefix + "{" + key + "}:" + strconv.FormatInt(start.Unix(), 10)
}

type take struct {
	admitted bool
	count    int
}

func mustTake(t *testing.T, l *redisbus.Limiter, key string, limit int, start, end time.Time) take {
	t.Helper()
	ok, n, err := l.Take(context.Background(), key, limit, start, end)
	if err != nil {
		t.Fatalf("Take(%q, %d): %v", key, limit, err)
	}
	return take{ok, n}
}

func TestLimiterSequential(t *testing.T) {
	rdb := newClient(t, nil)
	p := uniquePrefix(t, rdb)
	l := redisbus.NewLimiter(rdb, inmem.NewLimiter(), redisbus.PolicyLocal, nil)
	start, end := hour(time.Now())
	key := p + "-a"

	const limit, extra = 5, 4
	for i := 1; i <= limit+extra; i++ {
		want := take{i <= limit, min(i, limit)}
		if got := mustTake(t, l, key, limit, start, end); got != want {
			t.Fatalf("call %d: got %+v, want %+v", i, got, want)
		}
	}
	// Refused calls are not counted.
	if n, err := rdb.Get(context.Background(), redisKey(key, start)).Int(); err != nil || n != limit {
		t.Fatalf("stored count = %d, %v; want %d", n, err, limit)
	}
	// The next window starts at zero.
	if got := mustTake(t, l, key, limit, end, end.Add(time.Hour)); got != (take{true, 1}) {
		t.Fatalf("next window: got %+v, want admitted at 1", got)
	}
	// Keys are independent.
	if got := mustTake(t, l, p+"-b", limit, start, end); got != (take{true, 1}) {
		t.Fatalf("other key: got %+v, want admitted at 1", got)
	}
	// The old window still refuses.
	if got := mustTake(t, l, key, limit, start, end); got != (take{false, limit}) {
		t.Fatalf("old window again: got %+v, want refused at %d", got, limit)
	}
}

func TestLimiterNoLimit(t *testing.T) {
	rdb := newClient(t, nil)
	p := uniquePrefix(t, rdb)
	l := redisbus.NewLimiter(rdb, inmem.NewLimiter(), redisbus.PolicyLocal, nil)
	start, end := hour(time.Now())
	for _, limit := range []int{0, -1} {
		key := p + "-" + strconv.Itoa(limit)
		for i := 1; i <= 3; i++ {
			if got := mustTake(t, l, key, limit, start, end); got != (take{true, i}) {
				t.Fatalf("limit %d, call %d: got %+v, want admitted at %d", limit, i, got, i)
			}
		}
	}
}

func TestLimiterConcurrent(t *testing.T) {
	rdb := newClient(t, &redis.Options{PoolSize: 32})
	p := uniquePrefix(t, rdb)
	l := redisbus.NewLimiter(rdb, nil, redisbus.PolicyClosed, func(active bool) {
		t.Errorf("report(%v): Redis should not fail here", active)
	})
	start, end := hour(time.Now())
	key := p + "-hot"

	const limit, calls, workers = 5000, 5008, 32
	var admitted, refused, maxCount atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= calls {
				ok, n, err := l.Take(context.Background(), key, limit, start, end)
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
	if admitted.Load() != limit || refused.Load() != calls-limit || maxCount.Load() != limit {
		t.Fatalf("admitted %d, refused %d, max count %d; want %d, %d, %d",
			admitted.Load(), refused.Load(), maxCount.Load(), limit, calls-limit, limit)
	}
	if n, err := rdb.Get(context.Background(), redisKey(key, start)).Int(); err != nil || n != limit {
		t.Fatalf("stored count = %d, %v; want %d", n, err, limit)
	}
}

func TestLimiterExpiry(t *testing.T) {
	rdb := newClient(t, nil)
	p := uniquePrefix(t, rdb)
	l := redisbus.NewLimiter(rdb, inmem.NewLimiter(), redisbus.PolicyLocal, nil)
	ctx := context.Background()

	// A clock-hour window: the key expires by the end of the hour.
	start, end := hour(time.Now())
	mustTake(t, l, p+"-hour", 10, start, end)
	ttl, err := rdb.PTTL(ctx, redisKey(p+"-hour", start)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(end) + redisbus.ExpiryMargin; ttl <= 0 || ttl > left+50*time.Millisecond {
		t.Fatalf("PTTL = %v; want > 0 and <= %v", ttl, left)
	}

	// A short window whose key is gone once it (and the margin) are over.
	start = time.Now().Truncate(time.Second)
	end = start.Add(time.Second)
	key := redisKey(p+"-short", start)
	mustTake(t, l, p+"-short", 10, start, end)
	// A refused call in a window whose key somehow lost its TTL restores it.
	mustTake(t, l, p+"-persist", 1, start, end)
	persisted := redisKey(p+"-persist", start)
	if err := rdb.Persist(ctx, persisted).Err(); err != nil {
		t.Fatal(err)
	}
	if got := mustTake(t, l, p+"-persist", 1, start, end); got != (take{false, 1}) {
		t.Fatalf("refused call: got %+v", got)
	}
	for _, k := range []string{key, persisted} {
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 || ttl > time.Until(end)+redisbus.ExpiryMargin+50*time.Millisecond {
			t.Fatalf("PTTL(%s) = %v, %v", k, ttl, err)
		}
	}
	time.Sleep(time.Until(end.Add(redisbus.ExpiryMargin + 20*time.Millisecond)))
	if n, err := rdb.Exists(ctx, key, persisted).Result(); err != nil || n != 0 {
		t.Fatalf("after the window: %d keys left, %v; want none", n, err)
	}

	// A window long over leaves nothing behind.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	mustTake(t, l, p+"-old", 10, old, old.Add(time.Minute))
	if n, err := rdb.Exists(ctx, redisKey(p+"-old", old)).Result(); err != nil || n != 0 {
		t.Fatalf("window over: %d keys, %v; want none", n, err)
	}
}

func TestLimiterBadInput(t *testing.T) {
	rdb := newClient(t, nil)
	var reports atomic.Int32
	l := redisbus.NewLimiter(rdb, inmem.NewLimiter(), redisbus.PolicyLocal, func(bool) { reports.Add(1) })
	now := time.Now()
	if _, _, err := l.Take(context.Background(), "k", 1, now, now); err == nil {
		t.Error("empty window: no error")
	}
	if _, _, err := l.Take(context.Background(), "k", 1, now, now.Add(-time.Second)); err == nil {
		t.Error("backwards window: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := l.Take(ctx, "k", 1, now, now.Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
	if reports.Load() != 0 {
		t.Errorf("%d reports; want none", reports.Load())
	}
}

// recorder records report calls.
type recorder struct {
	mu    sync.Mutex
	calls []bool
}

func (r *recorder) report(active bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, active)
}

func (r *recorder) get() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.calls...)
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLimiterUnreachable(t *testing.T) {
	start, end := hour(time.Now())
	const limit = 3

	t.Run("local", func(t *testing.T) {
		var rec recorder
		fallback := inmem.NewLimiter()
		l := redisbus.NewLimiter(unreachableClient(t), fallback, redisbus.PolicyLocal, rec.report)
		for i := 1; i <= limit+2; i++ {
			want := take{i <= limit, min(i, limit)}
			if got := mustTake(t, l, "a", limit, start, end); got != want {
				t.Fatalf("call %d: got %+v, want %+v", i, got, want)
			}
		}
		if got := mustTake(t, l, "b", limit, start, end); got != (take{true, 1}) {
			t.Fatalf("other key: got %+v", got)
		}
		// The counts are the fallback's.
		if ok, n, _ := fallback.Take(context.Background(), "b", limit, start, end); !ok || n != 2 {
			t.Fatalf("fallback count of b = %v, %d; want admitted at 2", ok, n)
		}
		// Many more failing calls, some concurrent: still one report.
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 20 {
					if _, _, err := l.Take(context.Background(), "c", 0, start, end); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if got := rec.get(); !equal(got, []bool{true}) {
			t.Fatalf("reports = %v; want [true]", got)
		}
	})

	t.Run("nil fallback", func(t *testing.T) {
		l := redisbus.NewLimiter(unreachableClient(t), inmem.NewLimiter(), redisbus.PolicyLocal, nil)
		for i := 1; i <= limit+1; i++ {
			if got, want := mustTake(t, l, "a", limit, start, end), (take{i <= limit, min(i, limit)}); got != want {
				t.Fatalf("call %d: got %+v, want %+v", i, got, want)
			}
		}
	})

	t.Run("open", func(t *testing.T) {
		var rec recorder
		l := redisbus.NewLimiter(unreachableClient(t), nil, redisbus.PolicyOpen, rec.report)
		for i := range 10 {
			if got := mustTake(t, l, "a", limit, start, end); got != (take{true, 0}) {
				t.Fatalf("call %d: got %+v, want admitted at 0", i, got)
			}
		}
		if got := rec.get(); !equal(got, []bool{true}) {
			t.Fatalf("reports = %v; want [true]", got)
		}
	})

	t.Run("closed", func(t *testing.T) {
		var rec recorder
		l := redisbus.NewLimiter(unreachableClient(t), nil, redisbus.PolicyClosed, rec.report)
		for i := range 10 {
			if got := mustTake(t, l, "a", limit, start, end); got != (take{false, limit}) {
				t.Fatalf("call %d: got %+v, want refused at %d", i, got, limit)
			}
		}
		if got := mustTake(t, l, "a", 0, start, end); got != (take{true, 0}) {
			t.Fatalf("no limit: got %+v, want admitted", got)
		}
		if got := rec.get(); !equal(got, []bool{true}) {
			t.Fatalf("reports = %v; want [true]", got)
		}
	})
}

// TestLimiterOutageAndRecovery switches the client's dialer off and on.
func TestLimiterOutageAndRecovery(t *testing.T) {
	admin := newClient(t, nil)
	p := uniquePrefix(t, admin)
	var down atomic.Bool
	rdb := redis.NewClient(&redis.Options{
		Addr:       redisAddr,
		ClientName: p,
		MaxRetries: -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if down.Load() {
				return nil, errors.New("test: Redis switched off")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { _ = rdb.Close() })
	key := p + "-a"
	start, end := hour(time.Now())
	const limit = 100

	var rec recorder
	fallback := inmem.NewLimiter()
	l := redisbus.NewLimiter(rdb, fallback, redisbus.PolicyLocal, rec.report)
	for i := 1; i <= 3; i++ {
		if got := mustTake(t, l, key, limit, start, end); got != (take{true, i}) {
			t.Fatalf("up, call %d: got %+v", i, got)
		}
	}

	// Off: no new connections, and the pooled ones are killed.
	down.Store(true)
	if n := killClients(t, admin, p, "normal"); n == 0 {
		t.Fatal("no connection of the limiter's client to kill")
	}
	for i := 1; i <= 50; i++ {
		if got := mustTake(t, l, key, limit, start, end); got != (take{true, i}) {
			t.Fatalf("down, call %d: got %+v, want the fallback's count %d", i, got, i)
		}
	}
	if got := rec.get(); !equal(got, []bool{true}) {
		t.Fatalf("reports while down = %v; want [true]", got)
	}

	// On again: within a probe interval Redis answers, with its own count.
	down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := mustTake(t, l, key, limit, start, end)
		if got.count == 4 {
			break // Redis's count: 3 before the outage, none of the fallback's
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis not used again within 5 s; last answer %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 5; i <= 10; i++ {
		if got := mustTake(t, l, key, limit, start, end); got != (take{true, i}) {
			t.Fatalf("recovered, call %d: got %+v", i, got)
		}
	}
	if got := rec.get(); !equal(got, []bool{true, false}) {
		t.Fatalf("reports = %v; want [true false]", got)
	}
}

func TestParsePolicy(t *testing.T) {
	for s, want := range map[string]redisbus.Policy{
		"local": redisbus.PolicyLocal, "open": redisbus.PolicyOpen, "closed": redisbus.PolicyClosed,
	} {
		got, err := redisbus.ParsePolicy(s)
		if err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v", s, got, err, want)
		}
		if got.String() != s {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	for _, s := range []string{"", "Local", "fail-open", "soft"} {
		if _, err := redisbus.ParsePolicy(s); err == nil {
			t.Errorf("ParsePolicy(%q): no error", s)
		}
	}
	var zero redisbus.Policy
	if zero != redisbus.PolicyLocal {
		t.Error("the zero Policy is not PolicyLocal")
	}
}

func BenchmarkTake(b *testing.B) {
	rdb := newClient(b, &redis.Options{PoolSize: 64})
	p := uniquePrefix(b, rdb)
	l := redisbus.NewLimiter(rdb, inmem.NewLimiter(), redisbus.PolicyLocal, func(active bool) {
		b.Errorf("report(%v)", active)
	})
	start, end := hour(time.Now())
	ctx := context.Background()

	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := l.Take(ctx, p+"-serial", 1<<30, start, end); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			key := p + "-par-" + strconv.FormatInt(n.Add(1)%16, 10)
			for pb.Next() {
				if _, _, err := l.Take(ctx, key, 1<<30, start, end); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
