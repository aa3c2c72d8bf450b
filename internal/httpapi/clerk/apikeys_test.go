package clerk_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

const (
	alice   = "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"
	bob     = "user_2yQmP0aLk3vR7sT1wY6cF3hJ5dL"
	acmeOrg = "org_2zNc4QkLm8vR7sT1wY6cF3hJ5dA"
)

// createAPIKey creates a key through base (/clerk/v1 or /clerk) and
// returns the response object, remembering its secret.
func createAPIKey(t *testing.T, e *apitest.Env, base string, body any) map[string]any {
	t.Helper()
	resp := e.Do(t, "POST", base+"/api_keys", e.AdminKey, body)
	if resp.Status != http.StatusOK {
		t.Fatalf("create API key: %d %s", resp.Status, resp.Body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("a response that hands out a secret must be Cache-Control: no-store")
	}
	k := resp.JSON(t)
	e.Remember(k["secret"].(string))
	return k
}

func ids(t *testing.T, resp apitest.Response) ([]string, float64) {
	t.Helper()
	if resp.Status != http.StatusOK {
		t.Fatalf("list: %d %s", resp.Status, resp.Body)
	}
	body := resp.JSON(t)
	var out []string
	for _, k := range body["data"].([]any) {
		m := k.(map[string]any)
		if _, ok := m["secret"]; ok {
			t.Fatalf("a list item carries the secret: %v", m)
		}
		out = append(out, m["id"].(string))
	}
	return out, body["total_count"].(float64)
}

func TestAPIKeysLifecycleOnBothPaths(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		for _, base := range []string{"/clerk/v1", "/clerk"} {
			t.Run(base, func(t *testing.T) {
				created := createAPIKey(t, e, base, map[string]any{
					"name": "billing sync", "subject": alice, "description": "nightly job",
					"claims": map[string]any{"tier": "gold"}, "scopes": []string{"read", "write", "read"},
					"created_by": bob, "seconds_until_expiration": 3600,
				})
				id, secret := created["id"].(string), created["secret"].(string)
				now := e.Clock.Now().UnixMilli()
				want := map[string]any{
					"object": "api_key", "id": id, "type": "api_key", "subject": alice, "name": "billing sync",
					"description": "nightly job", "claims": map[string]any{"tier": "gold"}, "scopes": []any{"read", "write"},
					"secret": secret, "revoked": false, "revocation_reason": nil, "expired": false,
					"expiration": float64(now + 3600_000), "created_by": bob, "last_used_at": nil,
					"created_at": float64(now), "updated_at": float64(now),
				}
				if diff := cmp.Diff(want, created); diff != "" {
					t.Fatalf("create (-want +got):\n%s", diff)
				}
				if len(id) != 35 || !strings.HasPrefix(id, "ak_") || !strings.HasPrefix(secret, "ak_") || len(secret) != 52 {
					t.Fatalf("id %q and secret must be Clerk-shaped ak_ values", id)
				}

				// Get shows everything but the secret; the legacy api_key_ id
				// spelling finds the same key.
				delete(want, "secret")
				for _, path := range []string{base + "/api_keys/" + id, base + "/api_keys/api_key_" + strings.TrimPrefix(id, "ak_")} {
					resp := e.Do(t, "GET", path, e.AdminKey, nil)
					if resp.Status != http.StatusOK {
						t.Fatalf("GET %s: %d %s", path, resp.Status, resp.Body)
					}
					if diff := cmp.Diff(want, resp.JSON(t)); diff != "" {
						t.Fatalf("get (-want +got):\n%s", diff)
					}
				}

				// Get secret returns the create response's secret again.
				resp := e.Do(t, "GET", base+"/api_keys/"+id+"/secret", e.AdminKey, nil)
				if resp.Status != http.StatusOK || resp.JSON(t)["secret"] != secret || resp.Header.Get("Cache-Control") != "no-store" {
					t.Fatalf("get secret: %d %s", resp.Status, resp.Body)
				}

				// Verify: the key, with its use recorded.
				e.Clock.Advance(time.Second)
				resp = e.Do(t, "POST", base+"/api_keys/verify", e.AdminKey, map[string]string{"secret": secret})
				if resp.Status != http.StatusOK {
					t.Fatalf("verify: %d %s", resp.Status, resp.Body)
				}
				verified := resp.JSON(t)
				if verified["id"] != id || verified["last_used_at"] != float64(e.Clock.Now().UnixMilli()) {
					t.Fatalf("verify returned %v", verified)
				}
				if err := e.Auth.FlushUsage(context.Background()); err != nil {
					t.Fatal(err)
				}
				if got := e.Do(t, "GET", base+"/api_keys/"+id, e.AdminKey, nil).JSON(t)["last_used_at"]; got != float64(e.Clock.Now().UnixMilli()) {
					t.Fatalf("last_used_at after verify = %v", got)
				}

				// Update: only what is sent changes; null clears.
				e.Clock.Advance(time.Second)
				resp = e.Do(t, "PATCH", base+"/api_keys/"+id, e.AdminKey, map[string]any{
					"subject": acmeOrg, "scopes": []string{"admin"}, "description": nil, "seconds_until_expiration": nil,
				})
				if resp.Status != http.StatusOK {
					t.Fatalf("update: %d %s", resp.Status, resp.Body)
				}
				updated := resp.JSON(t)
				if updated["subject"] != acmeOrg || !cmp.Equal(updated["scopes"], []any{"admin"}) || updated["description"] != nil ||
					updated["expiration"] != nil || !cmp.Equal(updated["claims"], map[string]any{"tier": "gold"}) ||
					updated["name"] != "billing sync" || updated["updated_at"] != float64(e.Clock.Now().UnixMilli()) {
					t.Fatalf("update returned %v", updated)
				}
				resp = e.Do(t, "PATCH", base+"/api_keys/"+id, e.AdminKey, map[string]any{"name": "renamed"})
				if resp.Status != 422 || clerkCode(t, resp) != "form_param_unknown" {
					t.Fatalf("renaming: %d %s, want 422 form_param_unknown (the name is not updatable)", resp.Status, resp.Body)
				}
				// Verification sees the update at once (the cached entry is dropped).
				resp = e.Do(t, "POST", base+"/api_keys/verify", e.AdminKey, map[string]string{"secret": secret})
				if got := resp.JSON(t); got["subject"] != acmeOrg || !cmp.Equal(got["scopes"], []any{"admin"}) {
					t.Fatalf("verify after update returned %v", got)
				}

				// Revoke: at once, with its reason; a second revoke keeps the first.
				resp = e.Do(t, "POST", base+"/api_keys/"+id+"/revoke", e.AdminKey, map[string]any{"revocation_reason": "leaked"})
				if got := resp.JSON(t); resp.Status != 200 || got["revoked"] != true || got["revocation_reason"] != "leaked" {
					t.Fatalf("revoke: %d %s", resp.Status, resp.Body)
				}
				resp = e.Do(t, "POST", base+"/api_keys/"+id+"/revoke", e.AdminKey, map[string]any{"revocation_reason": nil})
				if got := resp.JSON(t); resp.Status != 200 || got["revocation_reason"] != "leaked" {
					t.Fatalf("second revoke: %d %s", resp.Status, resp.Body)
				}
				resp = e.Do(t, "POST", base+"/api_keys/verify", e.AdminKey, map[string]string{"secret": secret})
				if resp.Status != 404 || clerkCode(t, resp) != "resource_not_found" {
					t.Fatalf("verify a revoked key: %d %s, want 404", resp.Status, resp.Body)
				}

				// Delete.
				resp = e.Do(t, "DELETE", base+"/api_keys/"+id, e.AdminKey, nil)
				if diff := cmp.Diff(map[string]any{"id": id, "object": "api_key", "deleted": true}, resp.JSON(t)); resp.Status != 200 || diff != "" {
					t.Fatalf("delete: %d %s", resp.Status, diff)
				}
				for _, r := range []struct{ method, path string }{{"GET", "/api_keys/" + id}, {"GET", "/api_keys/" + id + "/secret"}, {"DELETE", "/api_keys/" + id}} {
					if resp := e.Do(t, r.method, base+r.path, e.AdminKey, nil); resp.Status != 404 || clerkCode(t, resp) != "resource_not_found" {
						t.Fatalf("%s %s after delete: %d %s", r.method, r.path, resp.Status, resp.Body)
					}
				}
			})
		}
	})
}

