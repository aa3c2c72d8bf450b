package authority_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/permquery"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

type controlsEnv struct {
	a     *Authority
	clock *testkit.Clock
	admin Caller
}

func newControlsEnv(t *testing.T, store Store, clock *testkit.Clock, bus Bus) controlsEnv {
	t.Helper()
	a := node(t, store, bus, clock)
	_, adminKey, err := a.CreateInstance(context.Background(), "controls")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := a.Authenticate(context.Background(), adminKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	return controlsEnv{a: a, clock: clock, admin: admin}
}

func (e controlsEnv) key(t *testing.T) APIKey {
	t.Helper()
	name, subject := "metered key", "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"
	k, err := e.a.CreateAPIKey(context.Background(), e.admin, CreateAPIKeyInput{Name: &name, Subject: &subject})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (e controlsEnv) set(t *testing.T, id string, in ControlsInput) ControlsView {
	t.Helper()
	v, err := e.a.SetCredentialControls(context.Background(), e.admin, id, in)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func query(t *testing.T, q string) permquery.Query {
	t.Helper()
	p, err := permquery.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func TestVerifyAppliesPermissionsAndRoles(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		e := newControlsEnv(t, store, testkit.NewClock(), inmem.NewBus())
		if _, err := e.a.CreateRole(ctx, e.admin, "dns-admin", []string{"dns.write", "dns.delete"}); err != nil {
			t.Fatal(err)
		}
		k := e.key(t)
		e.set(t, k.ID, ControlsInput{Meta: json.RawMessage(`{"plan": "pro"}`), Permissions: &[]string{"dns.read"}, Roles: &[]string{"dns-admin"}})
		for _, c := range []struct {
			name, query string
			valid       bool
			missing     []string
		}{
			{"valid_direct", "dns.read", true, nil},
			{"valid_through_role", "dns.read AND dns.write", true, nil},
			{"valid_or", "billing.read OR dns.delete", true, nil},
			{"refused_missing_one", "dns.read AND (billing.read OR billing.write)", false, []string{"billing.read"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				r, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: k.Secret, Permissions: query(t, c.query)})
				if err != nil {
					t.Fatal(err)
				}
				if r.Valid != c.valid || !slices.Equal(r.MissingPermissions, c.missing) {
					t.Fatalf("%s: valid %v (%s) missing %q, want %v %q", c.query, r.Valid, r.Reason, r.MissingPermissions, c.valid, c.missing)
				}
				if !c.valid && r.Reason != ReasonInsufficientPermissions {
					t.Fatalf("reason %s", r.Reason)
				}
				if string(r.Meta) != `{"plan":"pro"}` || !slices.Equal(r.Roles, []string{"dns-admin"}) {
					t.Fatalf("meta %s roles %q", r.Meta, r.Roles)
				}
			})
		}
		// A role's change applies to the next verify.
		if _, err := e.a.UpdateRole(ctx, e.admin, "dns-admin", []string{"dns.delete"}); err != nil {
			t.Fatal(err)
		}
		if r, _ := e.a.Verify(ctx, e.admin, VerifyInput{Token: k.Secret, Permissions: query(t, "dns.write")}); r.Valid {
			t.Fatal("a permission the role no longer grants still held")
		}
	})
}

func TestControlsRefuseBadInputAndWriteNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		e := newControlsEnv(t, store, testkit.NewClock(), inmem.NewBus())
		k := e.key(t)
		big := `{"a":"` + strings.Repeat("x", MaxMetaBytes) + `"}`
		for _, c := range []struct {
			name, param string
			in          ControlsInput
		}{
			{"meta_too_big", "meta", ControlsInput{Meta: json.RawMessage(big)}},
			{"meta_not_object", "meta", ControlsInput{Meta: json.RawMessage(`[1]`)}},
			{"bad_permission_name", "permissions[1]", ControlsInput{Permissions: &[]string{"ok", "not ok"}}},
			{"operator_as_permission", "permissions[0]", ControlsInput{Permissions: &[]string{"AND"}}},
			{"unknown_role", "roles[0]", ControlsInput{Roles: &[]string{"nobody"}}},
			{"bad_limit", "ratelimits[0].limit", ControlsInput{RateLimits: &[]NamedLimit{{Name: "x", Limit: 0, Duration: 1000, Algorithm: LimitFixed}}}},
			{"bad_limit_duration", "ratelimits[0].duration", ControlsInput{RateLimits: &[]NamedLimit{{Name: "x", Limit: 1, Duration: 10, Algorithm: LimitFixed}}}},
			{"bad_limit_algorithm", "ratelimits[0].algorithm", ControlsInput{RateLimits: &[]NamedLimit{{Name: "x", Limit: 1, Duration: 1000, Algorithm: "leaky"}}}},
			{"bad_refill", "credits.refill.interval", ControlsInput{SetCredits: true, Credits: &CreditsInput{Remaining: 1, Refill: &CreditsRule{Amount: 1, Interval: "weekly"}}}},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := e.a.SetCredentialControls(ctx, e.admin, k.ID, c.in)
				if ce := credential.AsError(err); err == nil || ce.Param != c.param || ce.Code == credential.CodeInternal {
					t.Fatalf("got %v (param %q), want a client error naming %s", err, ce.Param, c.param)
				}
				v, err := e.a.GetCredentialControls(ctx, e.admin, k.ID)
				if err != nil || len(v.Meta) > 0 || len(v.Permissions) > 0 || len(v.Roles) > 0 || len(v.RateLimits) > 0 || v.Credits != nil {
					t.Fatalf("something was written: %+v %v", v, err)
				}
			})
		}
		if _, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: k.Secret, RateLimits: []LimitUse{{Name: "nope", Cost: 1}}}); credential.AsError(err).Param != "ratelimits[0].name" {
			t.Fatalf("verify naming an unknown limit: %v", err)
		}
	})
}

func TestAnotherTenantsCredentialIsNotFound(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		e := newControlsEnv(t, store, clock, inmem.NewBus())
		k := e.key(t)
		_, otherKey, err := e.a.CreateInstance(ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		other, _ := e.a.Authenticate(ctx, otherKey.Reveal())
		_, err = e.a.SetCredentialControls(ctx, other, k.ID, ControlsInput{Permissions: &[]string{"x"}})
		if !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("controls of another tenant's key: %v", err)
		}
		_, err = e.a.ChangeCredits(ctx, other, k.ID, "set", ptr(int64(5)))
		if !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("credits of another tenant's key: %v", err)
		}
	})
}

func TestNamedLimitsAreAllOrNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		e := newControlsEnv(t, store, testkit.NewClock(), inmem.NewBus())
		k := e.key(t)
		e.set(t, k.ID, ControlsInput{RateLimits: &[]NamedLimit{
			{Name: "burst", Limit: 3, Duration: 1000, Algorithm: LimitFixed, AutoApply: true},
			{Name: "daily", Limit: 5, Duration: 86_400_000, Algorithm: LimitSliding, AutoApply: true},
			{Name: "tokens", Limit: 100, Duration: 60_000, Algorithm: LimitFixed},
		}})
		verify := func(uses []LimitUse) VerifyResult {
			t.Helper()
			r, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: k.Secret, RateLimits: uses})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		for i := range 3 {
			if r := verify(nil); !r.Valid || len(r.Limits) != 2 || r.Limits[0].Remaining != int64(2-i) {
				t.Fatalf("call %d: %s %+v", i, r.Reason, r.Limits)
			}
		}
		r := verify(nil)
		if r.Reason != ReasonRateLimited || r.Limits[1].Remaining != 2 {
			t.Fatalf("fourth call in the second: %s %+v, want rate_limited with daily untouched at 2", r.Reason, r.Limits)
		}
		e.clock.Advance(time.Second)
		// tokens has room, daily has 2: a cost of 3 on daily refuses both.
		r = verify([]LimitUse{{Name: "tokens", Cost: 50}, {Name: "daily", Cost: 3}})
		if r.Reason != ReasonRateLimited || r.Limits[0].Remaining != 100 {
			t.Fatalf("refused call: %s %+v, want tokens untouched", r.Reason, r.Limits)
		}
		r = verify([]LimitUse{{Name: "tokens", Cost: 50}, {Name: "daily", Cost: 2}})
		if !r.Valid || r.Limits[0].Remaining != 50 || r.Limits[1].Remaining != 0 {
			t.Fatalf("admitted call: %s %+v", r.Reason, r.Limits)
		}
	})
}

