package sqlstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func storedKeyring(fill byte) authority.StoredKeyring {
	return authority.StoredKeyring{
		Wrapped:   keyring.Wrapped{KeyCheck: bytes.Repeat([]byte{fill}, 32), Keys: []byte{0, fill, 0xfe, 0xff}},
		Origin:    authority.KeysRandom,
		CreatedAt: at(1),
	}
}

func TestKeyringIsOneRowReplacedOnlyFromItsKeyCheck(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		err := s.View(ctx, func(tx authority.Tx) error { _, err := tx.GetKeyring(ctx); return err })
		if !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("GetKeyring on a new store: %v, want not found", err)
		}
		first := storedKeyring(1)
		update(t, s, func(tx authority.Tx) error { return tx.InsertKeyring(ctx, first) })
		if got := view(t, s, func(tx authority.Tx) (authority.StoredKeyring, error) { return tx.GetKeyring(ctx) }); !cmp.Equal(got, first) {
			t.Fatalf("GetKeyring: %s", cmp.Diff(first, got))
		}
		err = s.Update(ctx, func(tx authority.Tx) error { return tx.InsertKeyring(ctx, storedKeyring(2)) })
		if !credential.IsCode(err, credential.CodeConflict) {
			t.Fatalf("a second InsertKeyring: %v, want conflict", err)
		}

		rotated := storedKeyring(3)
		rotated.Origin, rotated.RotatedAt = authority.KeysDerived, at(5)
		err = s.Update(ctx, func(tx authority.Tx) error {
			return tx.ReplaceKeyring(ctx, storedKeyring(9).Wrapped.KeyCheck, rotated)
		})
		if !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("ReplaceKeyring from a stale key check: %v, want not found", err)
		}
		update(t, s, func(tx authority.Tx) error { return tx.ReplaceKeyring(ctx, first.Wrapped.KeyCheck, rotated) })
		if got := view(t, s, func(tx authority.Tx) (authority.StoredKeyring, error) { return tx.GetKeyring(ctx) }); !cmp.Equal(got, rotated) {
			t.Fatalf("after ReplaceKeyring: %s", cmp.Diff(rotated, got))
		}
	})
}

func TestSampleSealedFindsASealedCredentialOrSigningKey(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		sample := func() (string, []byte, error) {
			var id string
			var sealed []byte
			err := s.View(ctx, func(tx authority.Tx) error {
				var err error
				id, sealed, err = tx.SampleSealed(ctx)
				return err
			})
			return id, sealed, err
		}
		in := newInstance(t, s, "acme")
		if _, _, err := sample(); !credential.IsCode(err, credential.CodeNotFound) {
			t.Fatalf("SampleSealed on a store without sealed values: %v, want not found", err)
		}
		k := signingKey(in.ID, "kid_1", at(1))
		insertSigningKey(t, s, k)
		if id, sealed, err := sample(); err != nil || id != k.ID || !bytes.Equal(sealed, k.Sealed) {
			t.Fatalf("SampleSealed = %q %x %v, want the signing key", id, sealed, err)
		}
	})
}
