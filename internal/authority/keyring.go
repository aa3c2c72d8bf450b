package authority

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/keyring"
)

// Where a store's data keys came from.
const (
	// KeysDerived: derived from the master key the store was created with,
	// as every store made before envelope keys was; kept when such a store
	// was first wrapped, so none of its digests changed.
	KeysDerived = "derived"
	// KeysRandom: generated at random when the store was created.
	KeysRandom = "random"
)

// StoredKeyring is what the store keeps of the keyring: the data keys
// wrapped under the master key, with its key-check value.
type StoredKeyring struct {
	Wrapped   keyring.Wrapped
	Origin    string // KeysDerived or KeysRandom
	CreatedAt time.Time
	RotatedAt time.Time // zero until the first master-key rotation
}

// ErrWrongMasterKey is what UnlockKeyring and RotateMasterKey return for a
// master key that is not the one this store's data keys are wrapped with.
var ErrWrongMasterKey = &credential.Error{Code: credential.CodeUnauthenticated, Message: keyring.ErrWrongMasterKey.Error()}

// UnlockKeyring returns the keyring of store, unwrapping its data keys with
// master. On the first start it creates them: a store that already holds
// instances was made before envelope keys, so its data keys are derived
// from master exactly as they were then (no credential changes); a new
// store gets random ones. Several nodes starting together agree on one
// keyring: the first insert wins and the others unwrap it.
func UnlockKeyring(ctx context.Context, store Store, clock Clock, master []byte) (*keyring.Keyring, error) {
	if clock == nil {
		clock = SystemClock{}
	}
	for attempt := 0; ; attempt++ {
		var stored StoredKeyring
		err := store.View(ctx, func(tx Tx) error {
			var err error
			stored, err = tx.GetKeyring(ctx)
			return err
		})
		if err == nil {
			return unwrap(master, stored)
		}
		if credential.CodeOf(err) != credential.CodeNotFound {
			return nil, err
		}
		k, err := createKeyring(ctx, store, clock, master)
		if credential.CodeOf(err) == credential.CodeConflict && attempt == 0 {
			continue // another node created it meanwhile: unwrap theirs
		}
		return k, err
	}
}

func createKeyring(ctx context.Context, store Store, clock Clock, master []byte) (*keyring.Keyring, error) {
	var dk keyring.DataKeys
	err := store.Update(ctx, func(tx Tx) error {
		if _, err := tx.GetKeyring(ctx); err == nil {
			return credential.Errorf(credential.CodeConflict, "keyring already exists")
		} else if credential.CodeOf(err) != credential.CodeNotFound {
			return err
		}
		existing, err := tx.ListInstances(ctx)
		if err != nil {
			return err
		}
		origin := KeysRandom
		if len(existing) > 0 {
			origin = KeysDerived
			dk, err = keyring.DerivedDataKeys(master)
		} else {
			dk, err = keyring.RandomDataKeys()
		}
		if err != nil {
			return credential.Wrap(credential.CodeInternal, err, "create data keys")
		}
		if origin == KeysDerived {
			if err := checkDerived(ctx, tx, dk); err != nil {
				return err
			}
		}
		w, err := keyring.Wrap(master, dk)
		if err != nil {
			return credential.Wrap(credential.CodeInternal, err, "wrap data keys")
		}
		return tx.InsertKeyring(ctx, StoredKeyring{Wrapped: w, Origin: origin, CreatedAt: clock.Now()})
	})
	if err != nil {
		return nil, err
	}
	return fromDataKeys(dk)
}

// ErrKeyringLost is returned when a store holding data has no keyring and
// the keys derived from the master key do not open its sealed values: the
// master key is not this store's, or the keyring row was deleted (restore
// it from a backup; random data keys cannot be derived again).
var ErrKeyringLost = &credential.Error{Code: credential.CodeUnauthenticated, Message: "the master key does not match this data: " +
	"the store has no keyring and the keys derived from this master key do not open its sealed secrets " +
	"(use the key this store was created with, or restore the keyring table from a backup)"}

// checkDerived adopts derived data keys only if they open a sealed value
// of the store, when it holds any: a wrong master key on the first start
// after the upgrade must not bind the store to the wrong keys. (A store
// with no sealed value, only digests, cannot be checked.)
func checkDerived(ctx context.Context, tx KeyringTx, dk keyring.DataKeys) error {
	rowID, sealed, err := tx.SampleSealed(ctx)
	if credential.CodeOf(err) == credential.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	k, err := fromDataKeys(dk)
	if err != nil {
		return err
	}
	if _, err := k.Open(sealed, []byte(rowID)); err != nil {
		return ErrKeyringLost
	}
	return nil
}

func unwrap(master []byte, stored StoredKeyring) (*keyring.Keyring, error) {
	dk, err := keyring.Unwrap(master, stored.Wrapped)
	switch {
	case errors.Is(err, keyring.ErrWrongMasterKey):
		return nil, ErrWrongMasterKey
	case err != nil:
		return nil, credential.Wrap(credential.CodeInternal, err, "unwrap data keys")
	}
	return fromDataKeys(dk)
}

func fromDataKeys(dk keyring.DataKeys) (*keyring.Keyring, error) {
	k, err := keyring.FromDataKeys(dk)
	if err != nil {
		return nil, credential.Wrap(credential.CodeInternal, err, "keyring")
	}
	return k, nil
}

// RotateMasterKey re-wraps the store's data keys under next, in one
// transaction, after checking current against the stored key-check value.
// No digest or sealed value changes, so every credential keeps verifying;
// from then on only next unlocks the store. Each instance's audit log
// records the rotation (never either key).
func (a *Authority) RotateMasterKey(ctx context.Context, current, next []byte) error {
	if subtle.ConstantTimeCompare(current, next) == 1 {
		return credential.Errorf(credential.CodeInvalid, "the new master key is the current one")
	}
	return a.store.Update(ctx, func(tx Tx) error {
		stored, err := tx.GetKeyring(ctx)
		if err != nil {
			return err
		}
		w, err := keyring.Rewrap(current, next, stored.Wrapped)
		switch {
		case errors.Is(err, keyring.ErrWrongMasterKey):
			return ErrWrongMasterKey
		case err != nil:
			return credential.Wrap(credential.CodeInternal, err, "re-wrap data keys")
		}
		check := stored.Wrapped.KeyCheck
		stored.Wrapped, stored.RotatedAt = w, a.clock.Now()
		if err := tx.ReplaceKeyring(ctx, check, stored); err != nil {
			return err
		}
		instances, err := tx.ListInstances(ctx)
		if err != nil {
			return err
		}
		for _, in := range instances {
			if err := a.audit(ctx, tx, Operator(in.ID), "master_key.rotate", "keyring", "keyring", nil); err != nil {
				return err
			}
		}
		return nil
	})
}
