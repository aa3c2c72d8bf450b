package clerk_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
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

// An actor token made by an expiring admin key cannot be redeemed after
// that key expired, whatever expires_in_seconds asked for.
func TestAnActorTicketExpiresNoLaterThanItsCreator(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		ctx := context.Background()
		name, at := "support", e.Clock.Now().Add(time.Minute)
		_, short, err := e.Auth.CreateAdminKey(ctx, authority.Operator(e.InstanceID),
			authority.CreateAdminKeyInput{Name: &name, Permissions: []string{"actor_tokens:write"}, ExpiresAt: &at})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(short.Reveal())
		ticket := func(key string) string {
			t.Helper()
			resp := e.Do(t, "POST", "/clerk/v1/actor_tokens", key, map[string]any{"user_id": "user_1", "actor": map[string]string{"sub": "admin_1"}, "expires_in_seconds": 3600})
			if resp.Status != http.StatusOK {
				t.Fatalf("create actor token: %d %s", resp.Status, resp.Body)
			}
			tok := resp.JSON(t)["token"].(string)
			e.Remember(tok)
			return tok
		}
		fromShort, fromLasting := ticket(short.Reveal()), ticket(e.AdminKey)
		e.Clock.Advance(time.Minute)
		if _, err := e.Auth.RedeemTicket(ctx, fromShort); err == nil {
			t.Error("a ticket outlived the expired key that made it")
		}
		if r, err := e.Auth.RedeemTicket(ctx, fromLasting); err != nil {
			t.Errorf("a ticket of a lasting key, within its hour: %v", err)
		} else {
			e.Remember(r.AccessToken)
		}
	})
}
