package spatio_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

const base = "/spatio/v1"

// Users of the fixture workspace "eng" of organization "acme".
const (
	owner  = "olga"  // owner
	admin  = "adam"  // admin
	alice  = "alice" // member
	bob    = "bob"   // member
	nobody = "nina"  // not a member
)

// env is a server with organization acme, its workspace eng (owner olga,
// admin adam, members alice and bob), and a second workspace ops in the
// same organization where alice is also a member. Every response other
// than a create response is kept so the test can scan it for secrets.
type env struct {
	*apitest.Env
	org, ws, ops string // ids
	seen         *[]apitest.Response
}

func start(t *testing.T, store *sqlstore.Store) env {
	t.Helper()
	e := env{Env: apitest.Start(t, store), seen: new([]apitest.Response)}
	e.org = e.native(t, "POST", "/v1/organizations", map[string]string{"slug": "acme", "name": "Acme"}, http.StatusCreated)["id"].(string)
	e.ws = e.native(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "Engineering"}, http.StatusCreated)["id"].(string)
	e.ops = e.native(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "ops", "name": "Operations"}, http.StatusCreated)["id"].(string)
	for user, role := range map[string]string{owner: "owner", admin: "admin", alice: "member", bob: "member"} {
		e.native(t, "PUT", "/v1/organizations/acme/workspaces/eng/members/"+user, map[string]string{"role": role}, http.StatusOK)
	}
	e.native(t, "PUT", "/v1/organizations/acme/workspaces/ops/members/"+alice, map[string]string{"role": "member"}, http.StatusOK)
	return e
}

// native calls the native API with the admin key and wants status.
func (e env) native(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	resp := e.Do(t, method, path, e.AdminKey, body)
	if resp.Status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.Status, resp.Body, want)
	}
	if want == http.StatusNoContent {
		return nil
	}
	return resp.JSON(t)
}

// as is the admin key acting for user.
func (e env) as(user string) http.Header {
	return http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {user}}
}

// pat is a personal access token acting as its own user.
func pat(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// do calls the Spatio surface and keeps the response for the leak scan.
func (e env) do(t *testing.T, method, path string, h http.Header, body any) apitest.Response {
	t.Helper()
	resp := e.DoWith(t, method, base+path, body, h)
	*e.seen = append(*e.seen, resp)
	return resp
}

// create makes a token and returns the create response (not kept for the
// leak scan: it is the one place the token may appear).
func (e env) create(t *testing.T, path string, h http.Header, body any) map[string]any {
	t.Helper()
	resp := e.DoWith(t, "POST", base+path, body, h)
	if resp.Status != http.StatusCreated {
		t.Fatalf("create at %s: %d %s", path, resp.Status, resp.Body)
	}
	out := resp.JSON(t)
	tok, _ := out["token"].(string)
	if tok == "" {
		t.Fatalf("create response without a token: %s", resp.Body)
	}
	e.Remember(tok)
	return out
}

func wsPath(org, ws string) string { return "/organizations/" + org + "/workspaces/" + ws + "/tokens" }

// verify asks /v1/verify about token with the admin key.
func (e env) verify(t *testing.T, token string, required ...string) map[string]any {
	t.Helper()
	body := map[string]any{"token": token}
	if required != nil {
		body["required_scopes"] = required
	}
	resp := e.Do(t, "POST", "/v1/verify", e.AdminKey, body)
	*e.seen = append(*e.seen, resp)
	if resp.Status != http.StatusOK {
		t.Fatalf("verify: %d %s", resp.Status, resp.Body)
	}
	return resp.JSON(t)
}

func (e env) code(t *testing.T, token string, required ...string) string {
	t.Helper()
	return e.verify(t, token, required...)["code"].(string)
}

// wantError checks a Spatio error: status and the {error, code} envelope.
func wantError(t *testing.T, resp apitest.Response, status int, code string) {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("%d %s, want %d", resp.Status, resp.Body, status)
	}
	body := resp.JSON(t)
	if msg, _ := body["error"].(string); msg == "" || body["code"] != code || len(body) != 2 {
		t.Fatalf("error body %s, want {error, code: %q}", resp.Body, code)
	}
}

