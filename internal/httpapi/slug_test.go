package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestASlugShapedLikeAUUIDIsRefused: /v1/organizations/{org} reads a UUID
// as an id and anything else as a slug, so a UUID-shaped slug was an
// organization reachable by another's id (or by none). Refused on create
// and rename, for organizations and workspaces, naming slug.
func TestASlugShapedLikeAUUIDIsRefused(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		e.call(t, "POST", "/v1/organizations/acme/workspaces", map[string]string{"slug": "eng", "name": "Eng"}, http.StatusCreated)
		id := uuid.NewString()
		shapes := map[string]string{
			"a UUID":                 id,
			"acme's own id":          e.acme,
			"a UUID without dashes":  strings.ReplaceAll(id, "-", ""),
			"the nil UUID":           uuid.Nil.String(),
			"a UUID of hex digits":   "deadbeef-dead-beef-dead-beefdeadbeef",
			"32 hex digits, no dash": "0123456789abcdef0123456789abcdef",
		}
		before := e.call(t, "GET", "/v1/audit_events", nil, http.StatusOK)["total_count"]
		for shape, slug := range shapes {
			for _, tc := range []struct{ name, method, path string }{
				{"creating an organization", "POST", "/v1/organizations"},
				{"renaming an organization", "PATCH", "/v1/organizations/acme"},
				{"creating a workspace", "POST", "/v1/organizations/acme/workspaces"},
				{"renaming a workspace", "PATCH", "/v1/organizations/acme/workspaces/eng"},
			} {
				t.Run(tc.name+" to "+shape, func(t *testing.T) {
					body := map[string]string{"slug": slug}
					if tc.method == "POST" {
						body["name"] = "x"
					}
					out := e.call(t, tc.method, tc.path, body, http.StatusBadRequest)
					if errBody := out["error"].(map[string]any); errBody["param"] != "slug" || errBody["code"] != "invalid" {
						t.Fatalf("%v, want invalid naming slug", out)
					}
				})
			}
		}
		if after := e.call(t, "GET", "/v1/audit_events", nil, http.StatusOK)["total_count"]; after != before {
			t.Fatalf("refused slugs wrote audit events: %v → %v", before, after)
		}
		if got := e.call(t, "GET", "/v1/organizations/acme", nil, http.StatusOK)["slug"]; got != "acme" {
			t.Fatalf("acme's slug is now %v", got)
		}
		// Slugs that merely look hexadecimal are still slugs.
		for _, slug := range []string{"deadbeef", "0123456789abcdef0123456789abcde", "a-uuid-like-but-not-0000-000000000000"} {
			e.call(t, "POST", "/v1/organizations", map[string]string{"slug": slug, "name": slug}, http.StatusCreated)
			e.call(t, "GET", "/v1/organizations/"+slug, nil, http.StatusOK)
		}
	})
}
