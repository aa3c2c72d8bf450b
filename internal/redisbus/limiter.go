package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/internal/authority"
)

var _ authority.Limiter = (*Limiter)(nil)

// Policy is what a Limiter answers while Redis cannot.
type Policy int

const (
	// PolicyLocal (fail-soft, the default) counts on the node's own
	// in-memory fallback limiter, so every node admits at most limit calls
	// per window and over-admission is bounded by the number of nodes.
	PolicyLocal Policy = iota
	// PolicyOpen (fail-open) admits every call and reports a count of 0.
	PolicyOpen
	// PolicyClosed (fail-closed) refuses every limited call and reports
	// the limit as the count. Calls without a limit are still admitted.
	PolicyClosed
)

// String returns the name ParsePolicy accepts.
func (p Policy) String() string {
	switch p {
	case PolicyLocal:
		return "local"
	case PolicyOpen:
		return "open"
	case PolicyClosed:
		return "closed"
	}
	return "Policy(" + strconv.Itoa(int(p)) + ")"
}

// ParsePolicy parses "local", "open" or "closed".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "local":
		return PolicyLocal, nil
	case "open":
		return PolicyOpen, nil
	case "closed":
		return PolicyClosed, nil
	}
	return 0, fmt.Errorf("redisbus: unknown rate-limit policy %q (want local, open or closed)", s)
}

// ExpiryMargin is how long after its window ends a window's Redis key
// expires. It absorbs clock skew between the nodes, whose clocks pick the
// windows, and Redis, whose clock expires the keys: a key that expired
// before the window ended would restart its count.
const ExpiryMargin = time.Second

// takeTimeout bounds one script call, whatever the client's timeouts.
const takeTimeout = 500 * time.Millisecond

// probeEvery is how often, while Redis is failing, one Take tries it again.
// The other Takes answer by the policy at once, without waiting on Redis.
const probeEvery = 500 * time.Millisecond

// KeyPrefix starts every Redis key the Limiter writes.
const KeyPrefix = "keyward:rl:"

// takeScript admits one call against KEYS[1] if fewer than ARGV[1] calls
// were admitted (ARGV[1] <= 0: no limit), and returns {admitted, count}.
// The key expires at ARGV[2] (Unix milliseconds). Refused calls are not
// counted. Reading, counting and setting the expiry happen in one atomic
// script, so no key is ever left without a TTL (a key found without one is
// given it).
var takeScript = redis.NewScript(`
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[1])
if limit > 0 and count >= limit then
	if redis.call('PTTL', KEYS[1]) == -1 then
		redis.call('PEXPIREAT', KEYS[1], ARGV[2])
	end
	return {0, count}
end
count = redis.call('INCR', KEYS[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return {1, count}
`)

// Limiter is authority.Limiter for several nodes: a fixed-window counter
// per key and window start, held in Redis and updated by one Lua script
// per Take (EVALSHA, falling back to EVAL).
//
// Each window has its own Redis key, KeyPrefix + "{key}:" + its start
// (Unix seconds, with a fraction when the start has one), which expires
// ExpiryMargin after the window ends. Unlike inmem.Limiter, a late Take for
// a window that a newer one has replaced is counted against that earlier
// window while its key lives; a Take for a window that ended more than
// ExpiryMargin ago (by Redis's clock) is admitted with a count of 1 and
// leaves nothing behind.
//
// When Redis fails (unreachable, timed out, erroring), Take answers by the
// Policy instead of returning the error, so verification keeps working;
// report(true) is called once when the outage begins. While it lasts, one
// Take every half second tries Redis again and the others answer by the
// Policy without waiting on it; report(false) is called once on the first
// success. Calls admitted by the fallback are not added to Redis's counts
// afterwards. Redis restarted empty resets the counts.
type Limiter struct {
	rdb      *redis.Client
	fallback authority.Limiter
	policy   Policy
	report   func(active bool)

	down      atomic.Bool
	nextProbe atomic.Int64 // while down: Unix nanoseconds of the next probe
	stateMu   sync.Mutex   // serialises the transitions and their reports
}

