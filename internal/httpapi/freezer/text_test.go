package freezer_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestNULIsFreezersBadRequestAndWritesNothing: a NUL anywhere in a client
// document (it is kept as sent, so nested values count), in the search or
// in the path answered 500 on PostgreSQL; now it is Freezer's 400 {title,
// description} naming the top-level key, on both stores.
func TestNULIsFreezersBadRequestAndWritesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		register(t, e, "alice", map[string]any{"client_id": "keep"})
		for _, tc := range []struct {
			name, method, path, body, param string
		}{
			{"a client_id", "POST", clients, `{"client_id":"h\u0000"}`, "client_id"},
			{"a description", "POST", clients, `{"client_id":"h","description":"\u0000"}`, "description"},
			{"a nested label", "POST", clients, `{"client_id":"h","labels":{"env":"prod\u0000"}}`, "labels"},
			{"a nested key", "POST", clients, `{"client_id":"h","labels":{"e\u0000":"prod"}}`, "labels"},
			{"an unknown field's value", "POST", clients, `{"client_id":"h","extra":["\u0000"]}`, "extra"},
			{"a search value", "GET", clients, `{"match":[{"_all":"\u0000"}]}`, "match"},
			{"a client_id in the path", "GET", clients + "/h%00", "", "client_id"},
			{"a client_id in the path on delete", "DELETE", clients + "/keep%00", "", "client_id"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var body any
				if tc.body != "" {
					body = tc.body
				}
				resp := as(t, e, "alice", tc.method, tc.path, body)
				out := resp.JSON(t)
				if desc, _ := out["description"].(string); resp.Status != http.StatusBadRequest || out["title"] != "Bad request format" || !strings.HasPrefix(desc, tc.param+": ") {
					t.Fatalf("%d %s, want 400 Bad request format naming %s", resp.Status, resp.Body, tc.param)
				}
			})
		}
		// Keystone's token request, which the unchanged client sends first.
		for _, body := range []string{`{"auth":{"identity":{"methods":["token"],"token":{"id":"pat_\u0000"}}}}`, `{"auth":{"identity":{"methods":["token\u0000"]}}}`} {
			resp := e.Do(t, "POST", "/freezer/identity/v3/auth/tokens", "", body)
			errBody, _ := resp.JSON(t)["error"].(map[string]any)
			if msg, _ := errBody["message"].(string); resp.Status != http.StatusBadRequest || !strings.HasPrefix(msg, "auth: ") {
				t.Fatalf("Keystone token request with a NUL: %d %s, want 400 naming auth", resp.Status, resp.Body)
			}
		}
		if got := ids(t, as(t, e, "alice", "GET", clients, nil)); len(got) != 1 || got[0] != "keep" {
			t.Fatalf("refused requests changed the registry: %v", got)
		}
	})
}
