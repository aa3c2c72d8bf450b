package httpapi_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// wsEnv is a server with organizations acme and globex.
type wsEnv struct {
	*apitest.Env
	acme, globex string // ids
}

func startWorkspaces(t *testing.T, store *sqlstore.Store) wsEnv {
	t.Helper()
	e := wsEnv{Env: apitest.Start(t, store)}
	e.acme = e.call(t, "POST", "/v1/organizations", map[string]string{"slug": "acme", "name": "Acme"}, http.StatusCreated)["id"].(string)
	e.globex = e.call(t, "POST", "/v1/organizations", map[string]string{"slug": "globex", "name": "Globex"}, http.StatusCreated)["id"].(string)
	return e
}

// call uses the admin key and wants status.
func (e wsEnv) call(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	return e.callWith(t, e.AdminKey, method, path, body, want)
}

func (e wsEnv) callWith(t *testing.T, key, method, path string, body any, want int) map[string]any {
	t.Helper()
	resp := e.Do(t, method, path, key, body)
	if resp.Status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.Status, resp.Body, want)
	}
	if want == http.StatusNoContent {
		if len(resp.Body) != 0 {
			t.Fatalf("%s %s: a 204 with a body %q", method, path, resp.Body)
		}
		return nil
	}
	out := resp.JSON(t)
	if want >= 400 {
		if errBody, _ := out["error"].(map[string]any); errBody == nil || errBody["code"] == "" || errBody["message"] == "" {
			t.Fatalf("%s %s: error body %s", method, path, resp.Body)
		}
	}
	return out
}

// pat creates a PAT for user over the Spatio surface (in workspace ws of
// acme, unless ws is empty) and returns its token.
func (e wsEnv) pat(t *testing.T, user, ws string) string {
	t.Helper()
	path := "/spatio/v1/tokens"
	if ws != "" {
		path = "/spatio/v1/organizations/acme/workspaces/" + ws + "/tokens"
	}
	resp := e.DoWith(t, "POST", path, map[string]any{"name": user + " " + ws, "scopes": []string{"read"}},
		http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {user}})
	if resp.Status != http.StatusCreated {
		t.Fatalf("create PAT for %s in %q: %d %s", user, ws, resp.Status, resp.Body)
	}
	tok := resp.JSON(t)["token"].(string)
	e.Remember(tok)
	return tok
}

func (e wsEnv) verifyCode(t *testing.T, token string) string {
	t.Helper()
	return e.call(t, "POST", "/v1/verify", map[string]any{"token": token}, http.StatusOK)["code"].(string)
}

// noSecrets asserts no log line or audit event holds a remembered secret.
func (e wsEnv) noSecrets(t *testing.T) {
	t.Helper()
	audit := e.Do(t, "GET", "/v1/audit_events?limit=200", e.AdminKey, nil)
	for _, s := range e.Secrets() {
		for name, text := range map[string]string{"the logs": e.Logs.String(), "the audit log": string(audit.Body)} {
			if strings.Contains(text, s) {
				t.Fatalf("a secret (%.8s…) appears in %s", s, name)
			}
		}
	}
}

