package authority_test

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// Minting reads its machine's lifetime and scopes from a cache; a change
// to either, made on this node or another, is what the very next token
// gets.
func TestATokenMintedAfterAMachineChangeCarriesTheChange(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock, bus := testkit.NewClock(), inmem.NewBus()
		a, b := node(t, store, bus, clock), node(t, store, bus, clock)
		_, adminKey, err := a.CreateInstance(ctx, "shared")
		if err != nil {
			t.Fatal(err)
		}
		adminA, _ := a.Authenticate(ctx, adminKey.Reveal())
		name := "target"
		target, _, err := a.CreateMachine(ctx, adminA, CreateMachineInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		name = "minter"
		minter, minterKey, err := a.CreateMachine(ctx, adminA, CreateMachineInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		onA, _ := a.Authenticate(ctx, minterKey.Reveal())
		onB, _ := b.Authenticate(ctx, minterKey.Reveal())
		mint := func(on *Authority, c Caller) M2MToken {
			t.Helper()
			tok, err := on.CreateM2MToken(ctx, c, CreateM2MTokenInput{})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		for _, n := range []struct {
			a *Authority
			c Caller
		}{{a, onA}, {b, onB}} { // both nodes cache the profile
			if tok := mint(n.a, n.c); len(tok.Scopes) != 0 || !tok.ExpiresAt.Equal(clock.Now().Add(DefaultTokenTTL*time.Second)) {
				t.Fatalf("first token: scopes %v, expires %v", tok.Scopes, tok.ExpiresAt)
			}
		}

		// Each change comes after both nodes have minted (and cached) again.
		ttl := int64(60)
		if _, err := a.UpdateMachine(ctx, adminA, minter.ID, UpdateMachineInput{DefaultTokenTTL: &ttl}); err != nil {
			t.Fatal(err)
		}
		for name, n := range map[string]struct {
			a *Authority
			c Caller
		}{"this node": {a, onA}, "another node": {b, onB}} {
			if tok := mint(n.a, n.c); !tok.ExpiresAt.Equal(clock.Now().Add(time.Minute)) {
				t.Errorf("%s, after the lifetime's change: expires %v, want in 60 s", name, tok.ExpiresAt)
			}
		}
		if _, err := a.CreateMachineScope(ctx, adminA, minter.ID, target.ID); err != nil {
			t.Fatal(err)
		}
		for name, n := range map[string]struct {
			a *Authority
			c Caller
		}{"this node": {a, onA}, "another node": {b, onB}} {
			if tok := mint(n.a, n.c); !slices.Equal(tok.Scopes, []string{target.ID}) {
				t.Errorf("%s, after the new scope: scopes %v, want [%s]", name, tok.Scopes, target.ID)
			}
		}
		if err := a.DeleteMachineScope(ctx, adminA, minter.ID, target.ID); err != nil {
			t.Fatal(err)
		}
		if tok := mint(b, onB); len(tok.Scopes) != 0 {
			t.Errorf("another node, after the scope's removal: scopes %v, want none", tok.Scopes)
		}
	})
}
