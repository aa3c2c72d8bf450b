package authority_test

import (
	"context"
	"slices"
	"testing"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestAPIKeyChangesOnOneNodeApplyOnAnotherAtOnce: revoking, updating and
// deleting an API key reach every node's cache through the bus, with no
// time passing.
func TestAPIKeyChangesOnOneNodeApplyOnAnotherAtOnce(t *testing.T) {
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
		name, subject := "service key", "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"
		create := func() APIKey {
			t.Helper()
			k, err := a.CreateAPIKey(ctx, adminA, CreateAPIKeyInput{Name: &name, Subject: &subject, Scopes: []string{"read"}})
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: k.Secret}); !r.Valid || r.Kind != "api_key" {
				t.Fatalf("node B before the change: %s", r.Reason)
			}
			return k
		}

		revoked := create()
		if _, err := a.RevokeAPIKey(ctx, adminA, revoked.ID, "leaked"); err != nil {
			t.Fatal(err)
		}
		if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: revoked.Secret}); r.Reason != ReasonRevoked {
			t.Fatalf("node B after a revoke on A: %s, want revoked", r.Reason)
		}

		updated := create()
		if _, err := a.UpdateAPIKey(ctx, adminA, updated.ID, UpdateAPIKeyInput{Scopes: []string{"write"}}); err != nil {
			t.Fatal(err)
		}
		if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: updated.Secret}); !r.Valid || !slices.Equal(r.Scopes, []string{"write"}) {
			t.Fatalf("node B after an update on A: %s %v, want the new scopes", r.Reason, r.Scopes)
		}

		deleted := create()
		if _, err := a.DeleteAPIKey(ctx, adminA, deleted.ID); err != nil {
			t.Fatal(err)
		}
		if r, _ := b.Verify(ctx, adminB, VerifyInput{Token: deleted.Secret}); r.Reason != ReasonNotFound {
			t.Fatalf("node B after a delete on A: %s, want not_found", r.Reason)
		}
	})
}

// TestAPIKeyMutationsAreAudited: every change and every secret read leaves
// an event naming the key.
func TestAPIKeyMutationsAreAudited(t *testing.T) {
	ctx := context.Background()
	a := node(t, testkit.OpenSQLite(t), inmem.NewBus(), testkit.NewClock())
	_, adminKey, _ := a.CreateInstance(ctx, "audited")
	admin, _ := a.Authenticate(ctx, adminKey.Reveal())
	name, subject := "audited key", "org_2xhFjEI5X2qWRvtV13BzSj8H6Dk"
	k, err := a.CreateAPIKey(ctx, admin, CreateAPIKeyInput{Name: &name, Subject: &subject})
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error {
			_, err := a.UpdateAPIKey(ctx, admin, k.ID, UpdateAPIKeyInput{Scopes: []string{"x"}})
			return err
		},
		func() error { _, err := a.APIKeySecret(ctx, admin, k.ID); return err },
		func() error { _, err := a.RevokeAPIKey(ctx, admin, k.ID, "done"); return err },
		func() error { _, err := a.DeleteAPIKey(ctx, admin, k.ID); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	events, _, err := a.ListAuditEvents(ctx, admin, ListAuditEventsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		if e.TargetID == k.ID {
			actions = append(actions, e.Action)
		}
	}
	want := []string{"api_key.delete", "api_key.revoke", "api_key.secret_read", "api_key.update", "api_key.create"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions %v, want %v", actions, want)
	}
}