func TestWorkspacesCRUD(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		e.Clock.Set(time.Date(2026, 4, 5, 6, 7, 8, 0, time.UTC))
		ws := e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "Engineering"}, http.StatusCreated)
		id := ws["id"].(string)
		want := map[string]any{"id": id, "org_id": e.acme, "slug": "eng", "name": "Engineering",
			"created_at": ws["created_at"], "updated_at": ws["updated_at"]}
		if diff := cmp.Diff(want, ws); diff != "" || !strings.HasPrefix(ws["created_at"].(string), "2026-04-05T06:07:08") {
			t.Fatalf("created workspace (-want +got):\n%s%v", diff, ws)
		}
		for _, path := range []string{"/v1/organizations/acme/workspaces/eng", "/v1/organizations/" + e.acme + "/workspaces/" + id} {
			if got := e.call(t, "GET", path, nil, http.StatusOK); !cmp.Equal(got, ws) {
				t.Fatalf("GET %s: %v", path, got)
			}
		}
		e.call(t, "POST", "/v1/organizations/"+e.acme+"/workspaces", map[string]string{"slug": "ops", "name": "Operations"}, http.StatusCreated)
		list := e.call(t, "GET", "/v1/organizations/acme/workspaces", nil, http.StatusOK)
		var slugs []string
		for _, w := range list["data"].([]any) {
			slugs = append(slugs, w.(map[string]any)["slug"].(string))
		}
		sort.Strings(slugs)
		if !cmp.Equal(slugs, []string{"eng", "ops"}) {
			t.Fatalf("list: %v", list)
		}
		if got := e.call(t, "GET", "/v1/organizations/globex/workspaces", nil, http.StatusOK)["data"]; !cmp.Equal(got, []any{}) {
			t.Fatalf("another org lists %v", got)
		}

		// Slugs are unique per organization, not per instance.
		for _, tc := range []struct {
			name, method, path string
			body               map[string]string
			want               int
		}{
			{"a taken slug in the same org", "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "Again"}, http.StatusConflict},
			{"renaming onto a taken slug", "PATCH", "/v1/organizations/acme/workspaces/ops", map[string]string{"slug": "eng"}, http.StatusConflict},
			{"the same slug in another org", "POST", "/v1/organizations/globex/workspaces", map[string]string{"slug": "eng", "name": "Globex Eng"}, http.StatusCreated},
			{"a slug with capitals", "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "Eng2", "name": "x"}, http.StatusBadRequest},
			{"a slug with a space", "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "a b", "name": "x"}, http.StatusBadRequest},
			{"a 64-character slug", "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": strings.Repeat("a", 64), "name": "x"}, http.StatusBadRequest},
			{"no slug", "POST", "/v1/organizations/acme/workspaces", map[string]string{"name": "x"}, http.StatusBadRequest},
			{"no name", "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "x"}, http.StatusBadRequest},
			{"an empty name", "PATCH", "/v1/organizations/acme/workspaces/eng", map[string]string{"name": ""}, http.StatusBadRequest},
			{"an unknown field", "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "x", "name": "x", "org_id": e.globex}, http.StatusBadRequest},
			{"an unknown org", "POST", "/v1/organizations/initech/workspaces", map[string]string{"slug": "x", "name": "x"}, http.StatusNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e.call(t, tc.method, tc.path, tc.body, tc.want)
			})
		}
		if resp := e.Do(t, "POST", "/v1/organizations/acme/workspaces", e.AdminKey, `{"slug":`); resp.Status != http.StatusBadRequest {
			t.Fatalf("malformed JSON: %d %s", resp.Status, resp.Body)
		}

		e.Clock.Advance(time.Minute)
		upd := e.call(t, "PATCH", "/v1/organizations/acme/workspaces/"+id, map[string]string{"slug": "engineering", "name": "R&D"}, http.StatusOK)
		if upd["slug"] != "engineering" || upd["name"] != "R&D" || upd["id"] != id || upd["created_at"] != ws["created_at"] || upd["updated_at"] == ws["updated_at"] {
			t.Fatalf("PATCH: %v", upd)
		}
		e.call(t, "GET", "/v1/organizations/acme/workspaces/eng", nil, http.StatusNotFound)
		e.call(t, "GET", "/v1/organizations/acme/workspaces/engineering", nil, http.StatusOK)
		e.call(t, "DELETE", "/v1/organizations/acme/workspaces/engineering", nil, http.StatusNoContent)
		e.call(t, "GET", "/v1/organizations/acme/workspaces/"+id, nil, http.StatusNotFound)
		e.call(t, "DELETE", "/v1/organizations/acme/workspaces/"+id, nil, http.StatusNotFound)
		// The freed slug can be taken again.
		e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "engineering", "name": "Again"}, http.StatusCreated)
	})
}

