package httpapi_test

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// nativeFamily describes one native family for the shared guarantees:
// create/list/get/remove work, lists walk in cursor pages, secrets stay
// out of lists and reads, another instance sees a 404, bad input is a 400
// naming the parameter and writes nothing.
type nativeFamily struct {
	name string
	// setup prepares what the family needs and returns the key that
	// creates (the admin key unless a machine mints).
	setup    func(t *testing.T, e *apitest.Env) (createKey string)
	create   func(i int) (path string, body any)
	idField  string // "id" unless set
	secret   string // the create answer's secret field
	list     string
	item     string // with {id}; "" when the family has no read
	bad      func() (path string, body any, param string)
	remove   string // "METHOD path" with {id}
	removeOK int
}

const familyUser = "user_alice"

// What a family's setup made, for its paths ({machine}, {org}).
var machineForTokens, orgForTokens string

func fill(path string) string {
	return strings.NewReplacer("{machine}", machineForTokens, "{org}", orgForTokens).Replace(path)
}

func nativeFamilies() []nativeFamily {
	return []nativeFamily{
		{
			name:   "machines",
			create: func(i int) (string, any) { return "/v1/machines", map[string]any{"name": fmt.Sprintf("m%d", i)} },
			secret: "secret_key", list: "/v1/machines", item: "/v1/machines/{id}",
			bad:    func() (string, any, string) { return "/v1/machines", map[string]any{"name": 5}, "name" },
			remove: "DELETE /v1/machines/{id}", removeOK: 204,
		},
		{
			name: "m2m_tokens",
			setup: func(t *testing.T, e *apitest.Env) string {
				m := mustDo(t, e, "POST", "/v1/machines", e.AdminKey, map[string]any{"name": "minter"}, 201)
				machineForTokens = m["id"].(string)
				return m["secret_key"].(string)
			},
			create: func(i int) (string, any) {
				return "/v1/m2m_tokens", map[string]any{"claims": map[string]any{"n": i}}
			},
			secret: "token", list: "/v1/machines/{machine}/m2m_tokens",
			bad: func() (string, any, string) {
				return "/v1/m2m_tokens", map[string]any{"token_format": "paper"}, "token_format"
			},
			remove: "POST /v1/m2m_tokens/{id}/revoke", removeOK: 200,
		},
		{
			name: "api_keys",
			create: func(i int) (string, any) {
				return "/v1/api_keys", map[string]any{"name": fmt.Sprintf("key%d", i), "subject": permAPIKeySubject}
			},
			secret: "secret", list: "/v1/api_keys?subject=" + permAPIKeySubject, item: "/v1/api_keys/{id}",
			bad: func() (string, any, string) {
				return "/v1/api_keys", map[string]any{"name": "k", "subject": permAPIKeySubject, "scopes": "all"}, "scopes"
			},
			remove: "POST /v1/api_keys/{id}/revoke", removeOK: 200,
		},
		{
			name: "actor_tokens",
			create: func(i int) (string, any) {
				return "/v1/actor_tokens", map[string]any{"user_id": familyUser, "actor": map[string]any{"sub": fmt.Sprintf("admin_%d", i)}}
			},
			secret: "token", list: "/v1/actor_tokens", item: "/v1/actor_tokens/{id}",
			bad: func() (string, any, string) {
				return "/v1/actor_tokens", map[string]any{"user_id": familyUser}, "actor"
			},
			remove: "POST /v1/actor_tokens/{id}/revoke", removeOK: 200,
		},
		{
			name: "org_tokens",
			setup: func(t *testing.T, e *apitest.Env) string {
				orgForTokens = mustDo(t, e, "POST", "/v1/organizations", e.AdminKey, map[string]any{"slug": "acme", "name": "Acme"}, 201)["id"].(string)
				return e.AdminKey
			},
			create: func(i int) (string, any) {
				return "/v1/organizations/{org}/tokens", map[string]any{"name": fmt.Sprintf("t%d", i), "privileges": []map[string]string{{"scope": "org", "role": "read"}}}
			},
			secret: "key", list: "/v1/organizations/{org}/tokens", item: "/v1/organizations/{org}/tokens/{id}",
			bad: func() (string, any, string) {
				return "/v1/organizations/{org}/tokens", map[string]any{"name": "t", "privileges": "all"}, "privileges"
			},
			remove: "DELETE /v1/organizations/{org}/tokens/{id}", removeOK: 204,
		},
		{
			name: "pats",
			create: func(i int) (string, any) {
				return "/v1/users/" + familyUser + "/pats", map[string]any{"name": fmt.Sprintf("p%d", i)}
			},
			secret: "token", list: "/v1/users/" + familyUser + "/pats",
			bad: func() (string, any, string) {
				return "/v1/users/" + familyUser + "/pats", map[string]any{"name": "p", "expires_at": "soon"}, "expires_at"
			},
			remove: "POST /v1/users/" + familyUser + "/pats/{id}/revoke", removeOK: 204,
		},
		{
			name: "clients",
			create: func(i int) (string, any) {
				return "/v1/users/" + familyUser + "/clients", map[string]any{"client_id": fmt.Sprintf("host%d.example.org", i), "hostname": fmt.Sprintf("host%d.example.org", i)}
			},
			idField: "client_id", list: "/v1/users/" + familyUser + "/clients", item: "/v1/users/" + familyUser + "/clients/{id}",
			bad: func() (string, any, string) {
				return "/v1/users/" + familyUser + "/clients", map[string]any{"hostname": "h.example.org"}, "client_id"
			},
			remove: "DELETE /v1/users/" + familyUser + "/clients/{id}", removeOK: 204,
		},
	}
}

