package httpapi_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func createKey(t *testing.T, e *apitest.Env, creator string, body map[string]any) (apitest.Response, map[string]any) {
	t.Helper()
	resp := e.Do(t, "POST", "/v1/admin_keys", creator, body)
	var out map[string]any
	if resp.Status == http.StatusCreated {
		out = resp.JSON(t)
		e.Remember(out["secret"].(string))
	}
	return resp, out
}

func TestAdminKeyLifecycleShowsTheSecretOnce(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		resp, k := createKey(t, e, e.AdminKey, map[string]any{"name": "protected-api", "permissions": []string{"verify"}})
		if resp.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", resp.Status, resp.Body)
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
		}
		secret := k["secret"].(string)
		if !strings.HasPrefix(secret, "sk_live_") || k["name"] != "protected-api" || k["expires_at"] != nil || k["created_at"] == nil {
			t.Errorf("create response %s", resp.Body)
		}
		if p := k["permissions"].([]any); len(p) != 1 || p[0] != "verify" {
			t.Errorf("permissions %v, want [verify]", p)
		}
		id := k["id"].(string)

		// The key works, is seen as what it is, and its use is recorded.
		caller := e.Do(t, "GET", "/v1/caller", secret, nil).JSON(t)
		if p := caller["permissions"].([]any); caller["credential_id"] != id || len(p) != 1 || p[0] != "verify" {
			t.Errorf("caller %v", caller)
		}
		if err := e.Auth.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := e.Do(t, "GET", "/v1/admin_keys/"+id, e.AdminKey, nil)
		if got.Status != http.StatusOK || got.JSON(t)["last_used_at"] == nil || got.JSON(t)["revoked"] != false {
			t.Errorf("get: %d %s", got.Status, got.Body)
		}
		list := e.Do(t, "GET", "/v1/admin_keys", e.AdminKey, nil)
		data := list.JSON(t)["data"].([]any)
		if len(data) != 2 {
			t.Fatalf("list: %s, want the first key and the new one", list.Body)
		}
		if first := data[0].(map[string]any); first["permissions"].([]any)[0] != "*" {
			t.Errorf("the instance's first key holds %v, want *", first["permissions"])
		}
		for _, r := range []apitest.Response{got, list} {
			if strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), `"secret"`) {
				t.Errorf("a read shows the secret: %s", r.Body)
			}
		}

		revoked := e.Do(t, "POST", "/v1/admin_keys/"+id+"/revoke", e.AdminKey, nil)
		if revoked.Status != http.StatusOK || revoked.JSON(t)["revoked"] != true {
			t.Fatalf("revoke: %d %s", revoked.Status, revoked.Body)
		}
		if r := e.Do(t, "GET", "/v1/caller", secret, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("a revoked key: %d, want 401", r.Status)
		}
		if r := e.Do(t, "POST", "/v1/admin_keys/"+id+"/revoke", e.AdminKey, nil); r.Status != http.StatusNotFound {
			t.Errorf("revoke twice: %d, want 404", r.Status)
		}
		if strings.Contains(e.Logs.String(), secret) {
			t.Error("the secret reached the logs")
		}
	})
}

func TestAdminKeyOfAnotherInstanceIsNotFound(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		_, otherKey := e.NewInstance(t, "other")
		_, k := createKey(t, e, otherKey, map[string]any{"name": "theirs", "permissions": []string{"verify"}})
		for _, r := range []apitest.Response{
			e.Do(t, "GET", "/v1/admin_keys/"+k["id"].(string), e.AdminKey, nil),
			e.Do(t, "POST", "/v1/admin_keys/"+k["id"].(string)+"/revoke", e.AdminKey, nil),
		} {
			if r.Status != http.StatusNotFound {
				t.Errorf("another instance's key: %d %s, want 404", r.Status, r.Body)
			}
		}
	})
}

