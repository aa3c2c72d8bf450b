package freezer_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// The requests below are shaped as python-freezerclient 5.0.0 sends them:
// X-Auth-Token, no X-User-ID, and /v1/clients/ with a trailing slash for
// the collection (freezerclient/v1/managers/clients.py).

func mintPAT(t *testing.T, e *apitest.Env, user string, scopes ...string) string {
	t.Helper()
	resp := e.DoWith(t, "POST", "/spatio/v1/tokens", map[string]any{"name": "freezer", "scopes": scopes},
		http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {user}})
	if resp.Status != 201 {
		t.Fatalf("mint PAT: %d %s", resp.Status, resp.Body)
	}
	tok := resp.JSON(t)["token"].(string)
	e.Remember(tok)
	return tok
}

func authToken(token string) http.Header {
	return http.Header{"X-Auth-Token": {token}, "Accept": {"application/json"}}
}

func TestFreezerClientRequestsWork(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		pat := mintPAT(t, e, "dave", "keyward:clients")
		h := authToken(pat)

		create := e.DoWith(t, "POST", clients+"/", map[string]any{"client_id": "proj_node1", "hostname": "node1.example.org"}, h)
		if create.Status != 201 || create.JSON(t)["client_id"] != "proj_node1" {
			t.Fatalf("register at /v1/clients/ with X-Auth-Token: %d %s", create.Status, create.Body)
		}
		if again := e.DoWith(t, "POST", clients+"/", map[string]any{"client_id": "proj_node1"}, h); again.Status != 409 || again.JSON(t)["title"] != "Document already existing" {
			t.Fatalf("registering it again: %d %s", again.Status, again.Body)
		}
		if got := ids(t, e.DoWith(t, "GET", clients+"/?limit=10&offset=0", `{"match":[{"_all":"node1"}]}`, h)); !cmp.Equal(got, []string{"proj_node1"}) {
			t.Fatalf("list at /v1/clients/ with a search: %v", got)
		}
		// The PAT acts as its own user: the admin key acting for dave sees the same client.
		if got := ids(t, as(t, e, "dave", "GET", clients, nil)); !cmp.Equal(got, []string{"proj_node1"}) {
			t.Fatalf("dave's clients seen through the admin key: %v", got)
		}
		if show := e.DoWith(t, "GET", clients+"/proj_node1", nil, h); show.Status != 200 || show.JSON(t)["user_id"] != "dave" {
			t.Fatalf("show: %d %s", show.Status, show.Body)
		}
		if del := e.DoWith(t, "DELETE", clients+"/proj_node1", nil, h); del.Status != 204 {
			t.Fatalf("delete: %d %s", del.Status, del.Body)
		}
		if show := e.DoWith(t, "GET", clients+"/proj_node1", nil, h); show.Status != 404 || len(show.Body) != 0 {
			t.Fatalf("show after delete: %d %q, want a bare 404", show.Status, show.Body)
		}
		if del := e.DoWith(t, "DELETE", clients+"/proj_node1", nil, h); del.Status != 404 || !strings.Contains(string(del.Body), "No Client found") {
			t.Fatalf("delete again: %d %s", del.Status, del.Body)
		}
	})
}

func TestXAuthTokenFollowsTheBearerRules(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		pat := mintPAT(t, e, "erin", "keyward:clients")
		unscoped := mintPAT(t, e, "erin", "read")
		otherPAT := mintPAT(t, e, "frank", "keyward:clients")
		doc := map[string]any{"client_id": "erin-laptop"}

		for _, tc := range []struct {
			name   string
			header http.Header
			status int
			detail string
		}{
			{"no credential", http.Header{}, 401, ""},
			{"an unknown token", authToken("pat_notatoken"), 401, ""},
			{"a PAT without keyward:clients", authToken(unscoped), 403, "keyward:clients"},
			{"the admin key without X-User-ID", authToken(e.AdminKey), 400, "X-User-ID"},
			{"X-Auth-Token and a different bearer token", http.Header{"X-Auth-Token": {pat}, "Authorization": {"Bearer " + otherPAT}}, 401, "differ"},
			{"X-Auth-Token with the admin key and a PAT bearer", http.Header{"X-Auth-Token": {e.AdminKey}, "Authorization": {"Bearer " + pat}, "X-User-ID": {"erin"}}, 401, "differ"},
			{"two X-Auth-Token headers", http.Header{"X-Auth-Token": {pat, pat}}, 401, ""},
			{"X-Auth-Token beside two Authorization headers", http.Header{"X-Auth-Token": {pat}, "Authorization": {"Bearer " + pat, "Bearer " + pat}}, 401, ""},
		} {
			t.Run("refused: "+tc.name, func(t *testing.T) {
				resp := e.DoWith(t, "POST", clients+"/", doc, tc.header)
				body := resp.JSON(t)
				if resp.Status != tc.status || body["title"] == nil || !strings.Contains(body["description"].(string), tc.detail) {
					t.Fatalf("%d %s, want %d with %q", resp.Status, resp.Body, tc.status, tc.detail)
				}
			})
		}
		if got := ids(t, as(t, e, "erin", "GET", clients, nil)); len(got) != 0 {
			t.Fatalf("refused requests registered %v", got)
		}

		for _, tc := range []struct {
			name   string
			header http.Header
		}{
			{"the admin key as X-Auth-Token acting for X-User-ID", http.Header{"X-Auth-Token": {e.AdminKey}, "X-User-ID": {"erin"}}},
			{"the same PAT as X-Auth-Token and bearer", http.Header{"X-Auth-Token": {pat}, "Authorization": {"Bearer " + pat}}},
			{"a PAT naming another X-User-ID (ignored)", http.Header{"X-Auth-Token": {pat}, "X-User-ID": {"frank"}}},
		} {
			t.Run("accepted: "+tc.name, func(t *testing.T) {
				if got := ids(t, e.DoWith(t, "GET", clients+"/", nil, tc.header)); len(got) != 0 {
					t.Fatalf("erin has no clients yet, listed %v", got)
				}
			})
		}
		// frank's PAT never reaches erin's clients, whatever X-User-ID says.
		as(t, e, "erin", "POST", clients, doc)
		if got := ids(t, e.DoWith(t, "GET", clients+"/", nil, http.Header{"X-Auth-Token": {otherPAT}, "X-User-ID": {"erin"}})); len(got) != 0 {
			t.Fatalf("frank's PAT listed %v", got)
		}
		if show := e.DoWith(t, "GET", clients+"/erin-laptop", nil, authToken(otherPAT)); show.Status != 404 {
			t.Fatalf("frank's PAT showing erin's client: %d %s", show.Status, show.Body)
		}
	})
}

