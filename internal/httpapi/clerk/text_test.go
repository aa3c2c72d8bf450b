package clerk_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestNULIsClerksInvalidParamAndWritesNothing: a NUL (JSON \u0000, or %00
// in the query) answered 500 on PostgreSQL and 200 on SQLite; now it is
// Clerk's 422 naming the parameter on both, and nothing is written.
func TestNULIsClerksInvalidParamAndWritesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		f := newFleet(t, e)
		before := snapshot(t, e)
		for _, tc := range []struct {
			name, key, method, path, body, param string
		}{
			{"a machine name", e.AdminKey, "POST", "/clerk/v1/machines", `{"name":"a\u0000b"}`, "name"},
			{"a machine rename", e.AdminKey, "PATCH", "/clerk/v1/machines/" + f.minter, `{"name":"\u0000"}`, "name"},
			{"a scoped machine id", e.AdminKey, "POST", "/clerk/v1/machines", `{"name":"m","scoped_machines":["mch_\u0000"]}`, "scoped_machines"},
			{"a claim value", f.minterKey, "POST", "/clerk/v1/m2m_tokens", `{"claims":{"k":"v\u0000"}}`, "claims"},
			{"a claim key", f.minterKey, "POST", "/clerk/v1/m2m_tokens", `{"claims":{"k\u0000":1}}`, "claims"},
			{"a JWT claim", f.minterKey, "POST", "/clerk/v1/m2m_tokens", `{"token_format":"jwt","claims":{"k":["\u0000"]}}`, "claims"},
			{"an actor", e.AdminKey, "POST", "/clerk/v1/actor_tokens", `{"user_id":"u1","actor":{"sub":"a\u0000"}}`, "actor"},
			{"a user id", e.AdminKey, "POST", "/clerk/v1/actor_tokens", `{"user_id":"u\u0000","actor":{"sub":"a"}}`, "user_id"},
			{"a revocation reason", e.AdminKey, "POST", "/clerk/v1/m2m_tokens/mt_x/revoke", `{"revocation_reason":"\u0000"}`, "revocation_reason"},
			{"a machine query", e.AdminKey, "GET", "/clerk/v1/machines?query=%00", "", "query"},
			{"a machine query not UTF-8", e.AdminKey, "GET", "/clerk/v1/machines?query=%C3", "", "query"},
			{"an M2M subject", e.AdminKey, "GET", "/clerk/v1/m2m_tokens?subject=mch_%00", "", "subject"},
			{"a machine id in the path", e.AdminKey, "GET", "/clerk/v1/machines/mch_%00", "", "machine_id"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := e.Do(t, tc.method, tc.path, tc.key, tc.body)
				if resp.Status != http.StatusUnprocessableEntity || clerkCode(t, resp) != "form_param_value_invalid" ||
					!strings.Contains(string(resp.Body), `"param_name":"`+tc.param+`"`) {
					t.Fatalf("%d %s, want 422 form_param_value_invalid naming %s", resp.Status, resp.Body, tc.param)
				}
			})
		}
		if diff := cmp.Diff(before, snapshot(t, e)); diff != "" {
			t.Fatalf("refused requests changed the store (-before +after):\n%s", diff)
		}
	})
}
