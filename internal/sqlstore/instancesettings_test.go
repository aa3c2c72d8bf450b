package sqlstore_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestInstancePATSettings shows Scopes and PATMaxLifetime written by
// CreateInstance and UpdateInstance and read back by GetInstance and
// ListInstances, a nil scope list staying nil and an empty one empty.
func TestInstancePATSettings(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		get := func(t *testing.T, id string) credential.Instance {
			t.Helper()
			return view(t, s, func(tx authority.Tx) (credential.Instance, error) { return tx.GetInstance(ctx, id) })
		}
		listed := func(t *testing.T, id string) credential.Instance {
			t.Helper()
			all := view(t, s, func(tx authority.Tx) ([]credential.Instance, error) { return tx.ListInstances(ctx) })
			for _, in := range all {
				if in.ID == id {
					return in
				}
			}
			t.Fatalf("ListInstances lacks %s", id)
			return credential.Instance{}
		}
		check := func(t *testing.T, want credential.Instance) {
			t.Helper()
			for name, got := range map[string]credential.Instance{"GetInstance": get(t, want.ID), "ListInstances": listed(t, want.ID)} {
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
				if (want.Scopes == nil) != (got.Scopes == nil) {
					t.Errorf("%s: scopes %#v, want %#v", name, got.Scopes, want.Scopes)
				}
			}
		}

		tests := []struct {
			name string
			in   credential.Instance
		}{
			{"nil scopes and a zero lifetime come back unset", credential.Instance{Name: "defaults"}},
			{"empty scopes come back empty, not nil", credential.Instance{Name: "no scopes", Scopes: []string{}}},
			{"set scopes come back in order", credential.Instance{Name: "custom", Scopes: []string{"write", "read", "admin:billing"}}},
			{"a positive lifetime comes back", credential.Instance{Name: "a day", PATMaxLifetime: 86400}},
			{"a negative lifetime, no maximum, comes back", credential.Instance{Name: "unbounded", PATMaxLifetime: -1}},
			{"an impersonation redirect URL comes back", credential.Instance{Name: "redirecting", ImpersonationRedirectURL: "https://app.example/after-impersonation"}},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.in.ID, tc.in.CreatedAt = credential.NewID(credential.PrefixInstance, at(i)), at(i)
				update(t, s, func(tx authority.Tx) error { return tx.CreateInstance(ctx, tc.in) })
				check(t, tc.in)
			})
		}

		in := newInstance(t, s, "changing")
		updates := []struct {
			name     string
			scopes   []string
			lifetime int64
		}{
			{"update sets scopes and a lifetime", []string{"read", "deploy"}, 3600},
			{"update empties the scopes", []string{}, 3600},
			{"update makes the lifetime unbounded", []string{}, -1},
			{"update back to nil scopes and the default lifetime", nil, 0},
		}
		for _, step := range updates {
			t.Run(step.name, func(t *testing.T) {
				changed := in
				changed.Scopes, changed.PATMaxLifetime = step.scopes, step.lifetime
				update(t, s, func(tx authority.Tx) error { return tx.UpdateInstance(ctx, changed) })
				check(t, changed)
			})
		}
	})
}
