package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestHourlyLimitZeroIsRefusedAndNullRestoresTheDefault: 0 was answered 200
// and silently meant "the default" (5000), where a caller may well have
// meant "no calls". 0 and negatives are now 400 naming the parameter and
// change nothing; null restores the default; and Mist enforces what was set.
func TestHourlyLimitZeroIsRefusedAndNullRestoresTheDefault(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := startWorkspaces(t, store)
		created := e.Do(t, "POST", "/mist/api/v1/orgs/"+e.acme+"/apitokens", e.AdminKey,
			map[string]any{"name": "ci", "privileges": []map[string]string{{"scope": "org", "role": "read"}}})
		if created.Status != http.StatusOK {
			t.Fatalf("org token: %d %s", created.Status, created.Body)
		}
		orgToken := created.JSON(t)["key"].(string)
		e.Remember(orgToken)
		enforced := func() string {
			t.Helper()
			resp := e.DoWith(t, "GET", "/mist/api/v1/orgs/"+e.acme+"/apitokens", nil, http.Header{"Authorization": {"Token " + orgToken}})
			return resp.Header.Get("X-RateLimit-Limit")
		}

		if got := e.call(t, "PATCH", "/v1/instance", map[string]int{"org_token_hourly_limit": 3}, http.StatusOK)["org_token_hourly_limit"]; got != float64(3) {
			t.Fatalf("set 3: %v", got)
		}
		for _, body := range []string{`{"org_token_hourly_limit":0}`, `{"org_token_hourly_limit":-1}`, `{"org_token_hourly_limit":1000000001}`,
			`{"org_token_hourly_limit":0,"impersonation_redirect_url":"https://app.example/x"}`} {
			out := e.call(t, "PATCH", "/v1/instance", body, http.StatusBadRequest)
			errBody := out["error"].(map[string]any)
			if errBody["param"] != "org_token_hourly_limit" || !strings.Contains(errBody["message"].(string), "null") {
				t.Fatalf("%s: %v, want a 400 naming org_token_hourly_limit and how to restore the default", body, out)
			}
		}
		// Both settings at once: a refused one leaves the other unwritten too.
		e.call(t, "PATCH", "/v1/instance", `{"org_token_hourly_limit":7,"impersonation_redirect_url":"ftp://app.example/x"}`, http.StatusBadRequest)
		got := e.call(t, "GET", "/v1/instance", nil, http.StatusOK)
		if got["org_token_hourly_limit"] != float64(3) || got["impersonation_redirect_url"] != "" {
			t.Fatalf("refused updates changed the instance: %v", got)
		}
		if limit := enforced(); limit != "3" {
			t.Fatalf("Mist enforces %q after refused updates, want 3", limit)
		}

		if got := e.call(t, "PATCH", "/v1/instance", `{"org_token_hourly_limit":null}`, http.StatusOK)["org_token_hourly_limit"]; got != float64(5000) {
			t.Fatalf("null: %v, want the default 5000", got)
		}
		if limit := enforced(); limit != "5000" {
			t.Fatalf("Mist enforces %q after restoring the default, want 5000", limit)
		}
		e.call(t, "PATCH", "/v1/instance", `{}`, http.StatusBadRequest)
	})
}
