package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

const credentialColumns = `id, instance_id, kind, digest, display_prefix, subject, expires_at,
	revoked_at, revocation_reason, last_used_at, created_at, updated_at, sealed, attrs`

func scanCredential(s scanner) (credential.Credential, error) {
	var (
		c      credential.Credential
		digest []byte
		attrs  string
	)
	err := s.Scan(&c.ID, &c.InstanceID, &c.Kind, &digest, &c.DisplayPrefix, &c.Subject,
		scanTime(&c.ExpiresAt), scanTime(&c.RevokedAt), &c.RevocationReason, scanTime(&c.LastUsedAt),
		scanTime(&c.CreatedAt), scanTime(&c.UpdatedAt), &c.Sealed, &attrs)
	if err != nil {
		return c, err
	}
	if len(digest) != len(c.Digest) {
		return c, fmt.Errorf("sqlstore: credential %s has a %d-byte digest", c.ID, len(digest))
	}
	copy(c.Digest[:], digest)
	c.Attrs = json.RawMessage(attrs)
	return c, nil
}

// jsonText is the stored form of a JSON document; nil is the empty object.
func jsonText(doc json.RawMessage) string {
	if doc == nil {
		return "{}"
	}
	return string(doc)
}

func (t *tx) InsertCredential(ctx context.Context, c credential.Credential) error {
	_, err := t.exec(ctx, `INSERT INTO credentials (`+credentialColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.InstanceID, c.Kind, c.Digest[:], c.DisplayPrefix, c.Subject,
		millis(c.ExpiresAt), millis(c.RevokedAt), c.RevocationReason, millis(c.LastUsedAt),
		millis(c.CreatedAt), millis(c.UpdatedAt), c.Sealed, jsonText(c.Attrs))
	return translate(err, "credential")
}

// CredentialByDigest is the one query not bounded by an instance: digests
// are unique across instances, and the caller checks the instance.
func (t *tx) CredentialByDigest(ctx context.Context, d credential.Digest) (credential.Credential, error) {
	c, err := scanCredential(t.queryRow(ctx,
		`SELECT `+credentialColumns+` FROM credentials WHERE digest = ?`, d[:]))
	return c, translate(err, "credential")
}

func (t *tx) GetCredential(ctx context.Context, instanceID, id string) (credential.Credential, error) {
	c, err := scanCredential(t.queryRow(ctx,
		`SELECT `+credentialColumns+` FROM credentials WHERE instance_id = ? AND id = ?`, instanceID, id))
	return c, translate(err, "credential")
}

// ListCredentials returns the matching credentials oldest first.
func (t *tx) ListCredentials(ctx context.Context, f authority.CredentialFilter) ([]credential.Credential, error) {
	where, args := []string{"instance_id = ?"}, []any{f.InstanceID}
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, f.Kind)
	}
	if f.Subject != "" {
		where, args = append(where, "subject = ?"), append(args, f.Subject)
	}
	return queryAll(ctx, t, "credential", scanCredential, `SELECT `+credentialColumns+
		` FROM credentials WHERE `+strings.Join(where, " AND ")+` ORDER BY created_at, id`, args...)
}

// RevokeCredential also sets updated_at to at.
func (t *tx) RevokeCredential(ctx context.Context, instanceID, id string, at time.Time, reason string) error {
	return t.execOne(ctx, "credential", `UPDATE credentials
		SET revoked_at = ?, revocation_reason = ?, updated_at = ?
		WHERE instance_id = ? AND id = ? AND revoked_at IS NULL`,
		millis(at), reason, millis(at), instanceID, id)
}

// SetCredentialExpiry clears the expiry when expiresAt is zero.
func (t *tx) SetCredentialExpiry(ctx context.Context, instanceID, id string, expiresAt, at time.Time) error {
	return t.execOne(ctx, "credential",
		`UPDATE credentials SET expires_at = ?, updated_at = ? WHERE instance_id = ? AND id = ?`,
		millis(expiresAt), millis(at), instanceID, id)
}

func (t *tx) DeleteCredentials(ctx context.Context, instanceID string, kind credential.Kind, subject string) (int, error) {
	res, err := t.exec(ctx, `DELETE FROM credentials WHERE instance_id = ? AND kind = ? AND subject = ?`,
		instanceID, kind, subject)
	if err != nil {
		return 0, translate(err, "credential")
	}
	n, err := res.RowsAffected()
	return int(n), translate(err, "credential")
}
