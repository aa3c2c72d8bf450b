package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// The controls at verify time through the native API: a key created with
// meta, permissions, a role, a named limit and credits; /v1/verify answers
// each control's outcome; /v1/authz enforces them.
func TestVerifyControlsOverHTTP(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		if r := e.Do(t, "POST", "/v1/roles", e.AdminKey, map[string]any{"name": "dns-admin", "permissions": []string{"dns.write"}}); r.Status != http.StatusCreated {
			t.Fatalf("create role: %d %s", r.Status, r.Body)
		}
		created := e.Do(t, "POST", "/v1/api_keys", e.AdminKey, map[string]any{
			"name": "metered", "subject": permAPIKeySubject,
			"meta": map[string]any{"plan": "pro"}, "permissions": []string{"dns.read"}, "roles": []string{"dns-admin"},
			"ratelimits": []map[string]any{{"name": "burst", "limit": 2, "duration": 60000, "algorithm": "fixed", "auto_apply": true}},
			"credits":    map[string]any{"remaining": 3},
		})
		key := created.JSON(t)
		secret, _ := key["secret"].(string)
		id, _ := key["id"].(string)
		if created.Status != http.StatusCreated || secret == "" {
			t.Fatalf("create: %d %s", created.Status, created.Body)
		}
		e.Remember(secret)
		if m, _ := key["meta"].(map[string]any); m["plan"] != "pro" {
			t.Fatalf("create answer meta: %s", created.Body)
		}
		verify := func(body map[string]any) map[string]any {
			t.Helper()
			body["token"] = secret
			r := e.Do(t, "POST", "/v1/verify", e.AdminKey, body)
			if r.Status != http.StatusOK {
				t.Fatalf("verify %v: %d %s", body, r.Status, r.Body)
			}
			return r.JSON(t)
		}

		v := verify(map[string]any{"permissions": "dns.read AND dns.write", "credits": map[string]any{"cost": 0}})
		if v["valid"] != true || v["meta"].(map[string]any)["plan"] != "pro" || v["credits"].(map[string]any)["remaining"] != float64(3) {
			t.Fatalf("valid with a role: %v", v)
		}
		if l := v["ratelimits"].([]any)[0].(map[string]any); l["name"] != "burst" || l["remaining"] != float64(1) {
			t.Fatalf("limit state: %v", l)
		}
		v = verify(map[string]any{"permissions": "dns.read AND billing.read"})
		if v["code"] != "insufficient_permissions" || !slices.Equal(anyStrings(v["missing_permissions"]), []string{"billing.read"}) {
			t.Fatalf("insufficient_permissions: %v", v)
		}
		v = verify(map[string]any{})
		if v["valid"] != true || v["credits"].(map[string]any)["remaining"] != float64(2) {
			t.Fatalf("second admitted call: %v", v)
		}
		if v = verify(map[string]any{}); v["code"] != "rate_limited" {
			t.Fatalf("third call in the minute: %v", v)
		}
		if v = verify(map[string]any{"ratelimits": []any{}, "credits": map[string]any{"cost": 5}}); v["code"] != "usage_exceeded" {
			t.Fatalf("cost 5 of 2: %v", v)
		}

		// Bad input is a 400 naming the param, and nothing is written.
		for _, c := range []struct {
			name, method, path, param string
			body                      map[string]any
		}{
			{"bad_query", "POST", "/v1/verify", "permissions", map[string]any{"token": secret, "permissions": "a AND"}},
			{"meta_too_big", "PATCH", "/v1/credentials/" + id + "/controls", "meta", map[string]any{"meta": map[string]string{"x": strings.Repeat("y", 5000)}}},
			{"bad_permission", "PATCH", "/v1/credentials/" + id + "/controls", "permissions[0]", map[string]any{"permissions": []string{"has space"}}},
			{"unknown_role", "PATCH", "/v1/credentials/" + id + "/controls", "roles[0]", map[string]any{"roles": []string{"ghost"}}},
			{"bad_limit", "PATCH", "/v1/credentials/" + id + "/controls", "ratelimits[0].algorithm", map[string]any{"ratelimits": []map[string]any{{"name": "x", "limit": 1, "duration": 1000, "algorithm": "leaky"}}}},
			{"bad_credits_op", "POST", "/v1/credentials/" + id + "/credits", "op", map[string]any{"op": "double", "amount": 1}},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.Do(t, c.method, c.path, e.AdminKey, c.body)
				errObj, _ := r.JSON(t)["error"].(map[string]any)
				if r.Status != http.StatusBadRequest || errObj["param"] != c.param {
					t.Fatalf("%d %s, want 400 naming %s", r.Status, r.Body, c.param)
				}
			})
		}
		got := e.Do(t, "GET", "/v1/credentials/"+id+"/controls", e.AdminKey, nil).JSON(t)
		if got["meta"].(map[string]any)["plan"] != "pro" || len(got["ratelimits"].([]any)) != 1 || len(got["roles"].([]any)) != 1 {
			t.Fatalf("controls after refused changes: %v", got)
		}

		// Another tenant's credential is a 404.
		_, otherKey := e.NewInstance(t, "other")
		if r := e.Do(t, "PATCH", "/v1/credentials/"+id+"/controls", otherKey, map[string]any{"meta": map[string]string{"a": "b"}}); r.Status != http.StatusNotFound {
			t.Fatalf("another tenant's credential: %d %s", r.Status, r.Body)
		}

		// Lists filter by meta.
		list := e.Do(t, "GET", "/v1/api_keys?subject="+permAPIKeySubject+"&meta.plan=pro", e.AdminKey, nil).JSON(t)
		none := e.Do(t, "GET", "/v1/api_keys?subject="+permAPIKeySubject+"&meta.plan=free", e.AdminKey, nil).JSON(t)
		if len(list["data"].([]any)) != 1 || len(none["data"].([]any)) != 0 {
			t.Fatalf("meta filter: %v / %v", list, none)
		}

		// Credits set again; /v1/authz enforces permissions and credits.
		if r := e.Do(t, "POST", "/v1/credentials/"+id+"/credits", e.AdminKey, map[string]any{"op": "set", "amount": 1}); r.Status != http.StatusOK || r.JSON(t)["remaining"] != float64(1) {
			t.Fatalf("set credits: %d %s", r.Status, r.Body)
		}
		if r := e.Do(t, "PATCH", "/v1/credentials/"+id+"/controls", e.AdminKey, map[string]any{"ratelimits": nil}); r.Status != http.StatusOK {
			t.Fatalf("drop limits: %d %s", r.Status, r.Body)
		}
		authz := func(perms string) apitest.Response {
			h := http.Header{"Authorization": {"Bearer " + secret}}
			if perms != "" {
				h.Set("X-Keyward-Required-Permissions", perms)
			}
			return e.DoWith(t, "GET", "/v1/authz", nil, h)
		}
		if r := authz("billing.read"); r.Status != http.StatusForbidden || r.Header.Get("X-Keyward-Reason") != "insufficient_permissions" || r.Header.Get("X-Keyward-Missing-Permissions") != "billing.read" {
			t.Fatalf("authz without the permission: %d %v", r.Status, r.Header)
		}
		if r := authz("dns.write"); r.Status != http.StatusOK {
			t.Fatalf("authz with the permission: %d %s", r.Status, r.Body)
		}
		if r := authz(""); r.Status != http.StatusTooManyRequests || r.Header.Get("X-Keyward-Reason") != "usage_exceeded" {
			t.Fatalf("authz with no credits left: %d %v", r.Status, r.Header)
		}
	})
}

func anyStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestIdentitiesOverHTTP(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		created := e.Do(t, "POST", "/v1/identities", e.AdminKey, map[string]any{"external_id": "customer-7", "meta": map[string]string{"tier": "gold"},
			"ratelimits": []map[string]any{{"name": "calls", "limit": 1, "duration": 60000, "algorithm": "sliding", "auto_apply": true}}})
		ident := created.JSON(t)
		id, _ := ident["id"].(string)
		if created.Status != http.StatusCreated || id == "" {
			t.Fatalf("create identity: %d %s", created.Status, created.Body)
		}
		if r := e.Do(t, "POST", "/v1/identities", e.AdminKey, map[string]any{"external_id": "customer-7"}); r.Status != http.StatusConflict {
			t.Fatalf("a second customer-7: %d %s", r.Status, r.Body)
		}
		k := e.Do(t, "POST", "/v1/api_keys", e.AdminKey, map[string]any{"name": "of the customer", "subject": permAPIKeySubject, "identity_id": id}).JSON(t)
		secret, _ := k["secret"].(string)
		e.Remember(secret)
		v := e.Do(t, "POST", "/v1/verify", e.AdminKey, map[string]any{"token": secret}).JSON(t)
		if v["valid"] != true || v["identity"].(map[string]any)["external_id"] != "customer-7" {
			t.Fatalf("verify: %v", v)
		}
		if v = e.Do(t, "POST", "/v1/verify", e.AdminKey, map[string]any{"token": secret}).JSON(t); v["code"] != "rate_limited" {
			t.Fatalf("the identity's limit: %v", v)
		}
		list := e.Do(t, "GET", "/v1/identities/"+id+"/credentials", e.AdminKey, nil).JSON(t)
		if d := list["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != k["id"] {
			t.Fatalf("credentials: %v", list)
		}
		_, otherKey := e.NewInstance(t, "other")
		for _, m := range []string{"GET", "DELETE"} {
			if r := e.Do(t, m, "/v1/identities/"+id, otherKey, nil); r.Status != http.StatusNotFound {
				t.Fatalf("%s another tenant's identity: %d", m, r.Status)
			}
		}
		if r := e.Do(t, "POST", "/v1/api_keys", otherKey, map[string]any{"name": "sneaky", "subject": permAPIKeySubject, "identity_id": id}); r.Status != http.StatusBadRequest {
			t.Fatalf("linking another tenant's identity: %d %s", r.Status, r.Body)
		}
		del := e.Do(t, "DELETE", "/v1/identities/"+id, e.AdminKey, nil).JSON(t)
		if del["revoked_credentials"] != float64(1) {
			t.Fatalf("delete: %v", del)
		}
		if v = e.Do(t, "POST", "/v1/verify", e.AdminKey, map[string]any{"token": secret}).JSON(t); v["code"] != "revoked" {
			t.Fatalf("after the delete: %v", v)
		}
	})
}
