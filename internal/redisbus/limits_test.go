package redisbus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/redisbus"
	"github.com/keyward/keyward/internal/testkit/contract"
)

// limitKey is the Limiter's key for a named-limit window (Unix ms).
func limitKey(key string, window time.Duration, start int64) string {
	return redisbus.KeyPrefix + "n:{" + key + "}:" + strconv.FormatInt(window.Milliseconds(), 10) + ":" + strconv.FormatInt(start, 10)
}

// Three nodes, each with its own client, sharing one Redis: 100
// concurrent calls against limits of 50 and 70 admit exactly 50, and both
// counters hold 50.
func TestTakeAllExactOnThreeNodes(t *testing.T) {
	rdb := newClient(t, nil)
	prefix := uniquePrefix(t, rdb) + "-"
	nodes := make([]authority.Limiter, 3)
	for i := range nodes {
		l := redisbus.NewLimiter(newClient(t, nil), nil, redisbus.PolicyClosed, func(active bool) {
			t.Errorf("report(%v): Redis should not fail here", active)
		})
		nodes[i] = prefixed{l, prefix}
	}
	contract.TestTakeAllExact(t, nodes)
	keys, err := rdb.Keys(context.Background(), redisbus.KeyPrefix+"n:{"+prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %v, want the two limits' current windows", keys)
	}
	for _, k := range keys {
		if n, err := rdb.Get(context.Background(), k).Int64(); err != nil || n != 50 {
			t.Fatalf("%s = %d, %v; want 50", k, n, err)
		}
	}
}

// A counted window's key expires ExpiryMargin after the window following
// it ends (a sliding limit reads it then as its previous window);
// refused calls and reads create no key.
func TestTakeAllKeysExpireAfterTheirUse(t *testing.T) {
	rdb := newClient(t, nil)
	p := uniquePrefix(t, rdb)
	l := redisbus.NewLimiter(rdb, inmem.NewLimiter(), redisbus.PolicyLocal, nil)
	ctx := context.Background()
	now := time.Now().Truncate(time.Hour).Add(time.Hour + 10*time.Minute) // in the future: Redis must not expire it meanwhile
	start := now.Truncate(time.Hour).UnixMilli()
	for _, alg := range []authority.LimitAlgorithm{authority.LimitFixed, authority.LimitSliding} {
		key := p + "-" + string(alg)
		take := authority.LimitTake{Key: key, Limit: 3, Cost: 2, Window: time.Hour, Algorithm: alg}
		if ok, _, err := l.TakeAll(ctx, now, []authority.LimitTake{take}); err != nil || !ok {
			t.Fatalf("%s: (%v, %v)", alg, ok, err)
		}
		at, err := rdb.PExpireTime(ctx, limitKey(key, time.Hour, start)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Duration(start)*time.Millisecond + 2*time.Hour + redisbus.ExpiryMargin; at != want {
			t.Fatalf("%s: expires at %v (Unix), want %v", alg, at, want)
		}
		// Refused (2 + 2 > 3) and read: no key for the other limit.
		other := authority.LimitTake{Key: key + "-other", Limit: 3, Cost: 1, Window: time.Hour, Algorithm: alg}
		for _, takes := range [][]authority.LimitTake{{other, take}, {{Key: other.Key, Limit: 3, Window: time.Hour, Algorithm: alg}}} {
			if _, _, err := l.TakeAll(ctx, now, takes); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := rdb.Exists(ctx, limitKey(other.Key, time.Hour, start), limitKey(other.Key, time.Hour, start-time.Hour.Milliseconds())).Result(); err != nil || n != 0 {
			t.Fatalf("%s: %d keys for a limit only refused and read, %v; want none", alg, n, err)
		}
	}
}

// While Redis is unreachable TakeAll answers by the policy, as Take does.
func TestTakeAllUnreachable(t *testing.T) {
	now := time.Now()
	a := authority.LimitTake{Key: "a", Limit: 2, Cost: 1, Window: time.Hour, Algorithm: authority.LimitFixed}
	b := authority.LimitTake{Key: "b", Limit: 5, Cost: 1, Window: time.Minute, Algorithm: authority.LimitSliding}
	remaining := func(states []authority.LimitState) []int64 {
		var r []int64
		for _, s := range states {
			r = append(r, s.Remaining)
		}
		return r
	}
	check := func(t *testing.T, l *redisbus.Limiter, admitted bool, want ...int64) {
		t.Helper()
		ok, states, err := l.TakeAll(context.Background(), now, []authority.LimitTake{a, b})
		if err != nil || ok != admitted || len(states) != len(want) {
			t.Fatalf("(%v, %+v, %v), want admitted %v with %v remaining", ok, states, err, admitted, want)
		}
		for i, s := range states {
			if s.Remaining != want[i] || s.Limit != []int64{a.Limit, b.Limit}[i] {
				t.Fatalf("remaining %v (%+v), want %v", remaining(states), states, want)
			}
		}
	}
	for _, c := range []struct {
		policy redisbus.Policy
		calls  func(t *testing.T, l *redisbus.Limiter)
	}{
		{redisbus.PolicyLocal, func(t *testing.T, l *redisbus.Limiter) {
			check(t, l, true, 1, 4)
			check(t, l, true, 0, 3)
			check(t, l, false, 0, 3) // the fallback's counts, all or nothing
		}},
		{redisbus.PolicyOpen, func(t *testing.T, l *redisbus.Limiter) {
			for range 4 {
				check(t, l, true, 2, 5)
			}
		}},
		{redisbus.PolicyClosed, func(t *testing.T, l *redisbus.Limiter) {
			for range 4 {
				check(t, l, false, 0, 0)
			}
		}},
	} {
		t.Run(c.policy.String(), func(t *testing.T) {
			var rec recorder
			l := redisbus.NewLimiter(unreachableClient(t), inmem.NewLimiter(), c.policy, rec.report)
			c.calls(t, l)
			if got := rec.get(); !equal(got, []bool{true}) {
				t.Fatalf("reports = %v; want [true]", got)
			}
			// Bad takes are errors before Redis is asked, whatever the policy.
			if _, _, err := l.TakeAll(context.Background(), now, []authority.LimitTake{{Key: "x", Limit: 0, Window: time.Hour, Algorithm: authority.LimitFixed}}); err == nil {
				t.Fatal("limit 0 accepted")
			}
		})
	}
}
