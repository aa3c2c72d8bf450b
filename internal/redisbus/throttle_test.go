package redisbus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/netip"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/redisbus"
	"github.com/keyward/keyward/internal/testkit"
)

// Two nodes sharing Redis share each address's failed-authentication
// budget: failures on one count on the other.
func TestThrottleBudgetIsSharedThroughRedis(t *testing.T) {
	rdb := newClient(t, nil)
	store := testkit.OpenSQLite(t)
	keys, err := keyring.New(bytes.Repeat([]byte{5}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	node := func() *authority.Authority {
		// The wall clock: Redis expires windows by real time.
		return authority.New(authority.Config{Store: store, Keyring: keys, AuthFailureLimit: 3,
			Limiter: redisbus.NewLimiter(rdb, inmem.NewLimiter(), redisbus.PolicyLocal, nil)})
	}
	a, b := node(), node()
	var octets [4]byte
	_, _ = rand.Read(octets[:])
	octets[0] = 10 // a fresh address per run, so runs in one window do not meet
	ctx := authority.WithClientIP(context.Background(), netip.AddrFrom4(octets))
	t.Cleanup(func() {
		iter := rdb.Scan(context.Background(), 0, "keyward:rl:*"+netip.AddrFrom4(octets).String()+"*", 100).Iterator()
		for iter.Next(context.Background()) {
			rdb.Del(context.Background(), iter.Val())
		}
	})
	bogus := credential.MustGenerate(credential.KindAdminKey).Reveal()
	expect := func(n *authority.Authority, name string, code credential.Code) {
		t.Helper()
		if _, err := n.Authenticate(ctx, bogus); !credential.IsCode(err, code) {
			t.Fatalf("%s: %v, want %s", name, err, code)
		}
	}
	expect(a, "failure 1 on node a", credential.CodeUnauthenticated)
	expect(a, "failure 2 on node a", credential.CodeUnauthenticated)
	expect(b, "failure 3 on node b", credential.CodeUnauthenticated)
	expect(b, "node b, the budget spent across both nodes", credential.CodeRateLimited)
	// Node a learns at its next failure, which Redis refuses to count.
	expect(a, "failure 4 on node a", credential.CodeUnauthenticated)
	expect(a, "node a after that", credential.CodeRateLimited)
}
