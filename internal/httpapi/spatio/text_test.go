package spatio_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestNULIsSpatiosInvalidRequestAndWritesNothing: a NUL answered 500 on
// PostgreSQL; now it is Spatio's 400 {error, code} naming the parameter,
// on both stores, and nothing is written.
func TestNULIsSpatiosInvalidRequestAndWritesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		tok := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "keep", "scopes": []string{"read"}})
		before := e.patRows(t)
		for _, tc := range []struct {
			name, method, path, body, param, code string
		}{
			{"a name", "POST", "/tokens", `{"name":"a\u0000","scopes":["read"]}`, "name", "invalid_request"},
			{"a description", "POST", "/tokens", `{"name":"a","description":"\u0000","scopes":["read"]}`, "description", "invalid_request"},
			{"a scope", "POST", "/tokens", `{"name":"a","scopes":["read\u0000"]}`, "scopes", "invalid_scope"},
			{"a workspace id", "POST", "/tokens", `{"name":"a","scopes":["read"],"workspaceId":"\u0000"}`, "workspaceId", "invalid_request"},
			{"a rename", "PATCH", "/tokens/" + tok["pat"].(map[string]any)["id"].(string), `{"name":"\u0000"}`, "name", "invalid_request"},
			{"a token id in the path", "DELETE", "/tokens/a%00b", "", "id", "invalid_request"},
			{"a workspace in the path", "GET", wsPath("acme", "%00"), "", "workspace", "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := e.do(t, tc.method, tc.path, e.as(alice), tc.body)
				wantError(t, resp, http.StatusBadRequest, tc.code)
				if msg := resp.JSON(t)["error"].(string); !strings.HasPrefix(msg, tc.param+": ") {
					t.Fatalf("%s does not name %s", resp.Body, tc.param)
				}
			})
		}
		if diff := cmp.Diff(before, e.patRows(t)); diff != "" {
			t.Fatalf("refused requests changed PATs:\n%s", diff)
		}
	})
}
