package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func newKeyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	encoded, err := keyring.GenerateMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	master, err := keyring.ParseMasterKey(encoded)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyring.New(master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func authorityOver(s *sqlstore.Store, k *keyring.Keyring) *authority.Authority {
	return authority.New(authority.Config{Store: s, Keyring: k, Clock: testkit.NewClock(), Limiter: inmem.NewLimiter()})
}

// seed makes an instance with admin keys and a machine with its secret
// key, and returns every secret made.
func seed(t *testing.T, a *authority.Authority) []string {
	t.Helper()
	ctx := context.Background()
	in, first, err := a.CreateInstance(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{first.Reveal()}
	name := "exported"
	for i := 0; i < 3; i++ {
		_, key, err := a.CreateAdminKey(ctx, authority.Operator(in.ID), authority.CreateAdminKeyInput{Name: &name, Permissions: []string{string(credential.PermAll)}})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, key.Reveal())
	}
	_, mk, err := a.CreateMachine(ctx, authority.Operator(in.ID), authority.CreateMachineInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	return append(secrets, mk.Reveal())
}

func TestExportImportMovesEveryCredentialBetweenStores(t *testing.T) {
	stores := testkit.Stores()
	for _, route := range [][2]string{{"sqlite", "postgres"}, {"postgres", "sqlite"}, {"sqlite", "sqlite"}} {
		t.Run(route[0]+"_to_"+route[1], func(t *testing.T) {
			ctx := context.Background()
			keys := newKeyring(t)
			from, to := stores[route[0]](t), stores[route[1]](t)
			secrets := seed(t, authorityOver(from, keys))

			var dump bytes.Buffer
			rows, err := from.Export(ctx, &dump, keys.ExportCheck())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if strings.Contains(dump.String(), s) {
					t.Fatal("the export holds a plaintext secret")
				}
			}
			inserted, skipped, err := to.Import(ctx, bytes.NewReader(dump.Bytes()), keys.ExportCheck())
			if err != nil {
				t.Fatal(err)
			}
			if inserted != rows || skipped != 0 {
				t.Errorf("import inserted %d, skipped %d; want %d, 0", inserted, skipped, rows)
			}
			a := authorityOver(to, keys)
			for _, s := range secrets {
				if _, err := a.Authenticate(ctx, s); err != nil {
					t.Errorf("an exported credential does not verify after import: %v", err)
				}
			}
			// Idempotent on ids: a second import adds nothing.
			inserted, skipped, err = to.Import(ctx, bytes.NewReader(dump.Bytes()), keys.ExportCheck())
			if err != nil || inserted != 0 || skipped != rows {
				t.Errorf("second import: inserted %d, skipped %d, %v; want 0, %d, nil", inserted, skipped, err, rows)
			}
		})
	}
}

func TestImportRefusesAnotherMasterKeyAndWritesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, to *sqlstore.Store) {
		ctx := context.Background()
		keys := newKeyring(t)
		from := testkit.OpenSQLite(t)
		seed(t, authorityOver(from, keys))
		var dump bytes.Buffer
		if _, err := from.Export(ctx, &dump, keys.ExportCheck()); err != nil {
			t.Fatal(err)
		}
		_, _, err := to.Import(ctx, bytes.NewReader(dump.Bytes()), newKeyring(t).ExportCheck())
		if !errors.Is(err, sqlstore.ErrImportMasterKey) {
			t.Fatalf("import under another master key: err = %v, want ErrImportMasterKey", err)
		}
		if n, err := sqlstore.RowCount(ctx, to, "credentials"); err != nil || n != 0 {
			t.Errorf("a refused import left %d credentials (%v)", n, err)
		}
	})
}

func TestImportRefusesUnknownColumnsAndWritesNothing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, to *sqlstore.Store) {
		ctx := context.Background()
		keys := newKeyring(t)
		from := testkit.OpenSQLite(t)
		seed(t, authorityOver(from, keys))
		var dump bytes.Buffer
		if _, err := from.Export(ctx, &dump, keys.ExportCheck()); err != nil {
			t.Fatal(err)
		}
		bad := dump.String() + `{"type":"instances","row":{"id":"ins_x","name; DROP TABLE credentials":"x"}}` + "\n"
		_, _, err := to.Import(ctx, strings.NewReader(bad), keys.ExportCheck())
		if err == nil || !strings.Contains(err.Error(), "no column") {
			t.Fatalf("import with an unknown column: err = %v, want a refusal", err)
		}
		if n, err := sqlstore.RowCount(ctx, to, "instances"); err != nil || n != 0 {
			t.Errorf("a refused import left %d instances (%v)", n, err)
		}
	})
}
