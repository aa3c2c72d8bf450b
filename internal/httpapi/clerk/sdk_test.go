package clerk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clerksdk "github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/machine"
	"github.com/clerk/clerk-sdk-go/v2/machinescope"
	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func sdkConfig(e *apitest.Env, key string) *clerksdk.ClientConfig {
	return &clerksdk.ClientConfig{BackendConfig: clerksdk.BackendConfig{
		URL: clerksdk.String(e.URL + "/clerk/v1"),
		Key: clerksdk.String(key),
	}}
}

func names(list *clerksdk.MachineList) []string {
	out := make([]string, len(list.Machines))
	for i, m := range list.Machines {
		out[i] = m.Name
	}
	return out
}

// TestClerkSDKDrivesMachines drives every machines operation through
// Clerk's own Go SDK and checks the values it returns.
func TestClerkSDKDrivesMachines(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		ctx := context.Background()
		machines := machine.NewClient(sdkConfig(e, e.AdminKey))
		scopes := machinescope.NewClient(sdkConfig(e, e.AdminKey))

		// Create three machines a second apart; gamma is scoped to alpha and beta.
		ttl := int64(600)
		alpha, err := machines.Create(ctx, &machine.CreateParams{Name: "alpha-worker", DefaultTokenTTL: &ttl})
		if err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(time.Second)
		beta, err := machines.Create(ctx, &machine.CreateParams{Name: "Beta-API"})
		if err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(time.Second)
		gamma, err := machines.Create(ctx, &machine.CreateParams{Name: "gamma-worker", ScopedMachines: []string{alpha.ID, beta.ID}})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(alpha.SecretKey, beta.SecretKey, gamma.SecretKey)

		if alpha.Object != "machine" || alpha.Name != "alpha-worker" || alpha.DefaultTokenTTL != 600 || alpha.InstanceID != e.InstanceID {
			t.Fatalf("create returned %+v", alpha.Machine)
		}
		if alpha.CreatedAt != testkit.ClockStart.UnixMilli() || alpha.UpdatedAt != alpha.CreatedAt {
			t.Fatalf("created_at = %d, want %d (ms)", alpha.CreatedAt, testkit.ClockStart.UnixMilli())
		}
		if beta.DefaultTokenTTL != 3600 {
			t.Fatalf("default_token_ttl defaults to %d, want 3600", beta.DefaultTokenTTL)
		}
		if len(alpha.SecretKey) < 10 || alpha.SecretKey[:3] != "ak_" {
			t.Fatalf("create must hand out an ak_ secret key, got %q", alpha.SecretKey)
		}
		if got := []string{gamma.ScopedMachines[0].ID, gamma.ScopedMachines[1].ID}; !cmp.Equal(got, []string{alpha.ID, beta.ID}) {
			t.Fatalf("scoped_machines = %v", got)
		}

		// Get.
		got, err := machines.Get(ctx, gamma.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(gamma.MachineWithScopedMachines.Machine, got.Machine, cmpIgnoreResponse); diff != "" {
			t.Fatalf("get differs from create (-create +get):\n%s", diff)
		}
		if len(got.ScopedMachines) != 2 || got.ScopedMachines[1].Name != "Beta-API" {
			t.Fatalf("get scoped_machines = %+v", got.ScopedMachines)
		}

		// List: default order is newest first.
		list, err := machines.List(ctx, &machine.ListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if list.TotalCount != 3 || !cmp.Equal(names(list), []string{"gamma-worker", "Beta-API", "alpha-worker"}) {
			t.Fatalf("list = %v (total %d)", names(list), list.TotalCount)
		}
		for _, tc := range []struct {
			name   string
			params machine.ListParams
			want   []string
			total  int64
		}{
			{"order by name ascending", machine.ListParams{OrderBy: clerksdk.String("name")}, []string{"alpha-worker", "Beta-API", "gamma-worker"}, 3},
			{"order by name descending", machine.ListParams{OrderBy: clerksdk.String("-name")}, []string{"gamma-worker", "Beta-API", "alpha-worker"}, 3},
			{"order by created_at ascending", machine.ListParams{OrderBy: clerksdk.String("+created_at")}, []string{"alpha-worker", "Beta-API", "gamma-worker"}, 3},
			{"order by created_at descending", machine.ListParams{OrderBy: clerksdk.String("-created_at")}, []string{"gamma-worker", "Beta-API", "alpha-worker"}, 3},
			{"query matches a name part, any case", machine.ListParams{Query: clerksdk.String("WORKER")}, []string{"gamma-worker", "alpha-worker"}, 2},
			{"query matches an exact id", machine.ListParams{Query: clerksdk.String(beta.ID)}, []string{"Beta-API"}, 1},
			{"query does not match part of an id", machine.ListParams{Query: clerksdk.String(beta.ID[:10])}, []string{}, 0},
			{"limit and offset page", machine.ListParams{ListParams: clerksdk.ListParams{Limit: clerksdk.Int64(1), Offset: clerksdk.Int64(1)}, OrderBy: clerksdk.String("name")}, []string{"Beta-API"}, 3},
			{"offset past the end", machine.ListParams{ListParams: clerksdk.ListParams{Offset: clerksdk.Int64(5)}}, []string{}, 3},
		} {
			list, err := machines.List(ctx, &tc.params)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !cmp.Equal(names(list), tc.want) || list.TotalCount != tc.total {
				t.Errorf("%s: got %v (total %d), want %v (total %d)", tc.name, names(list), list.TotalCount, tc.want, tc.total)
			}
		}

		// Update changes only what is sent.
		e.Clock.Advance(time.Second)
		updated, err := machines.Update(ctx, alpha.ID, &machine.UpdateParams{Name: clerksdk.String("alpha-renamed")})
		if err != nil {
			t.Fatal(err)
		}
		if updated.Name != "alpha-renamed" || updated.DefaultTokenTTL != 600 || updated.UpdatedAt != e.Clock.Now().UnixMilli() || updated.CreatedAt != alpha.CreatedAt {
			t.Fatalf("update returned %+v", updated.Machine)
		}
		updated, err = machines.Update(ctx, alpha.ID, &machine.UpdateParams{DefaultTokenTTL: clerksdk.Int64(7200)})
		if err != nil || updated.Name != "alpha-renamed" || updated.DefaultTokenTTL != 7200 {
			t.Fatalf("update ttl returned %+v, %v", updated, err)
		}

		// Secret key: the create response's key, readable again.
		sk, err := machines.GetSecretKey(ctx, alpha.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sk.Object != "machine_secret_key" || sk.Secret != alpha.SecretKey {
			t.Fatalf("get secret key = %q %q, want the create response's key", sk.Object, sk.Secret)
		}

		// Scopes: create, duplicate (409), delete.
		scope, err := scopes.CreateScope(ctx, alpha.ID, &machinescope.CreateScopeParams{ToMachineID: beta.ID})
		if err != nil {
			t.Fatal(err)
		}
		if scope.Object != "machine_scope" || scope.FromMachineID != alpha.ID || scope.ToMachineID != beta.ID || scope.CreatedAt != e.Clock.Now().UnixMilli() {
			t.Fatalf("create scope returned %+v", scope)
		}
		_, err = scopes.CreateScope(ctx, alpha.ID, &machinescope.CreateScopeParams{ToMachineID: beta.ID})
		if status, code := clerkError(t, err); status != 409 || code != "conflict" {
			t.Fatalf("duplicate scope: %d %s, want 409 conflict", status, code)
		}
		if got, _ := machines.Get(ctx, alpha.ID); len(got.ScopedMachines) != 1 || got.ScopedMachines[0].ID != beta.ID {
			t.Fatalf("alpha's scoped machines after create scope: %+v", got.ScopedMachines)
		}
		deletedScope, err := scopes.DeleteScope(ctx, alpha.ID, beta.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !deletedScope.Deleted || deletedScope.Object != "machine_scope" || deletedScope.ToMachineID != beta.ID {
			t.Fatalf("delete scope returned %+v", deletedScope)
		}

		// Delete removes scopes to and from the machine.
		deleted, err := machines.Delete(ctx, beta.ID)
		if err != nil {
			t.Fatal(err)
		}
		if deleted.Object != "machine" || deleted.ID != beta.ID || !deleted.Deleted {
			t.Fatalf("delete returned %+v", deleted)
		}
		_, err = machines.Get(ctx, beta.ID)
		if status, code := clerkError(t, err); status != 404 || code != "resource_not_found" {
			t.Fatalf("get deleted machine: %d %s, want 404 resource_not_found", status, code)
		}
		if got, _ := machines.Get(ctx, gamma.ID); len(got.ScopedMachines) != 1 || got.ScopedMachines[0].ID != alpha.ID {
			t.Fatalf("gamma still scoped to the deleted machine: %+v", got.ScopedMachines)
		}
	})
}

var cmpIgnoreResponse = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".APIResource" }, cmp.Ignore())

// clerkError unpacks an SDK error into its HTTP status and first code.
func clerkError(t *testing.T, err error) (int, string) {
	t.Helper()
	var apiErr *clerksdk.APIErrorResponse
	if !errors.As(err, &apiErr) || len(apiErr.Errors) == 0 {
		t.Fatalf("want a Clerk API error, got %v", err)
	}
	return apiErr.HTTPStatusCode, apiErr.Errors[0].Code
}
