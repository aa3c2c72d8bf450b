package freezer_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

const clients = "/freezer/v1/clients"

// as calls the Freezer surface with the admin key acting for user, as
// Keystone's middleware would present it.
func as(t *testing.T, e *apitest.Env, user, method, path string, body any) apitest.Response {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + e.AdminKey}}
	if user != "" {
		h.Set("X-User-ID", user)
	}
	return e.DoWith(t, method, path, body, h)
}

func register(t *testing.T, e *apitest.Env, user string, doc map[string]any) {
	t.Helper()
	resp := as(t, e, user, "POST", clients, doc)
	if resp.Status != http.StatusCreated || resp.JSON(t)["client_id"] != doc["client_id"] {
		t.Fatalf("register %v: %d %s", doc["client_id"], resp.Status, resp.Body)
	}
}

func ids(t *testing.T, resp apitest.Response) []string {
	t.Helper()
	if resp.Status != 200 {
		t.Fatalf("list: %d %s", resp.Status, resp.Body)
	}
	out := []string{}
	for _, entry := range resp.JSON(t)["clients"].([]any) {
		out = append(out, entry.(map[string]any)["client"].(map[string]any)["client_id"].(string))
	}
	return out
}

func TestClientLifecycle(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		doc := map[string]any{
			"client_id": "752d8cd43d654e7a840bbfd277ce41af_szaher01", "hostname": "szaher01.example.org",
			"description": "backup agent", "supported_actions": []string{"backup", "restore"},
			"supported_engines": []string{"tar"}, "config_id": "cfg-7", "labels": map[string]string{"env": "prod"},
		}
		register(t, e, "alice", doc)

		show := as(t, e, "alice", "GET", clients+"/752d8cd43d654e7a840bbfd277ce41af_szaher01", nil)
		if show.Status != 200 {
			t.Fatalf("show: %d %s", show.Status, show.Body)
		}
		entry := show.JSON(t)
		client := entry["client"].(map[string]any)
		if entry["user_id"] != "alice" || client["config_id"] != "cfg-7" || client["labels"].(map[string]any)["env"] != "prod" {
			t.Fatalf("show lost fields: %s", show.Body)
		}
		if u, _ := client["uuid"].(string); len(u) != 32 || strings.Trim(u, "0123456789abcdef") != "" {
			t.Fatalf("uuid %q, want 32 hex", client["uuid"])
		}

		dup := as(t, e, "alice", "POST", clients, doc)
		if dup.Status != http.StatusConflict || dup.JSON(t)["title"] == nil || dup.JSON(t)["description"] != "Client already registered with ID 752d8cd43d654e7a840bbfd277ce41af_szaher01" {
			t.Fatalf("duplicate: %d %s", dup.Status, dup.Body)
		}
		register(t, e, "bob", doc) // the same client_id for another user is another client

		del := as(t, e, "alice", "DELETE", clients+"/752d8cd43d654e7a840bbfd277ce41af_szaher01", nil)
		if del.Status != http.StatusNoContent || len(del.Body) != 0 {
			t.Fatalf("delete: %d %q", del.Status, del.Body)
		}
		gone := as(t, e, "alice", "GET", clients+"/752d8cd43d654e7a840bbfd277ce41af_szaher01", nil)
		if gone.Status != 404 || len(gone.Body) != 0 {
			t.Fatalf("show after delete: %d %q, want a bare 404", gone.Status, gone.Body)
		}
		again := as(t, e, "alice", "DELETE", clients+"/752d8cd43d654e7a840bbfd277ce41af_szaher01", nil)
		body := again.JSON(t)
		if again.Status != 404 || body["title"] != "Not Found" || body["description"] != "No Client found with ID:752d8cd43d654e7a840bbfd277ce41af_szaher01" {
			t.Fatalf("delete twice: %d %s", again.Status, again.Body)
		}
		if as(t, e, "bob", "GET", clients+"/752d8cd43d654e7a840bbfd277ce41af_szaher01", nil).Status != 200 {
			t.Fatal("deleting alice's client removed bob's")
		}
	})
}

