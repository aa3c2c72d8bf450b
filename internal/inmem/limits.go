package inmem

import (
	"context"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/authority"
)

// Named-limit counters that ended are swept at most once per
// namedSweepEvery of the callers' clock, once they are namedSweepGrace
// past what they are kept for (authority.LimitPlan.KeepUntil), so a call
// whose instant lags a little behind another's still finds its windows.
const (
	namedSweepEvery = time.Minute
	namedSweepGrace = time.Minute
)

// named holds the counters of TakeAll, apart from Take's: one per key,
// window length and window start, all under one mutex, so a TakeAll reads,
// checks and counts all its takes at once.
type named struct {
	mu        sync.Mutex
	m         map[namedKey]namedCounter
	nextSweep int64 // Unix ms of the callers' clock when a sweep is next due
}

type namedKey struct {
	key           string
	window, start int64 // Unix ms
}

type namedCounter struct {
	count     int64
	keepUntil int64 // Unix ms
}

// TakeAll counts the named limits takes at now, all or nothing (see
// authority.Limiter): under one mutex it reads every take's counters,
// admits the call only if every take fits, and only then adds each Cost.
// The caller's now is the only clock. The error is the context's or an
// invalid take's (authority.PlanLimits).
func (l *Limiter) TakeAll(ctx context.Context, now time.Time, takes []authority.LimitTake) (bool, []authority.LimitState, error) {
	if err := ctx.Err(); err != nil {
		return false, nil, err
	}
	plans, err := authority.PlanLimits(now, takes)
	if err != nil {
		return false, nil, err
	}
	if len(takes) == 0 {
		return true, nil, nil
	}
	cur, prev := make([]int64, len(takes)), make([]int64, len(takes))
	n := &l.named
	n.mu.Lock()
	if n.m == nil {
		n.m = make(map[namedKey]namedCounter)
	}
	admitted := true
	for i, t := range takes {
		p := plans[i]
		cur[i] = n.m[namedKey{t.Key, p.Window, p.Start}].count
		if p.Sliding {
			prev[i] = n.m[namedKey{t.Key, p.Window, p.PrevStart()}].count
		}
		admitted = admitted && p.Fits(t, cur[i], prev[i])
	}
	if admitted {
		for i, t := range takes {
			if t.Cost == 0 {
				continue
			}
			p := plans[i]
			k := namedKey{t.Key, p.Window, p.Start}
			c := n.m[k]
			c.count += t.Cost
			c.keepUntil = max(c.keepUntil, p.KeepUntil())
			n.m[k] = c
			cur[i] = c.count
		}
	}
	n.sweep(now.UnixMilli())
	n.mu.Unlock()
	return admitted, authority.LimitStates(now, takes, plans, cur, prev), nil
}

// sweep drops the counters no call at now or after can need, if a sweep
// is due. n.mu must be held.
func (n *named) sweep(now int64) {
	if now < n.nextSweep {
		return
	}
	n.nextSweep = now + namedSweepEvery.Milliseconds()
	for k, c := range n.m {
		if c.keepUntil < now-namedSweepGrace.Milliseconds() {
			delete(n.m, k)
		}
	}
}

// namedLen returns the number of named-limit counters held, for tests.
func (l *Limiter) namedLen() int {
	l.named.mu.Lock()
	defer l.named.mu.Unlock()
	return len(l.named.m)
}
