package contract

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// wait bounds every wait for a delivery or a report; the suite never
// asserts on how long anything took.
const wait = 10 * time.Second

// TestBus checks what authority.Bus guarantees: once Subscribe has
// reported connected(true), every publish on any node sharing the bus
// reaches every subscriber, the publisher's own node included, also when
// publishes are concurrent; a delivered invalidation covers what was
// published (the same digests, or All); a subscription whose context ends
// returns nil, without reporting a loss, and delivers nothing afterwards.
// The order of deliveries is not promised by the port, so it is not
// checked.
//
// newBuses returns n buses joined to one channel that no other test
// shares: n nodes of a cluster (an in-process bus may return the same one
// n times).
func TestBus(t *testing.T, newBuses func(t *testing.T, n int) []authority.Bus) {
	t.Helper()
	t.Run("every subscriber, the publisher's included, receives each publish", func(t *testing.T) {
		buses := newBuses(t, 2)
		subs := []*subscription{subscribe(t, buses[0]), subscribe(t, buses[1])}
		for i, inv := range []authority.Invalidation{
			{Digests: randomDigests(3)},
			{All: true},
			{Digests: randomDigests(1)},
		} {
			publish(t, buses[i%2], inv)
			for n, s := range subs {
				if got := s.next(t); !got.All && (inv.All || !covers(got, inv.Digests)) {
					t.Fatalf("publish %d: subscriber %d got %+v, want %+v", i, n, got, inv)
				}
			}
		}
	})

	t.Run("concurrent publishes all arrive", func(t *testing.T) {
		buses := newBuses(t, 2)
		subs := []*subscription{subscribe(t, buses[0]), subscribe(t, buses[1])}
		const publishers, each = 4, 8
		sent := make([][]credential.Digest, publishers)
		var wg sync.WaitGroup
		for p := range publishers {
			sent[p] = randomDigests(each)
			wg.Go(func() {
				for _, d := range sent[p] {
					if err := buses[p%2].Publish(context.Background(), authority.Invalidation{Digests: []credential.Digest{d}}); err != nil {
						t.Errorf("Publish: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		var all []credential.Digest
		for _, ds := range sent {
			all = append(all, ds...)
		}
		for n, s := range subs {
			s.until(t, fmt.Sprintf("subscriber %d", n), all)
		}
	})

	t.Run("a large invalidation arrives whole or as All", func(t *testing.T) {
		buses := newBuses(t, 1)
		s := subscribe(t, buses[0])
		inv := authority.Invalidation{Digests: randomDigests(400)}
		publish(t, buses[0], inv)
		if got := s.next(t); !got.All && !covers(got, inv.Digests) {
			t.Fatalf("delivered %d digests, not All; want all %d", len(got.Digests), len(inv.Digests))
		}
	})

	t.Run("an ended subscription returns nil and delivers nothing more", func(t *testing.T) {
		buses := newBuses(t, 2)
		gone, stays := subscribe(t, buses[0]), subscribe(t, buses[1])
		publish(t, buses[1], authority.Invalidation{Digests: randomDigests(1)})
		gone.next(t)
		stays.next(t)
		gone.end(t)

		last := authority.Invalidation{Digests: randomDigests(1)}
		publish(t, buses[1], last)
		stays.until(t, "the remaining subscriber", last.Digests)
		// gone's callbacks fail the test if they run after its return.
	})
}

// subscription is one running Subscribe, seen through channels.
type subscription struct {
	got      chan authority.Invalidation
	states   chan bool
	returned atomic.Bool
	cancel   context.CancelFunc
	done     chan error
}

// subscribe runs b.Subscribe until the test ends (or end is called) and
// waits for it to report connected(true).
func subscribe(t *testing.T, b authority.Bus) *subscription {
	t.Helper()
	// Buffered generously: an in-process bus delivers on the publisher's
	// goroutine, which must not block on the test.
	s := &subscription{got: make(chan authority.Invalidation, 4096), states: make(chan bool, 64), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.done <- b.Subscribe(ctx, func(inv authority.Invalidation) {
			if s.returned.Load() {
				t.Errorf("delivered %+v after Subscribe returned", inv)
				return
			}
			s.got <- inv
		}, func(up bool) {
			if s.returned.Load() {
				t.Errorf("connected(%v) after Subscribe returned", up)
				return
			}
			s.states <- up
		})
	}()
	t.Cleanup(func() { s.end(t) })
	select {
	case up := <-s.states:
		if !up {
			t.Fatal("the first report is connected(false), want connected(true)")
		}
	case err := <-s.done:
		t.Fatalf("Subscribe returned %v before it was connected", err)
	case <-time.After(wait):
		t.Fatalf("no connected(true) within %v", wait)
	}
	return s
}

// end cancels the subscription and checks that Subscribe returns nil
// without having reported a loss. Calling it again does nothing.
func (s *subscription) end(t *testing.T) {
	t.Helper()
	if s.returned.Load() {
		return
	}
	s.cancel()
	select {
	case err := <-s.done:
		s.returned.Store(true)
		if err != nil {
			t.Errorf("Subscribe returned %v after its context ended, want nil", err)
		}
	case <-time.After(wait):
		t.Errorf("Subscribe did not return within %v of its context ending", wait)
		return
	}
	for len(s.states) > 0 {
		if up := <-s.states; !up {
			t.Error("connected(false) reported for a subscription that ended by its context")
		}
	}
}

// next waits for the next delivery.
func (s *subscription) next(t *testing.T) authority.Invalidation {
	t.Helper()
	select {
	case inv := <-s.got:
		return inv
	case <-time.After(wait):
		t.Fatalf("no invalidation delivered within %v", wait)
		return authority.Invalidation{}
	}
}

// until takes deliveries until they have covered every digest in want.
func (s *subscription) until(t *testing.T, who string, want []credential.Digest) {
	t.Helper()
	missing := make(map[credential.Digest]bool, len(want))
	for _, d := range want {
		missing[d] = true
	}
	deadline := time.After(wait)
	for len(missing) > 0 {
		select {
		case inv := <-s.got:
			if inv.All {
				return
			}
			for _, d := range inv.Digests {
				delete(missing, d)
			}
		case <-deadline:
			t.Fatalf("%s: %d of %d digests not delivered within %v", who, len(missing), len(want), wait)
		}
	}
}

func publish(t *testing.T, b authority.Bus, inv authority.Invalidation) {
	t.Helper()
	if err := b.Publish(context.Background(), inv); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// covers reports whether inv drops every digest in want.
func covers(inv authority.Invalidation, want []credential.Digest) bool {
	if inv.All {
		return true
	}
	have := make(map[credential.Digest]bool, len(inv.Digests))
	for _, d := range inv.Digests {
		have[d] = true
	}
	for _, d := range want {
		if !have[d] {
			return false
		}
	}
	return true
}

func randomDigests(n int) []credential.Digest {
	ds := make([]credential.Digest, n)
	for i := range ds {
		rand.Read(ds[i][:])
	}
	return ds
}