func TestMembers(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		id := e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "Eng"}, http.StatusCreated)["id"].(string)
		base := "/v1/organizations/acme/workspaces/eng/members/"
		for _, role := range []string{"owner", "admin", "member"} {
			user := "user-" + role
			m := e.call(t, "PUT", base+user, map[string]string{"role": role}, http.StatusOK)
			want := map[string]any{"workspace_id": id, "user_id": user, "role": role, "created_at": m["created_at"], "updated_at": m["updated_at"]}
			if diff := cmp.Diff(want, m); diff != "" {
				t.Fatalf("PUT %s (-want +got):\n%s", role, diff)
			}
			if got := e.call(t, "GET", base+user, nil, http.StatusOK); !cmp.Equal(got, m) {
				t.Fatalf("GET %s: %v", user, got)
			}
		}
		// Changing a role keeps created_at.
		first := e.call(t, "GET", base+"user-member", nil, http.StatusOK)
		e.Clock.Advance(time.Minute)
		changed := e.call(t, "PUT", "/v1/organizations/"+e.acme+"/workspaces/"+id+"/members/user-member", map[string]string{"role": "admin"}, http.StatusOK)
		if changed["role"] != "admin" || changed["created_at"] != first["created_at"] || changed["updated_at"] == first["updated_at"] {
			t.Fatalf("role change: %v (was %v)", changed, first)
		}
		list := e.call(t, "GET", "/v1/organizations/acme/workspaces/eng/members", nil, http.StatusOK)["data"].([]any)
		roles := map[string]string{}
		for _, m := range list {
			roles[m.(map[string]any)["user_id"].(string)] = m.(map[string]any)["role"].(string)
		}
		if !cmp.Equal(roles, map[string]string{"user-owner": "owner", "user-admin": "admin", "user-member": "admin"}) {
			t.Fatalf("members: %v", roles)
		}

		for _, tc := range []struct {
			name string
			user string
			body any
		}{
			{"an unknown role", "u1", map[string]string{"role": "root"}},
			{"a capitalized role", "u1", map[string]string{"role": "Owner"}},
			{"an empty role", "u1", map[string]string{"role": ""}},
			{"no role", "u1", map[string]string{}},
			{"a role that is not a string", "u1", map[string]any{"role": 1}},
			{"an unknown field", "u1", map[string]string{"role": "member", "user_id": "u2"}},
			{"a user id with a space", "u%201", map[string]string{"role": "member"}},
			{"a 256-character user id", strings.Repeat("u", 256), map[string]string{"role": "member"}},
		} {
			t.Run(tc.name+" is 400", func(t *testing.T) {
				e.call(t, "PUT", base+tc.user, tc.body, http.StatusBadRequest)
			})
		}
		e.call(t, "GET", base+"u1", nil, http.StatusNotFound)
		e.call(t, "PUT", "/v1/organizations/acme/workspaces/nope/members/u1", map[string]string{"role": "member"}, http.StatusNotFound)
		e.call(t, "DELETE", base+"user-owner", nil, http.StatusNoContent)
		e.call(t, "GET", base+"user-owner", nil, http.StatusNotFound)
		e.call(t, "DELETE", base+"user-owner", nil, http.StatusNotFound)
	})
}

