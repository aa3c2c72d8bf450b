package authority_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// failingAudit is a store whose audit inserts fail: a mutation must then
// fail as a whole, leaving nothing behind (no change without its record).
type failingAudit struct{ authority.Store }

type failingAuditTx struct{ authority.Tx }

func (s failingAudit) Update(ctx context.Context, fn func(authority.Tx) error) error {
	return s.Store.Update(ctx, func(tx authority.Tx) error { return fn(failingAuditTx{tx}) })
}

func (failingAuditTx) InsertAuditEvent(_ context.Context, e credential.AuditEvent) (credential.AuditEvent, error) {
	return e, errors.New("audit device unavailable")
}

func newAuthority(t *testing.T, store authority.Store) *authority.Authority {
	t.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{3}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return authority.New(authority.Config{Store: store, Keyring: keys, Clock: testkit.NewClock(), Limiter: inmem.NewLimiter()})
}

func TestAMutationWhoseAuditFailsLeavesNothingBehind(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		in, _, err := newAuthority(t, store).CreateInstance(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		broken := newAuthority(t, failingAudit{store})
		name := "worker"
		_, secret, err := broken.CreateMachine(ctx, authority.Operator(in.ID), authority.CreateMachineInput{Name: &name})
		if err == nil {
			t.Fatal("CreateMachine succeeded although its audit event could not be written")
		}
		if !secret.IsZero() {
			t.Fatal("a failed create handed out a secret")
		}
		machines, total, err := newAuthority(t, store).ListMachines(ctx, authority.Operator(in.ID), authority.ListMachinesInput{})
		if err != nil || total != 0 || len(machines) != 0 {
			t.Fatalf("machines after the failed create: %v (total %d), %v", machines, total, err)
		}
		err = store.View(ctx, func(tx authority.Tx) error {
			creds, err := tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: in.ID, Kind: credential.KindMachineKey})
			if err == nil && len(creds) != 0 {
				t.Errorf("a machine key was written without its machine's audit event")
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestBootstrapRunsOnceAndHonoursThePresetKey(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		a := newAuthority(t, store)
		preset := credential.MustGenerate(credential.KindAdminKey)
		in, key, created, err := a.Bootstrap(ctx, preset.Reveal())
		if err != nil || !created || key.Reveal() != preset.Reveal() || in.Name != authority.DefaultInstanceName {
			t.Fatalf("first Bootstrap = %v %v %v", in, created, err)
		}
		caller, err := a.Authenticate(ctx, preset.Reveal())
		if err != nil || caller.InstanceID != in.ID || caller.Kind != credential.KindAdminKey {
			t.Fatalf("the preset key does not authenticate: %+v %v", caller, err)
		}
		_, key, created, err = a.Bootstrap(ctx, "")
		if err != nil || created || !key.IsZero() {
			t.Fatalf("second Bootstrap = %v %v; it must change nothing", created, err)
		}
		if _, _, _, err := newAuthority(t, testkit.OpenSQLite(t)).Bootstrap(ctx, "sk_live_short"); credential.CodeOf(err) != credential.CodeInvalid {
			t.Fatalf("a malformed preset key: %v", err)
		}
	})
}