func TestAdminKeyCreateRefusals(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		_, limited := createKey(t, e, e.AdminKey, map[string]any{"name": "limited", "permissions": []string{"admin_keys:write", "machines:read"}})
		expiry := e.Clock.Now().Add(24 * time.Hour).UTC()
		_, expiring := createKey(t, e, e.AdminKey, map[string]any{"name": "expiring", "permissions": []string{"*"}, "expires_at": expiry.Format(time.RFC3339)})
		cases := []struct {
			name    string
			creator string
			body    map[string]any
			status  int
			param   string
		}{
			{"a permission the creator lacks", limited["secret"].(string), map[string]any{"name": "x", "permissions": []string{"machines:write"}}, 403, ""},
			{"every permission from a limited key", limited["secret"].(string), map[string]any{"name": "x", "permissions": []string{"*"}}, 403, ""},
			{"no expiry from an expiring key", expiring["secret"].(string), map[string]any{"name": "x", "permissions": []string{"verify"}}, 403, ""},
			{"a later expiry than the creator's", expiring["secret"].(string), map[string]any{"name": "x", "permissions": []string{"verify"}, "expires_at": expiry.Add(time.Second).Format(time.RFC3339)}, 403, ""},
			{"an unknown permission", e.AdminKey, map[string]any{"name": "x", "permissions": []string{"machines:admin"}}, 400, "permissions"},
			{"no permissions", e.AdminKey, map[string]any{"name": "x", "permissions": []string{}}, 400, "permissions"},
			{"no name", e.AdminKey, map[string]any{"permissions": []string{"verify"}}, 400, "name"},
			{"an expiry in the past", e.AdminKey, map[string]any{"name": "x", "permissions": []string{"verify"}, "expires_at": e.Clock.Now().Add(-time.Minute).Format(time.RFC3339)}, 400, "expires_at"},
			{"an expiry that is not RFC 3339", e.AdminKey, map[string]any{"name": "x", "permissions": []string{"verify"}, "expires_at": "tomorrow"}, 400, "expires_at"},
		}
		for _, tc := range cases {
			before := digests(t, s)
			resp := e.Do(t, "POST", "/v1/admin_keys", tc.creator, tc.body)
			if resp.Status != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.name, resp.Status, resp.Body, tc.status)
				continue
			}
			if p := resp.JSON(t)["error"].(map[string]any)["param"]; tc.param != "" && p != tc.param {
				t.Errorf("%s: param %v, want %s", tc.name, p, tc.param)
			}
			if !maps.Equal(before, digests(t, s)) {
				t.Errorf("%s: the refused create wrote to the store", tc.name)
			}
		}

		// Within the creator's bounds it works.
		if r, _ := createKey(t, e, limited["secret"].(string), map[string]any{"name": "reader", "permissions": []string{"machines:read"}}); r.Status != http.StatusCreated {
			t.Errorf("a subset: %d %s", r.Status, r.Body)
		}
		if r, _ := createKey(t, e, expiring["secret"].(string), map[string]any{"name": "shorter", "permissions": []string{"verify"}, "expires_at": expiry.Format(time.RFC3339)}); r.Status != http.StatusCreated {
			t.Errorf("the creator's own expiry: %d %s", r.Status, r.Body)
		}
		// A limited key cannot revoke a stronger one.
		if r := e.Do(t, "POST", "/v1/admin_keys/"+expiring["id"].(string)+"/revoke", limited["secret"].(string), nil); r.Status != http.StatusForbidden {
			t.Errorf("revoke a stronger key: %d %s, want 403", r.Status, r.Body)
		}
		// At its expiry a key stops authenticating.
		e.Clock.Set(expiry)
		if r := e.Do(t, "GET", "/v1/caller", expiring["secret"].(string), nil); r.Status != http.StatusUnauthorized {
			t.Errorf("an expired key: %d, want 401", r.Status)
		}
	})
}

// A key made before permissions existed has no attributes and keeps every
// right.
func TestAnAdminKeyWithoutAttributesHoldsEverything(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		id := e.Do(t, "GET", "/v1/caller", e.AdminKey, nil).JSON(t)["credential_id"].(string)
		ctx := context.Background()
		err := s.Update(ctx, func(tx authority.Tx) error {
			return tx.UpdateCredentialAttrs(ctx, e.InstanceID, id, nil, e.Clock.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		fresh := apitest.Start(t, s) // a node with a cold cache
		resp := fresh.Do(t, "GET", "/v1/caller", e.AdminKey, nil)
		if p, _ := resp.JSON(t)["permissions"].([]any); len(p) != 1 || p[0] != "*" {
			t.Fatalf("a key without attributes: %s, want permissions [*]", resp.Body)
		}
		if r := fresh.Do(t, "GET", "/v1/audit_events", e.AdminKey, nil); r.Status != http.StatusOK {
			t.Errorf("a key without attributes reading the audit log: %d", r.Status)
		}
	})
}

// A verify key is what a protected API holds: it verifies every kind,
// PATs and org tokens included, and can do nothing else.
func TestAVerifyKeyVerifiesEveryKindAndNothingElse(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		_, k := createKey(t, e, e.AdminKey, map[string]any{"name": "api", "permissions": []string{"verify"}})
		verifyKey := k["secret"].(string)
		pat := e.DoWith(t, "POST", "/spatio/v1/tokens", map[string]any{"name": "laptop"},
			http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {"alice"}}).JSON(t)["token"].(string)
		org := e.Do(t, "POST", "/v1/organizations", e.AdminKey, map[string]string{"slug": "acme", "name": "Acme"}).JSON(t)["id"].(string)
		orgTok := e.DoWith(t, "POST", "/mist/api/v1/orgs/"+org+"/apitokens", map[string]any{"name": "ci", "privileges": []map[string]string{{"scope": "org", "role": "read"}}},
			http.Header{"Authorization": {"Token " + e.AdminKey}}).JSON(t)["key"].(string)
		e.Remember(pat, orgTok)
		for name, tok := range map[string]string{"PAT": pat, "org token": orgTok} {
			r := e.Do(t, "POST", "/v1/verify", verifyKey, map[string]any{"token": tok})
			if r.Status != http.StatusOK || r.JSON(t)["valid"] != true {
				t.Errorf("verify a %s with a verify key: %d %s", name, r.Status, r.Body)
			}
		}
		_, machinesOnly := createKey(t, e, e.AdminKey, map[string]any{"name": "ops", "permissions": []string{"machines:write"}})
		if r := e.Do(t, "POST", "/v1/verify", machinesOnly["secret"].(string), map[string]any{"token": pat}); r.Status != http.StatusForbidden {
			t.Errorf("verify without the verify permission: %d %s, want 403", r.Status, r.Body)
		}
		for _, probe := range []struct{ method, path string }{
			{"GET", "/clerk/v1/machines"}, {"POST", "/v1/admin_keys"}, {"GET", "/v1/audit_events"}, {"GET", "/v1/instance"},
		} {
			if r := e.Do(t, probe.method, probe.path, verifyKey, json.RawMessage(`{"name":"x","permissions":["verify"]}`)); r.Status != http.StatusForbidden {
				t.Errorf("%s %s with a verify key: %d, want 403", probe.method, probe.path, r.Status)
			}
		}
	})
}
