package authority_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func throttledAuthority(t *testing.T, store authority.Store, clock *testkit.Clock, limit int) *authority.Authority {
	t.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{3}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return authority.New(authority.Config{Store: store, Keyring: keys, Clock: clock, Limiter: inmem.NewLimiter(), AuthFailureLimit: limit})
}

func fromAddr(s string) context.Context {
	return authority.WithClientIP(context.Background(), netip.MustParseAddr(s))
}

// One host commonly holds a whole IPv6 /64: rotating through it must not
// reset the budget.
func TestThrottleCountsAnIPv6SlashSixtyFourAsOneAddress(t *testing.T) {
	a := throttledAuthority(t, testkit.OpenSQLite(t), testkit.NewClock(), 3)
	bogus := credential.MustGenerate(credential.KindAdminKey).Reveal()
	for i := range 3 {
		_, err := a.Authenticate(fromAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1)), bogus)
		if !credential.IsCode(err, credential.CodeUnauthenticated) {
			t.Fatalf("failure %d: %v, want unauthenticated", i+1, err)
		}
	}
	_, err := a.Authenticate(fromAddr("2001:db8:1:2:ffff::9"), bogus)
	if !credential.IsCode(err, credential.CodeRateLimited) || credential.AsError(err).RetryAfter <= 0 {
		t.Fatalf("another address of the same /64: %v, want rate limited with a retry-after", err)
	}
	if _, err := a.Authenticate(fromAddr("2001:db8:1:3::1"), bogus); !credential.IsCode(err, credential.CodeUnauthenticated) {
		t.Errorf("a neighbouring /64: %v, want unauthenticated (its own budget)", err)
	}
}

func TestThrottleOffWithANegativeLimit(t *testing.T) {
	a := throttledAuthority(t, testkit.OpenSQLite(t), testkit.NewClock(), -1)
	bogus := credential.MustGenerate(credential.KindAdminKey).Reveal()
	for i := range 100 {
		if _, err := a.Authenticate(fromAddr("192.0.2.1"), bogus); !credential.IsCode(err, credential.CodeUnauthenticated) {
			t.Fatalf("failure %d with the throttle off: %v", i+1, err)
		}
	}
}

// A flood from more distinct addresses than MaxRefusalKeys in one minute
// writes at most MaxRefusalKeys events plus one overflow event.
func TestRefusalAggregationIsBoundedPerMinute(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		clock := testkit.NewClock()
		a := throttledAuthority(t, store, clock, -1)
		bogus := credential.MustGenerate(credential.KindAdminKey).Reveal()
		const flood = authority.MaxRefusalKeys + 300
		for i := range flood {
			_, _ = a.Authenticate(fromAddr(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)), bogus)
		}
		clock.Advance(time.Minute)
		if err := a.FlushRefusals(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		var events []credential.AuditEvent
		err := store.View(context.Background(), func(tx authority.Tx) error {
			var err error
			events, _, err = tx.ListAuditEvents(context.Background(), authority.AuditFilter{InstanceID: ""})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != authority.MaxRefusalKeys+1 {
			t.Fatalf("%d events for %d refusals from distinct addresses, want %d", len(events), flood, authority.MaxRefusalKeys+1)
		}
		total := 0
		for _, e := range events {
			total += e.Count
		}
		if total != flood {
			t.Errorf("events count %d refusals, want all %d", total, flood)
		}
	})
}

// The middleware carries a request's id and address in one value: both
// must come out of it, and an address set later (a test, a proxy layer)
// must win, as a nested context value would.
func TestWithRequestCarriesIDAndClientIP(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.7")
	ctx := authority.WithRequest(context.Background(), "req_1", ip)
	if got := authority.RequestID(ctx); got != "req_1" {
		t.Errorf("RequestID = %q, want req_1", got)
	}
	if got := authority.ClientIP(ctx); got != ip {
		t.Errorf("ClientIP = %v, want %v", got, ip)
	}
	inner := netip.MustParseAddr("198.51.100.1")
	if got := authority.ClientIP(authority.WithClientIP(ctx, inner)); got != inner {
		t.Errorf("ClientIP under WithClientIP = %v, want %v", got, inner)
	}
	if got := authority.ClientIP(authority.WithRequestID(context.Background(), "req_2")); got.IsValid() {
		t.Errorf("ClientIP without an address = %v, want the zero Addr", got)
	}
}