func TestOneUserNeverReachesAnothersClients(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		register(t, e, "alice", map[string]any{"client_id": "alice-host"})
		if got := ids(t, as(t, e, "bob", "GET", clients, nil)); len(got) != 0 {
			t.Fatalf("bob lists %v", got)
		}
		if got := ids(t, as(t, e, "bob", "GET", clients, map[string]any{"match": []map[string]string{{"_all": "alice"}}})); len(got) != 0 {
			t.Fatalf("bob finds %v by search", got)
		}
		if resp := as(t, e, "bob", "GET", clients+"/alice-host", nil); resp.Status != 404 || len(resp.Body) != 0 {
			t.Fatalf("bob shows alice's client: %d %s", resp.Status, resp.Body)
		}
		if resp := as(t, e, "bob", "DELETE", clients+"/alice-host", nil); resp.Status != 404 {
			t.Fatalf("bob deletes alice's client: %d", resp.Status)
		}
		_, otherKey := e.NewInstance(t, "other")
		h := http.Header{"Authorization": {"Bearer " + otherKey}, "X-User-ID": {"alice"}}
		if resp := e.DoWith(t, "GET", clients+"/alice-host", nil, h); resp.Status != 404 {
			t.Fatalf("another instance's alice shows the client: %d", resp.Status)
		}
		if got := ids(t, as(t, e, "alice", "GET", clients, nil)); !cmp.Equal(got, []string{"alice-host"}) {
			t.Fatalf("alice's clients after bob's attempts: %v", got)
		}
	})
}

func TestListSearchAndPaging(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		for _, c := range []map[string]any{
			{"client_id": "web-1", "hostname": "web-1.example.org", "description": "Frontend web server", "supported_actions": []string{"backup"}, "labels": map[string]string{"env": "prod", "tier": "web"}},
			{"client_id": "web-2", "hostname": "web-2.example.org", "description": "Frontend canary", "supported_actions": []string{"backup", "restore"}, "labels": map[string]string{"env": "staging", "tier": "web"}},
			{"client_id": "proj_db-1", "hostname": "db-1.example.org", "description": "Database", "supported_actions": []string{"restore"}, "labels": map[string]string{"env": "prod", "tier": "db"}},
		} {
			e.Clock.Advance(time.Second)
			register(t, e, "alice", c)
		}
		for _, tc := range []struct {
			name   string
			search any
			want   []string
		}{
			{"no search lists all in registration order", nil, []string{"web-1", "web-2", "proj_db-1"}},
			{"match on a top-level key", map[string]any{"match": []map[string]any{{"hostname": "db-1.example.org"}}}, []string{"proj_db-1"}},
			{"match on a nested key", map[string]any{"match": []map[string]any{{"env": "prod"}}}, []string{"web-1", "proj_db-1"}},
			{"match pairs are ANDed", map[string]any{"match": []map[string]any{{"env": "prod"}, {"tier": "web"}}}, []string{"web-1"}},
			{"match_not excludes any matching pair", map[string]any{"match_not": []map[string]any{{"env": "staging"}, {"tier": "db"}}}, []string{"web-1"}},
			{"match and match_not together", map[string]any{"match": []map[string]any{{"tier": "web"}}, "match_not": []map[string]any{{"env": "prod"}}}, []string{"web-2"}},
			{"an array matches one of its items", map[string]any{"match": []map[string]any{{"supported_actions": "restore"}}}, []string{"web-2", "proj_db-1"}},
			{"_all is a case-insensitive substring of any text", map[string]any{"match": []map[string]any{{"_all": "FRONTEND"}}}, []string{"web-1", "web-2"}},
			{"_all reaches nested values", map[string]any{"match": []map[string]any{{"_all": "stag"}}}, []string{"web-2"}},
			{"equality is exact, not a substring", map[string]any{"match": []map[string]any{{"env": "pro"}}}, []string{}},
			{"the user_id is part of the entry", map[string]any{"match": []map[string]any{{"user_id": "alice"}}}, []string{"web-1", "web-2", "proj_db-1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := ids(t, as(t, e, "alice", "GET", clients, tc.search)); !cmp.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"?limit=2", []string{"web-1", "web-2"}},
			{"?limit=2&offset=2", []string{"proj_db-1"}},
			{"?offset=1&limit=1", []string{"web-2"}},
			{"?offset=9", []string{}},
		} {
			if got := ids(t, as(t, e, "alice", "GET", clients+tc.query, nil)); !cmp.Equal(got, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.query, got, tc.want)
			}
		}
		// Paging applies after the search, in the same stable order.
		paged := ids(t, as(t, e, "alice", "GET", clients+"?limit=1&offset=1", map[string]any{"match": []map[string]any{{"env": "prod"}}}))
		if !cmp.Equal(paged, []string{"proj_db-1"}) {
			t.Fatalf("second page of a search: %v", paged)
		}
	})
}

