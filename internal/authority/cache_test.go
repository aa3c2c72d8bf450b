package authority_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// countingStore counts the store reads of the verify path: credential
// reads by digest and View transactions.
type countingStore struct {
	Store
	reads, updates atomic.Int64
	usages         atomic.Int64
	largestFlush   atomic.Int64
	countRows      atomic.Int64 // verification counts written
	// failOn, when set, is the count of updates whose last one fails
	// without running.
	failOn atomic.Int64
}

var errInjected = errors.New("injected update failure")

func (s *countingStore) View(ctx context.Context, fn func(Tx) error) error {
	s.reads.Add(1)
	return s.Store.View(ctx, fn)
}

func (s *countingStore) CredentialByDigest(ctx context.Context, d credential.Digest) (credential.Credential, error) {
	s.reads.Add(1)
	return s.Store.(DigestReader).CredentialByDigest(ctx, d)
}

func (s *countingStore) Update(ctx context.Context, fn func(Tx) error) error {
	if n := s.updates.Add(1); n == s.failOn.Load() {
		return errInjected
	}
	return s.Store.Update(ctx, func(tx Tx) error { return fn(countingTx{tx, s}) })
}

type countingTx struct {
	Tx
	s *countingStore
}

func (t countingTx) TouchCredentials(ctx context.Context, usages []Usage) error {
	t.s.usages.Add(int64(len(usages)))
	for n := int64(len(usages)); ; {
		old := t.s.largestFlush.Load()
		if n <= old || t.s.largestFlush.CompareAndSwap(old, n) {
			break
		}
	}
	return t.Tx.TouchCredentials(ctx, usages)
}

func (t countingTx) AddVerificationCounts(ctx context.Context, counts []VerificationCount) error {
	t.s.countRows.Add(int64(len(counts)))
	return t.Tx.AddVerificationCounts(ctx, counts)
}

// cacheEnv is an authority over a counting store, with an admin caller and
// a machine that mints.
type cacheEnv struct {
	a      *Authority
	store  *countingStore
	keys   *keyring.Keyring
	admin  Caller
	minter Caller
	target string
}

