package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

const foreignHashColumns = `credential_id, instance_id, format, prefix, lookup, hmac_key_id, start, bcrypt_hash, created_at`

func scanForeignHash(s scanner) (authority.ForeignHash, error) {
	var h authority.ForeignHash
	err := s.Scan(&h.CredentialID, &h.InstanceID, &h.Format, &h.Prefix, &h.Lookup, &h.HMACKeyID, &h.Start,
		&h.BcryptHash, scanTime(&h.CreatedAt))
	return h, err
}

// InsertForeignHMACKey stores k unless the instance has a key with its
// fingerprint, and returns the id of the stored key. A key found again has
// its created_at moved to k's, so the grace of DeleteUnusedForeignHMACKeys
// runs from the last import that needed it.
func (t *tx) InsertForeignHMACKey(ctx context.Context, k authority.ForeignHMACKey) (string, error) {
	if _, err := t.exec(ctx, `INSERT INTO foreign_hmac_keys (id, instance_id, fingerprint, sealed, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (instance_id, fingerprint) DO UPDATE SET created_at = excluded.created_at`,
		k.ID, k.InstanceID, k.Fingerprint, k.Sealed, millis(k.CreatedAt)); err != nil {
		return "", translate(err, "foreign HMAC key")
	}
	var id string
	err := t.queryRow(ctx, `SELECT id FROM foreign_hmac_keys WHERE instance_id = ? AND fingerprint = ?`,
		k.InstanceID, k.Fingerprint).Scan(&id)
	return id, translate(err, "foreign HMAC key")
}

// ForeignHMACKeys returns the instance's foreign HMAC keys, oldest first.
func (t *tx) ForeignHMACKeys(ctx context.Context, instanceID string) ([]authority.ForeignHMACKey, error) {
	return queryAll(ctx, t, "foreign HMAC key", func(s scanner) (authority.ForeignHMACKey, error) {
		var k authority.ForeignHMACKey
		err := s.Scan(&k.ID, &k.InstanceID, &k.Fingerprint, &k.Sealed, scanTime(&k.CreatedAt))
		return k, err
	}, `SELECT id, instance_id, fingerprint, sealed, created_at FROM foreign_hmac_keys
		WHERE instance_id = ? ORDER BY created_at, id`, instanceID)
}

func (t *tx) InsertForeignHash(ctx context.Context, h authority.ForeignHash) error {
	var lookup any
	if h.Lookup != nil {
		lookup = h.Lookup
	}
	_, err := t.exec(ctx, `INSERT INTO foreign_key_hashes (`+foreignHashColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		h.CredentialID, h.InstanceID, string(h.Format), h.Prefix, lookup, h.HMACKeyID, h.Start, h.BcryptHash, millis(h.CreatedAt))
	return translate(err, "foreign key hash")
}

func (t *tx) ForeignHashByLookup(ctx context.Context, instanceID string, lookup []byte) (authority.ForeignHash, error) {
	h, err := scanForeignHash(t.queryRow(ctx, `SELECT `+foreignHashColumns+` FROM foreign_key_hashes
		WHERE instance_id = ? AND lookup = ?`, instanceID, lookup))
	return h, translate(err, "foreign key hash")
}

func (t *tx) ForeignHashesByStart(ctx context.Context, instanceID string, starts []string, limit int) ([]authority.ForeignHash, error) {
	if len(starts) == 0 {
		return nil, nil
	}
	args := []any{instanceID}
	for _, s := range starts {
		args = append(args, s)
	}
	args = append(args, pageLimit(limit))
	return queryAll(ctx, t, "foreign key hash", scanForeignHash, `SELECT `+foreignHashColumns+` FROM foreign_key_hashes
		WHERE instance_id = ? AND format = 'bcrypt' AND start IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(starts)), ", ")+`)
		ORDER BY created_at, credential_id LIMIT ?`, args...)
}

func (t *tx) InsertForeignPrefix(ctx context.Context, instanceID, prefix string, at time.Time) error {
	_, err := t.exec(ctx, `INSERT INTO foreign_key_prefixes (instance_id, prefix, created_at) VALUES (?, ?, ?)
		ON CONFLICT (instance_id, prefix) DO NOTHING`, instanceID, prefix, millis(at))
	return translate(err, "foreign key prefix")
}

func (t *tx) ForeignPrefixes(ctx context.Context) (map[string][]string, error) {
	type row struct{ instance, prefix string }
	rows, err := queryAll(ctx, t, "foreign key prefix", func(s scanner) (row, error) {
		var r row
		return r, s.Scan(&r.instance, &r.prefix)
	}, `SELECT instance_id, prefix FROM foreign_key_prefixes ORDER BY instance_id, prefix`)
	out := map[string][]string{}
	for _, r := range rows {
		out[r.instance] = append(out[r.instance], r.prefix)
	}
	return out, err
}

// RekeyForeignCredential deletes the hash first: on PostgreSQL a
// concurrent transaction doing the same blocks on the row until this one
// ends, then deletes nothing and leaves the credential alone; SQLite has a
// single writer.
func (t *tx) RekeyForeignCredential(ctx context.Context, instanceID, id string, digest, search credential.Digest, at time.Time) (bool, error) {
	var hmacKeyID string
	err := t.queryRow(ctx, `DELETE FROM foreign_key_hashes WHERE instance_id = ? AND credential_id = ? RETURNING hmac_key_id`,
		instanceID, id).Scan(&hmacKeyID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, translate(err, "foreign key hash")
	}
	if err := t.execOne(ctx, "credential", `UPDATE credentials SET digest = ?, search_digest = ?, updated_at = ?
		WHERE instance_id = ? AND id = ?`, digest[:], search[:], millis(at), instanceID, id); err != nil {
		return false, err
	}
	if hmacKeyID != "" {
		// The foreign HMAC key goes with the last key that needed it, once
		// no import can still be about to use it (see ForeignHMACKeyGrace).
		if _, err := t.exec(ctx, `DELETE FROM foreign_hmac_keys WHERE id = ? AND created_at <= ? AND NOT EXISTS
			(SELECT 1 FROM foreign_key_hashes WHERE hmac_key_id = ?)`, hmacKeyID, millis(at.Add(-authority.ForeignHMACKeyGrace)), hmacKeyID); err != nil {
			return false, translate(err, "foreign HMAC key")
		}
	}
	return true, nil
}

// DeleteUnusedForeignHMACKeys deletes the foreign HMAC keys no foreign
// hash needs any more, last imported at or before before.
func (t *tx) DeleteUnusedForeignHMACKeys(ctx context.Context, before time.Time) (int, error) {
	res, err := t.exec(ctx, `DELETE FROM foreign_hmac_keys WHERE created_at <= ? AND NOT EXISTS
		(SELECT 1 FROM foreign_key_hashes h WHERE h.hmac_key_id = foreign_hmac_keys.id)`, millis(before))
	if err != nil {
		return 0, translate(err, "foreign HMAC key")
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
