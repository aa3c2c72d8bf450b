package authority_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// Every verification decision is counted per credential, outcome and
// minute, flushed in batches, read back as a series of the caller's
// instance only, and deleted by the janitor past its retention.
func TestVerificationAnalytics(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		m := newMachineEnv(t, s)
		tok := m.mint(t, FormatOpaque)
		start := m.clock.Now()
		for range 3 {
			if r, err := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token}); err != nil || r.Reason != ReasonValid {
				t.Fatalf("verify: %v %v", r.Reason, err)
			}
		}
		if r, _ := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token, RequiredScopes: []string{"nope"}}); r.Reason != ReasonInsufficientScope {
			t.Fatalf("verify with a scope it lacks: %s", r.Reason)
		}
		if r, _ := m.a.Verify(ctx, m.admin, VerifyInput{Token: "mt_nothing_of_ours"}); r.Reason != ReasonNotFound {
			t.Fatalf("unknown token: %s", r.Reason)
		}
		// Half of it flushed, then an hour later more.
		if err := m.a.FlushVerificationCounts(ctx); err != nil {
			t.Fatal(err)
		}
		m.clock.Advance(time.Hour)
		if _, err := m.a.RevokeM2MToken(ctx, m.admin, tok.ID, "done"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if r, _ := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token}); r.Reason != ReasonRevoked {
				t.Fatalf("revoked token: %s", r.Reason)
			}
		}
		if r, _ := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token}); r.Reason != ReasonRevoked {
			t.Fatal(r.Reason)
		}
		if err := m.a.FlushVerificationCounts(ctx); err != nil {
			t.Fatal(err)
		}
		// A second flush of nothing adds nothing.
		if err := m.a.FlushVerificationCounts(ctx); err != nil {
			t.Fatal(err)
		}

		h0 := start.UTC().Truncate(time.Hour).UnixMilli()
		h1 := h0 + time.Hour.Milliseconds()
		got, err := m.a.Verifications(ctx, m.admin, VerificationsInput{CredentialID: tok.ID})
		if err != nil {
			t.Fatal(err)
		}
		want := []VerificationBucket{{h0, ReasonInsufficientScope, 1}, {h0, ReasonValid, 3}, {h1, ReasonRevoked, 3}}
		if !equalBuckets(got.Buckets, want) {
			t.Fatalf("hourly series of the token: %+v, want %+v", got.Buckets, want)
		}
		if got.Granularity != GranularityHour || !got.To.Equal(m.clock.Now()) || !got.From.Equal(m.clock.Now().Add(-24*time.Hour).Truncate(time.Hour)) {
			t.Fatalf("range %v..%v %s", got.From, got.To, got.Granularity)
		}
		// The whole instance: the unknown token counts too, under no
		// credential; the machine that minted authenticated once.
		all, err := m.a.Verifications(ctx, m.admin, VerificationsInput{Outcome: "not_found", Granularity: GranularityDay})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Buckets) != 1 || all.Buckets[0].Count != 1 {
			t.Fatalf("not_found of the instance: %+v", all.Buckets)
		}
		machineKey, err := m.a.Verifications(ctx, m.admin, VerificationsInput{CredentialID: m.minterID, Granularity: GranularityMinute, From: start.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if len(machineKey.Buckets) != 1 || machineKey.Buckets[0].Outcome != ReasonValid || machineKey.Buckets[0].Count != 1 {
			t.Fatalf("the minter's key, under its machine's id: %+v (its one authentication)", machineKey.Buckets)
		}

		// Another instance asking for this credential id sees nothing.
		_, otherKey, err := m.a.CreateInstance(ctx, "other")
		if err != nil {
			t.Fatal(err)
		}
		other, err := m.a.Authenticate(ctx, otherKey.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []VerificationsInput{{CredentialID: tok.ID}, {}} {
			if s, err := m.a.Verifications(ctx, other, in); err != nil || len(s.Buckets) != 0 {
				t.Fatalf("another instance, %+v: %+v %v", in, s.Buckets, err)
			}
		}

		// Inputs.
		for _, c := range []struct {
			in    VerificationsInput
			param string
		}{
			{VerificationsInput{Granularity: "week"}, "granularity"},
			{VerificationsInput{Outcome: "fine"}, "outcome"},
			{VerificationsInput{Granularity: GranularityMinute, From: m.clock.Now().Add(-26 * time.Hour)}, "from"},
			{VerificationsInput{From: m.clock.Now(), To: m.clock.Now().Add(-time.Hour)}, "to"},
		} {
			_, err := m.a.Verifications(ctx, m.admin, c.in)
			if e := credential.AsError(err); err == nil || e.Param != c.param {
				t.Errorf("%+v: %v, want an error naming %s", c.in, err, c.param)
			}
		}
		// A key without analytics:read is refused.
		name := "verify only"
		_, secret, err := m.a.CreateAdminKey(ctx, m.admin, CreateAdminKeyInput{Name: &name, Permissions: []string{"verify"}})
		if err != nil {
			t.Fatal(err)
		}
		verifyOnly, err := m.a.Authenticate(ctx, secret.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.a.Verifications(ctx, verifyOnly, VerificationsInput{}); !credential.IsCode(err, credential.CodeForbidden) {
			t.Fatalf("verify-only key: %v", err)
		}

		// Retention: the first hour's minute goes, the second's stays.
		m.clock.Advance(90*24*time.Hour - 30*time.Minute)
		rep, err := m.a.RunJanitor(ctx, Retention{Analytics: 90 * 24 * time.Hour, Batch: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.VerificationCounts < 2 { // valid + insufficient_scope of the token, not_found, the minter's
			t.Fatalf("janitor deleted %d counts", rep.VerificationCounts)
		}
		left, err := m.a.Verifications(ctx, m.admin, VerificationsInput{CredentialID: tok.ID, Granularity: GranularityDay, From: start})
		if err != nil {
			t.Fatal(err)
		}
		if len(left.Buckets) != 1 || left.Buckets[0].Outcome != ReasonRevoked || left.Buckets[0].Count != 3 {
			t.Fatalf("after the janitor: %+v", left.Buckets)
		}
	})
}

// With analytics off nothing is counted.
func TestVerificationAnalyticsOff(t *testing.T) {
	keys, err := keyring.New(bytes.Repeat([]byte{9}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := New(Config{Store: testkit.OpenSQLite(t), Keyring: keys, Clock: testkit.NewClock(), Limiter: inmem.NewLimiter(), NoAnalytics: true})
	_, key, err := a.CreateInstance(ctx, "off")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := a.Authenticate(ctx, key.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, admin, VerifyInput{Token: "mt_unknown"}); err != nil {
		t.Fatal(err)
	}
	if err := a.FlushVerificationCounts(ctx); err != nil {
		t.Fatal(err)
	}
	if s, err := a.Verifications(ctx, admin, VerificationsInput{}); err != nil || len(s.Buckets) != 0 {
		t.Fatalf("%+v %v", s.Buckets, err)
	}
}

func equalBuckets(a, b []VerificationBucket) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The counts of many distinct credentials do not wait in memory for the
// tick: past the counter's bound of new keys the flusher writes them at
// once, so a load over a million stored tokens holds a bounded map.
func TestVerificationCountsFlushEarlyWhenManyAreDistinct(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx, stop := context.WithCancel(context.Background())
		m := newMachineEnv(t, s)
		const distinct = 3
		SetMaxPendingCounts(m.a, distinct)
		flushed := make(chan struct{})
		go func() {
			defer close(flushed)
			m.a.RunAnalyticsFlusher(ctx, time.Hour, func(err error) { t.Error(err) }) // the tick never comes
		}()
		t.Cleanup(func() { stop(); <-flushed })

		for range distinct {
			tok := m.mint(t, FormatOpaque)
			if r, err := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token}); err != nil || r.Reason != ReasonValid {
				t.Fatalf("verify: %v %v", r.Reason, err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if n := validVerifications(t, m.a, m.admin); n == distinct {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d valid verifications stored, want %d: no early flush", validVerifications(t, m.a, m.admin), distinct)
			}
			runtime.Gosched()
		}
	})
}

// validVerifications is how many valid verifications a's store holds for
// the caller's instance, over the default window.
func validVerifications(t *testing.T, a *Authority, caller Caller) int64 {
	t.Helper()
	got, err := a.Verifications(context.Background(), caller, VerificationsInput{Outcome: "valid"})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, b := range got.Buckets {
		n += b.Count
	}
	return n
}
