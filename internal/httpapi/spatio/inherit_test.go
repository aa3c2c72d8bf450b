package spatio_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// A PAT made by an expiring credential (a PAT, or an admin key acting for
// the user) expires with its creator by default and may not outlive it.
func TestAPATCannotOutliveItsCreator(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		week := e.Clock.Now().Add(7 * 24 * time.Hour).UTC()
		parent := e.create(t, "/tokens", e.as(alice), map[string]any{"name": "parent", "scopes": []string{"keyward:tokens"}, "expiresAt": week.Format(time.RFC3339)})["token"].(string)

		child := e.create(t, "/tokens", pat(parent), map[string]any{"name": "child"})["pat"].(map[string]any)
		if child["expiresAt"] != week.Format(time.RFC3339) {
			t.Errorf("a child without expiresAt expires %v, want its parent's %s", child["expiresAt"], week.Format(time.RFC3339))
		}
		resp := e.DoWith(t, "POST", base+"/tokens", map[string]any{"name": "longer", "expiresAt": week.Add(time.Hour).Format(time.RFC3339)}, pat(parent))
		if resp.Status != http.StatusForbidden {
			t.Fatalf("a child outliving its parent: %d %s, want 403", resp.Status, resp.Body)
		}
		if msg, _ := resp.JSON(t)["error"].(string); msg == "" {
			t.Errorf("the refusal is not in Spatio's envelope: %s", resp.Body)
		}
		// Only the parent and the first child exist.
		list := e.DoWith(t, "GET", base+"/tokens", nil, e.as(alice)).JSON(t)["tokens"].([]any)
		if len(list) != 2 {
			t.Errorf("alice has %d tokens, want 2: the refused create wrote one", len(list))
		}
	})
}