// ids lists the ids of a {tokens} list response, sorted.
func ids(t *testing.T, resp apitest.Response) []string {
	t.Helper()
	if resp.Status != http.StatusOK {
		t.Fatalf("list: %d %s", resp.Status, resp.Body)
	}
	out := []string{}
	for _, tok := range resp.JSON(t)["tokens"].([]any) {
		out = append(out, tok.(map[string]any)["id"].(string))
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// noLeaks asserts that no kept response, log line or audit event holds
// any secret the test has seen.
func (e env) noLeaks(t *testing.T) {
	t.Helper()
	audit := e.Do(t, "GET", "/v1/audit_events?limit=200", e.AdminKey, nil)
	if audit.Status != http.StatusOK {
		t.Fatalf("audit events: %d %s", audit.Status, audit.Body)
	}
	places := map[string]string{"the logs": e.Logs.String(), "the audit log": string(audit.Body)}
	for i, resp := range *e.seen {
		places[fmt.Sprintf("response %d (%d)", i, resp.Status)] = string(resp.Body)
	}
	for _, secret := range e.Secrets() {
		for name, text := range places {
			if strings.Contains(text, secret) {
				t.Fatalf("a secret (%.8s…) appears in %s: %s", secret, name, text)
			}
		}
	}
}

// patRows is every PAT row of the instance as the store holds it.
func (e env) patRows(t *testing.T) []credential.Credential {
	t.Helper()
	var out []credential.Credential
	err := e.Store.View(context.Background(), func(tx authority.Tx) error {
		var err error
		out, _, err = tx.PageCredentials(context.Background(), authority.CredentialQuery{InstanceID: e.InstanceID, Kind: credential.KindPAT})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		out[i].LastUsedAt = time.Time{} // authenticating moves it
	}
	return out
}

var rfc3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$`)

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestPATLifecycleShowsTheTokenOnce(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		e.Clock.Set(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
		expires := e.Clock.Now().Add(30 * 24 * time.Hour)
		created := e.create(t, "/tokens", e.as(alice), map[string]any{
			"name": "laptop", "description": "my CLI", "scopes": []string{"read", "write", "read"}, "expiresAt": expires.Format(time.RFC3339),
		})
		if got := keys(created); !cmp.Equal(got, []string{"pat", "token"}) {
			t.Fatalf("create response keys %v", got)
		}
		token := created["token"].(string)
		p := created["pat"].(map[string]any)
		want := map[string]any{
			"id": p["id"], "name": "laptop", "description": "my CLI", "scopes": []any{"read", "write"}, "workspaceId": nil,
			"createdAt": "2026-05-06T07:08:09Z", "lastUsedAt": nil, "expiresAt": expires.Format(time.RFC3339), "tokenPrefix": p["tokenPrefix"],
		}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Fatalf("created PAT (-want +got):\n%s", diff)
		}
		id := p["id"].(string)
		prefix := p["tokenPrefix"].(string)
		if !strings.HasPrefix(token, "pat_") || !strings.HasPrefix(id, authority.PrefixPAT) || prefix == "" ||
			!strings.HasPrefix(token, prefix) || len(prefix) >= len(token)/2 {
			t.Fatalf("token %.8s…, id %q, tokenPrefix %q", token, id, prefix)
		}

		// Verify: the token's user, scopes, no workspace.
		v := e.verify(t, token, "read")
		if v["valid"] != true || v["code"] != "valid" || v["kind"] != "pat" || v["subject"] != alice ||
			!cmp.Equal(v["scopes"], []any{"read", "write"}) || v["workspace_id"] != nil {
			t.Fatalf("verify: %v", v)
		}

		// The list: the token without its secret, the catalogue beside it,
		// and lastUsedAt once the use is flushed.
		e.Clock.Advance(time.Minute)
		if resp := e.do(t, "GET", "/tokens", pat(token), nil); resp.Status != http.StatusOK {
			t.Fatalf("the PAT authenticates: %d %s", resp.Status, resp.Body)
		}
		if err := e.Auth.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
		list := e.do(t, "GET", "/tokens", e.as(alice), nil)
		body := list.JSON(t)
		if got := keys(body); !cmp.Equal(got, []string{"availableScopes", "tokens"}) {
			t.Fatalf("list keys %v", got)
		}
		if !cmp.Equal(body["availableScopes"], []any{"read", "write", "keyward:tokens", "keyward:clients"}) {
			t.Fatalf("availableScopes %v", body["availableScopes"])
		}
		listed := body["tokens"].([]any)
		want["lastUsedAt"] = "2026-05-06T07:09:09Z"
		if len(listed) != 1 {
			t.Fatalf("list: %s", list.Body)
		}
		if diff := cmp.Diff(want, listed[0]); diff != "" {
			t.Fatalf("listed PAT (-want +got):\n%s", diff)
		}

		scopes := e.do(t, "GET", "/tokens/scopes", e.as(alice), nil)
		if scopes.Status != http.StatusOK || !cmp.Equal(scopes.JSON(t), map[string]any{"scopes": []any{"read", "write", "keyward:tokens", "keyward:clients"}}) {
			t.Fatalf("scopes: %d %s", scopes.Status, scopes.Body)
		}
		if resp := e.do(t, "GET", "/tokens/scopes", pat(token), nil); resp.Status != http.StatusOK {
			t.Fatalf("scopes with a PAT: %d %s", resp.Status, resp.Body)
		}

		// PATCH renames and redescribes; 200 with the PersonalAccessToken.
		e.Clock.Advance(time.Minute)
		upd := e.do(t, "PATCH", "/tokens/"+id, e.as(alice), map[string]any{"name": "desktop", "description": ""})
		if upd.Status != http.StatusOK {
			t.Fatalf("PATCH: %d %s", upd.Status, upd.Body)
		}
		want["name"], want["description"] = "desktop", ""
		if diff := cmp.Diff(want, upd.JSON(t)); diff != "" {
			t.Fatalf("updated PAT (-want +got):\n%s", diff)
		}
		if upd := e.do(t, "PATCH", "/tokens/"+id, pat(token), map[string]any{"description": "again"}); upd.Status != http.StatusOK || upd.JSON(t)["name"] != "desktop" {
			t.Fatalf("PATCH with the PAT itself: %d %s", upd.Status, upd.Body)
		}

		// DELETE: 204 without a body; the token is gone and fails at once.
		del := e.do(t, "DELETE", "/tokens/"+id, e.as(alice), nil)
		if del.Status != http.StatusNoContent || len(del.Body) != 0 {
			t.Fatalf("DELETE: %d %q", del.Status, del.Body)
		}
		if got := ids(t, e.do(t, "GET", "/tokens", e.as(alice), nil)); len(got) != 0 {
			t.Fatalf("a revoked token is listed: %v", got)
		}
		if got := e.code(t, token); got != "revoked" {
			t.Fatalf("a revoked token verifies as %s", got)
		}
		wantError(t, e.do(t, "GET", "/tokens", pat(token), nil), http.StatusUnauthorized, "unauthorized")
		wantError(t, e.do(t, "DELETE", "/tokens/"+id, e.as(alice), nil), http.StatusNotFound, "not_found")
		wantError(t, e.do(t, "PATCH", "/tokens/"+id, e.as(alice), map[string]any{"name": "x"}), http.StatusNotFound, "not_found")
		e.noLeaks(t)
	})
}

func TestDefaultAndMaximumExpiry(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		e.Clock.Set(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		year := e.Clock.Now().Add(365 * 24 * time.Hour)
		def := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "default"})["pat"].(map[string]any)
		if def["expiresAt"] != year.Format(time.RFC3339) || !cmp.Equal(def["scopes"], []any{}) || def["description"] != "" {
			t.Fatalf("a token without expiresAt: %v, want it to expire in one year", def)
		}
		longest := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "max", "expiresAt": year.Format(time.RFC3339)})["pat"].(map[string]any)
		if longest["expiresAt"] != year.Format(time.RFC3339) {
			t.Fatalf("a token of exactly the maximum lifetime: %v", longest)
		}
		offset := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "offset", "expiresAt": "2026-01-02T06:04:05+02:00"})["pat"].(map[string]any)
		if offset["expiresAt"] != "2026-01-02T04:04:05Z" || !rfc3339.MatchString(offset["createdAt"].(string)) {
			t.Fatalf("a +02:00 expiry: %v, want it in UTC", offset)
		}
		e.noLeaks(t)
	})
}

func TestBadRequestsGet400AndCreateNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		now := e.Clock.Now()
		fifty1 := make([]string, 51)
		for i := range fifty1 {
			fifty1[i] = "read"
		}
		before := e.patRows(t)
		for _, tc := range []struct {
			name string
			h    http.Header
			path string
			body any
			code string
		}{
			{"no name", e.as(alice), "/tokens", map[string]any{"scopes": []string{"read"}}, "invalid_request"},
			{"an empty name", e.as(alice), "/tokens", map[string]any{"name": ""}, "invalid_request"},
			{"a 256-character name", e.as(alice), "/tokens", map[string]any{"name": strings.Repeat("n", 256)}, "invalid_request"},
			{"a 1001-character description", e.as(alice), "/tokens", map[string]any{"name": "x", "description": strings.Repeat("d", 1001)}, "invalid_request"},
			{"an unknown scope", e.as(alice), "/tokens", map[string]any{"name": "x", "scopes": []string{"read", "delete"}}, "invalid_scope"},
			{"an unknown keyward: scope", e.as(alice), "/tokens", map[string]any{"name": "x", "scopes": []string{"keyward:admin"}}, "invalid_scope"},
			{"a scope of the wrong case", e.as(alice), "/tokens", map[string]any{"name": "x", "scopes": []string{"READ"}}, "invalid_scope"},
			{"51 scopes", e.as(alice), "/tokens", map[string]any{"name": "x", "scopes": fifty1}, "invalid_scope"},
			{"scopes not an array", e.as(alice), "/tokens", `{"name":"x","scopes":"read"}`, "invalid_scope"},
			{"an expiry in the past", e.as(alice), "/tokens", map[string]any{"name": "x", "expiresAt": now.Add(-time.Second).Format(time.RFC3339)}, "invalid_request"},
			{"an expiry of now", e.as(alice), "/tokens", map[string]any{"name": "x", "expiresAt": now.Format(time.RFC3339)}, "invalid_request"},
			{"an expiry past one year", e.as(alice), "/tokens", map[string]any{"name": "x", "expiresAt": now.Add(365*24*time.Hour + time.Second).Format(time.RFC3339)}, "invalid_request"},
			{"an expiry that is not RFC 3339", e.as(alice), "/tokens", map[string]any{"name": "x", "expiresAt": "tomorrow"}, "invalid_request"},
			{"an expiry as a number", e.as(alice), "/tokens", map[string]any{"name": "x", "expiresAt": now.Add(time.Hour).Unix()}, "invalid_request"},
			{"an unknown field", e.as(alice), "/tokens", map[string]any{"name": "x", "token": "pat_mine"}, "unknown_field"},
			{"malformed JSON", e.as(alice), "/tokens", `{"name":`, "invalid_json"},
			{"an unknown workspaceId", e.as(alice), "/tokens", map[string]any{"name": "x", "workspaceId": "00000000-0000-4000-8000-000000000000"}, "invalid_request"},
			{"a workspaceId on a workspace route", e.as(alice), wsPath("acme", "eng"), map[string]any{"name": "x", "workspaceId": e.ws}, "invalid_request"},
			{"the admin key without X-User-ID", http.Header{"Authorization": {"Bearer " + e.AdminKey}}, "/tokens", map[string]any{"name": "x"}, "invalid_request"},
			{"an X-User-ID with a space", e.as("al ice"), "/tokens", map[string]any{"name": "x"}, "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, e.do(t, "POST", tc.path, tc.h, tc.body), http.StatusBadRequest, tc.code)
			})
		}
		for _, tc := range []struct {
			name   string
			method string
			path   string
		}{
			{"listing", "GET", "/tokens"},
			{"listing scopes", "GET", "/tokens/scopes"},
		} {
			t.Run(tc.name+" without X-User-ID", func(t *testing.T) {
				resp := e.do(t, tc.method, tc.path, http.Header{"Authorization": {"Bearer " + e.AdminKey}}, nil)
				if tc.path == "/tokens/scopes" {
					// The catalogue is the instance's, not a user's.
					if resp.Status != http.StatusOK {
						t.Fatalf("%d %s", resp.Status, resp.Body)
					}
					return
				}
				wantError(t, resp, http.StatusBadRequest, "invalid_request")
			})
		}
		if diff := cmp.Diff(before, e.patRows(t)); diff != "" {
			t.Fatalf("bad requests created tokens:\n%s", diff)
		}
		e.noLeaks(t)
	})
}

func TestUnauthenticatedCallsGet401(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		tok := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "x"})
		id := tok["pat"].(map[string]any)["id"].(string)
		expiring := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "soon", "expiresAt": e.Clock.Now().Add(time.Hour).Format(time.RFC3339)})["token"].(string)
		e.Clock.Advance(time.Hour)
		for _, tc := range []struct {
			name string
			h    http.Header
		}{
			{"no credential", http.Header{}},
			{"a malformed bearer", pat("pat_not-a-token")},
			{"a Token scheme", http.Header{"Authorization": {"Token " + tok["token"].(string)}}},
			{"an expired PAT", pat(expiring)},
		} {
			for _, route := range []struct{ method, path string }{
				{"POST", "/tokens"}, {"GET", "/tokens"}, {"GET", "/tokens/scopes"}, {"PATCH", "/tokens/" + id}, {"DELETE", "/tokens/" + id},
				{"POST", wsPath("acme", "eng")}, {"GET", wsPath("acme", "eng")}, {"PATCH", wsPath("acme", "eng") + "/" + id}, {"DELETE", wsPath("acme", "eng") + "/" + id},
			} {
				t.Run(tc.name+" "+route.method+" "+route.path, func(t *testing.T) {
					wantError(t, e.do(t, route.method, route.path, tc.h, map[string]any{"name": "x"}), http.StatusUnauthorized, "unauthorized")
				})
			}
		}
		if got := e.code(t, tok["token"].(string)); got != "valid" {
			t.Fatalf("the token was harmed: %s", got)
		}
		wantError(t, e.do(t, "GET", "/nowhere", e.as(alice), nil), http.StatusNotFound, "not_found")
		e.noLeaks(t)
	})
}

func TestPATCHCannotChangeScopes(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		top := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "top", "scopes": []string{"read"}})
		bound := e.create(t, wsPath("acme", "eng"), e.as(alice), map[string]any{"name": "bound", "scopes": []string{"read"}})
		topID := top["pat"].(map[string]any)["id"].(string)
		boundID := bound["pat"].(map[string]any)["id"].(string)
		before := e.patRows(t)
		for _, tc := range []struct {
			name string
			path string
			body any
			code string
		}{
			{"adding a scope", "/tokens/" + topID, map[string]any{"scopes": []string{"read", "write"}}, "scopes_immutable"},
			{"a rename with new scopes", "/tokens/" + topID, map[string]any{"name": "renamed", "scopes": []string{"write"}}, "scopes_immutable"},
			{"clearing the scopes", "/tokens/" + topID, map[string]any{"scopes": []string{}}, "scopes_immutable"},
			{"the same scopes again", "/tokens/" + topID, map[string]any{"scopes": []string{"read"}}, "scopes_immutable"},
			{"null scopes", "/tokens/" + topID, `{"name":"renamed","scopes":null}`, "scopes_immutable"},
			{"scopes on the workspace route", wsPath("acme", "eng") + "/" + boundID, map[string]any{"name": "renamed", "scopes": []string{"write"}}, "scopes_immutable"},
			{"moving the token to a workspace", "/tokens/" + topID, map[string]any{"workspaceId": e.ws}, "unknown_field"},
			{"extending the expiry", "/tokens/" + topID, map[string]any{"expiresAt": e.Clock.Now().Add(time.Hour).Format(time.RFC3339)}, "unknown_field"},
			{"an empty name", "/tokens/" + topID, map[string]any{"name": ""}, "invalid_request"},
			{"a 256-character name", "/tokens/" + topID, map[string]any{"name": strings.Repeat("n", 256)}, "invalid_request"},
			{"malformed JSON", "/tokens/" + topID, `{"name"`, "invalid_json"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, e.do(t, "PATCH", tc.path, e.as(alice), tc.body), http.StatusBadRequest, tc.code)
			})
		}
		if diff := cmp.Diff(before, e.patRows(t)); diff != "" {
			t.Fatalf("refused PATCHes changed tokens:\n%s", diff)
		}
		if v := e.verify(t, top["token"].(string), "write"); v["code"] != "insufficient_scope" || !cmp.Equal(v["scopes"], []any{"read"}) {
			t.Fatalf("after refused scope changes: %v", v)
		}
		e.noLeaks(t)
	})
}

func TestPATsCannotEscalate(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		mk := func(path string, scopes ...string) string {
			t.Helper()
			return e.create(t, path, e.as(alice), map[string]any{"name": "parent", "scopes": append([]string{}, scopes...)})["token"].(string)
		}
		reader := mk("/tokens", "read")
		manager := mk("/tokens", "read", authority.ScopeTokens)
		boundManager := mk(wsPath("acme", "eng"), "read", "write", authority.ScopeTokens)
		before := e.patRows(t)
		for _, tc := range []struct {
			name, token, path string
			body              map[string]any
		}{
			{"a PAT without keyward:tokens", reader, "/tokens", map[string]any{"name": "x"}},
			{"a PAT without keyward:tokens granting its own scope", reader, "/tokens", map[string]any{"name": "x", "scopes": []string{"read"}}},
			{"granting a catalogue scope it lacks", manager, "/tokens", map[string]any{"name": "x", "scopes": []string{"read", "write"}}},
			{"granting a built-in scope it lacks", manager, "/tokens", map[string]any{"name": "x", "scopes": []string{authority.ScopeClients}}},
			{"an unbound PAT binding a token by workspaceId", manager, "/tokens", map[string]any{"name": "x", "workspaceId": e.ws}},
			{"an unbound PAT on a workspace route", manager, wsPath("acme", "eng"), map[string]any{"name": "x"}},
			{"a bound PAT making an unbound token", boundManager, "/tokens", map[string]any{"name": "x"}},
			{"a bound PAT binding to another workspace by workspaceId", boundManager, "/tokens", map[string]any{"name": "x", "workspaceId": e.ops}},
			{"a bound PAT on another workspace's route", boundManager, wsPath("acme", "ops"), map[string]any{"name": "x"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, e.do(t, "POST", tc.path, pat(tc.token), tc.body), http.StatusForbidden, "forbidden")
			})
		}
		if diff := cmp.Diff(before, e.patRows(t)); diff != "" {
			t.Fatalf("refused escalations created tokens:\n%s", diff)
		}

		// Within its rights a PAT may create tokens, always as its own user,
		// whatever X-User-ID says.
		h := pat(manager)
		h.Set("X-User-ID", bob)
		child := e.create(t, "/tokens", h, map[string]any{"name": "child", "scopes": []string{"read"}})
		if v := e.verify(t, child["token"].(string)); v["subject"] != alice || !cmp.Equal(v["scopes"], []any{"read"}) || v["workspace_id"] != nil {
			t.Fatalf("a PAT's child: %v", v)
		}
		grand := e.create(t, "/tokens", pat(manager), map[string]any{"name": "same", "scopes": []string{"read", authority.ScopeTokens}})
		if v := e.verify(t, grand["token"].(string)); !cmp.Equal(v["scopes"], []any{"read", authority.ScopeTokens}) {
			t.Fatalf("a child with all its parent's scopes: %v", v)
		}
		for _, path := range []string{"/tokens", wsPath("acme", "eng"), wsPath(e.org, e.ws)} {
			body := map[string]any{"name": "bound child", "scopes": []string{"write"}}
			if path == "/tokens" {
				body["workspaceId"] = e.ws
			}
			made := e.create(t, path, pat(boundManager), body)
			if v := e.verify(t, made["token"].(string)); v["subject"] != alice || v["workspace_id"] != e.ws || !cmp.Equal(v["scopes"], []any{"write"}) {
				t.Fatalf("a bound PAT's child at %s: %v", path, v)
			}
		}
		if ids := ids(t, e.do(t, "GET", "/tokens", e.as(bob), nil)); len(ids) != 0 {
			t.Fatalf("X-User-ID beside a PAT made tokens for bob: %v", ids)
		}
		// The scope catalogue is the admin key's alone.
		for _, method := range []string{"GET", "PUT"} {
			resp := e.Do(t, method, "/v1/scopes", manager, map[string]any{"scopes": []string{"read", "write", "admin"}})
			*e.seen = append(*e.seen, resp)
			if resp.Status != http.StatusForbidden {
				t.Fatalf("%s /v1/scopes with a PAT: %d %s", method, resp.Status, resp.Body)
			}
		}
		e.noLeaks(t)
	})
}

func TestUsersNeverSeeEachOthersTokens(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		a := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "alice", "scopes": []string{"read", authority.ScopeTokens}})
		aWS := e.create(t, wsPath("acme", "eng"), e.as(alice), map[string]any{"name": "alice eng"})
		b := e.create(t, "/tokens", e.as(bob), map[string]any{"name": "bob", "scopes": []string{"read", authority.ScopeTokens}})
		bWS := e.create(t, wsPath("acme", "eng"), e.as(bob), map[string]any{"name": "bob eng"})
		id := func(m map[string]any) string { return m["pat"].(map[string]any)["id"].(string) }
		aToken := a["token"].(string)
		bToken := b["token"].(string)

		for _, tc := range []struct {
			name string
			h    http.Header
			want []string
		}{
			{"alice by the admin key", e.as(alice), sorted(id(a), id(aWS))},
			{"alice by her PAT", pat(aToken), sorted(id(a), id(aWS))},
			{"bob by the admin key", e.as(bob), sorted(id(b), id(bWS))},
			{"bob by his PAT", pat(bToken), sorted(id(b), id(bWS))},
			{"a user without tokens", e.as(nobody), []string{}},
		} {
			if got := ids(t, e.do(t, "GET", "/tokens", tc.h, nil)); !cmp.Equal(got, tc.want) {
				t.Errorf("%s lists %v, want %v", tc.name, got, tc.want)
			}
		}
		if got := ids(t, e.do(t, "GET", wsPath("acme", "eng"), e.as(bob), nil)); !cmp.Equal(got, []string{id(bWS)}) {
			t.Errorf("bob, a member, lists %v in eng, want his own only", got)
		}

		before := e.patRows(t)
		for _, tc := range []struct {
			name, method, path string
			h                  http.Header
		}{
			{"bob renaming alice's token", "PATCH", "/tokens/" + id(a), e.as(bob)},
			{"bob revoking alice's token", "DELETE", "/tokens/" + id(a), e.as(bob)},
			{"bob's PAT renaming alice's token", "PATCH", "/tokens/" + id(a), pat(bToken)},
			{"bob's PAT revoking alice's token", "DELETE", "/tokens/" + id(a), pat(bToken)},
			{"bob renaming alice's workspace token", "PATCH", "/tokens/" + id(aWS), e.as(bob)},
			{"bob renaming it on the workspace route", "PATCH", wsPath("acme", "eng") + "/" + id(aWS), e.as(bob)},
			{"bob revoking it on the workspace route", "DELETE", wsPath("acme", "eng") + "/" + id(aWS), e.as(bob)},
			{"an admin renaming alice's workspace token", "PATCH", wsPath("acme", "eng") + "/" + id(aWS), e.as(admin)},
			{"an owner renaming alice's workspace token", "PATCH", wsPath("acme", "eng") + "/" + id(aWS), e.as(owner)},
			{"an admin revoking alice's unbound token on the workspace route", "DELETE", wsPath("acme", "eng") + "/" + id(a), e.as(admin)},
			{"an admin revoking alice's unbound token on the top-level route", "DELETE", "/tokens/" + id(a), e.as(admin)},
			{"a workspace token under another workspace", "DELETE", wsPath("acme", "ops") + "/" + id(aWS), e.as(alice)},
			{"an unknown id", "DELETE", "/tokens/pt_nothing", e.as(alice)},
			{"an admin key id", "DELETE", "/tokens/" + e.InstanceID, e.as(alice)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, e.do(t, tc.method, tc.path, tc.h, map[string]any{"name": "mine now"}), http.StatusNotFound, "not_found")
			})
		}
		if diff := cmp.Diff(before, e.patRows(t)); diff != "" {
			t.Fatalf("refused calls changed tokens:\n%s", diff)
		}
		for _, tok := range []string{aToken, aWS["token"].(string), bToken, bWS["token"].(string)} {
			if got := e.code(t, tok); got != "valid" {
				t.Fatalf("a token was harmed: %s", got)
			}
		}
		e.noLeaks(t)
	})
}

func TestWorkspaceTokensByRole(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		made := map[string]map[string]any{}
		for _, u := range []string{owner, admin, alice, bob} {
			made[u] = e.create(t, wsPath("acme", "eng"), e.as(u), map[string]any{"name": u, "scopes": []string{"read"}})
			if got := made[u]["pat"].(map[string]any)["workspaceId"]; got != e.ws {
				t.Fatalf("%s's workspace token has workspaceId %v", u, got)
			}
		}
		id := func(u string) string { return made[u]["pat"].(map[string]any)["id"].(string) }
		unbound := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "unbound"})
		elsewhere := e.create(t, wsPath("acme", "ops"), e.as(alice), map[string]any{"name": "ops"})
		all := sorted(id(owner), id(admin), id(alice), id(bob))

		// {org} and {workspace} are each an id or a slug.
		for _, path := range []string{wsPath("acme", "eng"), wsPath(e.org, e.ws), wsPath("acme", e.ws), wsPath(e.org, "eng")} {
			for _, tc := range []struct {
				name string
				h    http.Header
				want []string
			}{
				{"the owner sees every token", e.as(owner), all},
				{"an admin sees every token", e.as(admin), all},
				{"a member sees their own", e.as(alice), []string{id(alice)}},
				{"a member's PAT sees its user's own", pat(made[bob]["token"].(string)), []string{id(bob)}},
			} {
				resp := e.do(t, "GET", path, tc.h, nil)
				if got := ids(t, resp); !cmp.Equal(got, tc.want) {
					t.Errorf("%s at %s: %v, want %v", tc.name, path, got, tc.want)
				}
				if av := resp.JSON(t)["availableScopes"]; av == nil {
					t.Errorf("%s at %s: no availableScopes", tc.name, path)
				}
			}
		}
		if got := ids(t, e.do(t, "GET", "/tokens", e.as(alice), nil)); !cmp.Equal(got, sorted(id(alice), unbound["pat"].(map[string]any)["id"].(string), elsewhere["pat"].(map[string]any)["id"].(string))) {
			t.Errorf("alice's top-level list: %v", got)
		}

		// A member renames their own workspace token there.
		upd := e.do(t, "PATCH", wsPath(e.org, e.ws)+"/"+id(alice), e.as(alice), map[string]any{"name": "renamed"})
		if upd.Status != http.StatusOK || upd.JSON(t)["name"] != "renamed" || upd.JSON(t)["workspaceId"] != e.ws {
			t.Fatalf("a member's PATCH: %d %s", upd.Status, upd.Body)
		}
		v := e.verify(t, made[alice]["token"].(string), "read")
		if v["valid"] != true || v["subject"] != alice || v["workspace_id"] != e.ws || !cmp.Equal(v["scopes"], []any{"read"}) {
			t.Fatalf("a workspace token's verify: %v", v)
		}

		// Admins and owners revoke anyone's; members only their own.
		for _, tc := range []struct {
			name, victim string
			h            http.Header
		}{
			{"an admin revokes a member's token", bob, e.as(admin)},
			{"the owner revokes an admin's token", admin, e.as(owner)},
			{"a member revokes their own", alice, e.as(alice)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				del := e.do(t, "DELETE", wsPath("acme", "eng")+"/"+id(tc.victim), tc.h, nil)
				if del.Status != http.StatusNoContent || len(del.Body) != 0 {
					t.Fatalf("%d %q", del.Status, del.Body)
				}
				if got := e.code(t, made[tc.victim]["token"].(string)); got != "revoked" {
					t.Fatalf("the revoked token verifies as %s", got)
				}
			})
		}
		wantError(t, e.do(t, "DELETE", wsPath("acme", "eng")+"/"+id(owner), e.as(bob), nil), http.StatusNotFound, "not_found")
		if got := ids(t, e.do(t, "GET", wsPath("acme", "eng"), e.as(owner), nil)); !cmp.Equal(got, []string{id(owner)}) {
			t.Errorf("after revocations: %v", got)
		}
		for _, tok := range []map[string]any{made[owner], unbound, elsewhere} {
			if got := e.code(t, tok["token"].(string)); got != "valid" {
				t.Fatalf("an unrelated token was harmed: %s", got)
			}
		}
		e.noLeaks(t)
	})
}

func TestNonMembersGet403OnEveryWorkspaceRoute(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		target := e.create(t, wsPath("acme", "eng"), e.as(alice), map[string]any{"name": "target"})["pat"].(map[string]any)["id"].(string)
		ninaPAT := e.create(t, "/tokens", e.as(nobody), map[string]any{"name": "nina", "scopes": []string{authority.ScopeTokens}})["token"].(string)
		// A token bound to ops may not reach eng, though its user is a member of both.
		opsPAT := e.create(t, wsPath("acme", "ops"), e.as(alice), map[string]any{"name": "ops", "scopes": []string{authority.ScopeTokens}})["token"].(string)
		before := e.patRows(t)
		for _, caller := range []struct {
			name string
			h    http.Header
		}{
			{"a non-member by the admin key", e.as(nobody)},
			{"a non-member's PAT", pat(ninaPAT)},
			{"a PAT bound to another workspace", pat(opsPAT)},
		} {
			for _, path := range []string{wsPath("acme", "eng"), wsPath(e.org, e.ws)} {
				for _, route := range []struct{ method, path string }{
					{"POST", path}, {"GET", path}, {"PATCH", path + "/" + target}, {"DELETE", path + "/" + target}, {"DELETE", path + "/pt_unknown"},
				} {
					t.Run(caller.name+" "+route.method+" "+route.path, func(t *testing.T) {
						wantError(t, e.do(t, route.method, route.path, caller.h, map[string]any{"name": "x"}), http.StatusForbidden, "forbidden")
					})
				}
			}
		}
		// Binding by workspaceId on the top-level route is refused alike.
		wantError(t, e.do(t, "POST", "/tokens", e.as(nobody), map[string]any{"name": "x", "workspaceId": e.ws}), http.StatusForbidden, "forbidden")
		if diff := cmp.Diff(before, e.patRows(t)); diff != "" {
			t.Fatalf("non-members changed tokens:\n%s", diff)
		}
		e.noLeaks(t)
	})
}

func TestWorkspaceOfAnotherOrgOrInstanceIsNotFound(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		otherOrg := e.native(t, "POST", "/v1/organizations", map[string]string{"slug": "globex", "name": "Globex"}, http.StatusCreated)["id"].(string)
		foreign := e.native(t, "POST", "/v1/organizations/globex/workspaces", map[string]string{"slug": "lab", "name": "Lab"}, http.StatusCreated)["id"].(string)
		e.native(t, "PUT", "/v1/organizations/globex/workspaces/lab/members/"+alice, map[string]string{"role": "owner"}, http.StatusOK)
		target := e.create(t, wsPath("acme", "eng"), e.as(alice), map[string]any{"name": "target"})
		targetID := target["pat"].(map[string]any)["id"].(string)

		// Another instance, with its own acme/eng where alice is an owner.
		_, otherKey := e.NewInstance(t, "elsewhere")
		for _, call := range []struct {
			method, path string
			body         any
			want         int
		}{
			{"POST", "/v1/organizations", map[string]string{"slug": "acme", "name": "Acme"}, http.StatusCreated},
			{"POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "Eng"}, http.StatusCreated},
			{"PUT", "/v1/organizations/acme/workspaces/eng/members/" + alice, map[string]string{"role": "owner"}, http.StatusOK},
		} {
			if resp := e.Do(t, call.method, call.path, otherKey, call.body); resp.Status != call.want {
				t.Fatalf("setup of the other instance: %d %s", resp.Status, resp.Body)
			}
		}
		otherAs := http.Header{"Authorization": {"Bearer " + otherKey}, "X-User-ID": {alice}}

		before := e.patRows(t)
		for _, tc := range []struct {
			name, path string
			h          http.Header
		}{
			{"another org's workspace by id", wsPath("acme", foreign), e.as(alice)},
			{"another org's workspace by slug", wsPath("acme", "lab"), e.as(alice)},
			{"a workspace under another org", wsPath("globex", "eng"), e.as(alice)},
			{"a workspace under another org by ids", wsPath(otherOrg, e.ws), e.as(alice)},
			{"an unknown org", wsPath("initech", "eng"), e.as(alice)},
			{"an unknown workspace", wsPath("acme", "nope"), e.as(alice)},
			{"an unknown workspace id", wsPath("acme", "00000000-0000-4000-8000-000000000000"), e.as(alice)},
			{"another instance's admin key by ids", wsPath(e.org, e.ws), otherAs},
		} {
			for _, route := range []struct{ method, path string }{
				{"POST", tc.path}, {"GET", tc.path}, {"PATCH", tc.path + "/" + targetID}, {"DELETE", tc.path + "/" + targetID},
			} {
				t.Run(tc.name+" "+route.method, func(t *testing.T) {
					wantError(t, e.do(t, route.method, route.path, tc.h, map[string]any{"name": "x"}), http.StatusNotFound, "not_found")
				})
			}
		}
		// The other instance's own acme/eng holds nothing of this one.
		if got := ids(t, e.do(t, "GET", wsPath("acme", "eng"), otherAs, nil)); len(got) != 0 {
			t.Fatalf("another instance's same-named workspace lists %v", got)
		}
		for _, method := range []string{"PATCH", "DELETE"} {
			wantError(t, e.do(t, method, "/tokens/"+targetID, otherAs, map[string]any{"name": "x"}), http.StatusNotFound, "not_found")
		}
		// Binding by id to another instance's workspace names no workspace.
		wantError(t, e.do(t, "POST", "/tokens", otherAs, map[string]any{"name": "x", "workspaceId": e.ws}), http.StatusBadRequest, "invalid_request")
		if diff := cmp.Diff(before, e.patRows(t)); diff != "" {
			t.Fatalf("refused calls changed tokens:\n%s", diff)
		}
		// Another instance's admin key cannot verify this instance's PAT.
		resp := e.Do(t, "POST", "/v1/verify", otherKey, map[string]any{"token": target["token"].(string)})
		*e.seen = append(*e.seen, resp)
		if resp.Status != http.StatusOK || resp.JSON(t)["code"] != "not_found" || resp.JSON(t)["subject"] != nil {
			t.Fatalf("another instance verifying: %d %s", resp.Status, resp.Body)
		}
		e.noLeaks(t)
	})
}

func TestVerifyRequiredScopesAndState(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		e.Clock.Set(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC))
		tok := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "x", "scopes": []string{"read", authority.ScopeTokens}})["token"].(string)
		for _, tc := range []struct {
			name     string
			required []string
			want     string
		}{
			{"no scopes required", nil, "valid"},
			{"an empty list", []string{}, "valid"},
			{"a held scope", []string{"read"}, "valid"},
			{"every held scope", []string{"read", authority.ScopeTokens}, "valid"},
			{"a scope not held", []string{"write"}, "insufficient_scope"},
			{"one held and one not", []string{"read", "write"}, "insufficient_scope"},
			{"an unknown scope", []string{"nonsense"}, "insufficient_scope"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				v := e.verify(t, tok, tc.required...)
				if v["code"] != tc.want || v["valid"] != (tc.want == "valid") || v["kind"] != "pat" || v["subject"] != alice {
					t.Fatalf("%v, want %s", v, tc.want)
				}
			})
		}
		// A PAT is no verifier.
		resp := e.Do(t, "POST", "/v1/verify", tok, map[string]any{"token": tok})
		*e.seen = append(*e.seen, resp)
		if resp.Status == http.StatusOK && resp.JSON(t)["valid"] == true {
			t.Fatalf("a PAT verified a PAT: %s", resp.Body)
		}
		if got := e.code(t, "pat_"+strings.Repeat("A", 40)); got != "not_found" {
			t.Fatalf("a made-up PAT: %s", got)
		}
		e.noLeaks(t)
	})
}

func TestRevokedOrExpiredPATFailsItsNextVerify(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		e.Clock.Set(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC))
		hour := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "hour", "expiresAt": e.Clock.Now().Add(time.Hour).Format(time.RFC3339)})["token"].(string)
		byUser := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "user"})
		byAdmin := e.create(t, wsPath("acme", "eng"), e.as(bob), map[string]any{"name": "ws"})
		byItself := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "self"})
		for _, tok := range []string{hour, byUser["token"].(string), byAdmin["token"].(string), byItself["token"].(string)} {
			if got := e.code(t, tok); got != "valid" { // warms the cache
				t.Fatalf("a fresh token: %s", got)
			}
		}
		id := func(m map[string]any) string { return m["pat"].(map[string]any)["id"].(string) }
		for _, tc := range []struct {
			name   string
			revoke func() apitest.Response
			token  string
		}{
			{"revoked by its user", func() apitest.Response { return e.do(t, "DELETE", "/tokens/"+id(byUser), e.as(alice), nil) }, byUser["token"].(string)},
			{"revoked by a workspace admin", func() apitest.Response {
				return e.do(t, "DELETE", wsPath("acme", "eng")+"/"+id(byAdmin), e.as(admin), nil)
			}, byAdmin["token"].(string)},
			{"revoked with itself", func() apitest.Response {
				return e.do(t, "DELETE", "/tokens/"+id(byItself), pat(byItself["token"].(string)), nil)
			}, byItself["token"].(string)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if resp := tc.revoke(); resp.Status != http.StatusNoContent {
					t.Fatalf("revoke: %d %s", resp.Status, resp.Body)
				}
				if v := e.verify(t, tc.token); v["code"] != "revoked" || v["valid"] != false {
					t.Fatalf("the next verify: %v", v)
				}
				wantError(t, e.do(t, "GET", "/tokens", pat(tc.token), nil), http.StatusUnauthorized, "unauthorized")
			})
		}

		e.Clock.Advance(time.Hour - time.Millisecond)
		if got := e.code(t, hour); got != "valid" {
			t.Fatalf("a millisecond before expiry: %s", got)
		}
		e.Clock.Advance(time.Millisecond)
		if v := e.verify(t, hour); v["code"] != "expired" || v["valid"] != false {
			t.Fatalf("at expiry: %v", v)
		}
		wantError(t, e.do(t, "GET", "/tokens", pat(hour), nil), http.StatusUnauthorized, "unauthorized")
		if got := ids(t, e.do(t, "GET", "/tokens", e.as(alice), nil)); len(got) != 0 {
			t.Fatalf("expired or revoked tokens are listed: %v", got)
		}
		e.noLeaks(t)
	})
}

func TestAWorkspaceBoundPATActsOnlyWithinItsWorkspace(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		bound := e.create(t, wsPath("acme", "eng"), e.as(alice), map[string]any{"name": "bound", "scopes": []string{"read"}})
		unbound := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "unbound"})
		ops := e.create(t, wsPath("acme", "ops"), e.as(alice), map[string]any{"name": "ops"})
		boundH := pat(bound["token"].(string))
		id := func(m map[string]any) string { return m["pat"].(map[string]any)["id"].(string) }

		if got := ids(t, e.do(t, "GET", "/tokens", boundH, nil)); !cmp.Equal(got, []string{id(bound)}) {
			t.Fatalf("a bound PAT lists %v on /tokens, want only its workspace's", got)
		}
		for _, other := range []map[string]any{unbound, ops} {
			wantError(t, e.do(t, "PATCH", "/tokens/"+id(other), boundH, map[string]string{"name": "x"}), http.StatusNotFound, "not_found")
			wantError(t, e.do(t, "DELETE", "/tokens/"+id(other), boundH, nil), http.StatusNotFound, "not_found")
			if got := e.code(t, other["token"].(string)); got != "valid" {
				t.Fatalf("a token outside the bound PAT's workspace was harmed: %s", got)
			}
		}
		e.noLeaks(t)
	})
}

// TestErrorsNameParametersInSpatiosSpelling: the authority names its
// parameters in keyward's snake_case; Spatio's errors name them as its
// camelCase JSON does, and its workspace refusals keep its wording.
func TestErrorsNameParametersInSpatiosSpelling(t *testing.T) {
	e := start(t, testkit.OpenSQLite(t))
	past := "2020-01-01T00:00:00Z" // before the test clock
	for _, tc := range []struct {
		name, path string
		h          http.Header
		body       map[string]any
		want       string
	}{
		{"an expiry in the past", "/tokens", e.as(alice), map[string]any{"name": "x", "expiresAt": past}, `{"error":"expiresAt: must be in the future","code":"invalid_request"}`},
		{"a workspace the user is not in", "/organizations/acme/workspaces/eng/tokens", e.as(nobody), map[string]any{"name": "x"}, `{"error":"Insufficient permission: not a member of this workspace","code":"forbidden"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(t, "POST", tc.path, tc.h, tc.body)
			if got := strings.TrimSpace(string(resp.Body)); got != tc.want {
				t.Errorf("body = %s, want %s", got, tc.want)
			}
		})
	}
}
