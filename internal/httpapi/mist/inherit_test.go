package mist_test

import (
	"context"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func tableDigests(t *testing.T, s *sqlstore.Store) map[string]string {
	t.Helper()
	d, err := s.TableDigests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestARestrictedTokenCannotMintAWiderOne is the finding: an
// org-admin token limited to 127.0.0.1 (where the test client calls from)
// may only create or change tokens limited within 127.0.0.1.
func TestARestrictedTokenCannotMintAWiderOne(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		restricted := o.create(t, o.AdminKey, map[string]any{"name": "local", "privileges": orgAdmin(), "src_ips": []string{"127.0.0.1/32"}})["key"].(string)
		wide := o.create(t, o.AdminKey, map[string]any{"name": "wide", "privileges": orgAdmin()})["id"].(string)

		for _, tc := range []struct {
			name   string
			srcIPs []string
		}{
			{"no src_ips", nil},
			{"every address", []string{"0.0.0.0/0", "::/0"}},
			{"a wider prefix", []string{"127.0.0.0/8"}},
			{"another address", []string{"10.0.0.1"}},
			{"one address inside and one outside", []string{"127.0.0.1", "10.0.0.1"}},
		} {
			body := map[string]any{"name": "escalated", "privileges": orgAdmin()}
			if tc.srcIPs != nil {
				body["src_ips"] = tc.srcIPs
			}
			before := tableDigests(t, store)
			resp := o.do(t, "POST", o.tokens(), restricted, body)
			if resp.Status != http.StatusForbidden {
				t.Fatalf("%s: %d %s, want 403", tc.name, resp.Status, resp.Body)
			}
			if d, ok := resp.JSON(t)["detail"].(string); !ok || d == "" {
				t.Errorf("%s: the refusal is not Mist's {detail}: %s", tc.name, resp.Body)
			}
			if !maps.Equal(before, tableDigests(t, store)) {
				t.Errorf("%s: the refused create wrote to the store", tc.name)
			}
		}

		for _, within := range [][]string{{"127.0.0.1"}, {"::ffff:127.0.0.1"}} {
			tok := o.create(t, restricted, map[string]any{"name": "narrow", "privileges": orgAdmin(), "src_ips": within})
			if got := tok["src_ips"].([]any); len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("src_ips %v created as %v", within, got)
			}
		}

		// Changing a token usable from anywhere would leave a token wider
		// than the caller; the caller may not touch it.
		before := tableDigests(t, store)
		resp := o.do(t, "PUT", o.tokens()+"/"+wide, restricted, map[string]any{"name": "mine now"})
		if resp.Status != http.StatusForbidden {
			t.Fatalf("update a wider token: %d %s, want 403", resp.Status, resp.Body)
		}
		if !maps.Equal(before, tableDigests(t, store)) {
			t.Error("the refused update wrote to the store")
		}
	})
}

// An org token made by an expiring admin key expires with it, though Mist
// tokens have no expiry of their own.
func TestAnOrgTokenExpiresWithItsCreator(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		o := start(t, store)
		name, at := "short-lived", o.Clock.Now().Add(time.Hour)
		_, secret, err := o.Auth.CreateAdminKey(context.Background(), authority.Operator(o.InstanceID),
			authority.CreateAdminKeyInput{Name: &name, Permissions: []string{"organizations:write"}, ExpiresAt: &at})
		if err != nil {
			t.Fatal(err)
		}
		o.Remember(secret.Reveal())
		key := o.create(t, secret.Reveal(), map[string]any{"name": "ci", "privileges": orgAdmin()})["key"].(string)
		if resp := o.do(t, "GET", o.tokens(), key, nil); resp.Status != http.StatusOK {
			t.Fatalf("before the creator expires: %d %s", resp.Status, resp.Body)
		}
		o.Clock.Advance(time.Hour)
		if resp := o.do(t, "GET", o.tokens(), key, nil); resp.Status != http.StatusUnauthorized {
			t.Fatalf("after the creator expired: %d %s, want 401", resp.Status, resp.Body)
		}
	})
}