func TestAPIKeyListPagesFiltersAndHidesInvalidKeys(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		var made []string // oldest first
		for i, body := range []map[string]any{
			{"name": "alpha key", "subject": alice},
			{"name": "beta key", "subject": alice, "seconds_until_expiration": 60},
			{"name": "gamma key", "subject": alice},
			{"name": "delta key", "subject": alice, "type": "service_key"},
			{"name": "bob's key", "subject": bob},
		} {
			made = append(made, createAPIKey(t, e, "/clerk", body)["id"].(string))
			if i < 4 {
				e.Clock.Advance(time.Second)
			}
		}
		alpha, beta, gamma, delta := made[0], made[1], made[2], made[3]
		e.Do(t, "POST", "/clerk/api_keys/"+gamma+"/revoke", e.AdminKey, map[string]any{})
		e.Clock.Advance(2 * time.Minute) // beta expires

		list := func(q url.Values) ([]string, float64) {
			return ids(t, e.Do(t, "GET", "/clerk/api_keys?"+q.Encode(), e.AdminKey, nil))
		}
		for _, tc := range []struct {
			name  string
			q     url.Values
			want  []string
			total float64
		}{
			{"valid keys of the subject, newest first", url.Values{"subject": {alice}}, []string{alpha}, 1},
			{"include_invalid adds revoked and expired keys", url.Values{"subject": {alice}, "include_invalid": {"true"}}, []string{gamma, beta, alpha}, 3},
			{"include_invalid=false is the default", url.Values{"subject": {alice}, "include_invalid": {"false"}}, []string{alpha}, 1},
			{"limit and offset page", url.Values{"subject": {alice}, "include_invalid": {"true"}, "limit": {"1"}, "offset": {"1"}}, []string{beta}, 3},
			{"offset past the end", url.Values{"subject": {alice}, "offset": {"5"}}, nil, 1},
			{"another type", url.Values{"subject": {alice}, "type": {"service_key"}}, []string{delta}, 1},
			{"query matches a name part, any case", url.Values{"subject": {alice}, "include_invalid": {"true"}, "query": {"BETA"}}, []string{beta}, 1},
			{"query pages after filtering", url.Values{"subject": {alice}, "include_invalid": {"true"}, "query": {"key"}, "limit": {"2"}, "offset": {"1"}}, []string{beta, alpha}, 3},
			{"a subject with no keys", url.Values{"subject": {acmeOrg}}, nil, 0},
		} {
			got, total := list(tc.q)
			if !cmp.Equal(got, tc.want) || total != tc.total {
				t.Errorf("%s: got %v (total %v), want %v (total %v)", tc.name, got, total, tc.want, tc.total)
			}
		}
		got := e.Do(t, "GET", "/clerk/api_keys?include_invalid=true&subject="+alice, e.AdminKey, nil).JSON(t)["data"].([]any)
		if g, b := got[0].(map[string]any), got[1].(map[string]any); g["revoked"] != true || g["expired"] != false || b["expired"] != true || b["revoked"] != false {
			t.Fatalf("states: gamma %v, beta %v", g, b)
		}
	})
}

