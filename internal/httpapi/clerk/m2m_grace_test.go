package clerk_test

import (
	"testing"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// A machine key in its rotation grace is handed no token that outlives it:
// not a freshly minted one, and not one reused through
// min_remaining_ttl_seconds that the new key minted.
func TestAKeyInItsGraceIsNotHandedAReusedTokenThatOutlivesIt(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		f := newFleet(t, e)
		resp := e.Do(t, "POST", "/clerk/v1/machines/"+f.minter+"/secret_key/rotate", e.AdminKey, map[string]int{"previous_token_ttl": 30})
		newKey := resp.JSON(t)["secret"].(string)
		e.Remember(newKey)
		body := map[string]any{"seconds_until_expiration": 3600, "min_remaining_ttl_seconds": 10}
		long := mint(t, e, newKey, body)
		got := mint(t, e, f.minterKey, body)
		if got["id"] == long["id"] {
			t.Fatalf("the grace key (30 s left) was handed the new key's one-hour token")
		}
		if got["expiration"].(float64) > long["expiration"].(float64)-3500_000 {
			t.Fatalf("the grace key's token expires at %v, past the key's own 30 s", got["expiration"])
		}
		again := mint(t, e, f.minterKey, body)
		if again["id"] != got["id"] {
			t.Fatalf("a token within the grace key's life is still reused: %v then %v", got["id"], again["id"])
		}
	})
}
