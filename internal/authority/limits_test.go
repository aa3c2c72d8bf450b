package authority_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

func TestPlanLimitsAlignsWindowsToTheEpoch(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 890e6, time.UTC)
	plans, err := authority.PlanLimits(now, []authority.LimitTake{
		{Key: "h", Limit: 1, Window: time.Hour, Algorithm: authority.LimitFixed},
		{Key: "s", Limit: 1, Window: 7 * time.Second, Algorithm: authority.LimitSliding},
	})
	if err != nil {
		t.Fatal(err)
	}
	if h := plans[0]; h.Start != now.Truncate(time.Hour).UnixMilli() || h.End() != now.Truncate(time.Hour).Add(time.Hour).UnixMilli() || h.Weight != 0 {
		t.Fatalf("hourly plan %+v: want the clock hour and no weight", h)
	}
	s := plans[1]
	ms := now.UnixMilli()
	if s.Start%7000 != 0 || s.Start > ms || ms >= s.End() || s.PrevStart() != s.Start-7000 {
		t.Fatalf("7 s plan %+v does not hold %d in a window aligned to multiples of 7 s", s, ms)
	}
	if want := (s.End() - ms) * authority.LimitWeightScale / 7000; s.Weight != want {
		t.Fatalf("weight %d, want %d", s.Weight, want)
	}
}

func TestSlidingWeightAtKnownTimes(t *testing.T) {
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at     time.Duration
		weight int64
		eff    int64 // of cur 10, prev 100
	}{
		{0, 1_000_000, 110},
		{15 * time.Minute, 750_000, 85},
		{30 * time.Minute, 500_000, 60},
		{59*time.Minute + 59*time.Second + 999*time.Millisecond, 0, 10}, // 1 ms × 10^6 / 3.6·10^6 truncates to 0
	} {
		plans, err := authority.PlanLimits(start.Add(c.at), []authority.LimitTake{{Key: "k", Limit: 1, Window: time.Hour, Algorithm: authority.LimitSliding}})
		if err != nil {
			t.Fatal(err)
		}
		p := plans[0]
		if p.Weight != c.weight || p.Effective(10, 100) != c.eff {
			t.Errorf("at +%v: weight %d, effective %d; want %d and %d", c.at, p.Weight, p.Effective(10, 100), c.weight, c.eff)
		}
	}
}

// effectiveAt is the sliding count at t (Unix ms) of counters cur (window
// starting at start) and prev, computed from scratch.
func effectiveAt(t, start, window, cur, prev int64) int64 {
	switch {
	case t < start+window:
		return cur + prev*((start+window-t)*authority.LimitWeightScale/window)/authority.LimitWeightScale
	case t < start+2*window:
		return cur * ((start + 2*window - t) * authority.LimitWeightScale / window) / authority.LimitWeightScale
	}
	return 0
}

// The sliding Reset is checked against a search, millisecond by
// millisecond, for the first instant the count is lower.
func TestSlidingResetIsWhenTheCountNextDrops(t *testing.T) {
	const window = 1000 // ms; the smallest window, so the search is short
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	take := authority.LimitTake{Key: "k", Limit: 50, Window: window * time.Millisecond, Algorithm: authority.LimitSliding}
	for _, now := range []int64{start, start + 1, start + 250, start + 999} {
		for _, cnt := range [][2]int64{{0, 0}, {0, 1}, {1, 0}, {3, 7}, {50, 0}, {0, 50}, {20, 40}, {1, 1000}, {999, 3}} {
			cur, prev := cnt[0], cnt[1]
			plans, err := authority.PlanLimits(time.UnixMilli(now), []authority.LimitTake{take})
			if err != nil {
				t.Fatal(err)
			}
			st := plans[0].State(now, take, cur, prev)
			eff := effectiveAt(now, start, window, cur, prev)
			if want := max(take.Limit-eff, 0); st.Remaining != want {
				t.Fatalf("now +%d, counts %v: remaining %d, want %d", now-start, cnt, st.Remaining, want)
			}
			want := start + window // nothing counted: the window's end
			if eff > 0 {
				want = now + 1
				for effectiveAt(want, start, window, cur, prev) >= eff {
					want++
				}
			}
			if got := st.Reset.UnixMilli(); got != want {
				t.Errorf("now +%d, counts %v (effective %d): reset +%d, want +%d", now-start, cnt, eff, got-start, want-start)
			}
		}
	}
}

