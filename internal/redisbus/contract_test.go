package redisbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/redisbus"
	"github.com/keyward/keyward/internal/testkit/contract"
)

func TestLimiterContract(t *testing.T) {
	contract.TestLimiter(t, func(t *testing.T) authority.Limiter {
		rdb := newClient(t, nil)
		// PolicyClosed: a Redis failure would refuse, never pass as a count.
		l := redisbus.NewLimiter(rdb, nil, redisbus.PolicyClosed, func(active bool) {
			t.Errorf("report(%v): Redis should not fail here", active)
		})
		return prefixed{l, uniquePrefix(t, rdb) + "-"}
	})
}

func TestBusContract(t *testing.T) {
	contract.TestBus(t, func(t *testing.T, n int) []authority.Bus {
		channel := "keyward:test:" + uniquePrefix(t, newClient(t, nil))
		buses := make([]authority.Bus, n)
		for i := range buses {
			buses[i] = redisbus.NewBus(newClient(t, nil), channel) // a client per node
		}
		return buses
	})
}

// prefixed puts every key under the test's prefix, so uniquePrefix's
// cleanup deletes the windows the suite made.
type prefixed struct {
	authority.Limiter
	prefix string
}

func (p prefixed) Take(ctx context.Context, key string, limit int, start, end time.Time) (bool, int, error) {
	return p.Limiter.Take(ctx, p.prefix+key, limit, start, end)
}

func (p prefixed) TakeAll(ctx context.Context, now time.Time, takes []authority.LimitTake) (bool, []authority.LimitState, error) {
	prefixedTakes := make([]authority.LimitTake, len(takes))
	for i, t := range takes {
		if t.Key != "" { // an empty key must stay empty, to be refused
			t.Key = p.prefix + t.Key
		}
		prefixedTakes[i] = t
	}
	return p.Limiter.TakeAll(ctx, now, prefixedTakes)
}