func mustDo(t *testing.T, e *apitest.Env, method, path, key string, body any, want int) map[string]any {
	t.Helper()
	resp := e.Do(t, method, path, key, body)
	if resp.Status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.Status, resp.Body, want)
	}
	if want == http.StatusNoContent {
		return nil
	}
	return resp.JSON(t)
}

func TestNativeFamilies(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		for _, f := range nativeFamilies() {
			t.Run(f.name, func(t *testing.T) { checkNativeFamily(t, s, f) })
		}
	})
}

func checkNativeFamily(t *testing.T, s *sqlstore.Store, f nativeFamily) {
	e := apitest.Start(t, s)
	key := e.AdminKey
	if f.setup != nil {
		key = f.setup(t, e)
		e.Remember(key)
	}
	idField := f.idField
	if idField == "" {
		idField = "id"
	}
	list := fill(f.list)
	item := func(id string) string { return fill(strings.ReplaceAll(f.item, "{id}", url.PathEscape(id))) }

	// Create five; every create answer holds the secret (if any).
	const n = 5
	var ids, secrets []string
	for i := range n {
		path, body := f.create(i)
		got := mustDo(t, e, "POST", fill(path), key, body, 201)
		ids = append(ids, got[idField].(string))
		if f.secret != "" {
			secret, _ := got[f.secret].(string)
			if secret == "" {
				t.Fatalf("create answer has no %s: %v", f.secret, got)
			}
			secrets = append(secrets, secret)
			e.Remember(secret)
		}
	}
	noSecret := func(what string, body []byte) {
		t.Helper()
		for _, secret := range secrets {
			if strings.Contains(string(body), secret) {
				t.Errorf("%s shows a secret: %s", what, body)
			}
		}
	}

	// Walk the list two at a time: every created item exactly once.
	seen := map[string]int{}
	pages := 0
	for cursor := ""; ; pages++ {
		q := "limit=2"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		sep := "?"
		if strings.Contains(list, "?") {
			sep = "&"
		}
		resp := e.Do(t, "GET", list+sep+q, e.AdminKey, nil)
		if resp.Status != 200 {
			t.Fatalf("list: %d %s", resp.Status, resp.Body)
		}
		noSecret("the list", resp.Body)
		page := resp.JSON(t)
		data := page["data"].([]any)
		if len(data) > 2 {
			t.Fatalf("page of %d, limit 2", len(data))
		}
		for _, d := range data {
			seen[d.(map[string]any)[idField].(string)]++
		}
		next, ok := page["next_cursor"].(string)
		if !ok {
			if page["next_cursor"] != nil {
				t.Fatalf("next_cursor = %v", page["next_cursor"])
			}
			break
		}
		cursor = next
		if pages > n {
			t.Fatal("the list does not end")
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("%s appears %d times in the walk (%v)", id, seen[id], seen)
		}
	}
	if pages != 2 { // 2 + 2 + 1
		t.Errorf("walked %d pages after the first, want 2", pages)
	}
	for _, q := range []struct{ query, param string }{{"cursor=bm9wZQ", "cursor"}, {"cursor=%21%21", "cursor"}, {"limit=0", "limit"}, {"limit=101", "limit"}, {"limit=x", "limit"}} {
		sep := "?"
		if strings.Contains(list, "?") {
			sep = "&"
		}
		resp := e.Do(t, "GET", list+sep+q.query, e.AdminKey, nil)
		assertParamError(t, "list ?"+q.query, resp, q.param)
	}

	// Reads show no secret; another instance sees a 404.
	_, otherKey := e.NewInstance(t, "elsewhere")
	if f.item != "" {
		resp := e.Do(t, "GET", item(ids[0]), e.AdminKey, nil)
		if resp.Status != 200 || resp.JSON(t)[idField] != ids[0] {
			t.Fatalf("get: %d %s", resp.Status, resp.Body)
		}
		noSecret("a read", resp.Body)
		if resp := e.Do(t, "GET", item(ids[0]), otherKey, nil); resp.Status != 404 {
			t.Errorf("another instance reads it: %d %s", resp.Status, resp.Body)
		}
	}
	method, removePath, _ := strings.Cut(f.remove, " ")
	removeAt := func(id string) string { return fill(strings.ReplaceAll(removePath, "{id}", url.PathEscape(id))) }
	before := digests(t, s)
	if resp := e.Do(t, method, removeAt(ids[1]), otherKey, map[string]any{}); resp.Status != 404 {
		t.Errorf("another instance removes it: %d %s", resp.Status, resp.Body)
	}

	// Bad input: a 400 naming the parameter, and nothing written.
	path, body, param := f.bad()
	assertParamError(t, "bad create", e.Do(t, "POST", fill(path), key, body), param)
	if after := digests(t, s); !maps.Equal(before, after) {
		for table := range before {
			if before[table] != after[table] {
				t.Errorf("a refused request changed table %s", table)
			}
		}
	}

	// Remove one.
	if resp := e.Do(t, method, removeAt(ids[1]), key, map[string]any{}); resp.Status != f.removeOK {
		t.Fatalf("%s: %d %s, want %d", f.remove, resp.Status, resp.Body, f.removeOK)
	}
	if f.item != "" && method == "DELETE" {
		if resp := e.Do(t, "GET", item(ids[1]), e.AdminKey, nil); resp.Status != 404 {
			t.Errorf("read after delete: %d", resp.Status)
		}
	}
	if logs := e.Logs.String(); f.secret != "" {
		for _, secret := range secrets {
			if strings.Contains(logs, secret) {
				t.Errorf("a secret is in the logs")
			}
		}
	}
}