func newCacheEnv(t *testing.T, store *sqlstore.Store, cacheBytes int) cacheEnv {
	t.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{5}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: store}
	a := New(Config{Store: counting, Keyring: keys, Clock: testkit.NewClock(), Limiter: inmem.NewLimiter(), CacheBytes: cacheBytes})
	ctx := context.Background()
	_, adminKey, err := a.CreateInstance(ctx, "cache")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := a.Authenticate(ctx, adminKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	name := "target"
	target, _, err := a.CreateMachine(ctx, admin, CreateMachineInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	name = "minter"
	_, minterKey, err := a.CreateMachine(ctx, admin, CreateMachineInput{Name: &name, ScopedMachines: []string{target.ID}})
	if err != nil {
		t.Fatal(err)
	}
	minter, err := a.Authenticate(ctx, minterKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	return cacheEnv{a: a, store: counting, keys: keys, admin: admin, minter: minter, target: target.ID}
}

// seed stores n M2M tokens of the minter straight into the store, as
// minting does, and returns them.
func (e cacheEnv) seed(t *testing.T, n int) []string {
	t.Helper()
	ctx := context.Background()
	attrs, _ := json.Marshal(map[string]any{"scopes": []string{e.target}, "claims": map[string]string{"team": "payments"}})
	now := testkit.ClockStart
	tokens := make([]string, n)
	creds := make([]credential.Credential, n)
	for i := range creds {
		s := credential.MustGenerate(credential.KindM2MToken)
		tokens[i] = s.Reveal()
		creds[i] = credential.Credential{
			ID: credential.NewHexID("mt_"), InstanceID: e.admin.InstanceID, Kind: credential.KindM2MToken,
			Digest: e.keys.Digest(s), DisplayPrefix: s.DisplayPrefix(), Subject: e.minter.MachineID,
			CreatedAt: now, UpdatedAt: now, Attrs: attrs,
		}
	}
	err := e.store.Store.Update(ctx, func(tx Tx) error {
		for _, c := range creds {
			if err := tx.InsertCredential(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func (e cacheEnv) verify(t *testing.T, token string) VerifyResult {
	t.Helper()
	r, err := e.a.Verify(context.Background(), e.admin, VerifyInput{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// requireAllUsed fails the test unless the minter's instance holds n M2M
// tokens and each has a last-used time.
func (e cacheEnv) requireAllUsed(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	err := e.store.View(ctx, func(tx Tx) error {
		creds, err := tx.ListCredentials(ctx, CredentialFilter{InstanceID: e.admin.InstanceID, Kind: credential.KindM2MToken})
		if err == nil && len(creds) != n {
			t.Errorf("%d tokens listed, want %d", len(creds), n)
		}
		for _, c := range creds {
			if c.LastUsedAt.IsZero() {
				t.Errorf("token %s has no last-used time after the flush", c.ID)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readsFor returns how many store reads verifying token took, and fails
// the test unless it is valid.
func (e cacheEnv) readsFor(t *testing.T, token string) int64 {
	t.Helper()
	before := e.store.reads.Load()
	if r := e.verify(t, token); !r.Valid {
		t.Fatalf("verify: %s", r.Reason)
	}
	return e.store.reads.Load() - before
}

func TestAFloodOfUnknownTokensDoesNotEvictALiveCredential(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := newCacheEnv(t, store, 0) // the default budget
		tok, err := e.a.CreateM2MToken(context.Background(), e.minter, CreateM2MTokenInput{})
		if err != nil {
			t.Fatal(err)
		}
		if n := e.readsFor(t, tok.Token); n != 1 {
			t.Fatalf("the first verification read the store %d times, want 1", n)
		}

		// 200 000 distinct unknown tokens, well-formed with good
		// checksums, so each one reaches the store and its "not found" is
		// cached (20 000 under the race detector: still far past what the
		// negative share holds).
		flood, workers := int64(200_000), 8
		if raceEnabled {
			flood = 20_000
		}
		var wg sync.WaitGroup
		var next atomic.Int64
		before := e.store.reads.Load()
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= flood {
					bogus := credential.MustGenerate(credential.KindM2MToken).Reveal()
					r, err := e.a.Verify(context.Background(), e.admin, VerifyInput{Token: bogus})
					if err != nil || r.Reason != ReasonNotFound {
						t.Errorf("a bogus token: %v %v", r.Reason, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got := e.store.reads.Load() - before; got < flood {
			t.Fatalf("the flood made %d store reads, want one per token (%d): it did not reach the cache", got, flood)
		}
		posBytes, posEntries, negBytes, negEntries := CacheUsage(e.a)
		t.Logf("after the flood: %d positive entries (%d B), %d negative entries (%d B)", posEntries, posBytes, negEntries, negBytes)
		if negBytes > DefaultCacheBytes/8 {
			t.Errorf("negative entries hold %d B, past their share of the budget", negBytes)
		}

		if n := e.readsFor(t, tok.Token); n != 0 {
			t.Fatalf("after the flood, the hot credential took %d store reads, want 0 (it was evicted)", n)
		}
	})
}

func TestTheCacheStaysWithinItsByteBudget(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := newCacheEnv(t, store, MinCacheBytes)
		tokens := e.seed(t, 6000)
		for _, tok := range tokens {
			if r := e.verify(t, tok); !r.Valid {
				t.Fatalf("a seeded token: %s", r.Reason)
			}
		}
		posBytes, posEntries, _, _ := CacheUsage(e.a)
		t.Logf("%d tokens verified into a %d B budget: %d entries kept, %d B (%d B each)", len(tokens), MinCacheBytes, posEntries, posBytes, posBytes/max(posEntries, 1))
		if posBytes > MinCacheBytes {
			t.Fatalf("the cache holds %d B, past its %d B budget", posBytes, MinCacheBytes)
		}
		if posEntries >= len(tokens) {
			t.Fatalf("all %d tokens are cached in %d B: the budget evicts nothing", posEntries, MinCacheBytes)
		}
		// Compact entries: a token with scopes and claims costs well under
		// what a whole stored row with its attribute JSON would.
		if each := posBytes / posEntries; each > 700 {
			t.Errorf("each cached token is charged %d B, want a compact entry (≤ 700 B)", each)
		}
		// Least recently used goes first: the last verified is still
		// answered from memory, the first is read again.
		if n := e.readsFor(t, tokens[len(tokens)-1]); n != 0 {
			t.Errorf("the most recently verified token took %d store reads, want 0", n)
		}
		if n := e.readsFor(t, tokens[0]); n != 1 {
			t.Errorf("the least recently verified token took %d store reads, want 1 (evicted)", n)
		}
	})
}

func TestACachedCredentialAnswersAsTheStoredOne(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := newCacheEnv(t, store, 0)
		claims := json.RawMessage(`{"team":"payments"}`)
		tok, err := e.a.CreateM2MToken(context.Background(), e.minter, CreateM2MTokenInput{Claims: claims})
		if err != nil {
			t.Fatal(err)
		}
		first := e.verify(t, tok.Token) // from the store
		second := e.verify(t, tok.Token)
		if e.readsFor(t, tok.Token) != 0 {
			t.Fatal("the third verification read the store")
		}
		for _, r := range []VerifyResult{first, second} {
			if !r.Valid || r.ID != tok.ID || r.Subject != e.minter.MachineID || string(r.Claims) != string(claims) ||
				len(r.Scopes) != 1 || r.Scopes[0] != e.target || !r.ExpiresAt.Equal(tok.ExpiresAt) || !r.IssuedAt.Equal(tok.CreatedAt) ||
				r.M2M == nil || !r.M2M.UpdatedAt.Equal(tok.UpdatedAt) || r.M2M.Revoked {
				t.Fatalf("a verification answered %+v (M2M %+v) for token %+v", r, r.M2M, tok)
			}
		}
	})
}

func TestUsageIsFlushedInBoundedTransactions(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := newCacheEnv(t, store, 0)
		tokens := e.seed(t, 700)
		for _, tok := range tokens {
			e.verify(t, tok)
		}
		before := e.store.updates.Load()
		if err := e.a.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
		updates := e.store.updates.Load() - before
		if e.store.usages.Load() < int64(len(tokens)) {
			t.Fatalf("%d last-used times flushed, want at least %d", e.store.usages.Load(), len(tokens))
		}
		if largest := e.store.largestFlush.Load(); largest > 256 || updates < 3 {
			t.Fatalf("%d usages flushed in %d transactions of up to %d; want transactions of at most 256", e.store.usages.Load(), updates, largest)
		}
		e.requireAllUsed(t, len(tokens))
	})
}

// A flush that fails part way has written some chunks and not others:
// the next flush writes the rest, so every last-used time lands and every
// verification is counted exactly once. Each token is verified three
// times, so its counts are spread over several of the counter's shards;
// they are still written as one row.
func TestAFailedFlushKeepsWhatItDidNotWriteAndNothingTwice(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		e := newCacheEnv(t, store, 0)
		tokens := e.seed(t, 700) // three chunks of each
		valid := func() int64 { return validVerifications(t, e.a, e.admin) }
		if err := e.a.FlushVerificationCounts(ctx); err != nil { // the minter's authentication
			t.Fatal(err)
		}
		before, rowsBefore := valid(), e.store.countRows.Load()
		const uses = 3
		for range uses {
			for _, tok := range tokens {
				if r := e.verify(t, tok); !r.Valid {
					t.Fatalf("verify: %s", r.Reason)
				}
			}
		}
		for name, flush := range map[string]func(context.Context) error{"last-used times": e.a.FlushUsage, "verification counts": e.a.FlushVerificationCounts} {
			e.store.failOn.Store(e.store.updates.Load() + 2) // the second chunk fails
			if err := flush(ctx); !errors.Is(err, errInjected) {
				t.Fatalf("flushing %s with a failing store: %v", name, err)
			}
			if err := flush(ctx); err != nil {
				t.Fatalf("flushing %s again: %v", name, err)
			}
		}
		e.requireAllUsed(t, len(tokens))
		if n := valid() - before; n != uses*int64(len(tokens)) {
			t.Fatalf("%d valid verifications stored after a failed and a good flush, want %d", n, uses*len(tokens))
		}
		if rows := e.store.countRows.Load() - rowsBefore; rows != int64(len(tokens)) {
			t.Fatalf("%d count rows written for %d credentials of one minute and outcome, want one each", rows, len(tokens))
		}
	})
}

func TestARestrictedAdminKeyStaysRestrictedWhenCached(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := newCacheEnv(t, store, 0)
		name := "protected-api"
		_, secret, err := e.a.CreateAdminKey(context.Background(), e.admin, CreateAdminKeyInput{Name: &name, Permissions: []string{"verify"}})
		if err != nil {
			t.Fatal(err)
		}
		before := e.store.reads.Load()
		for i := range 3 { // from the store, then from the cache
			c, err := e.a.Authenticate(context.Background(), secret.Reveal())
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Permissions) != 1 || c.Permissions[0] != credential.PermVerify {
				t.Fatalf("authentication %d gave the verify-only key permissions %v", i+1, c.Permissions)
			}
		}
		if n := e.store.reads.Load() - before; n != 1 {
			t.Fatalf("3 authentications read the store %d times, want 1 (then the cache)", n)
		}
	})
}
