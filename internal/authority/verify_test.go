package authority_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/testkit"
)

// machineEnv is an instance with a minter scoped to a target, on SQLite.
type machineEnv struct {
	a                  *Authority
	clock              *testkit.Clock
	admin, minter      Caller
	minterID, targetID string
}

func newMachineEnv(tb testing.TB, store Store) machineEnv {
	tb.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{9}, keyring.MasterKeySize))
	if err != nil {
		tb.Fatal(err)
	}
	clock := testkit.NewClock()
	a := New(Config{Store: store, Keyring: keys, Clock: clock, Limiter: inmem.NewLimiter()})
	ctx := context.Background()
	in, adminKey, err := a.CreateInstance(ctx, "bench")
	if err != nil {
		tb.Fatal(err)
	}
	admin, err := a.Authenticate(ctx, adminKey.Reveal())
	if err != nil {
		tb.Fatal(err)
	}
	name := "target"
	target, _, err := a.CreateMachine(ctx, admin, CreateMachineInput{Name: &name})
	if err != nil {
		tb.Fatal(err)
	}
	name = "minter"
	minter, minterKey, err := a.CreateMachine(ctx, admin, CreateMachineInput{Name: &name, ScopedMachines: []string{target.ID}})
	if err != nil {
		tb.Fatal(err)
	}
	mc, err := a.Authenticate(ctx, minterKey.Reveal())
	if err != nil {
		tb.Fatal(err)
	}
	_ = in
	return machineEnv{a: a, clock: clock, admin: admin, minter: mc, minterID: minter.ID, targetID: target.ID}
}

func (m machineEnv) mint(tb testing.TB, format string) M2MToken {
	tb.Helper()
	tok, err := m.a.CreateM2MToken(context.Background(), m.minter, CreateM2MTokenInput{Format: format})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// TestARevokeLandingDuringACacheFillIsNotUndone holds a cache fill open
// after its store read, revokes the token in that gap, and checks that the
// stale row read before the revoke never reaches the cache.
func TestARevokeLandingDuringACacheFillIsNotUndone(t *testing.T) {
	m := newMachineEnv(t, testkit.OpenSQLite(t))
	ctx := context.Background()
	tok := m.mint(t, FormatOpaque)

	readDone, release := make(chan struct{}), make(chan struct{})
	SetBeforeCacheFill(m.a, func() {
		close(readDone)
		<-release
	})
	first := make(chan VerifyResult)
	go func() {
		r, err := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token})
		if err != nil {
			t.Error(err)
		}
		first <- r
	}()
	<-readDone
	SetBeforeCacheFill(m.a, nil)
	if _, err := m.a.RevokeM2MToken(ctx, m.admin, tok.ID, "leaked"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the fill stays held across the revoke
	close(release)
	if r := <-first; r.Reason != ReasonValid {
		t.Fatalf("the verification that read before the revoke: %s", r.Reason)
	}
	r, err := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token})
	if err != nil {
		t.Fatal(err)
	}
	if r.Reason != ReasonRevoked {
		t.Fatalf("after the revoke: %s, want revoked (a stale fill resurrected the token)", r.Reason)
	}
}

// TestAVerifyStartedAfterARevokeNeverJoinsAnOlderRead starts a
// verification after a revoke has returned while a store read that began
// before the revoke is still in flight: it must read again, not share the
// stale row.
func TestAVerifyStartedAfterARevokeNeverJoinsAnOlderRead(t *testing.T) {
	m := newMachineEnv(t, testkit.OpenSQLite(t))
	ctx := context.Background()
	tok := m.mint(t, FormatOpaque)

	readDone, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	SetBeforeCacheFill(m.a, func() {
		held := false
		once.Do(func() { held = true })
		if held { // hold only the first, pre-revoke read
			close(readDone)
			<-release
		}
	})
	first := make(chan Reason, 1)
	go func() {
		r, _ := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token})
		first <- r.Reason
	}()
	<-readDone
	if _, err := m.a.RevokeM2MToken(ctx, m.admin, tok.ID, "leaked"); err != nil {
		t.Fatal(err)
	}
	after := make(chan Reason, 1)
	go func() {
		r, _ := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token})
		after <- r.Reason
	}()
	select {
	case got := <-after:
		if got != ReasonRevoked {
			t.Fatalf("a verification started after the revoke answered %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a verification started after the revoke waited on the older read")
	}
	close(release)
	<-first
}

// gatedStore holds every View until the gate opens, so a test can cancel
// the caller that started a shared read while it is in flight.
type gatedStore struct {
	Store
	gate chan struct{}
}