func TestCreditsAreTakenAndRefilledAtTheBoundary(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		clock.Set(time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC))
		e := newControlsEnv(t, store, clock, inmem.NewBus())
		k := e.key(t)
		e.set(t, k.ID, ControlsInput{SetCredits: true, Credits: &CreditsInput{Remaining: 3, Refill: &CreditsRule{Amount: 10, Interval: "monthly", DayOfMonth: 1}}})
		verify := func(cost *int64) VerifyResult {
			t.Helper()
			r, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: k.Secret, CreditCost: cost})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := verify(ptr(int64(2))); !r.Valid || *r.Credits != 1 {
			t.Fatalf("cost 2 of 3: %s %v", r.Reason, r.Credits)
		}
		if r := verify(ptr(int64(2))); r.Reason != ReasonUsageExceeded || *r.Credits != 1 {
			t.Fatalf("cost 2 of 1: %s %v, want usage_exceeded with 1 left", r.Reason, r.Credits)
		}
		if r := verify(ptr(int64(0))); !r.Valid || *r.Credits != 1 {
			t.Fatalf("cost 0 reads: %s %v", r.Reason, r.Credits)
		}
		clock.Set(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) // the boundary, exactly
		if r := verify(nil); !r.Valid || *r.Credits != 9 {
			t.Fatalf("first call at the boundary: %s %v, want 10 − 1", r.Reason, r.Credits)
		}
		if r := verify(nil); !r.Valid || *r.Credits != 8 {
			t.Fatalf("second call after the boundary: %s %v, want no second refill", r.Reason, r.Credits)
		}
		c, err := e.a.ChangeCredits(ctx, e.admin, k.ID, "decrement", ptr(int64(100)))
		if err != nil || c.Remaining != 0 {
			t.Fatalf("decrement: %+v %v", c, err)
		}
		if r := verify(nil); r.Reason != ReasonUsageExceeded {
			t.Fatalf("after decrement to 0: %s", r.Reason)
		}
		if c, err = e.a.ChangeCredits(ctx, e.admin, k.ID, "increment", ptr(int64(4))); err != nil || c.Remaining != 4 {
			t.Fatalf("increment: %+v %v", c, err)
		}
	})
}

// TestConcurrentVerifiesTakeExactlyTheCredits: 100 verifies at once
// against 50 credits, on one node and on three sharing the store.
func TestConcurrentVerifiesTakeExactlyTheCredits(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		for _, nodes := range []int{1, 3} {
			ctx := context.Background()
			clock, bus := testkit.NewClock(), inmem.NewBus()
			e := newControlsEnv(t, store, clock, bus)
			k := e.key(t)
			e.set(t, k.ID, ControlsInput{SetCredits: true, Credits: &CreditsInput{Remaining: 50}})
			as := []*Authority{e.a}
			for len(as) < nodes {
				as = append(as, node(t, store, bus, clock))
			}
			var valid, exceeded atomic.Int64
			var wg sync.WaitGroup
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n := as[i%nodes] // uneven on three: 34, 33, 33
					r, err := n.Verify(ctx, e.admin, VerifyInput{Token: k.Secret})
					if err != nil {
						t.Error(err)
						return
					}
					switch r.Reason {
					case ReasonValid:
						valid.Add(1)
					case ReasonUsageExceeded:
						exceeded.Add(1)
					default:
						t.Errorf("reason %s", r.Reason)
					}
				}()
			}
			wg.Wait()
			t.Logf("%d node(s): %d valid, %d usage_exceeded", nodes, valid.Load(), exceeded.Load())
			if valid.Load() != 50 || exceeded.Load() != 50 {
				t.Fatalf("%d node(s): %d valid, %d usage_exceeded; want exactly 50 and 50", nodes, valid.Load(), exceeded.Load())
			}
		}
	})
}

func TestM2MTokensCarryControlsFromMint(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		m := newMachineEnv(t, store)
		tok, err := m.a.CreateM2MToken(ctx, m.minter, CreateM2MTokenInput{Controls: ControlsInput{
			Permissions: &[]string{"jobs.run"},
			RateLimits:  &[]NamedLimit{{Name: "calls", Limit: 1, Duration: 60_000, Algorithm: LimitSliding, AutoApply: true}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token, Permissions: query(t, "jobs.run")})
		if err != nil || !r.Valid || len(r.Limits) != 1 {
			t.Fatalf("first: %v %s %+v", err, r.Reason, r.Limits)
		}
		if r, _ = m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token}); r.Reason != ReasonRateLimited {
			t.Fatalf("second in the minute: %s", r.Reason)
		}
		_, err = m.a.CreateM2MToken(ctx, m.minter, CreateM2MTokenInput{Format: FormatJWT, Controls: ControlsInput{Permissions: &[]string{"x"}}})
		if credential.AsError(err).Param != "permissions" {
			t.Fatalf("controls on a JWT: %v", err)
		}
	})
}

