package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keyward/keyward/internal/authority"
)

// The keyring is one row, id 1.
const keyringColumns = `key_check, wrapped_keys, origin, created_at, rotated_at`

func (t *tx) GetKeyring(ctx context.Context) (authority.StoredKeyring, error) {
	var k authority.StoredKeyring
	err := t.queryRow(ctx, `SELECT `+keyringColumns+` FROM keyring WHERE id = 1`).Scan(
		&k.Wrapped.KeyCheck, &k.Wrapped.Keys, &k.Origin, scanTime(&k.CreatedAt), scanTime(&k.RotatedAt))
	return k, translate(err, "keyring")
}

func (t *tx) InsertKeyring(ctx context.Context, k authority.StoredKeyring) error {
	_, err := t.exec(ctx, `INSERT INTO keyring (id, `+keyringColumns+`) VALUES (1, ?, ?, ?, ?, ?)`,
		k.Wrapped.KeyCheck, k.Wrapped.Keys, k.Origin, millis(k.CreatedAt), millis(k.RotatedAt))
	return translate(err, "keyring")
}

// ReplaceKeyring is a compare-and-swap on the key-check value, so of two
// concurrent rotations from the same key only one takes.
func (t *tx) ReplaceKeyring(ctx context.Context, keyCheck []byte, k authority.StoredKeyring) error {
	return t.execOne(ctx, "keyring", `UPDATE keyring
		SET key_check = ?, wrapped_keys = ?, origin = ?, created_at = ?, rotated_at = ?
		WHERE id = 1 AND key_check = ?`,
		k.Wrapped.KeyCheck, k.Wrapped.Keys, k.Origin, millis(k.CreatedAt), millis(k.RotatedAt), keyCheck)
}

// SampleSealed looks in credentials first, then signing keys.
func (t *tx) SampleSealed(ctx context.Context) (string, []byte, error) {
	var id string
	var sealed []byte
	err := t.queryRow(ctx, `SELECT id, sealed FROM credentials WHERE sealed IS NOT NULL LIMIT 1`).Scan(&id, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		err = t.queryRow(ctx, `SELECT id, sealed FROM signing_keys LIMIT 1`).Scan(&id, &sealed)
	}
	return id, sealed, translate(err, "sealed value")
}