func TestAPIKeyBadInputGetsClerksErrorAndChangesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		id := createAPIKey(t, e, "/clerk", map[string]any{"name": "kept", "subject": alice})["id"].(string)
		before := snapshot(t, e)
		long := strings.Repeat("d", 256)
		for _, tc := range []struct {
			name         string
			method, path string
			body         any
			status       int
			code, param  string
		}{
			{"create without a name", "POST", "/clerk/api_keys", map[string]any{"subject": alice}, 422, "form_param_missing", "name"},
			{"create with a two-character name", "POST", "/clerk/api_keys", map[string]any{"name": "ab", "subject": alice}, 422, "form_param_value_invalid", "name"},
			{"create with a padded name", "POST", "/clerk/api_keys", map[string]any{"name": " key ", "subject": alice}, 422, "form_param_value_invalid", "name"},
			{"create without a subject", "POST", "/clerk/api_keys", map[string]any{"name": "key"}, 422, "form_param_missing", "subject"},
			{"create for a malformed subject", "POST", "/clerk/api_keys", map[string]any{"name": "key", "subject": "user_1"}, 422, "form_param_value_invalid", "subject"},
			{"create for an unknown machine", "POST", "/clerk/api_keys", map[string]any{"name": "key", "subject": "mch_2xhFjEI5X2qWRvtV13BzSj8H6Dk"}, 422, "form_param_value_invalid", "subject"},
			{"create with a long description", "POST", "/clerk/api_keys", map[string]any{"name": "key", "subject": alice, "description": long}, 422, "form_param_max_length_exceeded", "description"},
			{"create with a two-character type", "POST", "/clerk/api_keys", map[string]any{"name": "key", "subject": alice, "type": "ab"}, 422, "form_param_value_invalid", "type"},
			{"create with created_by not a user", "POST", "/clerk/api_keys", map[string]any{"name": "key", "subject": alice, "created_by": acmeOrg}, 422, "form_param_value_invalid", "created_by"},
			{"create expiring in 0 seconds", "POST", "/clerk/api_keys", map[string]any{"name": "key", "subject": alice, "seconds_until_expiration": 0}, 422, "form_param_value_invalid", "seconds_until_expiration"},
			{"create with array claims", "POST", "/clerk/api_keys", map[string]any{"name": "key", "subject": alice, "claims": []int{1}}, 422, "form_param_type_invalid", "claims"},
			{"create with numeric scopes", "POST", "/clerk/api_keys", map[string]any{"name": "key", "subject": alice, "scopes": []int{1}}, 422, "form_param_type_invalid", "scopes"},
			{"create with an unknown field", "POST", "/clerk/api_keys", map[string]any{"name": "key", "subject": alice, "secret": "mine"}, 422, "form_param_unknown", "secret"},
			{"create with a broken body", "POST", "/clerk/api_keys", `{"name":`, 400, "request_body_invalid", ""},
			{"list without a subject", "GET", "/clerk/api_keys", nil, 422, "form_param_missing", "subject"},
			{"list with include_invalid=yes", "GET", "/clerk/api_keys?subject=" + alice + "&include_invalid=yes", nil, 422, "form_param_value_invalid", "include_invalid"},
			{"list with limit 101", "GET", "/clerk/api_keys?subject=" + alice + "&limit=101", nil, 422, "form_param_value_invalid", "limit"},
			{"update with a malformed subject", "PATCH", "/clerk/api_keys/" + id, map[string]any{"subject": "org_x"}, 422, "form_param_value_invalid", "subject"},
			{"update expiring in -1 seconds", "PATCH", "/clerk/api_keys/" + id, map[string]any{"seconds_until_expiration": -1}, 422, "form_param_value_invalid", "seconds_until_expiration"},
			{"update an unknown key", "PATCH", "/clerk/api_keys/ak_00000000000000000000000000000000", map[string]any{"scopes": []string{}}, 404, "resource_not_found", ""},
			{"get a malformed id", "GET", "/clerk/api_keys/nope", nil, 404, "resource_not_found", ""},
			{"revoke with a numeric reason", "POST", "/clerk/api_keys/" + id + "/revoke", map[string]any{"revocation_reason": 1}, 422, "form_param_type_invalid", "revocation_reason"},
			{"verify without a secret", "POST", "/clerk/api_keys/verify", map[string]any{}, 422, "form_param_missing", "secret"},
		} {
			resp := e.Do(t, tc.method, tc.path, e.AdminKey, tc.body)
			if resp.Status != tc.status || clerkCode(t, resp) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, resp.Status, resp.Body, tc.status, tc.code)
				continue
			}
			if tc.param != "" {
				errs := resp.JSON(t)["errors"].([]any)
				if meta, _ := errs[0].(map[string]any)["meta"].(map[string]any); meta["param_name"] != tc.param {
					t.Errorf("%s: meta %v, want param_name %s", tc.name, meta, tc.param)
				}
			}
		}
		if diff := cmp.Diff(before, snapshot(t, e)); diff != "" {
			t.Fatalf("a refused request changed the store (-before +after):\n%s", diff)
		}
	})
}