func TestIdentitiesShareLimitsAndCreditsAndTakeTheirKeysAlong(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		e := newControlsEnv(t, store, testkit.NewClock(), inmem.NewBus())
		ident, err := e.a.CreateIdentity(ctx, e.admin, IdentityInput{ExternalID: ptr("customer-42"),
			RateLimits: &[]NamedLimit{{Name: "calls", Limit: 3, Duration: 60_000, Algorithm: LimitFixed, AutoApply: true}},
			SetCredits: true, Credits: &CreditsInput{Remaining: 100}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.a.CreateIdentity(ctx, e.admin, IdentityInput{ExternalID: ptr("customer-42")}); credential.AsError(err).Param != "external_id" {
			t.Fatalf("a second identity with the external id: %v", err)
		}
		k1, k2 := e.key(t), e.key(t)
		for _, k := range []APIKey{k1, k2} {
			e.set(t, k.ID, ControlsInput{IdentityID: &ident.ID})
		}
		e.set(t, k2.ID, ControlsInput{SetCredits: true, Credits: &CreditsInput{Remaining: 1}})
		verify := func(k APIKey) VerifyResult {
			t.Helper()
			r, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: k.Secret})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := verify(k1); !r.Valid || r.ExternalID != "customer-42" || *r.Credits != 99 {
			t.Fatalf("k1: %s %q %v", r.Reason, r.ExternalID, r.Credits)
		}
		if r := verify(k2); !r.Valid || *r.Credits != 0 { // k2's own pool is the tighter
			t.Fatalf("k2: %s %v", r.Reason, r.Credits)
		}
		if r := verify(k2); r.Reason != ReasonUsageExceeded {
			t.Fatalf("k2 without its own credits: %s", r.Reason)
		}
		// The identity's three calls a minute are shared: k2's refused call
		// counted against the limit, which is taken before credits.
		if r := verify(k1); r.Reason != ReasonRateLimited {
			t.Fatalf("k1 after three calls of the identity: %s %+v", r.Reason, r.Limits)
		}
		v, err := e.a.GetIdentity(ctx, e.admin, ident.ID)
		if err != nil || v.CreditsView.Remaining != 98 {
			t.Fatalf("identity credits: k2's refused call took nothing: %+v %v", v.CreditsView, err)
		}
		list, err := e.a.IdentityCredentials(ctx, e.admin, ident.ID, nil)
		if err != nil || len(list) != 2 {
			t.Fatalf("the identity's credentials: %v %v", list, err)
		}

		_, otherKey, err := e.a.CreateInstance(ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		other, _ := e.a.Authenticate(ctx, otherKey.Reveal())
		if _, err := e.a.GetIdentity(ctx, other, ident.ID); !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("another tenant's identity: %v", err)
		}
		if _, err := e.a.DeleteIdentity(ctx, other, ident.ID); !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("deleting another tenant's identity: %v", err)
		}

		n, err := e.a.DeleteIdentity(ctx, e.admin, ident.ID)
		if err != nil || n != 2 {
			t.Fatalf("delete: %d %v", n, err)
		}
		for _, k := range []APIKey{k1, k2} {
			if r := verify(k); r.Reason != ReasonRevoked {
				t.Fatalf("a key of the deleted identity: %s", r.Reason)
			}
		}
		if _, err := e.a.SetCredentialControls(ctx, e.admin, k1.ID, ControlsInput{IdentityID: &ident.ID}); credential.AsError(err).Param != "identity_id" {
			t.Fatalf("linking a deleted identity: %v", err)
		}
	})
}

