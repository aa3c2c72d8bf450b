package authority_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

var (
	masterA = bytes.Repeat([]byte{0xa}, keyring.MasterKeySize)
	masterB = bytes.Repeat([]byte{0xb}, keyring.MasterKeySize)
)

func unlock(t *testing.T, store authority.Store, master []byte) *keyring.Keyring {
	t.Helper()
	k, err := authority.UnlockKeyring(context.Background(), store, testkit.NewClock(), master)
	if err != nil {
		t.Fatalf("UnlockKeyring: %v", err)
	}
	return k
}

func authorityWith(store authority.Store, keys *keyring.Keyring) *authority.Authority {
	return authority.New(authority.Config{Store: store, Keyring: keys, Clock: testkit.NewClock(), Limiter: inmem.NewLimiter()})
}

func storedOrigin(t *testing.T, store authority.Store) string {
	t.Helper()
	var k authority.StoredKeyring
	err := store.View(context.Background(), func(tx authority.Tx) error {
		var err error
		k, err = tx.GetKeyring(context.Background())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return k.Origin
}

func TestUnlockKeyringGivesANewStoreRandomDataKeysAndRefusesAnotherMasterKey(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		first := unlock(t, store, masterA)
		s := credential.MustGenerate(credential.KindPAT)
		if derived, _ := keyring.New(masterA); first.Digest(s).Equal(derived.Digest(s)) {
			t.Fatal("a new store's pepper is derived from the master key; want random data keys")
		}
		if got := storedOrigin(t, store); got != authority.KeysRandom {
			t.Fatalf("origin = %q, want %q", got, authority.KeysRandom)
		}
		if !unlock(t, store, masterA).Digest(s).Equal(first.Digest(s)) {
			t.Fatal("a second start unwrapped other data keys")
		}
		_, err := authority.UnlockKeyring(context.Background(), store, nil, masterB)
		if !errors.Is(err, authority.ErrWrongMasterKey) {
			t.Fatalf("another master key: %v, want ErrWrongMasterKey", err)
		}
		for _, leak := range [][]byte{masterA, masterB} {
			if bytes.Contains([]byte(err.Error()), leak) {
				t.Fatal("the refusal names a master key")
			}
		}
	})
}

func TestNodesStartingTogetherOnANewStoreAgreeOnOneKeyring(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		const nodes = 4
		keys := make([]*keyring.Keyring, nodes)
		errs := make([]error, nodes)
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				keys[i], errs[i] = authority.UnlockKeyring(context.Background(), store, nil, masterA)
			}()
		}
		wg.Wait()
		s := credential.MustGenerate(credential.KindM2MToken)
		for i := range nodes {
			if errs[i] != nil {
				t.Fatalf("node %d: %v", i, errs[i])
			}
			if !keys[i].Digest(s).Equal(keys[0].Digest(s)) {
				t.Fatalf("node %d unlocked other data keys than node 0", i)
			}
		}
	})
}

func TestUnlockKeyringKeepsTheCredentialsOfAStoreMadeBeforeEnvelopeKeys(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		// Before envelope keys: data keys derived from the master key, and
		// no keyring row.
		legacy, err := keyring.New(masterA)
		if err != nil {
			t.Fatal(err)
		}
		before := authorityWith(store, legacy)
		_, adminKey, err := before.CreateInstance(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		admin, err := before.Authenticate(ctx, adminKey.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		name := "worker"
		m, machineKey, err := before.CreateMachine(ctx, admin, authority.CreateMachineInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}

		after := authorityWith(store, unlock(t, store, masterA))
		if got := storedOrigin(t, store); got != authority.KeysDerived {
			t.Fatalf("origin = %q, want %q", got, authority.KeysDerived)
		}
		admin, err = after.Authenticate(ctx, adminKey.Reveal())
		if err != nil {
			t.Fatalf("the admin key stopped authenticating after the upgrade: %v", err)
		}
		if _, err := after.Authenticate(ctx, machineKey.Reveal()); err != nil {
			t.Fatalf("the machine key stopped authenticating after the upgrade: %v", err)
		}
		if got, err := after.MachineSecretKey(ctx, admin, m.ID); err != nil || got.Reveal() != machineKey.Reveal() {
			t.Fatalf("the sealed machine key no longer opens after the upgrade: %v", err)
		}
	})
}

// credentials is one of every kind of stored secret.
type credentials struct {
	adminKey, machineKey, opaqueM2M, jwtM2M, pat, orgToken string
	machineID                                              string
}