func TestAPIKeysAreTheirInstanceAdminsOnly(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		k := createAPIKey(t, e, "/clerk", map[string]any{"name": "mine", "subject": alice})
		id, secret := k["id"].(string), k["secret"].(string)
		_, otherAdmin := e.NewInstance(t, "other")
		_, machineKey := createMachine(t, e, e.AdminKey, map[string]any{"name": "worker"})

		// Another instance's admin finds nothing, whatever it tries.
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/clerk/api_keys/" + id, nil},
			{"GET", "/clerk/api_keys/" + id + "/secret", nil},
			{"PATCH", "/clerk/api_keys/" + id, map[string]any{"scopes": []string{"x"}}},
			{"POST", "/clerk/api_keys/" + id + "/revoke", map[string]any{}},
			{"DELETE", "/clerk/api_keys/" + id, nil},
			{"POST", "/clerk/api_keys/verify", map[string]string{"secret": secret}},
		} {
			if resp := e.Do(t, r.method, r.path, otherAdmin, r.body); resp.Status != 404 || clerkCode(t, resp) != "resource_not_found" {
				t.Errorf("other instance %s %s: %d %s, want 404", r.method, r.path, resp.Status, resp.Body)
			}
		}
		if got, total := ids(t, e.Do(t, "GET", "/clerk/api_keys?subject="+alice, otherAdmin, nil)); len(got) != 0 || total != 0 {
			t.Errorf("another instance lists %v", got)
		}
		// A machine key manages no API keys and verifies none.
		if resp := e.Do(t, "GET", "/clerk/api_keys?subject="+alice, machineKey, nil); resp.Status != 403 || clerkCode(t, resp) != "authorization_invalid" {
			t.Errorf("machine key lists API keys: %d %s", resp.Status, resp.Body)
		}
		if resp := e.Do(t, "POST", "/clerk/api_keys/verify", machineKey, map[string]string{"secret": secret}); resp.Status != 404 {
			t.Errorf("machine key verifies an API key: %d %s", resp.Status, resp.Body)
		}
		// An API key is what a user's client presents to the application;
		// it is no caller of keyward.
		if resp := e.Do(t, "GET", "/clerk/api_keys?subject="+alice, secret, nil); resp.Status != 401 {
			t.Errorf("an API key authenticates to keyward: %d %s", resp.Status, resp.Body)
		}
		// Nothing changed for the owner.
		if resp := e.Do(t, "POST", "/clerk/api_keys/verify", e.AdminKey, map[string]string{"secret": secret}); resp.Status != 200 || resp.JSON(t)["revoked"] != false {
			t.Fatalf("owner verify: %d %s", resp.Status, resp.Body)
		}
	})
}

