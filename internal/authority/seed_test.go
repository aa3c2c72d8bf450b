package authority_test

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func TestSeedM2MTokensStoresTokensThatVerifyLikeMintedOnes(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		m := newMachineEnv(t, store)
		ctx := context.Background()
		secrets, err := m.a.SeedM2MTokens(ctx, m.minter, 3, time.Hour)
		if err != nil || len(secrets) != 3 {
			t.Fatalf("SeedM2MTokens = %d secrets, %v", len(secrets), err)
		}
		for _, s := range secrets {
			res, err := m.a.Verify(ctx, m.admin, VerifyInput{Token: s.Reveal()})
			if err != nil || !res.Valid || res.Subject != m.minterID || !slices.Equal(res.Scopes, []string{m.targetID}) ||
				!res.ExpiresAt.Equal(m.clock.Now().Add(time.Hour)) {
				t.Fatalf("a seeded token verifies as %+v, %v", res, err)
			}
		}
		if _, err := m.a.SeedM2MTokens(ctx, m.admin, 1, time.Hour); credential.CodeOf(err) != credential.CodeForbidden {
			t.Fatalf("seeding with the admin key: %v, want forbidden", err)
		}
	})
}
