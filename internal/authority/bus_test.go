package authority_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// node is one authority over a shared store, as one server process is.
func node(t *testing.T, store Store, bus Bus, clock Clock) *Authority {
	t.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{9}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	a := New(Config{Store: store, Keyring: keys, Clock: clock, Limiter: inmem.NewLimiter(), Bus: bus})
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.RunBus(ctx, func(connected bool) {
			if connected {
				select {
				case up <- struct{}{}:
				default:
				}
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-up
	return a
}

func TestARevokeOnOneNodeFailsOnAnotherAtOnce(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock, bus := testkit.NewClock(), inmem.NewBus()
		a, b := node(t, store, bus, clock), node(t, store, bus, clock)

		_, adminKey, err := a.CreateInstance(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		adminA, _ := a.Authenticate(ctx, adminKey.Reveal())
		adminB, _ := b.Authenticate(ctx, adminKey.Reveal())
		name := "worker"
		target, _, err := a.CreateMachine(ctx, adminA, CreateMachineInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		_, minterKey, err := a.CreateMachine(ctx, adminA, CreateMachineInput{Name: &name, ScopedMachines: []string{target.ID}})
		if err != nil {
			t.Fatal(err)
		}
		minter, _ := a.Authenticate(ctx, minterKey.Reveal())
		tok, err := a.CreateM2MToken(ctx, minter, CreateM2MTokenInput{})
		if err != nil {
			t.Fatal(err)
		}
		// Node B caches the token as valid…
		if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: tok.Token}); !r.Valid {
			t.Fatalf("node B before the revoke: %s", r.Reason)
		}
		// …node A revokes it, and B's very next call fails, with no time passing.
		if _, err := a.RevokeM2MToken(ctx, adminA, tok.ID, "leaked"); err != nil {
			t.Fatal(err)
		}
		if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: tok.Token}); r.Reason != ReasonRevoked {
			t.Fatalf("node B after node A revoked: %s, want revoked", r.Reason)
		}

		// A partition nobody notices: the positive cache lifetime still
		// bounds how long B can answer from a stale entry.
		second, err := a.CreateM2MToken(ctx, minter, CreateM2MTokenInput{})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: second.Token}); !r.Valid {
			t.Fatal(r.Reason)
		}
		bus.SetDown(true)
		if _, err := a.RevokeM2MToken(ctx, adminA, second.ID, "leaked"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(30 * time.Second)
		if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: second.Token}); r.Reason != ReasonRevoked {
			t.Fatalf("after the positive cache lifetime, a missed invalidation must not matter: %s", r.Reason)
		}
	})
}

// lossyBus can report its subscription lost, as the Redis and PostgreSQL
// adapters do when their connection drops.
type lossyBus struct {
	*inmem.Bus
	connected chan func(bool)
}

func (l lossyBus) Subscribe(ctx context.Context, deliver func(Invalidation), connected func(bool)) error {
	l.connected <- connected
	return l.Bus.Subscribe(ctx, deliver, connected)
}

func TestALostBusShortensTheCacheToTheFallbackTTL(t *testing.T) {
	ctx := context.Background()
	store := testkit.OpenSQLite(t)
	clock := testkit.NewClock()
	bus := lossyBus{Bus: inmem.NewBus(), connected: make(chan func(bool), 1)}
	a := node(t, store, inmem.NewBus(), clock) // another node, on a bus b cannot hear
	b := node(t, store, bus, clock)
	report := <-bus.connected

	_, adminKey, _ := a.CreateInstance(ctx, "shared")
	adminA, _ := a.Authenticate(ctx, adminKey.Reveal())
	adminB, _ := b.Authenticate(ctx, adminKey.Reveal())
	name := "m"
	target, _, _ := a.CreateMachine(ctx, adminA, CreateMachineInput{Name: &name})
	_, minterKey, _ := a.CreateMachine(ctx, adminA, CreateMachineInput{Name: &name, ScopedMachines: []string{target.ID}})
	minter, _ := a.Authenticate(ctx, minterKey.Reveal())
	tok, _ := a.CreateM2MToken(ctx, minter, CreateM2MTokenInput{})

	report(false) // b's subscription is lost: its cache becomes short-lived
	if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: tok.Token}); !r.Valid {
		t.Fatal(r.Reason)
	}
	if _, err := a.RevokeM2MToken(ctx, adminA, tok.ID, "leaked"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(FallbackTTL)
	if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: tok.Token}); r.Reason != ReasonRevoked {
		t.Fatalf("with the bus lost, a revoke elsewhere must be seen within %s: %s", FallbackTTL, r.Reason)
	}
}
