package mist_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestNULIsMistsDetailAndWritesNothing: a NUL answered 500 on PostgreSQL;
// now it is Mist's {detail} 400 naming the parameter on both stores.
func TestNULIsMistsDetailAndWritesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		existing := o.create(t, o.AdminKey, map[string]any{"name": "keep", "privileges": orgAdmin()})
		before := tokensState(t, o)
		for _, tc := range []struct {
			name, method, path, body, param string
		}{
			{"a name", "POST", o.tokens(), `{"name":"a\u0000","privileges":[{"scope":"org","role":"admin"}]}`, "name"},
			{"a privilege", "POST", o.tokens(), `{"name":"x","privileges":[{"scope":"site","role":"read","site_id":"\u0000"}]}`, "privileges"},
			{"a source IP", "POST", o.tokens(), `{"name":"x","privileges":[{"scope":"org","role":"admin"}],"src_ips":["10.0.0.1\u0000"]}`, "src_ips"},
			{"a rename", "PUT", o.tokens() + "/" + existing["id"].(string), `{"name":"\u0000"}`, "name"},
			{"a token id in the path", "GET", o.tokens() + "/a%00b", "", "apitoken_id"},
			{"an org id in the path", "GET", "/mist/api/v1/orgs/%00/apitokens", "", "org_id"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := o.do(t, tc.method, tc.path, o.AdminKey, tc.body)
				detail, _ := resp.JSON(t)["detail"].(string)
				if resp.Status != http.StatusBadRequest || !strings.HasPrefix(detail, tc.param+": ") {
					t.Fatalf("%d %s, want 400 {detail} naming %s", resp.Status, resp.Body, tc.param)
				}
			})
		}
		if diff := cmp.Diff(before, tokensState(t, o)); diff != "" {
			t.Fatalf("refused requests changed tokens:\n%s", diff)
		}
	})
}