func assertParamError(t *testing.T, what string, resp apitest.Response, param string) {
	t.Helper()
	if resp.Status != 400 {
		t.Errorf("%s: %d %s, want 400", what, resp.Status, resp.Body)
		return
	}
	e, _ := resp.JSON(t)["error"].(map[string]any)
	if e["param"] != param {
		t.Errorf("%s: the error names %v, want %s: %s", what, e["param"], param, resp.Body)
	}
}

// The family-specific operations: secret reads and rotation, scopes,
// updates, and the refusals particular to each.
func TestNativeFamilyOperations(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		admin := e.AdminKey
		do := func(method, path, key string, body any, want int) map[string]any {
			t.Helper()
			return mustDo(t, e, method, path, key, body, want)
		}

		// Machines: the secret read answers the create's key; a rotation
		// changes it; scopes come and go.
		api := do("POST", "/v1/machines", admin, map[string]any{"name": "api"}, 201)
		worker := do("POST", "/v1/machines", admin, map[string]any{"name": "worker"}, 201)
		apiID, workerID := api["id"].(string), worker["id"].(string)
		e.Remember(api["secret_key"].(string), worker["secret_key"].(string))
		if got := do("GET", "/v1/machines/"+apiID+"/secret_key", admin, nil, 200); got["secret_key"] != api["secret_key"] {
			t.Errorf("secret read: %v", got)
		}
		rotated := do("POST", "/v1/machines/"+apiID+"/secret_key/rotate", admin, map[string]any{"previous_token_ttl": 0}, 200)["secret_key"].(string)
		e.Remember(rotated)
		if rotated == api["secret_key"] {
			t.Error("rotation kept the key")
		}
		do("POST", "/v1/machines/"+workerID+"/scopes", admin, map[string]any{"to_machine_id": apiID}, 201)
		if got := do("GET", "/v1/machines/"+workerID, admin, nil, 200)["scoped_machines"].([]any); len(got) != 1 {
			t.Errorf("scoped machines after add: %v", got)
		}
		do("DELETE", "/v1/machines/"+workerID+"/scopes/"+apiID, admin, nil, 204)
		if got := do("GET", "/v1/machines/"+workerID, admin, nil, 200)["scoped_machines"].([]any); len(got) != 0 {
			t.Errorf("scoped machines after remove: %v", got)
		}
		if got := do("PATCH", "/v1/machines/"+apiID, admin, map[string]any{"name": "api2"}, 200); got["name"] != "api2" {
			t.Errorf("rename: %v", got)
		}
		// Only a machine mints; its token verifies.
		do("POST", "/v1/m2m_tokens", admin, map[string]any{}, 403)
		tok := do("POST", "/v1/m2m_tokens", worker["secret_key"].(string), map[string]any{}, 201)["token"].(string)
		e.Remember(tok)
		if got := do("POST", "/v1/verify", admin, map[string]any{"token": tok}, 200); got["valid"] != true {
			t.Errorf("verify a minted token: %v", got)
		}

		// API keys: the secret read, an update.
		key := do("POST", "/v1/api_keys", admin, map[string]any{"name": "reports", "subject": permAPIKeySubject}, 201)
		e.Remember(key["secret"].(string))
		if got := do("GET", "/v1/api_keys/"+key["id"].(string)+"/secret", admin, nil, 200); got["secret"] != key["secret"] {
			t.Errorf("API key secret read: %v", got)
		}
		if got := do("PATCH", "/v1/api_keys/"+key["id"].(string), admin, map[string]any{"description": "weekly"}, 200); got["description"] != "weekly" {
			t.Errorf("API key update: %v", got)
		}

		// Actor tokens: a revoked ticket cannot be revoked again.
		act := do("POST", "/v1/actor_tokens", admin, map[string]any{"user_id": familyUser, "actor": map[string]any{"sub": "admin_1"}}, 201)
		e.Remember(act["token"].(string))
		do("POST", "/v1/actor_tokens/"+act["id"].(string)+"/revoke", admin, nil, 200)
		do("POST", "/v1/actor_tokens/"+act["id"].(string)+"/revoke", admin, nil, 409)

		// Org tokens: an update shows in the read.
		org := do("POST", "/v1/organizations", admin, map[string]any{"slug": "acme", "name": "Acme"}, 201)["id"].(string)
		ot := do("POST", "/v1/organizations/acme/tokens", admin, map[string]any{"name": "ci", "privileges": []map[string]string{{"scope": "org", "role": "read"}}}, 201)
		e.Remember(ot["key"].(string))
		if got := do("PATCH", "/v1/organizations/"+org+"/tokens/"+ot["id"].(string), admin, map[string]any{"name": "cd"}, 200); got["name"] != "cd" || got["key"] != nil {
			t.Errorf("org token update: %v", got)
		}

		// PATs: a PAT acts as its own user only.
		pat := do("POST", "/v1/users/"+familyUser+"/pats", admin, map[string]any{"name": "laptop"}, 201)
		patToken := pat["token"].(string)
		e.Remember(patToken)
		if got := do("PATCH", "/v1/users/"+familyUser+"/pats/"+pat["id"].(string), admin, map[string]any{"description": "mine"}, 200); got["description"] != "mine" {
			t.Errorf("PAT update: %v", got)
		}
		if got := do("GET", "/v1/users/"+familyUser+"/pats", patToken, nil, 200)["data"].([]any); len(got) != 1 {
			t.Errorf("a PAT lists its user's tokens: %v", got)
		}
		do("GET", "/v1/users/user_bob/pats", patToken, nil, 404)
		do("GET", "/v1/users/user%20bob/pats", admin, nil, 400)
		do("POST", "/v1/users/"+familyUser+"/pats/"+pat["id"].(string)+"/revoke", admin, nil, 204)

		// A wrong method on a family's route is the JSON 405 with Allow.
		resp := e.Do(t, "DELETE", "/v1/api_keys", admin, nil)
		if resp.Status != 405 || resp.Header.Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("DELETE /v1/api_keys: %d %q %s", resp.Status, resp.Header.Get("Allow"), resp.Body)
		}
	})
}