// TestAPIKeysVerifyThroughTheNativeEndpoints: /v1/verify and
// /oauth/introspect treat API keys like every other kind, and an expired
// key fails at its exact expiry.
func TestAPIKeysVerifyThroughTheNativeEndpoints(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		k := createAPIKey(t, e, "/clerk", map[string]any{"name": "svc", "subject": acmeOrg, "scopes": []string{"read"}, "claims": map[string]int{"n": 1}, "seconds_until_expiration": 60})
		id, secret := k["id"].(string), k["secret"].(string)

		verify := func(body map[string]any) map[string]any {
			resp := e.Do(t, "POST", "/v1/verify", e.AdminKey, body)
			if resp.Status != 200 {
				t.Fatalf("/v1/verify: %d %s", resp.Status, resp.Body)
			}
			return resp.JSON(t)
		}
		got := verify(map[string]any{"token": secret, "required_scopes": []string{"read"}})
		if got["valid"] != true || got["kind"] != "api_key" || got["id"] != id || got["subject"] != acmeOrg || !cmp.Equal(got["claims"], map[string]any{"n": float64(1)}) {
			t.Fatalf("/v1/verify = %v", got)
		}
		if got := verify(map[string]any{"token": secret, "required_scopes": []string{"write"}}); got["valid"] != false || got["code"] != "insufficient_scope" {
			t.Fatalf("missing scope: %v", got)
		}
		form := url.Values{"token": {secret}}.Encode()
		resp := e.DoWith(t, "POST", "/oauth/introspect", form, http.Header{"Authorization": {"Bearer " + e.AdminKey}, "Content-Type": {"application/x-www-form-urlencoded"}})
		if got := resp.JSON(t); got["active"] != true || got["kind"] != "api_key" || got["sub"] != acmeOrg || got["scope"] != "read" {
			t.Fatalf("introspect = %s", resp.Body)
		}

		e.Clock.Advance(60 * time.Second)
		if got := verify(map[string]any{"token": secret}); got["valid"] != false || got["code"] != "expired" {
			t.Fatalf("at its expiry: %v", got)
		}
		resp = e.DoWith(t, "POST", "/oauth/introspect", form, http.Header{"Authorization": {"Bearer " + e.AdminKey}, "Content-Type": {"application/x-www-form-urlencoded"}})
		if string(resp.Body) != `{"active":false}`+"\n" && string(resp.Body) != `{"active":false}` {
			t.Fatalf("introspect an expired key = %s", resp.Body)
		}
		if resp := e.Do(t, "POST", "/clerk/api_keys/verify", e.AdminKey, map[string]string{"secret": secret}); resp.Status != 404 {
			t.Fatalf("Clerk verify of an expired key: %d %s", resp.Status, resp.Body)
		}
		// A machine secret key is not an API key, though both start ak_.
		_, machineKey := createMachine(t, e, e.AdminKey, map[string]any{"name": "worker"})
		if resp := e.Do(t, "POST", "/clerk/api_keys/verify", e.AdminKey, map[string]string{"secret": machineKey}); resp.Status != 404 {
			t.Fatalf("a machine key verifies as an API key: %d %s", resp.Status, resp.Body)
		}
	})
}

