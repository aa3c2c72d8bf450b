package inmem

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/authority"
)

var _ authority.Limiter = (*Limiter)(nil)

// shardCount is a power of two, so a hash picks a shard with a mask.
const shardCount = 64

// sweepEvery is how often, in a shard's Takes, a deferred sweep is retried.
const sweepEvery = 256

// Limiter is authority.Limiter for a single node: a fixed-window counter
// per key, held in memory.
//
// Each key holds one window, its current one, identified by its start. A
// Take for a window that starts later replaces it and counts from zero. A
// Take for a window that starts earlier than the key's current one is a
// late call from a window that has already been replaced; its count is gone,
// so the Limiter cannot tell whether that window still had room. It neither
// refuses nor counts such a call and returns (true, 0): refusing it would
// punish a caller for a race with its own clock, and counting it anywhere
// would either reset or charge the newer window. Windows are keyed by start
// alone; a Take whose end differs from the stored window's end is counted
// against the stored window.
//
// The caller's times are the only clock: the Limiter runs no goroutine and
// never reads the wall clock. Memory stays bounded by sweeping: whenever the
// newest start passed to Take moves forward, windows whose end is at or
// before it are dropped. A sweep walks every key, so it runs only once at
// least as many Takes have happened since the previous sweep as there were
// keys left after it, keeping its cost amortised O(1) per Take; a sweep
// skipped for that reason is retried every few hundred Takes. A late Take for
// a window that was already swept starts that window afresh; it is dropped
// again at the next sweep.
//
// Keys are spread over 64 shards by an FNV-1a hash, each with its own mutex,
// so calls for different keys rarely contend. The zero Limiter is not
// usable; call NewLimiter.
type Limiter struct {
	shards [shardCount]shard

	newest  atomic.Int64 // newest start seen, in nanoseconds (see nanos)
	sweptTo atomic.Int64 // the newest start the last sweep used

	sweepMu   sync.Mutex // held by the one goroutine sweeping
	lastTotal int64      // the sum of shard takes at the last sweep
	lastSize  int64      // the number of keys left after the last sweep

	named named // TakeAll's counters (limits.go)
}

type shard struct {
	mu    sync.Mutex
	m     map[string]window
	takes atomic.Int64 // Takes that reached this shard
	_     [40]byte     // keep shards on separate cache lines
}

type window struct {
	start, end int64 // nanoseconds (see nanos)
	count      int
}

// NewLimiter returns an empty Limiter.
func NewLimiter() *Limiter {
	l := &Limiter{}
	for i := range l.shards {
		l.shards[i].m = make(map[string]window)
	}
	l.newest.Store(math.MinInt64)
	l.sweptTo.Store(math.MinInt64)
	return l
}

// Take admits one call against key in the window [start, end) if fewer than
// limit calls were admitted in it, and returns whether it did and the
// window's count after the call. Refused calls are not counted. A limit of
// zero or less means no limit: every call is admitted and counted. A Take
// for a window older than the key's current one returns (true, 0) and
// changes nothing (see Limiter). The error is the context's, or one for a
// window that does not end after it starts.
func (l *Limiter) Take(ctx context.Context, key string, limit int, start, end time.Time) (bool, int, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	if !end.After(start) {
		return false, 0, errors.New("inmem: rate-limit window must end after it starts")
	}
	s, e := nanos(start), nanos(end)

	sh := &l.shards[fnv1a(key)&(shardCount-1)]
	sh.mu.Lock()
	admitted, count := true, 0
	w, ok := sh.m[key]
	switch {
	case ok && s < w.start:
		// A late call from a replaced window: admitted, counted nowhere.
	case ok && s == w.start && limit > 0 && w.count >= limit:
		admitted, count = false, w.count
	default:
		if !ok || s > w.start {
			w = window{start: s, end: e}
		}
		w.count++
		count = w.count
		sh.m[key] = w
	}
	n := sh.takes.Add(1)
	sh.mu.Unlock()

	if l.advance(s) || (n%sweepEvery == 0 && l.newest.Load() > l.sweptTo.Load()) {
		l.sweep()
	}
	return admitted, count, nil
}

// advance records s as the newest start seen, if it is, and reports whether
// it was.
func (l *Limiter) advance(s int64) bool {
	for {
		cur := l.newest.Load()
		if s <= cur {
			return false
		}
		if l.newest.CompareAndSwap(cur, s) {
			return true
		}
	}
}

// sweep drops every window whose end is at or before the newest start seen,
// if enough Takes have happened since the last sweep to pay for it. Only one
// goroutine sweeps at a time; the others carry on.
func (l *Limiter) sweep() {
	if !l.sweepMu.TryLock() {
		return
	}
	defer l.sweepMu.Unlock()
	var total int64
	for i := range l.shards {
		total += l.shards[i].takes.Load()
	}
	if total-l.lastTotal < l.lastSize {
		return
	}
	now := l.newest.Load()
	var size int64
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for k, w := range sh.m {
			if w.end <= now {
				delete(sh.m, k)
			}
		}
		size += int64(len(sh.m))
		sh.mu.Unlock()
	}
	l.lastTotal, l.lastSize = total, size
	l.sweptTo.Store(now)
}

// len returns the number of keys held, for tests.
func (l *Limiter) len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// nanos returns t as nanoseconds since the Unix epoch, clamped to the int64
// range so times outside the years 1678–2262 still order correctly against
// ordinary ones.
func nanos(t time.Time) int64 {
	const maxSec = math.MaxInt64 / int64(time.Second)
	switch sec := t.Unix(); {
	case sec >= maxSec:
		return math.MaxInt64
	case sec <= -maxSec:
		return math.MinInt64
	}
	return t.UnixNano()
}

// fnv1a is the 32-bit FNV-1a hash of s.
func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
