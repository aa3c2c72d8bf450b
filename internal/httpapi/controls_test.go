package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
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

// A machine's controls: set on its mch_ id, carried by every live key of
// it, owned by the machine (a rotation keeps them, and the old key in its
// grace window spends the same credits), enforced whenever a key
// authenticates, refused with a 429.
func TestMachineControlsHoldItsKeysAsCallers(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		e.Clock.Set(time.Date(2026, 5, 6, 7, 0, 0, 0, time.UTC))
		id, key := nativeMachine(t, e, "metered")
		controls := "/v1/credentials/" + id + "/controls"
		set := e.Do(t, "PATCH", controls, e.AdminKey, map[string]any{
			"meta":       map[string]any{"team": "billing"},
			"ratelimits": []map[string]any{{"name": "burst", "limit": 3, "duration": 60000, "algorithm": "fixed", "auto_apply": true}},
			"credits":    map[string]any{"remaining": 2},
		})
		if set.Status != http.StatusOK || set.JSON(t)["credential_id"] != id || strings.Contains(string(set.Body), key) {
			t.Fatalf("set a machine's controls: %d %s", set.Status, set.Body)
		}
		mint := func(k string, want int) apitest.Response {
			t.Helper()
			r := e.Do(t, "POST", "/clerk/v1/m2m_tokens", k, map[string]any{})
			if r.Status != want {
				t.Fatalf("mint with %s…: %d %s, want %d", k[:8], r.Status, r.Body, want)
			}
			if r.Status == http.StatusCreated {
				e.Remember(r.JSON(t)["token"].(string))
			}
			return r
		}
		mint(key, http.StatusCreated)
		mint(key, http.StatusCreated)
		if r := mint(key, http.StatusTooManyRequests); !strings.Contains(string(r.Body), "credits") {
			t.Fatalf("out of credits: %s", r.Body)
		}
		if got := e.Do(t, "GET", controls, e.AdminKey, nil).JSON(t); got["credits"].(map[string]any)["remaining"] != float64(0) || got["meta"].(map[string]any)["team"] != "billing" {
			t.Fatalf("controls after spending: %v", got)
		}
		if r := e.Do(t, "POST", "/v1/credentials/"+id+"/credits", e.AdminKey, map[string]any{"op": "increment", "amount": 5}); r.Status != http.StatusOK || r.JSON(t)["remaining"] != float64(5) {
			t.Fatalf("top up: %d %s", r.Status, r.Body)
		}

		// A rotation keeps the controls; both keys spend the machine's.
		e.Clock.Advance(time.Minute) // burst's next window
		rotated := e.Do(t, "POST", "/v1/machines/"+id+"/secret_key/rotate", e.AdminKey, map[string]any{"previous_token_ttl": 3600})
		newKey, _ := rotated.JSON(t)["secret_key"].(string)
		if rotated.Status != http.StatusOK || newKey == "" {
			t.Fatalf("rotate: %d %s", rotated.Status, rotated.Body)
		}
		e.Remember(newKey)
		mint(key, http.StatusCreated)
		mint(newKey, http.StatusCreated)
		mint(newKey, http.StatusCreated)
		limited := mint(newKey, http.StatusTooManyRequests) // burst: 3 a minute across both keys
		if limited.Header.Get("Retry-After") == "" {
			t.Fatalf("rate limited without Retry-After: %v", limited.Header)
		}
		if got := e.Do(t, "GET", controls, e.AdminKey, nil).JSON(t); got["credits"].(map[string]any)["remaining"] != float64(2) || len(got["ratelimits"].([]any)) != 1 {
			t.Fatalf("controls after the rotation: %v", got)
		}

		// What a machine's keys cannot use is refused; nothing changes.
		for _, c := range []struct{ param string }{{"permissions"}, {"roles"}, {"identity_id"}} {
			var v any = []string{"x"}
			if c.param == "identity_id" {
				v = "idt_x"
			}
			r := e.Do(t, "PATCH", controls, e.AdminKey, map[string]any{c.param: v, "meta": map[string]any{"team": "changed"}})
			if errObj, _ := r.JSON(t)["error"].(map[string]any); r.Status != http.StatusBadRequest || errObj["param"] != c.param {
				t.Fatalf("%s on a machine: %d %s", c.param, r.Status, r.Body)
			}
		}
		if got := e.Do(t, "GET", controls, e.AdminKey, nil).JSON(t); got["meta"].(map[string]any)["team"] != "billing" {
			t.Fatalf("a refused change wrote: %v", got)
		}

		// Another tenant's machine, and a machine with no such id, are 404s.
		_, otherKey := e.NewInstance(t, "other")
		for _, c := range []struct{ key, path string }{
			{otherKey, controls}, {otherKey, "/v1/credentials/" + id + "/credits"},
			{e.AdminKey, "/v1/credentials/mch_" + strings.Repeat("0", 27) + "/controls"},
		} {
			method, body := "GET", any(nil)
			if strings.HasSuffix(c.path, "/credits") {
				method, body = "POST", map[string]any{"op": "set", "amount": 1}
			}
			if r := e.Do(t, method, c.path, c.key, body); r.Status != http.StatusNotFound {
				t.Fatalf("%s %s: %d %s", method, c.path, r.Status, r.Body)
			}
		}
	})
}