func TestKeystoneTokenCheckForFreezersCLI(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		pat := mintPAT(t, e, "gina", "keyward:clients")
		const identity = "/freezer/identity/v3"

		for _, path := range []string{identity, identity + "/"} {
			disc := e.DoWith(t, "GET", path, nil, nil)
			version, _ := disc.JSON(t)["version"].(map[string]any)
			links, _ := version["links"].([]any)
			if disc.Status != 200 || version["id"] != "v3.14" || len(links) != 1 ||
				links[0].(map[string]any)["href"] != e.URL+identity {
				t.Fatalf("GET %s: %d %s, want v3 with the self link %s", path, disc.Status, disc.Body, e.URL+identity)
			}
		}

		authBody := func(methods []string, token string) map[string]any {
			return map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": methods, "token": map[string]any{"id": token}},
				"scope": map[string]any{"project": map[string]any{"id": "p1"}}}}
		}
		ok := e.DoWith(t, "POST", identity+"/auth/tokens", authBody([]string{"token"}, pat), nil)
		if ok.Status != 201 || ok.Header.Get("X-Subject-Token") != pat || ok.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("token check with a PAT: %d %v %s", ok.Status, ok.Header, ok.Body)
		}
		tok := ok.JSON(t)["token"].(map[string]any)
		if tok["user"].(map[string]any)["id"] != "gina" || tok["expires_at"] == nil || tok["issued_at"] == nil {
			t.Fatalf("token body: %s", ok.Body)
		}
		endpoint := tok["catalog"].([]any)[0].(map[string]any)
		if endpoint["type"] != "backup" || endpoint["endpoints"].([]any)[0].(map[string]any)["url"] != e.URL+"/freezer" {
			t.Fatalf("catalogue: %v", endpoint)
		}
		if strings.Contains(string(ok.Body), pat) {
			t.Fatal("the token body repeats the secret; it belongs in X-Subject-Token only")
		}

		for _, tc := range []struct {
			name   string
			body   any
			status int
			detail string
		}{
			{"the admin key", authBody([]string{"token"}, e.AdminKey), 401, "X-User-ID"},
			{"an unknown token", authBody([]string{"token"}, "pat_notatoken"), 401, "invalid authentication"},
			{"the password method", authBody([]string{"password"}, pat), 401, "token authentication method"},
			{"no token id", authBody([]string{"token"}, ""), 400, "token.id"},
			{"a body that is not JSON", `{"auth":`, 400, "JSON"},
			{"a body without auth", `{}`, 400, "auth"},
		} {
			t.Run("refused: "+tc.name, func(t *testing.T) {
				resp := e.DoWith(t, "POST", identity+"/auth/tokens", tc.body, nil)
				errBody, _ := resp.JSON(t)["error"].(map[string]any)
				if resp.Status != tc.status || resp.Header.Get("X-Subject-Token") != "" ||
					errBody == nil || !strings.Contains(errBody["message"].(string), tc.detail) {
					t.Fatalf("%d %v %s, want %d with %q", resp.Status, resp.Header, resp.Body, tc.status, tc.detail)
				}
			})
		}
		if resp := e.DoWith(t, "GET", identity+"/projects", nil, nil); resp.Status != 404 || resp.JSON(t)["error"] == nil {
			t.Fatalf("an unknown Keystone route: %d %s", resp.Status, resp.Body)
		}
		for _, secret := range e.Secrets() {
			if strings.Contains(e.Logs.String(), secret) {
				t.Fatal("a secret reached the log")
			}
		}
	})
}

// A PAT's controls hold where it is a caller, too: with one credit left,
// the Freezer surface admits one request and refuses the next with a 429.
func TestAPATsCreditsHoldOnTheFreezerSurface(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		pat := mintPAT(t, e, "erin", "keyward:clients")
		list := e.DoWith(t, "GET", "/v1/users/erin/pats", nil, http.Header{"Authorization": {"Bearer " + e.AdminKey}}).JSON(t)
		id := list["data"].([]any)[0].(map[string]any)["id"].(string)
		if r := e.Do(t, "PATCH", "/v1/credentials/"+id+"/controls", e.AdminKey, map[string]any{"credits": map[string]any{"remaining": 1}}); r.Status != http.StatusOK {
			t.Fatalf("controls: %d %s", r.Status, r.Body)
		}
		if r := e.DoWith(t, "GET", clients, nil, authToken(pat)); r.Status != http.StatusOK {
			t.Fatalf("first call: %d %s", r.Status, r.Body)
		}
		if r := e.DoWith(t, "GET", clients, nil, authToken(pat)); r.Status != http.StatusTooManyRequests {
			t.Fatalf("no credits left: %d %s", r.Status, r.Body)
		}
	})
}
