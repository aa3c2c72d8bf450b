package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// A PAT is a way into the surfaces its built-in scopes open, so an admin
// key that may not use the client registry must not mint a PAT that can.
func TestAKeyWithoutClientsWriteCannotMintAPATForTheClientRegistry(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e := apitest.Start(t, s)
		_, k := createKey(t, e, e.AdminKey, map[string]any{"name": "pats-only", "permissions": []string{"pats:write"}})
		key := k["secret"].(string)
		h := http.Header{"Authorization": {"Bearer " + key}, "X-User-ID": {"alice"}}
		r := e.DoWith(t, "POST", "/spatio/v1/tokens", map[string]any{"name": "x", "scopes": []string{"keyward:clients"}}, h)
		if r.Status != http.StatusForbidden {
			t.Fatalf("pats:write minting a keyward:clients PAT: %d %s", r.Status, r.Body)
		}
		r = e.DoWith(t, "POST", "/spatio/v1/tokens", map[string]any{"name": "x", "scopes": []string{"read"}}, h)
		if r.Status/100 != 2 {
			t.Fatalf("pats:write minting an ordinary PAT: %d %s", r.Status, r.Body)
		}
		e.Remember(r.JSON(t)["token"].(string))

		_, both := createKey(t, e, e.AdminKey, map[string]any{"name": "pats-and-clients", "permissions": []string{"pats:write", "clients:write"}})
		h.Set("Authorization", "Bearer "+both["secret"].(string))
		r = e.DoWith(t, "POST", "/spatio/v1/tokens", map[string]any{"name": "y", "scopes": []string{"keyward:clients"}}, h)
		if r.Status/100 != 2 {
			t.Fatalf("pats:write with clients:write minting a keyward:clients PAT: %d %s", r.Status, r.Body)
		}
		e.Remember(r.JSON(t)["token"].(string))
	})
}