// A machine's controls outlive a key revoked outside a rotation (a leak
// report): they stay readable and changeable, and the next key is held
// to them.
func TestMachineControlsSurviveARevokedKey(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		id, _ := nativeMachine(t, e, "leaky")
		controls := "/v1/credentials/" + id + "/controls"
		setControls(t, e, id, map[string]any{"credits": map[string]any{"remaining": 1}, "meta": map[string]any{"team": "ops"}})
		ctx := context.Background()
		err := e.Store.Update(ctx, func(tx authority.Tx) error {
			keys, err := tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: e.InstanceID, Kind: credential.KindMachineKey, Subject: id})
			if err != nil || len(keys) != 1 {
				return fmt.Errorf("keys %v: %w", keys, err)
			}
			return tx.RevokeCredential(ctx, e.InstanceID, keys[0].ID, e.Clock.Now(), "leaked")
		})
		if err != nil {
			t.Fatal(err)
		}
		// Retention deletes revoked keys, but not the machine's newest one.
		e.Clock.Advance(40 * 24 * time.Hour)
		if _, err := e.Auth.RunJanitor(ctx, authority.Retention{Credentials: 30 * 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		got := e.Do(t, "GET", controls, e.AdminKey, nil)
		if got.Status != http.StatusOK || got.JSON(t)["meta"].(map[string]any)["team"] != "ops" {
			t.Fatalf("controls with the key revoked and retention run: %d %s", got.Status, got.Body)
		}
		rotated := e.Do(t, "POST", "/v1/machines/"+id+"/secret_key/rotate", e.AdminKey, map[string]any{"previous_token_ttl": 0}).JSON(t)
		newKey := rotated["secret_key"].(string)
		e.Remember(newKey)
		if r := e.Do(t, "POST", "/clerk/v1/m2m_tokens", newKey, map[string]any{}); r.Status != http.StatusCreated {
			t.Fatalf("the new key's one credit: %d %s", r.Status, r.Body)
		} else {
			e.Remember(r.JSON(t)["token"].(string))
		}
		if r := e.Do(t, "POST", "/clerk/v1/m2m_tokens", newKey, map[string]any{}); r.Status != http.StatusTooManyRequests {
			t.Fatalf("the new key escaped the machine's credits: %d %s", r.Status, r.Body)
		}
		// The revoked key, no longer the newest, is retention's again.
		e.Clock.Advance(40 * 24 * time.Hour)
		if rep, err := e.Auth.RunJanitor(ctx, authority.Retention{Credentials: 30 * 24 * time.Hour}); err != nil || rep.Credentials == 0 {
			t.Fatalf("retention after the rotation: %+v, %v", rep, err)
		}
	})
}