func (g gatedStore) View(ctx context.Context, fn func(Tx) error) error {
	<-g.gate
	return g.Store.View(ctx, fn)
}

// TestACanceledCallerDoesNotFailOthersSharingItsRead cancels the request
// whose cache miss started a store read; another request waiting on the
// same read must still get its answer.
func TestACanceledCallerDoesNotFailOthersSharingItsRead(t *testing.T) {
	store := testkit.OpenSQLite(t)
	m := newMachineEnv(t, store)
	tok := m.mint(t, FormatOpaque)
	gate := make(chan struct{})
	keys, _ := keyring.New(bytes.Repeat([]byte{9}, keyring.MasterKeySize))
	a := New(Config{Store: gatedStore{Store: store, gate: gate}, Keyring: keys, Clock: m.clock, Limiter: inmem.NewLimiter()})

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := a.Verify(leaderCtx, m.admin, VerifyInput{Token: tok.Token})
		leader <- err
	}()
	follower := make(chan VerifyResult, 1)
	time.Sleep(50 * time.Millisecond) // let the leader start the read
	go func() {
		r, err := a.Verify(context.Background(), m.admin, VerifyInput{Token: tok.Token})
		if err != nil {
			t.Error(err)
		}
		follower <- r
	}()
	time.Sleep(50 * time.Millisecond)
	cancelLeader()
	close(gate)
	if r := <-follower; r.Reason != ReasonValid {
		t.Fatalf("the follower got %s after the leader was canceled", r.Reason)
	}
	<-leader
}

func TestUsageIsCoalescedAndKeepsTheLatestTime(t *testing.T) {
	m := newMachineEnv(t, testkit.OpenSQLite(t))
	ctx := context.Background()
	tok := m.mint(t, FormatOpaque)
	for i := 0; i < 50; i++ {
		m.clock.Advance(time.Second)
		if r, err := m.a.Verify(ctx, m.admin, VerifyInput{Token: tok.Token}); err != nil || !r.Valid {
			t.Fatalf("verify: %v %v", r.Reason, err)
		}
	}
	pending := TakePendingUsage(m.a)
	var got time.Time
	for _, u := range pending {
		if u.CredentialID == tok.ID {
			got = u.At
		}
	}
	if len(pending) != 3 || !got.Equal(m.clock.Now()) { // the token, and the two keys authenticated at setup
		t.Fatalf("50 verifications left %d pending usages, token at %v; want 3 and %v", len(pending), got, m.clock.Now())
	}
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	b.Run("opaque cache hit", func(b *testing.B) {
		m := newMachineEnv(b, testkit.OpenSQLite(b))
		tok := m.mint(b, FormatOpaque)
		in := VerifyInput{Token: tok.Token}
		b.ReportAllocs()
		for b.Loop() {
			if r, err := m.a.Verify(ctx, m.admin, in); err != nil || !r.Valid {
				b.Fatal(r.Reason, err)
			}
		}
	})
	b.Run("opaque cache miss on SQLite", func(b *testing.B) {
		m := newMachineEnv(b, testkit.OpenSQLite(b))
		tok := m.mint(b, FormatOpaque)
		in := VerifyInput{Token: tok.Token}
		b.ReportAllocs()
		for b.Loop() {
			DropCache(m.a)
			if r, err := m.a.Verify(ctx, m.admin, in); err != nil || !r.Valid {
				b.Fatal(r.Reason, err)
			}
		}
	})
	for _, alg := range []string{"RS256", "EdDSA"} {
		for _, checked := range []bool{true, false} {
			name := "jwt " + alg + " signature checked before"
			if !checked {
				name = "jwt " + alg + " signature check every time"
			}
			b.Run(name, func(b *testing.B) {
				m := newMachineEnv(b, testkit.OpenSQLite(b))
				if _, err := m.a.RotateSigningKey(ctx, m.admin, alg); err != nil {
					b.Fatal(err)
				}
				in := VerifyInput{Token: m.mint(b, FormatJWT).Token}
				b.ReportAllocs()
				for b.Loop() {
					if !checked {
						DropVerifiedJWTs(m.a)
					}
					if r, err := m.a.Verify(ctx, m.admin, in); err != nil || !r.Valid {
						b.Fatal(r.Reason, err)
					}
				}
			})
		}
	}
	b.Run("malformed token", func(b *testing.B) {
		m := newMachineEnv(b, testkit.OpenSQLite(b))
		in := VerifyInput{Token: "mt_not-a-real-token-at-all"}
		b.ReportAllocs()
		for b.Loop() {
			if r, _ := m.a.Verify(ctx, m.admin, in); r.Valid {
				b.Fatal("valid")
			}
		}
	})
}
