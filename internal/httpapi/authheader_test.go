package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestTwoAuthorizationHeadersAre401Everywhere: the first of two headers
// used to win, so a proxy checking the second and keyward using the first
// disagreed on who called. Now two are refused on every surface as
// unauthenticated, in the surface's 401 envelope, whichever is valid.
func TestTwoAuthorizationHeadersAre401Everywhere(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		org := e.Do(t, "POST", "/v1/organizations", e.AdminKey, map[string]string{"slug": "acme", "name": "Acme"}).JSON(t)["id"].(string)
		_, otherKey := e.NewInstance(t, "other")
		introspect := url.Values{"token": {"mt_unknown"}}.Encode()
		for _, tc := range []struct {
			surface, method, path, scheme string
			body                          any
			header                        http.Header
			envelope                      string // a top-level key of the 401 body
		}{
			{"native", "GET", "/v1/caller", "Bearer", nil, nil, "error"},
			{"introspection", "POST", "/oauth/introspect", "Bearer", introspect, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "error"},
			{"Clerk", "GET", "/clerk/v1/machines", "Bearer", nil, nil, "errors"},
			{"Mist", "GET", "/mist/api/v1/orgs/" + org + "/apitokens", "Token", nil, nil, "detail"},
			{"Spatio", "GET", "/spatio/v1/tokens", "Bearer", nil, http.Header{"X-User-Id": {"alice"}}, "code"},
			{"Freezer", "GET", "/freezer/v1/clients", "Bearer", nil, http.Header{"X-User-Id": {"alice"}}, "title"},
			{"Freezer beside X-Auth-Token", "GET", "/freezer/v1/clients", "Bearer", nil, http.Header{"X-User-Id": {"alice"}, "X-Auth-Token": {e.AdminKey}}, "title"},
		} {
			t.Run(tc.surface, func(t *testing.T) {
				send := func(values ...string) apitest.Response {
					h := http.Header{"Authorization": values}
					for k, v := range tc.header {
						h[k] = v
					}
					return e.DoWith(t, tc.method, tc.path, tc.body, h)
				}
				good, other := tc.scheme+" "+e.AdminKey, tc.scheme+" "+otherKey // both valid keys
				if resp := send(good); resp.Status != http.StatusOK {
					t.Fatalf("one header: %d %s", resp.Status, resp.Body)
				}
				for name, values := range map[string][]string{
					"the same key twice":            {good, good},
					"another instance's key second": {good, other},
					"another instance's key first":  {other, good},
					"a valid key beside an empty":   {good, ""},
				} {
					resp := send(values...)
					var body map[string]any
					if resp.Status != http.StatusUnauthorized || json.Unmarshal(resp.Body, &body) != nil || body[tc.envelope] == nil {
						t.Fatalf("%s: %d %s, want 401 in the %s envelope", name, resp.Status, resp.Body, tc.surface)
					}
					if strings.Contains(string(resp.Body), e.AdminKey) {
						t.Fatalf("%s: the 401 echoes a key: %s", name, resp.Body)
					}
				}
			})
		}
	})
}
