package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func TestOrganizationsSitesAndSitegroups(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		do := func(method, path string, body any, want int) map[string]any {
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
		org := do("POST", "/v1/organizations", map[string]string{"slug": "acme", "name": "Acme"}, 201)
		id := org["id"].(string)
		if got := do("GET", "/v1/organizations/acme", nil, 200); got["id"] != id {
			t.Fatalf("get by slug: %v", got)
		}
		do("POST", "/v1/organizations", map[string]string{"slug": "acme", "name": "Again"}, 409)
		do("POST", "/v1/organizations", map[string]string{"slug": "Not A Slug", "name": "x"}, 400)
		do("POST", "/v1/organizations", map[string]string{"slug": "x"}, 400)
		if got := do("PATCH", "/v1/organizations/"+id, map[string]string{"name": "Acme Inc"}, 200); got["name"] != "Acme Inc" || got["slug"] != "acme" {
			t.Fatalf("patch: %v", got)
		}
		if list := do("GET", "/v1/organizations", nil, 200); list["total_count"] != float64(1) {
			t.Fatalf("list: %v", list)
		}

		site := do("POST", "/v1/organizations/acme/sites", map[string]string{"name": "HQ"}, 201)["id"].(string)
		other := do("POST", "/v1/organizations", map[string]string{"slug": "other", "name": "Other"}, 201)["id"].(string)
		foreign := do("POST", "/v1/organizations/"+other+"/sites", map[string]string{"name": "Elsewhere"}, 201)["id"].(string)
		group := do("POST", "/v1/organizations/acme/sitegroups", map[string]any{"name": "West", "site_ids": []string{site}}, 201)
		if ids := group["site_ids"].([]any); len(ids) != 1 || ids[0] != site {
			t.Fatalf("sitegroup sites: %v", group)
		}
		do("POST", "/v1/organizations/acme/sitegroups", map[string]any{"name": "Bad", "site_ids": []string{foreign}}, 400)
		do("GET", "/v1/organizations/acme/sites/"+foreign, nil, 404)
		do("DELETE", "/v1/organizations/acme/sites/"+site, nil, 204)
		if got := do("GET", "/v1/organizations/acme/sitegroups/"+group["id"].(string), nil, 200); len(got["site_ids"].([]any)) != 0 {
			t.Fatalf("a deleted site stays in its sitegroup: %v", got)
		}

		_, otherKey := e.NewInstance(t, "elsewhere")
		if resp := e.Do(t, "GET", "/v1/organizations/"+id, otherKey, nil); resp.Status != 404 {
			t.Fatalf("another instance reads the org: %d", resp.Status)
		}
		if resp := e.Do(t, "DELETE", "/v1/organizations/acme", otherKey, nil); resp.Status != 404 {
			t.Fatalf("another instance deletes the org: %d", resp.Status)
		}
		do("DELETE", "/v1/organizations/acme", nil, 204)
		do("GET", "/v1/organizations/"+id, nil, 404)
	})
}