// walkIDs walks a native list two at a time and returns the ids (of
// field) in order, failing on a page larger than asked.
func walkIDs(t *testing.T, e *apitest.Env, list, field string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for range 50 {
		sep := "?"
		if strings.Contains(list, "?") {
			sep = "&"
		}
		q := list + sep + "limit=2"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		page := mustDo(t, e, "GET", q, e.AdminKey, nil, 200)
		data := page["data"].([]any)
		if len(data) > 2 {
			t.Fatalf("%s: a page of %d, limit 2", list, len(data))
		}
		for _, d := range data {
			ids = append(ids, d.(map[string]any)[field].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			return ids
		}
		cursor = next
	}
	t.Fatalf("%s does not end", list)
	return nil
}

// The lists that predate cursors walk the same way.
func TestNativeListsThatPredateCursorsWalk(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		do := func(method, path string, body any) map[string]any {
			t.Helper()
			return mustDo(t, e, method, path, e.AdminKey, body, 201)
		}
		for i := range 5 {
			do("POST", "/v1/organizations", map[string]any{"slug": fmt.Sprintf("org%d", i), "name": "O"})
			do("POST", "/v1/organizations/org0/sites", map[string]any{"name": fmt.Sprintf("s%d", i)})
			do("POST", "/v1/organizations/org0/sitegroups", map[string]any{"name": fmt.Sprintf("g%d", i)})
			do("POST", "/v1/organizations/org0/workspaces", map[string]any{"slug": fmt.Sprintf("w%d", i), "name": "W"})
			mustDo(t, e, "PUT", fmt.Sprintf("/v1/organizations/org0/workspaces/w0/members/user_%d", i), e.AdminKey, map[string]any{"role": "member"}, 200)
			e.Remember(do("POST", "/v1/admin_keys", map[string]any{"name": fmt.Sprintf("k%d", i), "permissions": []string{"verify"}})["secret"].(string))
		}
		for _, c := range []struct {
			list, field string
			want        int
		}{
			{"/v1/organizations", "id", 5},
			{"/v1/organizations/org0/sites", "id", 5},
			{"/v1/organizations/org0/sitegroups", "id", 5},
			{"/v1/organizations/org0/workspaces", "id", 5},
			{"/v1/organizations/org0/workspaces/w0/members", "user_id", 5},
			{"/v1/admin_keys", "id", 6}, // the instance's own key too
			{"/v1/audit_events?action=organization.create", "id", 5},
		} {
			ids := walkIDs(t, e, c.list, c.field)
			seen := map[string]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Errorf("%s: %s twice", c.list, id)
				}
				seen[id] = true
			}
			if len(ids) != c.want {
				t.Errorf("%s: walked %d, want %d", c.list, len(ids), c.want)
			}
			assertParamError(t, c.list+" bad cursor", e.Do(t, "GET", c.list+map[bool]string{true: "&", false: "?"}[strings.Contains(c.list, "?")]+"cursor=x", e.AdminKey, nil), "cursor")
		}
		assertParamError(t, "cursor with offset", e.Do(t, "GET", "/v1/organizations?offset=1&cursor="+url.QueryEscape(walkCursor(t, e)), e.AdminKey, nil), "cursor")
	})
}

func walkCursor(t *testing.T, e *apitest.Env) string {
	t.Helper()
	c, _ := mustDo(t, e, "GET", "/v1/organizations?limit=1", e.AdminKey, nil, 200)["next_cursor"].(string)
	return c
}