func TestWorkspacesOfAnotherOrgOrInstanceAreNotFound(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		ws := e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "Eng"}, http.StatusCreated)["id"].(string)
		e.call(t, "PUT", "/v1/organizations/acme/workspaces/eng/members/alice", map[string]string{"role": "owner"}, http.StatusOK)
		_, otherKey := e.NewInstance(t, "elsewhere")
		otherOrg := e.callWith(t, otherKey, "POST", "/v1/organizations", map[string]string{"slug": "acme", "name": "Acme"}, http.StatusCreated)["id"].(string)

		for _, tc := range []struct {
			name, key, org, ws string
		}{
			{"under another org by slug", e.AdminKey, "globex", "eng"},
			{"under another org by id", e.AdminKey, e.globex, ws},
			{"another instance's admin key by ids", otherKey, e.acme, ws},
			{"another instance's admin key by slugs", otherKey, "acme", "eng"},
			{"another instance's same-named org with this workspace's id", otherKey, otherOrg, ws},
		} {
			path := "/v1/organizations/" + tc.org + "/workspaces/" + tc.ws
			for _, route := range []struct {
				method, path string
				body         any
			}{
				{"GET", path, nil},
				{"PATCH", path, map[string]string{"name": "stolen"}},
				{"DELETE", path, nil},
				{"GET", path + "/members", nil},
				{"GET", path + "/members/alice", nil},
				{"PUT", path + "/members/mallory", map[string]string{"role": "owner"}},
				{"DELETE", path + "/members/alice", nil},
			} {
				t.Run(tc.name+" "+route.method+" "+route.path, func(t *testing.T) {
					e.callWith(t, tc.key, route.method, route.path, route.body, http.StatusNotFound)
				})
			}
		}
		if got := e.callWith(t, otherKey, "GET", "/v1/organizations/acme/workspaces", nil, http.StatusOK)["data"]; !cmp.Equal(got, []any{}) {
			t.Fatalf("another instance lists %v", got)
		}
		e.callWith(t, otherKey, "POST", "/v1/organizations/"+e.acme+"/workspaces", map[string]string{"slug": "x", "name": "x"}, http.StatusNotFound)
		got := e.call(t, "GET", "/v1/organizations/acme/workspaces/eng", nil, http.StatusOK)
		if got["name"] != "Eng" {
			t.Fatalf("the workspace was changed: %v", got)
		}
		if m := e.call(t, "GET", "/v1/organizations/acme/workspaces/eng/members", nil, http.StatusOK)["data"].([]any); len(m) != 1 {
			t.Fatalf("members changed: %v", m)
		}
	})
}

func TestWorkspaceEndpointsNeedTheAdminKey(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "Eng"}, http.StatusCreated)
		e.call(t, "PUT", "/v1/organizations/acme/workspaces/eng/members/alice", map[string]string{"role": "owner"}, http.StatusOK)
		token := e.pat(t, "alice", "eng")
		const path = "/v1/organizations/acme/workspaces"
		for _, route := range []struct {
			method, path string
			body         any
		}{
			{"POST", path, map[string]string{"slug": "x", "name": "x"}},
			{"GET", path, nil},
			{"GET", path + "/eng", nil},
			{"PATCH", path + "/eng", map[string]string{"name": "x"}},
			{"DELETE", path + "/eng", nil},
			{"GET", path + "/eng/members", nil},
			{"GET", path + "/eng/members/alice", nil},
			{"PUT", path + "/eng/members/mallory", map[string]string{"role": "owner"}},
			{"DELETE", path + "/eng/members/alice", nil},
			{"GET", "/v1/scopes", nil},
			{"PUT", "/v1/scopes", map[string]any{"scopes": []string{"admin"}}},
		} {
			t.Run("an owner's PAT "+route.method+" "+route.path, func(t *testing.T) {
				e.callWith(t, token, route.method, route.path, route.body, http.StatusForbidden)
			})
			t.Run("no credential "+route.method+" "+route.path, func(t *testing.T) {
				e.callWith(t, "", route.method, route.path, route.body, http.StatusUnauthorized)
			})
		}
		if got := e.verifyCode(t, token); got != "valid" {
			t.Fatalf("the PAT: %s", got)
		}
		e.noSecrets(t)
	})
}