func TestFixedStateResetsAtTheWindowEnd(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 20, 0, 0, time.UTC)
	take := authority.LimitTake{Key: "k", Limit: 5, Cost: 1, Window: time.Hour, Algorithm: authority.LimitFixed}
	plans, err := authority.PlanLimits(now, []authority.LimitTake{take})
	if err != nil {
		t.Fatal(err)
	}
	st := authority.LimitStates(now, []authority.LimitTake{take}, plans, []int64{7}, []int64{1000})
	if st[0].Limit != 5 || st[0].Remaining != 0 || !st[0].Reset.Equal(time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("state %+v: want remaining 0 (never negative), reset at 11:00", st[0])
	}
}

func TestPlanLimitsRejectsBadTakes(t *testing.T) {
	ok := authority.LimitTake{Key: "k", Limit: 10, Cost: 1, Window: time.Minute, Algorithm: authority.LimitFixed}
	with := func(f func(*authority.LimitTake)) []authority.LimitTake {
		t := ok
		f(&t)
		return []authority.LimitTake{ok2(), t}
	}
	many := make([]authority.LimitTake, authority.MaxLimitTakes+1)
	for i := range many {
		many[i] = ok
		many[i].Key = strings.Repeat("k", i+1)
	}
	for _, c := range []struct {
		name  string
		takes []authority.LimitTake
		code  credential.Code
		param string
	}{
		{"too many", many, credential.CodeTooMany, "limits"},
		{"no key", with(func(t *authority.LimitTake) { t.Key = "" }), credential.CodeMissing, "limits[1].key"},
		{"limit 0", with(func(t *authority.LimitTake) { t.Limit = 0 }), credential.CodeInvalid, "limits[1].limit"},
		{"limit above max", with(func(t *authority.LimitTake) { t.Limit = authority.MaxLimit + 1 }), credential.CodeInvalid, "limits[1].limit"},
		{"negative cost", with(func(t *authority.LimitTake) { t.Cost = -1 }), credential.CodeInvalid, "limits[1].cost"},
		{"cost above max", with(func(t *authority.LimitTake) { t.Cost = authority.MaxLimit + 1 }), credential.CodeInvalid, "limits[1].cost"},
		{"window under 1 s", with(func(t *authority.LimitTake) { t.Window = 999 * time.Millisecond }), credential.CodeInvalid, "limits[1].window"},
		{"window over 30 days", with(func(t *authority.LimitTake) { t.Window = 30*24*time.Hour + time.Millisecond }), credential.CodeInvalid, "limits[1].window"},
		{"window not whole ms", with(func(t *authority.LimitTake) { t.Window = time.Second + 1 }), credential.CodeInvalid, "limits[1].window"},
		{"no algorithm", with(func(t *authority.LimitTake) { t.Algorithm = "" }), credential.CodeInvalid, "limits[1].algorithm"},
		{"unknown algorithm", with(func(t *authority.LimitTake) { t.Algorithm = "token_bucket" }), credential.CodeInvalid, "limits[1].algorithm"},
		{"duplicate key", with(func(t *authority.LimitTake) { t.Key = ok2().Key }), credential.CodeConstraint, "limits[1].key"},
	} {
		_, err := authority.PlanLimits(time.Now(), c.takes)
		var e *credential.Error
		if err == nil || !credential.IsCode(err, c.code) {
			t.Errorf("%s: err = %v, want code %s", c.name, err, c.code)
			continue
		}
		if e = credential.AsError(err); e.Param != c.param {
			t.Errorf("%s: param %q, want %q", c.name, e.Param, c.param)
		}
	}
	// The bounds themselves are accepted.
	edge := []authority.LimitTake{
		{Key: "a", Limit: 1, Cost: 0, Window: time.Second, Algorithm: authority.LimitFixed},
		{Key: "b", Limit: authority.MaxLimit, Cost: authority.MaxLimit, Window: 30 * 24 * time.Hour, Algorithm: authority.LimitSliding},
	}
	if _, err := authority.PlanLimits(time.Now(), append(edge, many[:authority.MaxLimitTakes-2]...)); err != nil {
		t.Fatalf("the bounds: %v", err)
	}
}

func ok2() authority.LimitTake {
	return authority.LimitTake{Key: "other", Limit: 3, Cost: 1, Window: time.Hour, Algorithm: authority.LimitSliding}
}
