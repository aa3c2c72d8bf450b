package sqlstore

import (
	"context"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

const signingKeyColumns = `id, instance_id, algorithm, public_key, sealed, created_at, retired_at, tokens_expire_at`

func scanSigningKey(s scanner) (credential.SigningKey, error) {
	var k credential.SigningKey
	err := s.Scan(&k.ID, &k.InstanceID, &k.Algorithm, &k.PublicKey, &k.Sealed,
		scanTime(&k.CreatedAt), scanTime(&k.RetiredAt), scanTime(&k.TokensExpireAt))
	return k, err
}

// InsertSigningKey reports CodeConflict for a kid already used by any
// instance, and CodeNotFound for a missing instance.
func (t *tx) InsertSigningKey(ctx context.Context, k credential.SigningKey) error {
	_, err := t.exec(ctx, `INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.InstanceID, k.Algorithm, k.PublicKey, k.Sealed,
		millis(k.CreatedAt), millis(k.RetiredAt), millis(k.TokensExpireAt))
	return translate(err, "signing key")
}

// ListSigningKeys orders by created_at DESC, id DESC.
func (t *tx) ListSigningKeys(ctx context.Context, instanceID string) ([]credential.SigningKey, error) {
	return queryAll(ctx, t, "signing key", scanSigningKey, `SELECT `+signingKeyColumns+` FROM signing_keys
		WHERE instance_id = ? ORDER BY created_at DESC, id DESC`, instanceID)
}

func (t *tx) GetSigningKey(ctx context.Context, instanceID, kid string) (credential.SigningKey, error) {
	k, err := scanSigningKey(t.queryRow(ctx,
		`SELECT `+signingKeyColumns+` FROM signing_keys WHERE instance_id = ? AND id = ?`, instanceID, kid))
	return k, translate(err, "signing key")
}

// RetireSigningKeys leaves the retired_at of already retired keys as it
// was; an instance without keys to retire is no error.
func (t *tx) RetireSigningKeys(ctx context.Context, instanceID string, at time.Time) error {
	_, err := t.exec(ctx, `UPDATE signing_keys SET retired_at = ? WHERE instance_id = ? AND retired_at IS NULL`,
		millis(at), instanceID)
	return translate(err, "signing key")
}

// ExtendSigningKey matches the key whatever its tokens_expire_at, so that a
// later existing expiry (left as it is) is told apart from a missing key.
// Both engines count a matched row as affected even when its value does not
// change. A zero expiresAt changes nothing.
func (t *tx) ExtendSigningKey(ctx context.Context, instanceID, kid string, expiresAt time.Time) error {
	return t.execOne(ctx, "signing key", `UPDATE signing_keys
		SET tokens_expire_at = CASE WHEN tokens_expire_at IS NULL OR tokens_expire_at < ? THEN ? ELSE tokens_expire_at END
		WHERE instance_id = ? AND id = ?`,
		millis(expiresAt), millis(expiresAt), instanceID, kid)
}