// NewLimiter returns a Limiter counting in rdb. fallback answers under
// PolicyLocal while Redis fails: the node's own in-memory limiter, which
// the caller passes since adapters do not import each other; it must not
// be nil under PolicyLocal. report, which may be nil, is told when an
// outage begins (true) and ends (false); it must be cheap and must not
// block.
func NewLimiter(rdb *redis.Client, fallback authority.Limiter, policy Policy, report func(active bool)) *Limiter {
	if fallback == nil && policy == PolicyLocal {
		panic("redisbus: PolicyLocal needs a fallback limiter")
	}
	if report == nil {
		report = func(bool) {}
	}
	return &Limiter{rdb: rdb, fallback: fallback, policy: policy, report: report}
}

// Take admits one call against key in the window [start, end) if fewer than
// limit calls were admitted in it, and returns whether it did and the
// window's count after the call. Refused calls are not counted. A limit of
// zero or less means no limit: every call is admitted and counted. The
// error is the context's, or one for a window that does not end after it
// starts; a Redis failure is answered by the Policy (see Limiter).
func (l *Limiter) Take(ctx context.Context, key string, limit int, start, end time.Time) (bool, int, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	if !end.After(start) {
		return false, 0, errors.New("redisbus: rate-limit window must end after it starts")
	}
	if l.down.Load() && !l.claimProbe() {
		return l.degraded(ctx, key, limit, start, end)
	}

	cctx, cancel := context.WithTimeout(ctx, takeTimeout)
	res, err := takeScript.Run(cctx, l.rdb, []string{windowKey(key, start)},
		limit, end.UnixMilli()+ExpiryMargin.Milliseconds()).Int64Slice()
	cancel()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("redisbus: rate-limit script returned %d values", len(res))
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return false, 0, cerr // the caller gave up; not Redis's fault
		}
		l.failed()
		return l.degraded(ctx, key, limit, start, end)
	}
	l.succeeded()
	return res[0] == 1, int(res[1]), nil
}

// degraded answers by the policy.
func (l *Limiter) degraded(ctx context.Context, key string, limit int, start, end time.Time) (bool, int, error) {
	switch {
	case l.policy == PolicyOpen:
		return true, 0, nil
	case l.policy == PolicyClosed && limit > 0:
		return false, limit, nil
	case l.policy == PolicyClosed:
		return true, 0, nil
	}
	return l.fallback.Take(ctx, key, limit, start, end)
}

// claimProbe reports whether this Take is the one, in this probe interval,
// to try Redis while it is down.
func (l *Limiter) claimProbe() bool {
	now := time.Now().UnixNano()
	next := l.nextProbe.Load()
	return now >= next && l.nextProbe.CompareAndSwap(next, now+int64(probeEvery))
}

// failed records a Redis failure, reporting the start of an outage.
func (l *Limiter) failed() {
	if l.down.Load() {
		return
	}
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if l.down.Load() {
		return
	}
	l.nextProbe.Store(time.Now().UnixNano() + int64(probeEvery))
	l.down.Store(true)
	l.report(true)
}

// succeeded records a Redis success, reporting the end of an outage.
func (l *Limiter) succeeded() {
	if !l.down.Load() {
		return
	}
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if !l.down.Load() {
		return
	}
	l.down.Store(false)
	l.report(false)
}

// windowKey is the Redis key of key's window starting at start. The braces
// make key the Redis Cluster hash tag, so all of a key's windows share a
// slot.
func windowKey(key string, start time.Time) string {
	b := make([]byte, 0, len(KeyPrefix)+len(key)+24)
	b = append(b, KeyPrefix...)
	b = append(b, '{')
	b = append(b, key...)
	b = append(b, "}:"...)
	b = strconv.AppendInt(b, start.Unix(), 10)
	if ns := start.Nanosecond(); ns != 0 {
		b = append(b, '.')
		frac := strconv.AppendInt(nil, int64(ns)+1e9, 10) // "1" + nine digits
		b = append(b, frac[1:]...)
	}
	return string(b)
}