// PATs and org tokens take controls through the generic route; an org
// token keeps Mist's hourly limit beside its named ones.
func TestEveryKindTakesControls(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		e := newControlsEnv(t, store, testkit.NewClock(), inmem.NewBus())
		name := "ci"
		pat, err := e.a.CreatePAT(ctx, e.admin.ActingFor("user_1"), nil, CreatePATInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		slug, orgName := "acme", "Acme"
		org, err := e.a.CreateOrganization(ctx, e.admin, OrganizationInput{Slug: &slug, Name: &orgName})
		if err != nil {
			t.Fatal(err)
		}
		ot, err := e.a.CreateOrgToken(ctx, e.admin, org.ID, OrgTokenInput{Name: &name,
			Privileges: []credential.Privilege{{Scope: credential.ScopeOrg, Role: credential.RoleRead}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ kind, id, token string }{{"pat", pat.ID, pat.Token}, {"org_token", ot.ID, ot.Key}} {
			t.Run(c.kind, func(t *testing.T) {
				e.set(t, c.id, ControlsInput{Permissions: &[]string{"ci.run"}, Meta: json.RawMessage(`{"team":"infra"}`),
					RateLimits: &[]NamedLimit{{Name: "runs", Limit: 1, Duration: 60_000, Algorithm: LimitFixed, AutoApply: true}}})
				r, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: c.token, Permissions: query(t, "ci.run")})
				if err != nil || !r.Valid || string(r.Meta) != `{"team":"infra"}` || len(r.Limits) != 1 {
					t.Fatalf("%v %s %s %+v", err, r.Reason, r.Meta, r.Limits)
				}
				if c.kind == "org_token" && r.RateLimit == nil {
					t.Fatal("the org token lost its hourly limit")
				}
				if r, _ = e.a.Verify(ctx, e.admin, VerifyInput{Token: c.token}); r.Reason != ReasonRateLimited {
					t.Fatalf("second run in the minute: %s", r.Reason)
				}
			})
		}
		// An id of one kind never reaches another kind's credential.
		if _, err := e.a.SetCredentialControls(ctx, e.admin, "ak_"+strings.Repeat("0", 32), ControlsInput{}); !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
	})
}

// TestNamedLimitsAreExactAcrossThreeNodes: three nodes sharing PostgreSQL
// and its Limiter, 100 concurrent verifies, uneven (34/33/33), against a
// limit of 30 → exactly 30 admitted.
func TestNamedLimitsAreExactAcrossThreeNodes(t *testing.T) {
	store := testkit.OpenPostgres(t)
	ctx := context.Background()
	clock, bus := testkit.NewClock(), inmem.NewBus()
	limiter := store.Limiter()
	keys := testKeyring(t)
	var nodes []*Authority
	for range 3 {
		nodes = append(nodes, New(Config{Store: store, Keyring: keys, Clock: clock, Limiter: limiter, Bus: bus}))
	}
	_, adminKey, err := nodes[0].CreateInstance(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := nodes[0].Authenticate(ctx, adminKey.Reveal())
	e := controlsEnv{a: nodes[0], clock: clock, admin: admin}
	k := e.key(t)
	e.set(t, k.ID, ControlsInput{RateLimits: &[]NamedLimit{{Name: "calls", Limit: 30, Duration: 3_600_000, Algorithm: LimitSliding, AutoApply: true}},
		SetCredits: true, Credits: &CreditsInput{Remaining: 1000}})
	var valid, limited atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := nodes[i%3].Verify(ctx, admin, VerifyInput{Token: k.Secret})
			switch {
			case err != nil:
				t.Error(err)
			case r.Valid:
				valid.Add(1)
			case r.Reason == ReasonRateLimited:
				limited.Add(1)
			default:
				t.Errorf("reason %s", r.Reason)
			}
		}()
	}
	wg.Wait()
	t.Logf("3 nodes: %d valid, %d rate_limited", valid.Load(), limited.Load())
	if valid.Load() != 30 || limited.Load() != 70 {
		t.Fatalf("%d valid, %d rate_limited; want exactly 30 and 70", valid.Load(), limited.Load())
	}
	v, err := nodes[1].GetCredentialControls(ctx, admin, k.ID)
	if err != nil || v.Credits.Remaining != 970 {
		t.Fatalf("credits after 30 admitted calls: %+v %v (a refused call takes no credit)", v.Credits, err)
	}
}

func testKeyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{9}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// A credential and an identity may each carry MaxNamedLimits limits, and
// a verify applies all of them at once (one TakeAll of 2 × MaxNamedLimits
// takes); one more on either is refused naming ratelimits, and writes
// nothing.
func TestNamedLimitsBounds(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		e := newControlsEnv(t, store, testkit.NewClock(), inmem.NewBus())
		limits := func(prefix string, n int) *[]NamedLimit {
			ls := make([]NamedLimit, n)
			for i := range ls {
				ls[i] = NamedLimit{Name: prefix + strconv.Itoa(i), Limit: 2, Duration: 3_600_000, Algorithm: LimitSliding, AutoApply: true}
			}
			return &ls
		}
		tooMany := func(what string, err error) {
			t.Helper()
			if ce := credential.AsError(err); err == nil || ce.Code != credential.CodeTooMany || ce.Param != "ratelimits" {
				t.Fatalf("%s with %d limits: %v (param %q), want %s naming ratelimits", what, MaxNamedLimits+1, err, ce.Param, credential.CodeTooMany)
			}
		}
		k := e.key(t)
		_, err := e.a.SetCredentialControls(ctx, e.admin, k.ID, ControlsInput{RateLimits: limits("c", MaxNamedLimits+1)})
		tooMany("a credential", err)
		if v, err := e.a.GetCredentialControls(ctx, e.admin, k.ID); err != nil || len(v.RateLimits) != 0 {
			t.Fatalf("something was written: %+v %v", v.RateLimits, err)
		}
		_, err = e.a.CreateIdentity(ctx, e.admin, IdentityInput{ExternalID: ptr("too-many"), RateLimits: limits("i", MaxNamedLimits+1)})
		tooMany("an identity", err)
		ident, err := e.a.CreateIdentity(ctx, e.admin, IdentityInput{ExternalID: ptr("many"), RateLimits: limits("i", MaxNamedLimits)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.a.UpdateIdentity(ctx, e.admin, ident.ID, IdentityInput{RateLimits: limits("i", MaxNamedLimits+1)})
		tooMany("an identity's update", err)
		e.set(t, k.ID, ControlsInput{RateLimits: limits("c", MaxNamedLimits), IdentityID: &ident.ID})

		want := 2 * MaxNamedLimits
		for i, rem := range []int64{1, 0} {
			r, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: k.Secret})
			if err != nil || !r.Valid || len(r.Limits) != want {
				t.Fatalf("verify %d: %v %s, %d limits, want valid with %d", i, err, r.Reason, len(r.Limits), want)
			}
			for _, l := range r.Limits {
				if l.Remaining != rem {
					t.Fatalf("verify %d: %+v, want remaining %d", i, l, rem)
				}
			}
		}
		if r, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: k.Secret}); err != nil || r.Reason != ReasonRateLimited {
			t.Fatalf("a third verify: %v %s, want rate_limited", err, r.Reason)
		}
	})
}

// lockCountingStore counts the credentials its transactions lock.
type lockCountingStore struct {
	Store
	locked atomic.Int64
}

func (s *lockCountingStore) Update(ctx context.Context, fn func(Tx) error) error {
	return s.Store.Update(ctx, func(tx Tx) error { return fn(lockCountingTx{tx, s}) })
}

type lockCountingTx struct {
	Tx
	s *lockCountingStore
}

func (t lockCountingTx) LockCredential(ctx context.Context, instanceID, id string) (credential.Credential, error) {
	t.s.locked.Add(1)
	return t.Tx.LockCredential(ctx, instanceID, id)
}

// A change of a credential's controls holds its row (see
// TestALockedCredentialMakesAnotherNodesLockWait for what the lock does):
// it reads the controls and writes them back, and a second node's change
// between the two would be lost.
func TestAControlsChangeLocksTheCredentialItChanges(t *testing.T) {
	store := &lockCountingStore{Store: testkit.OpenSQLite(t)}
	e := newControlsEnv(t, store, testkit.NewClock(), inmem.NewBus())
	ctx := context.Background()
	k := e.key(t)
	before := store.locked.Load()
	e.set(t, k.ID, ControlsInput{SetCredits: true, Credits: &CreditsInput{Remaining: 10}})
	if store.locked.Load() == before {
		t.Error("a controls change did not lock the credential")
	}
	before = store.locked.Load()
	amount := int64(5)
	if _, err := e.a.ChangeCredits(ctx, e.admin, k.ID, "increment", &amount); err != nil {
		t.Fatal(err)
	}
	if store.locked.Load() == before {
		t.Error("a credits change did not lock the credential")
	}
}
