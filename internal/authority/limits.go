package authority

import (
	"fmt"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Named limits (Limiter.TakeAll): the input rules and the arithmetic every
// adapter shares, so inmem, PostgreSQL and Redis admit, count and report
// alike. An adapter calls PlanLimits, then, atomically over every take,
// reads each take's current-window count (and its previous-window count
// for a sliding take), admits the call only if LimitPlan.Fits holds for
// every take, adds each Cost to its current-window count if so, and
// reports LimitStates of the counts after the call.
//
// The algorithms follow Unkey's ratelimit service (unkeyed/unkey,
// go/internal/services/ratelimit: bucket.go aligns windows to multiples
// of the duration since the epoch; sliding_window.go counts
// current + previous × (1 − elapsed fraction), truncated, refuses when
// that plus the cost exceeds the limit, and adds the cost to the current
// window only when admitted), which is Cloudflare's two-window
// approximation. Three differences, all deliberate:
//
//   - The weight is fixed-point, (end − now) × LimitWeightScale ÷ Window
//     in whole milliseconds, truncated, instead of a float, so Go,
//     PostgreSQL's BIGINT and Redis's Lua doubles (exact below 2^53:
//     MaxLimit × LimitWeightScale is 10^15) compute the same integer.
//   - Counters are keyed by (Key, Window), not by the limit too, so
//     changing a limit keeps the count.
//   - A sliding limit's Reset is when its count next drops by a unit,
//     not the window's end (see LimitPlan.State).
const (
	// MaxLimitTakes bounds the takes of one TakeAll: a credential's
	// MaxNamedLimits and its identity's together (2 × 16), and an org
	// token's hourly limit. PostgreSQL's statement then has at most
	// 2 × 33 rows of 4 parameters and Redis's script 66 keys and 133
	// arguments, far within either's bounds.
	MaxLimitTakes = 33
	// MaxLimit bounds a take's Limit and Cost (see LimitWeightScale).
	MaxLimit = 1_000_000_000
	// MinLimitWindow and MaxLimitWindow bound a take's Window.
	MinLimitWindow = time.Second
	MaxLimitWindow = 30 * 24 * time.Hour
	// LimitWeightScale is the fixed-point unit of a sliding take's weight
	// of its previous window: LimitWeightScale is the whole window.
	LimitWeightScale = 1_000_000
)

// LimitPlan is where one take counts at a given instant: its windows and,
// for a sliding take, the weight of the previous window. Times are Unix
// milliseconds.
type LimitPlan struct {
	Start   int64 // the current window's start: a multiple of Window
	Window  int64 // the window's length
	Sliding bool
	// Weight is the share of the previous window inside the sliding span,
	// in units of 1/LimitWeightScale; 0 for a fixed take.
	Weight int64
}

// End is when the current window ends.
func (p LimitPlan) End() int64 { return p.Start + p.Window }

// PrevStart is the previous window's start.
func (p LimitPlan) PrevStart() int64 { return p.Start - p.Window }

// KeepUntil is when the current window's counter is no longer needed: a
// sliding take in the next window reads it as its previous one, so it is
// kept for one more window whatever the algorithm (a key may change its
// algorithm without losing its count).
func (p LimitPlan) KeepUntil() int64 { return p.Start + 2*p.Window }

// Effective is the count the limit is held to, from the current window's
// count cur and the previous window's prev (ignored for a fixed take).
func (p LimitPlan) Effective(cur, prev int64) int64 {
	return cur + prev*p.Weight/LimitWeightScale
}

// Fits reports whether t's Cost fits its Limit on top of the counts cur
// and prev, read before the call.
func (p LimitPlan) Fits(t LimitTake, cur, prev int64) bool {
	return p.Effective(cur, prev)+t.Cost <= t.Limit
}

// State is t's state at now (Unix ms) from the counts cur and prev after
// the call. Remaining is Limit minus the effective count, at least 0.
// Reset is, for a fixed take, when the current window ends; for a sliding
// take, the first millisecond after now at which, with no further calls,
// the effective count is at least one unit lower, or the current window's
// end when it is already 0. The sliding Reset is then when a refused call
// of cost 1 could next be admitted, as far as this take is concerned.
func (p LimitPlan) State(now int64, t LimitTake, cur, prev int64) LimitState {
	eff := p.Effective(cur, prev)
	st := LimitState{Limit: t.Limit, Remaining: max(t.Limit-eff, 0), Reset: time.UnixMilli(p.End())}
	if p.Sliding && eff > 0 {
		st.Reset = time.UnixMilli(p.nextDrop(now, cur, prev, eff-1))
	}
	return st
}

// nextDrop is the first millisecond after now at which the effective count
// is at most target (< the count at now), with no further calls. Within
// the current window the count is cur + prev × w(t), w falling with t; in
// the next one it is cur × w'(t), the current window being the previous
// one; after that it is 0.
func (p LimitPlan) nextDrop(now, cur, prev, target int64) int64 {
	if t := p.firstAtMost(cur, prev, target, p.End()); t < p.End() {
		return max(t, now+1)
	}
	return max(p.firstAtMost(0, cur, target, p.End()+p.Window), p.End(), now+1)
}

// firstAtMost is the first millisecond t of the window ending at end at
// which base + x × w(t) / LimitWeightScale ≤ target, where
// w(t) = (end − t) × LimitWeightScale / Window (both truncated), or end if
// there is none before it. The count falls with t, so the answer is a
// bound on w: x × w < (target − base + 1) × scale, that is w ≤ m with
// m = ⌈(target − base + 1) × scale / x⌉ − 1; and w(t) ≤ m holds from
// t > end − (m + 1) × Window / scale on.
func (p LimitPlan) firstAtMost(base, x, target, end int64) int64 {
	if base > target {
		return end
	}
	if x == 0 {
		return end - p.Window
	}
	m := ceilDiv((target-base+1)*LimitWeightScale, x) - 1
	if m >= LimitWeightScale {
		return end - p.Window
	}
	return end - ceilDiv((m+1)*p.Window, LimitWeightScale) + 1
}

// ceilDiv is ⌈a / b⌉ for a ≥ 0 and b > 0.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// floorDiv is ⌊a / b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// PlanLimits validates takes and returns where each counts at now. A take
// needs a non-empty Key, distinct from the others' (one counter per key
// and call), 1 ≤ Limit ≤ MaxLimit, 0 ≤ Cost ≤ MaxLimit, a Window of whole
// milliseconds within [MinLimitWindow, MaxLimitWindow], and an Algorithm
// of LimitFixed or LimitSliding; there are at most MaxLimitTakes. The
// error is a *credential.Error (CodeTooMany, CodeMissing, CodeInvalid,
// CodeConstraint) naming the take as limits[i].field.
func PlanLimits(now time.Time, takes []LimitTake) ([]LimitPlan, error) {
	if len(takes) > MaxLimitTakes {
		return nil, credential.ParamError(credential.CodeTooMany, "limits",
			fmt.Sprintf("at most %d limits per call, got %d", MaxLimitTakes, len(takes)))
	}
	ms := now.UnixMilli()
	plans := make([]LimitPlan, len(takes))
	for i, t := range takes {
		param := func(field string) string { return fmt.Sprintf("limits[%d].%s", i, field) }
		switch {
		case t.Key == "":
			return nil, credential.ParamError(credential.CodeMissing, param("key"), "a limit needs a key")
		case t.Limit < 1 || t.Limit > MaxLimit:
			return nil, credential.ParamError(credential.CodeInvalid, param("limit"),
				fmt.Sprintf("limit must be between 1 and %d, got %d", MaxLimit, t.Limit))
		case t.Cost < 0 || t.Cost > MaxLimit:
			return nil, credential.ParamError(credential.CodeInvalid, param("cost"),
				fmt.Sprintf("cost must be between 0 and %d, got %d", MaxLimit, t.Cost))
		case t.Window < MinLimitWindow || t.Window > MaxLimitWindow:
			return nil, credential.ParamError(credential.CodeInvalid, param("window"),
				fmt.Sprintf("window must be between %v and %v, got %v", MinLimitWindow, MaxLimitWindow, t.Window))
		case t.Window%time.Millisecond != 0:
			return nil, credential.ParamError(credential.CodeInvalid, param("window"),
				fmt.Sprintf("window must be whole milliseconds, got %v", t.Window))
		case t.Algorithm != LimitFixed && t.Algorithm != LimitSliding:
			return nil, credential.ParamError(credential.CodeInvalid, param("algorithm"),
				fmt.Sprintf("algorithm must be %q or %q, got %q", LimitFixed, LimitSliding, t.Algorithm))
		}
		for j := range i {
			if takes[j].Key == t.Key {
				return nil, credential.ParamError(credential.CodeConstraint, param("key"),
					fmt.Sprintf("limit key %q appears twice (also limits[%d])", t.Key, j))
			}
		}
		w := t.Window.Milliseconds()
		p := LimitPlan{Start: floorDiv(ms, w) * w, Window: w, Sliding: t.Algorithm == LimitSliding}
		if p.Sliding {
			p.Weight = (p.End() - ms) * LimitWeightScale / w
		}
		plans[i] = p
	}
	return plans, nil
}

// LimitStates returns each take's state at now from the counts after the
// call (see LimitPlan.State).
func LimitStates(now time.Time, takes []LimitTake, plans []LimitPlan, cur, prev []int64) []LimitState {
	ms := now.UnixMilli()
	states := make([]LimitState, len(takes))
	for i, t := range takes {
		states[i] = plans[i].State(ms, t, cur[i], prev[i])
	}
	return states
}