// A caller a surface refuses (a kind it does not serve, another OAuth
// client's key) spends none of its limits or credits.
func TestARefusedCallerSpendsNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		id, key := nativeMachine(t, e, "wrong-door")
		setControls(t, e, id, map[string]any{"credits": map[string]any{"remaining": 1}})
		for _, c := range []struct {
			name string
			do   func() apitest.Response
		}{
			{"freezer_serves_pats", func() apitest.Response {
				return e.DoWith(t, "GET", "/freezer/v1/clients", nil, http.Header{"X-Auth-Token": {key}})
			}},
			{"freezer_keystone_serves_pats", func() apitest.Response {
				return e.DoWith(t, "POST", "/freezer/identity/v3/auth/tokens", map[string]any{
					"auth": map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": key}}},
				}, http.Header{})
			}},
			{"mist_serves_org_tokens", func() apitest.Response {
				return e.DoWith(t, "GET", "/mist/api/v1/orgs/00000000-0000-4000-8000-000000000000/apitokens", nil, http.Header{"Authorization": {"Token " + key}})
			}},
			{"another_oauth_client", func() apitest.Response {
				h := basicAuth("mch_"+strings.Repeat("1", 27), key)
				h.Set("Content-Type", "application/x-www-form-urlencoded")
				return e.DoWith(t, "POST", "/oauth/token", "grant_type=client_credentials", h)
			}},
		} {
			if r := c.do(); r.Status != http.StatusUnauthorized {
				t.Fatalf("%s: %d %s, want 401", c.name, r.Status, r.Body)
			}
		}
		if got := e.Do(t, "GET", "/v1/credentials/"+id+"/controls", e.AdminKey, nil).JSON(t); got["credits"].(map[string]any)["remaining"] != float64(1) {
			t.Fatalf("refused calls spent credits: %v", got)
		}
	})
}

// A machine's controls need the machines permission too: they can
// throttle every call of its keys.
func TestMachineControlsNeedTheMachinesPermission(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		id, _ := nativeMachine(t, e, "guarded")
		_, narrow := createKey(t, e, e.AdminKey, map[string]any{"name": "controls only", "permissions": []string{"credentials:write", "api_keys:write"}})
		narrowKey := narrow["secret"].(string)
		body := map[string]any{"credits": map[string]any{"remaining": 0}}
		if r := e.Do(t, "PATCH", "/v1/credentials/"+id+"/controls", narrowKey, body); r.Status != http.StatusForbidden {
			t.Fatalf("a machine's controls without machines:write: %d %s", r.Status, r.Body)
		}
		if r := e.Do(t, "GET", "/v1/credentials/"+id+"/controls", narrowKey, nil); r.Status != http.StatusForbidden {
			t.Fatalf("reading them without machines:read: %d %s", r.Status, r.Body)
		}
		created2 := e.Do(t, "POST", "/v1/api_keys", narrowKey, map[string]any{"name": "metered", "subject": permAPIKeySubject})
		if created2.Status != http.StatusCreated {
			t.Fatalf("create an API key: %d %s", created2.Status, created2.Body)
		}
		key := created2.JSON(t)
		e.Remember(key["secret"].(string))
		if r := e.Do(t, "PATCH", "/v1/credentials/"+key["id"].(string)+"/controls", narrowKey, body); r.Status != http.StatusOK {
			t.Fatalf("an API key's controls with credentials:write: %d %s", r.Status, r.Body)
		}
		if r := e.Do(t, "PATCH", "/v1/credentials/"+key["id"].(string)+"/controls", e.AdminKey,
			map[string]any{"ratelimits": []map[string]any{{"name": "org_token_hourly", "limit": 1, "duration": 60000, "algorithm": "fixed"}}}); r.Status != http.StatusBadRequest {
			t.Fatalf("a limit named like Mist's hourly one: %d %s", r.Status, r.Body)
		}
	})
}

// nativeMachine creates a machine through the native API and returns its
// id and secret key.
func nativeMachine(t *testing.T, e *apitest.Env, name string) (string, string) {
	t.Helper()
	r := e.Do(t, "POST", "/v1/machines", e.AdminKey, map[string]any{"name": name})
	created := r.JSON(t)
	id, _ := created["id"].(string)
	key, _ := created["secret_key"].(string)
	if r.Status != http.StatusCreated || id == "" || key == "" {
		t.Fatalf("create machine %s: %d %s", name, r.Status, r.Body)
	}
	e.Remember(key)
	return id, key
}

// setControls sets a credential's (or a machine's) controls as the admin.
func setControls(t *testing.T, e *apitest.Env, id string, body map[string]any) {
	t.Helper()
	if r := e.Do(t, "PATCH", "/v1/credentials/"+id+"/controls", e.AdminKey, body); r.Status != http.StatusOK {
		t.Fatalf("set controls of %s: %d %s", id, r.Status, r.Body)
	}
}