// TestUnversionedPathsServeWhatTheJSSDKCallsThere: @clerk/backend calls
// M2M tokens and API keys without /v1; everything else keeps /v1, and an
// unknown path answers Clerk's JSON 404 rather than a plain-text one.
func TestUnversionedPathsServeWhatTheJSSDKCallsThere(t *testing.T) {
	e := start(t, testkit.OpenSQLite(t))
	f := newFleet(t, e)
	resp := e.Do(t, "POST", "/clerk/m2m_tokens", f.minterKey, map[string]any{})
	if resp.Status != 201 {
		t.Fatalf("POST /clerk/m2m_tokens: %d %s", resp.Status, resp.Body)
	}
	tok := resp.JSON(t)
	e.Remember(tok["token"].(string))
	if resp := e.Do(t, "POST", "/clerk/m2m_tokens/verify", f.targetKey, map[string]any{"token": tok["token"]}); resp.Status != 200 {
		t.Fatalf("POST /clerk/m2m_tokens/verify: %d %s", resp.Status, resp.Body)
	}
	if resp := e.Do(t, "GET", "/clerk/m2m_tokens?subject="+f.minter, e.AdminKey, nil); resp.Status != 200 || resp.JSON(t)["total_count"] != float64(1) {
		t.Fatalf("GET /clerk/m2m_tokens: %d %s", resp.Status, resp.Body)
	}
	if resp := e.Do(t, "POST", fmt.Sprintf("/clerk/m2m_tokens/%s/revoke", tok["id"]), f.minterKey, map[string]any{}); resp.Status != 200 {
		t.Fatalf("revoke: %d %s", resp.Status, resp.Body)
	}
	for _, path := range []string{"/clerk/machines", "/clerk/jwks", "/clerk/nothing", "/clerk/v1/nothing"} {
		resp := e.Do(t, "GET", path, e.AdminKey, nil)
		if resp.Status != 404 || clerkCode(t, resp) != "resource_not_found" {
			t.Errorf("GET %s: %d %s, want Clerk's 404 (the SDK calls it under /v1)", path, resp.Status, resp.Body)
		}
	}
	if resp := e.Do(t, "GET", "/clerk/v1/jwks", e.AdminKey, nil); resp.Status != 200 {
		t.Fatalf("GET /clerk/v1/jwks: %d %s", resp.Status, resp.Body)
	}
}

func TestAMachinesAPIKeysAreRevokedWithIt(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		machine, _ := createMachine(t, e, e.AdminKey, map[string]any{"name": "owner"})
		k := createAPIKey(t, e, "/clerk/v1", map[string]any{"name": "machine key", "subject": machine})
		if resp := e.Do(t, "POST", "/clerk/v1/api_keys/verify", e.AdminKey, map[string]any{"secret": k["secret"]}); resp.Status != 200 {
			t.Fatalf("verify before the delete: %d %s", resp.Status, resp.Body)
		}
		if resp := e.Do(t, "DELETE", "/clerk/v1/machines/"+machine, e.AdminKey, nil); resp.Status != 200 {
			t.Fatalf("delete machine: %d %s", resp.Status, resp.Body)
		}
		if resp := e.Do(t, "POST", "/clerk/v1/api_keys/verify", e.AdminKey, map[string]any{"secret": k["secret"]}); resp.Status != 404 {
			t.Fatalf("verify after the machine's delete: %d %s, want 404", resp.Status, resp.Body)
		}
		got := e.Do(t, "GET", "/clerk/v1/api_keys/"+k["id"].(string), e.AdminKey, nil).JSON(t)
		if got["revoked"] != true || got["revocation_reason"] != "machine deleted" {
			t.Fatalf("the key after its machine's delete: %v", got)
		}
	})
}
