package mist_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestAPrivilegeNamingAnotherOrgIsRefused: org_id in a privilege was
// silently rewritten to the path's organization; a client that meant
// another org must learn it did not get it.
func TestAPrivilegeNamingAnotherOrgIsRefused(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		other := another(t, o)
		existing := o.create(t, o.AdminKey, map[string]any{"name": "keep", "privileges": orgAdmin()})
		before, otherBefore := tokensState(t, o), tokensState(t, other)
		foreign := []map[string]string{{"scope": "org", "role": "admin", "org_id": other.org}}
		for _, tc := range []struct {
			name, method, path string
			body               any
		}{
			{"on create", "POST", "", map[string]any{"name": "x", "privileges": foreign}},
			{"on a site privilege", "POST", "", map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "site", "role": "read", "site_id": o.siteA, "org_id": other.org}}}},
			{"not a UUID", "POST", "", map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "org", "role": "admin", "org_id": "acme"}}}},
			{"on update", "PUT", "/" + existing["id"].(string), map[string]any{"privileges": foreign}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := o.do(t, tc.method, o.tokens()+tc.path, o.AdminKey, tc.body)
				detail, _ := resp.JSON(t)["detail"].(string)
				if resp.Status != http.StatusBadRequest || !strings.Contains(detail, "org_id") {
					t.Fatalf("%d %s, want 400 {detail} naming org_id", resp.Status, resp.Body)
				}
			})
		}
		if diff := cmp.Diff(before, tokensState(t, o)); diff != "" {
			t.Fatalf("a refused privilege changed tokens:\n%s", diff)
		}
		if diff := cmp.Diff(otherBefore, tokensState(t, other)); diff != "" {
			t.Fatalf("a refused privilege changed the other org's tokens:\n%s", diff)
		}

		// The path's own org_id, as a client echoing a token back sends it,
		// in any spelling of the UUID, is accepted.
		own := []map[string]string{{"scope": "org", "role": "admin", "org_id": strings.ToUpper(o.org)}}
		tok := o.create(t, o.AdminKey, map[string]any{"name": "echo", "privileges": own})
		if privs := tok["privileges"].([]any); len(privs) != 1 || privs[0].(map[string]any)["org_id"] != o.org {
			t.Fatalf("privileges naming the path's org: %v", tok["privileges"])
		}
		if resp := o.do(t, "PUT", o.tokens()+"/"+existing["id"].(string), o.AdminKey, map[string]any{"privileges": own}); resp.Status != http.StatusOK {
			t.Fatalf("update naming the path's org: %d %s", resp.Status, resp.Body)
		}
	})
}