func TestBadRequestsGetFreezersErrors(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		for _, tc := range []struct {
			name   string
			method string
			path   string
			body   any
			status int
			detail string
		}{
			{"malformed JSON on create", "POST", clients, `{"client_id":`, 753, "JSON"},
			{"malformed search on list", "GET", clients, `{"match":[`, 753, "JSON"},
			{"an empty body", "POST", clients, ``, 400, "Missing request body"},
			{"no client_id", "POST", clients, `{"hostname":"a.example.org"}`, 400, "client_id"},
			{"a client_id with spaces", "POST", clients, `{"client_id":"not a host"}`, 400, "client_id"},
			{"a client_id ending in a hyphen", "POST", clients, `{"client_id":"proj_host-"}`, 400, "client_id"},
			{"a numeric client_id", "POST", clients, `{"client_id":42}`, 400, "client_id"},
			{"a bad hostname", "POST", clients, `{"client_id":"h","hostname":"-bad-.example"}`, 400, "hostname"},
			{"an unknown action", "POST", clients, `{"client_id":"h","supported_actions":["backup","teleport"]}`, 400, "supported_actions"},
			{"an unknown storage", "POST", clients, `{"client_id":"h","supported_storages":["tape"]}`, 400, "supported_storages"},
			{"a mode that is not a list", "POST", clients, `{"client_id":"h","supported_modes":"fs"}`, 400, "supported_modes"},
			{"is_central not a boolean", "POST", clients, `{"client_id":"h","is_central":"yes"}`, 400, "is_central"},
			{"a body that is not an object", "POST", clients, `["h"]`, 400, "object"},
			{"a non-numeric limit", "GET", clients + "?limit=ten", nil, 400, "limit"},
			{"limit 0", "GET", clients + "?limit=0", nil, 400, "limit"},
			{"limit over 1000", "GET", clients + "?limit=1001", nil, 400, "limit"},
			{"a negative offset", "GET", clients + "?offset=-1", nil, 400, "offset"},
			{"a search entry with two keys", "GET", clients, `{"match":[{"a":"1","b":"2"}]}`, 400, "exactly one key"},
			{"an unknown search option", "GET", clients, `{"matches":[]}`, 400, "unknown option"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := as(t, e, "alice", tc.method, tc.path, tc.body)
				body := resp.JSON(t)
				if resp.Status != tc.status || body["title"] == nil || !strings.Contains(fmt.Sprint(body["description"]), tc.detail) {
					t.Fatalf("%d %s, want %d with %q in the description", resp.Status, resp.Body, tc.status, tc.detail)
				}
			})
		}
		if got := ids(t, as(t, e, "alice", "GET", clients, nil)); len(got) != 0 {
			t.Fatalf("refused creates wrote %v", got)
		}
		if resp := as(t, e, "", "GET", clients, nil); resp.Status != 400 || !strings.Contains(string(resp.Body), "X-User-ID") {
			t.Fatalf("the admin key without X-User-ID: %d %s", resp.Status, resp.Body)
		}
		if resp := e.Do(t, "GET", clients, "", nil); resp.Status != 401 || resp.JSON(t)["title"] == nil {
			t.Fatalf("no key: %d %s", resp.Status, resp.Body)
		}
	})
}

func TestPATsNeedTheClientsScope(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		mint := func(scopes ...string) string {
			t.Helper()
			resp := e.DoWith(t, "POST", "/spatio/v1/tokens", map[string]any{"name": "cli", "scopes": scopes},
				http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {"carol"}})
			if resp.Status != 201 {
				t.Fatalf("mint PAT: %d %s", resp.Status, resp.Body)
			}
			tok := resp.JSON(t)["token"].(string)
			e.Remember(tok)
			return tok
		}
		withScope, without := mint("keyward:clients"), mint("read")
		if resp := e.Do(t, "POST", clients, withScope, map[string]any{"client_id": "carol-laptop"}); resp.Status != 201 {
			t.Fatalf("a PAT with keyward:clients: %d %s", resp.Status, resp.Body)
		}
		// The PAT acts as its own user: an X-User-ID header changes nothing.
		spoof := e.DoWith(t, "GET", clients, nil, http.Header{"Authorization": {"Bearer " + withScope}, "X-User-ID": {"alice"}})
		if got := ids(t, spoof); !cmp.Equal(got, []string{"carol-laptop"}) {
			t.Fatalf("a PAT listing with another X-User-ID: %v", got)
		}
		if resp := e.Do(t, "GET", clients, without, nil); resp.Status != 403 || resp.JSON(t)["title"] != "Access Forbidden" {
			t.Fatalf("a PAT without keyward:clients: %d %s", resp.Status, resp.Body)
		}
		if got := ids(t, as(t, e, "carol", "GET", clients, nil)); !cmp.Equal(got, []string{"carol-laptop"}) {
			t.Fatalf("the admin key for carol: %v", got)
		}
	})
}
