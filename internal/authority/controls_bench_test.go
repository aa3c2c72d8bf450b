package authority_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/testkit"
)

// BenchmarkVerifyNamedLimits is what named limits cost a cached verify
// (in-memory limiter, one node): none, 1, 3, 10 and MaxNamedLimits
// auto-applied limits on the key, and a permission query.
func BenchmarkVerifyNamedLimits(b *testing.B) {
	keys, err := keyring.New(bytes.Repeat([]byte{9}, keyring.MasterKeySize))
	if err != nil {
		b.Fatal(err)
	}
	a := New(Config{Store: testkit.OpenSQLite(b), Keyring: keys, Clock: testkit.NewClock(), Limiter: inmem.NewLimiter()})
	ctx := context.Background()
	_, adminKey, err := a.CreateInstance(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	admin, _ := a.Authenticate(ctx, adminKey.Reveal())
	for _, n := range []int{0, 1, 3, 10, MaxNamedLimits} {
		name, subject := "bench key", "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"
		k, err := a.CreateAPIKey(ctx, admin, CreateAPIKeyInput{Name: &name, Subject: &subject})
		if err != nil {
			b.Fatal(err)
		}
		if n > 0 {
			ls := make([]NamedLimit, n)
			for i := range ls {
				ls[i] = NamedLimit{Name: fmt.Sprintf("l%d", i), Limit: MaxLimit, Duration: 3_600_000, Algorithm: LimitSliding, AutoApply: true}
			}
			if _, err := a.SetCredentialControls(ctx, admin, k.ID, ControlsInput{RateLimits: &ls}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("limits=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r, err := a.Verify(ctx, admin, VerifyInput{Token: k.Secret}); err != nil || !r.Valid {
					b.Fatal(err, r.Reason)
				}
			}
		})
	}
}