func createEveryKind(t *testing.T, a *authority.Authority) credentials {
	t.Helper()
	ctx := context.Background()
	_, adminKey, err := a.CreateInstance(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := a.Authenticate(ctx, adminKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	name := "target"
	target, _, err := a.CreateMachine(ctx, admin, authority.CreateMachineInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	name = "minter"
	minter, minterKey, err := a.CreateMachine(ctx, admin, authority.CreateMachineInput{Name: &name, ScopedMachines: []string{target.ID}})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := a.Authenticate(ctx, minterKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	opaque, err := a.CreateM2MToken(ctx, mc, authority.CreateM2MTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := a.CreateM2MToken(ctx, mc, authority.CreateM2MTokenInput{Format: authority.FormatJWT})
	if err != nil {
		t.Fatal(err)
	}
	name = "ci"
	pat, err := a.CreatePAT(ctx, admin.ActingFor("user_1"), nil, authority.CreatePATInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	slug, orgName := "acme", "Acme"
	org, err := a.CreateOrganization(ctx, admin, authority.OrganizationInput{Slug: &slug, Name: &orgName})
	if err != nil {
		t.Fatal(err)
	}
	name = "ops"
	tok, err := a.CreateOrgToken(ctx, admin, org.ID, authority.OrgTokenInput{Name: &name,
		Privileges: []credential.Privilege{{Scope: credential.ScopeOrg, Role: credential.RoleRead}}})
	if err != nil {
		t.Fatal(err)
	}
	return credentials{adminKey: adminKey.Reveal(), machineKey: minterKey.Reveal(), opaqueM2M: opaque.Token,
		jwtM2M: jwt.Token, pat: pat.Token, orgToken: tok.Key, machineID: minter.ID}
}

// checkEveryKind fails the test unless every credential still does what
// it did when it was made.
func checkEveryKind(t *testing.T, a *authority.Authority, c credentials) {
	t.Helper()
	ctx := context.Background()
	admin, err := a.Authenticate(ctx, c.adminKey)
	if err != nil {
		t.Fatalf("admin key: %v", err)
	}
	mc, err := a.Authenticate(ctx, c.machineKey)
	if err != nil {
		t.Fatalf("machine key: %v", err)
	}
	if got, err := a.MachineSecretKey(ctx, admin, c.machineID); err != nil || got.Reveal() != c.machineKey {
		t.Fatalf("the sealed machine secret key does not open: %v", err)
	}
	for name, tok := range map[string]string{"opaque M2M token": c.opaqueM2M, "JWT M2M token": c.jwtM2M, "PAT": c.pat, "org token": c.orgToken} {
		r, err := a.Verify(ctx, admin, authority.VerifyInput{Token: tok})
		if err != nil || r.Reason != authority.ReasonValid {
			t.Errorf("%s: %s %v, want valid", name, r.Reason, err)
		}
	}
	// Signing a new JWT opens the sealed signing key.
	fresh, err := a.CreateM2MToken(ctx, mc, authority.CreateM2MTokenInput{Format: authority.FormatJWT})
	if err != nil {
		t.Fatalf("minting a JWT (the sealed signing key): %v", err)
	}
	if r, err := a.Verify(ctx, admin, authority.VerifyInput{Token: fresh.Token}); err != nil || r.Reason != authority.ReasonValid {
		t.Fatalf("a JWT minted after: %s %v", r.Reason, err)
	}
}

func TestRotateMasterKeyKeepsEveryCredentialAndRetiresTheOldKey(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		a := authorityWith(store, unlock(t, store, masterA))
		creds := createEveryKind(t, a)

		if err := a.RotateMasterKey(ctx, masterB, masterA); !errors.Is(err, authority.ErrWrongMasterKey) {
			t.Fatalf("rotate from a wrong current key: %v, want ErrWrongMasterKey", err)
		}
		if err := a.RotateMasterKey(ctx, masterA, masterA); !credential.IsCode(err, credential.CodeInvalid) {
			t.Fatalf("rotate to the same key: %v, want invalid", err)
		}
		unlock(t, store, masterA) // the refused rotations changed nothing

		if err := a.RotateMasterKey(ctx, masterA, masterB); err != nil {
			t.Fatal(err)
		}
		if _, err := authority.UnlockKeyring(ctx, store, nil, masterA); !errors.Is(err, authority.ErrWrongMasterKey) {
			t.Fatalf("the old master key after a rotation: %v, want ErrWrongMasterKey", err)
		}
		checkEveryKind(t, authorityWith(store, unlock(t, store, masterB)), creds)
		checkEveryKind(t, a, creds) // a node still running keeps its data keys

		admin, _ := a.Authenticate(ctx, creds.adminKey)
		events, _, err := a.ListAuditEvents(ctx, admin, authority.ListAuditEventsInput{})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events {
			found = found || e.Action == "master_key.rotate"
		}
		if !found {
			t.Fatal("the rotation left no audit event")
		}
	})
}

func TestTheFirstStartAfterTheUpgradeRefusesAMasterKeyThatDoesNotOpenTheSealedSecrets(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		legacy, err := keyring.New(masterA)
		if err != nil {
			t.Fatal(err)
		}
		before := authorityWith(store, legacy)
		_, adminKey, err := before.CreateInstance(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		admin, _ := before.Authenticate(ctx, adminKey.Reveal())
		name := "worker"
		if _, _, err := before.CreateMachine(ctx, admin, authority.CreateMachineInput{Name: &name}); err != nil {
			t.Fatal(err)
		}

		if _, err := authority.UnlockKeyring(ctx, store, nil, masterB); !errors.Is(err, authority.ErrKeyringLost) {
			t.Fatalf("the first start after the upgrade with another master key: %v, want ErrKeyringLost", err)
		}
		err = store.View(ctx, func(tx authority.Tx) error { _, err := tx.GetKeyring(ctx); return err })
		if !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("the refused start wrote a keyring: %v", err)
		}
		if _, err := authorityWith(store, unlock(t, store, masterA)).Authenticate(ctx, adminKey.Reveal()); err != nil {
			t.Fatalf("the right master key after the refusal: %v", err)
		}
	})
}
