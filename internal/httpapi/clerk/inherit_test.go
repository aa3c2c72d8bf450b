package clerk_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// A machine key in its rotation grace mints tokens that expire with it,
// whatever lifetime is asked for: no token outlives its creator.
func TestAnM2MTokenExpiresNoLaterThanTheKeyThatMintedIt(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		id, old := createMachine(t, e, e.AdminKey, map[string]string{"name": "worker"})
		rotate(t, e, id, 60)
		keyEnd := e.Clock.Now().Add(60 * time.Second).UnixMilli()
		for _, format := range []string{"opaque", "jwt"} {
			resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens", old, map[string]any{"token_format": format, "seconds_until_expiration": 3600})
			if resp.Status != http.StatusOK && resp.Status != http.StatusCreated {
				t.Fatalf("%s mint with the old key: %d %s", format, resp.Status, resp.Body)
			}
			tok := resp.JSON(t)
			e.Remember(tok["token"].(string))
			if exp := int64(tok["expiration"].(float64)); exp != keyEnd {
				t.Errorf("%s token expires at %d, want the minting key's end %d", format, exp, keyEnd)
			}
		}
	})
}