func TestDeletingAWorkspaceRevokesItsPATs(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		for _, slug := range []string{"eng", "ops"} {
			e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": slug, "name": slug}, http.StatusCreated)
			for _, user := range []string{"alice", "bob"} {
				e.call(t, "PUT", "/v1/organizations/acme/workspaces/"+slug+"/members/"+user, map[string]string{"role": "member"}, http.StatusOK)
			}
		}
		aliceEng, bobEng := e.pat(t, "alice", "eng"), e.pat(t, "bob", "eng")
		aliceOps, aliceFree := e.pat(t, "alice", "ops"), e.pat(t, "alice", "")
		for _, tok := range []string{aliceEng, bobEng} {
			if got := e.verifyCode(t, tok); got != "valid" { // warms the cache
				t.Fatal(got)
			}
		}
		e.call(t, "DELETE", "/v1/organizations/acme/workspaces/eng", nil, http.StatusNoContent)
		for _, tc := range []struct {
			name, token, want string
		}{
			{"alice's token in the deleted workspace", aliceEng, "revoked"},
			{"bob's token in the deleted workspace", bobEng, "revoked"},
			{"alice's token in another workspace", aliceOps, "valid"},
			{"alice's unbound token", aliceFree, "valid"},
		} {
			if got := e.verifyCode(t, tc.token); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
			}
		}
		// A new workspace under the same slug revives nothing.
		e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "eng"}, http.StatusCreated)
		e.call(t, "PUT", "/v1/organizations/acme/workspaces/eng/members/alice", map[string]string{"role": "owner"}, http.StatusOK)
		if got := e.verifyCode(t, aliceEng); got != "revoked" {
			t.Fatalf("after recreating the slug: %s", got)
		}
		list := e.DoWith(t, "GET", "/spatio/v1/organizations/acme/workspaces/eng/tokens", nil, http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {"alice"}})
		if list.Status != http.StatusOK || len(list.JSON(t)["tokens"].([]any)) != 0 {
			t.Fatalf("the recreated workspace lists: %d %s", list.Status, list.Body)
		}
		audit := e.call(t, "GET", "/v1/audit_events?action=workspace.delete", nil, http.StatusOK)["data"].([]any)
		if len(audit) != 1 || fmt.Sprint(audit[0].(map[string]any)["detail"].(map[string]any)["pats_revoked"]) != "2" {
			t.Fatalf("audit of the delete: %v", audit)
		}
		e.noSecrets(t)
	})
}

func TestRemovingAMemberRevokesTheirPATsInIt(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		for _, slug := range []string{"eng", "ops"} {
			e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": slug, "name": slug}, http.StatusCreated)
			for _, user := range []string{"alice", "bob"} {
				e.call(t, "PUT", "/v1/organizations/acme/workspaces/"+slug+"/members/"+user, map[string]string{"role": "admin"}, http.StatusOK)
			}
		}
		aliceEng, bobEng := e.pat(t, "alice", "eng"), e.pat(t, "bob", "eng")
		aliceOps, aliceFree := e.pat(t, "alice", "ops"), e.pat(t, "alice", "")
		if got := e.verifyCode(t, aliceEng); got != "valid" { // warms the cache
			t.Fatal(got)
		}
		e.call(t, "DELETE", "/v1/organizations/acme/workspaces/eng/members/alice", nil, http.StatusNoContent)
		for _, tc := range []struct {
			name, token, want string
		}{
			{"her token in the workspace she left", aliceEng, "revoked"},
			{"another member's token there", bobEng, "valid"},
			{"her token in another workspace", aliceOps, "valid"},
			{"her unbound token", aliceFree, "valid"},
		} {
			if got := e.verifyCode(t, tc.token); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
			}
		}
		spatio := func(user, method, path string) apitest.Response {
			return e.DoWith(t, method, "/spatio/v1/organizations/acme/workspaces/eng/tokens"+path, map[string]any{"name": "x"},
				http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {user}})
		}
		if resp := spatio("alice", "GET", ""); resp.Status != http.StatusForbidden {
			t.Fatalf("a removed member lists: %d %s", resp.Status, resp.Body)
		}
		// Coming back revives nothing.
		e.call(t, "PUT", "/v1/organizations/acme/workspaces/eng/members/alice", map[string]string{"role": "member"}, http.StatusOK)
		if got := e.verifyCode(t, aliceEng); got != "revoked" {
			t.Fatalf("after re-adding her: %s", got)
		}
		if resp := spatio("alice", "GET", ""); resp.Status != http.StatusOK || len(resp.JSON(t)["tokens"].([]any)) != 0 {
			t.Fatalf("after re-adding her: %d %s", resp.Status, resp.Body)
		}
		e.noSecrets(t)
	})
}

func TestScopeCatalogue(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		builtin := []any{"keyward:tokens", "keyward:clients"}
		if got := e.call(t, "GET", "/v1/scopes", nil, http.StatusOK); !cmp.Equal(got, map[string]any{"scopes": []any{"read", "write"}, "builtin": builtin}) {
			t.Fatalf("the default catalogue: %v", got)
		}
		spatioScopes := func(key string) []any {
			t.Helper()
			resp := e.DoWith(t, "GET", "/spatio/v1/tokens/scopes", nil, http.Header{"Authorization": {"Bearer " + key}, "X-User-ID": {"alice"}})
			if resp.Status != http.StatusOK {
				t.Fatalf("spatio scopes: %d %s", resp.Status, resp.Body)
			}
			return resp.JSON(t)["scopes"].([]any)
		}
		old := e.pat(t, "alice", "") // holds read

		two00 := make([]string, 200)
		for i := range two00 {
			two00[i] = fmt.Sprintf("s%d", i)
		}
		for _, tc := range []struct {
			name   string
			scopes []string
			want   []any
		}{
			{"a new catalogue", []string{"notes:read", "notes:write", "files.read", "a_b-c"}, []any{"notes:read", "notes:write", "files.read", "a_b-c"}},
			{"200 scopes", two00, nil},
			{"a 64-character scope", []string{"a" + strings.Repeat("b", 63)}, []any{"a" + strings.Repeat("b", 63)}},
			{"an empty catalogue", []string{}, []any{}},
			{"the catalogue with read back", []string{"read", "notes:read"}, []any{"read", "notes:read"}},
		} {
			t.Run(tc.name+" is 200", func(t *testing.T) {
				got := e.call(t, "PUT", "/v1/scopes", map[string]any{"scopes": tc.scopes}, http.StatusOK)
				want := tc.want
				if want == nil {
					for _, s := range tc.scopes {
						want = append(want, s)
					}
				}
				if !cmp.Equal(got, map[string]any{"scopes": want, "builtin": builtin}) {
					t.Fatalf("PUT: %v", got)
				}
				if got := e.call(t, "GET", "/v1/scopes", nil, http.StatusOK)["scopes"]; !cmp.Equal(got, want) {
					t.Fatalf("GET after PUT: %v", got)
				}
				if got := spatioScopes(e.AdminKey); !cmp.Equal(got, append(append([]any{}, want...), builtin...)) {
					t.Fatalf("Spatio's scopes after PUT: %v", got)
				}
			})
		}

		before := e.call(t, "GET", "/v1/scopes", nil, http.StatusOK)
		two01 := append(append([]string{}, two00...), "s200")
		for _, tc := range []struct {
			name string
			body any
		}{
			{"an uppercase scope", map[string]any{"scopes": []string{"Read"}}},
			{"a scope starting with a digit", map[string]any{"scopes": []string{"1read"}}},
			{"a scope starting with a colon", map[string]any{"scopes": []string{":read"}}},
			{"a scope with a space", map[string]any{"scopes": []string{"read all"}}},
			{"a scope with a slash", map[string]any{"scopes": []string{"read/all"}}},
			{"an empty scope", map[string]any{"scopes": []string{""}}},
			{"a 65-character scope", map[string]any{"scopes": []string{"a" + strings.Repeat("b", 64)}}},
			{"201 scopes", map[string]any{"scopes": two01}},
			{"a duplicate", map[string]any{"scopes": []string{"read", "write", "read"}}},
			{"a built-in scope", map[string]any{"scopes": []string{"read", "keyward:tokens"}}},
			{"another keyward: scope", map[string]any{"scopes": []string{"keyward:admin"}}},
			{"a bare keyward: prefix", map[string]any{"scopes": []string{"keyward:"}}},
			{"no scopes", map[string]any{}},
			{"null scopes", `{"scopes":null}`},
			{"scopes as a string", `{"scopes":"read"}`},
			{"a scope that is not a string", `{"scopes":["read",1]}`},
			{"an unknown field", map[string]any{"scopes": []string{"read"}, "builtin": []string{"x"}}},
			{"malformed JSON", `{"scopes":[`},
		} {
			t.Run(tc.name+" is 400", func(t *testing.T) {
				e.call(t, "PUT", "/v1/scopes", tc.body, http.StatusBadRequest)
			})
		}
		if got := e.call(t, "GET", "/v1/scopes", nil, http.StatusOK); !cmp.Equal(got, before) {
			t.Fatalf("refused PUTs changed the catalogue: %v, was %v", got, before)
		}

		// Tokens keep the scopes they were made with; new tokens are
		// checked against the new catalogue.
		e.call(t, "PUT", "/v1/scopes", map[string]any{"scopes": []string{"notes:read"}}, http.StatusOK)
		v := e.call(t, "POST", "/v1/verify", map[string]any{"token": old, "required_scopes": []string{"read"}}, http.StatusOK)
		if v["code"] != "valid" || !cmp.Equal(v["scopes"], []any{"read"}) {
			t.Fatalf("an older token after the catalogue changed: %v", v)
		}
		create := func(scopes ...string) apitest.Response {
			return e.DoWith(t, "POST", "/spatio/v1/tokens", map[string]any{"name": "x", "scopes": scopes},
				http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {"alice"}})
		}
		if resp := create("read"); resp.Status != http.StatusBadRequest || resp.JSON(t)["code"] != "invalid_scope" {
			t.Fatalf("a scope no longer in the catalogue: %d %s", resp.Status, resp.Body)
		}
		if resp := create("notes:read", "keyward:clients"); resp.Status != http.StatusCreated {
			t.Fatalf("a scope of the new catalogue: %d %s", resp.Status, resp.Body)
		} else {
			e.Remember(resp.JSON(t)["token"].(string))
		}

		// Each instance has its own catalogue.
		_, otherKey := e.NewInstance(t, "elsewhere")
		if got := e.callWith(t, otherKey, "GET", "/v1/scopes", nil, http.StatusOK)["scopes"]; !cmp.Equal(got, []any{"read", "write"}) {
			t.Fatalf("another instance's catalogue: %v", got)
		}
		if got := spatioScopes(otherKey); !cmp.Equal(got, []any{"read", "write", "keyward:tokens", "keyward:clients"}) {
			t.Fatalf("another instance's Spatio scopes: %v", got)
		}
		audit := e.call(t, "GET", "/v1/audit_events?action=scopes.update", nil, http.StatusOK)
		if n := audit["total_count"].(float64); n < 6 {
			t.Fatalf("scope updates audited %v times", n)
		}
		e.noSecrets(t)
	})
}

func TestDeletingAnOrganizationRevokesItsWorkspacesPATs(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "eng"}, http.StatusCreated)
		e.call(t, "PUT", "/v1/organizations/acme/workspaces/eng/members/alice", map[string]string{"role": "member"}, http.StatusOK)
		bound, free := e.pat(t, "alice", "eng"), e.pat(t, "alice", "")
		if got := e.verifyCode(t, bound); got != "valid" {
			t.Fatal(got)
		}
		e.call(t, "DELETE", "/v1/organizations/acme", nil, http.StatusNoContent)
		if got := e.verifyCode(t, bound); got != "revoked" {
			t.Errorf("a PAT bound to a workspace of a deleted organization: %s, want revoked", got)
		}
		if got := e.verifyCode(t, free); got != "valid" {
			t.Errorf("an unbound PAT: %s, want valid", got)
		}
	})
}
