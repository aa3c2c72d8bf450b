package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

const credentialColumns = `id, instance_id, kind, digest, display_prefix, subject, parent_id, expires_at,
	revoked_at, revocation_reason, last_used_at, created_at, updated_at, sealed, attrs, search_digest`

func scanCredential(s scanner) (credential.Credential, error) {
	var (
		c      credential.Credential
		digest []byte
		attrs  string
		search []byte
	)
	err := s.Scan(&c.ID, &c.InstanceID, &c.Kind, &digest, &c.DisplayPrefix, &c.Subject, &c.ParentID,
		scanTime(&c.ExpiresAt), scanTime(&c.RevokedAt), &c.RevocationReason, scanTime(&c.LastUsedAt),
		scanTime(&c.CreatedAt), scanTime(&c.UpdatedAt), &c.Sealed, &attrs, &search)
	if err != nil {
		return c, err
	}
	if len(digest) != len(c.Digest) {
		return c, fmt.Errorf("sqlstore: credential %s has a %d-byte digest", c.ID, len(digest))
	}
	copy(c.Digest[:], digest)
	if len(search) == len(c.SearchDigest) {
		copy(c.SearchDigest[:], search)
	}
	c.Attrs = json.RawMessage(attrs)
	return c, nil
}

// jsonText is the stored form of a JSON document; nil (or empty, which is
// no JSON at all) is the empty object.
func jsonText(doc json.RawMessage) string {
	if len(doc) == 0 {
		return "{}"
	}
	return string(doc)
}

const insertCredential = `INSERT INTO credentials (` + credentialColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (t *tx) InsertCredential(ctx context.Context, c credential.Credential) error {
	if t.hold && !c.CreatedAt.IsZero() && !c.UpdatedAt.IsZero() {
		t.heldCredentials = append(t.heldCredentials, c)
		return nil
	}
	_, err := t.exec(ctx, insertCredential,
		c.ID, c.InstanceID, c.Kind, c.Digest[:], c.DisplayPrefix, c.Subject, c.ParentID,
		millis(c.ExpiresAt), millis(c.RevokedAt), c.RevocationReason, millis(c.LastUsedAt),
		millis(c.CreatedAt), millis(c.UpdatedAt), c.Sealed, jsonText(c.Attrs), searchDigest(c.SearchDigest))
	return translate(err, "credential")
}

const credentialByDigest = `SELECT ` + credentialColumns + ` FROM credentials WHERE digest = ?`

// searchDigest is the stored form of a search digest: NULL when unknown.
func searchDigest(d credential.Digest) any {
	if d == (credential.Digest{}) {
		return nil
	}
	return d[:]
}

// SetCredentialSearchDigest records a credential's search digest if it has
// none yet.
func (t *tx) SetCredentialSearchDigest(ctx context.Context, instanceID, id string, d credential.Digest) error {
	_, err := t.exec(ctx, `UPDATE credentials SET search_digest = ? WHERE instance_id = ? AND id = ? AND search_digest IS NULL`,
		d[:], instanceID, id)
	return translate(err, "credential")
}

// CredentialBySearchDigest finds the instance's credential with that
// search digest.
func (t *tx) CredentialBySearchDigest(ctx context.Context, instanceID string, d credential.Digest) (credential.Credential, error) {
	c, err := scanCredential(t.queryRow(ctx,
		`SELECT `+credentialColumns+` FROM credentials WHERE instance_id = ? AND search_digest = ?`, instanceID, d[:]))
	return c, translate(err, "credential")
}

// CredentialByDigest is the one query not bounded by an instance: digests
// are unique across instances, and the caller checks the instance.
func (t *tx) CredentialByDigest(ctx context.Context, d credential.Digest) (credential.Credential, error) {
	c, err := scanCredential(t.queryRow(ctx, credentialByDigest, d[:]))
	return c, translate(err, "credential")
}

// CredentialByDigest is tx.CredentialByDigest in one statement outside any
// explicit transaction (one SELECT reads one snapshot anyway), on the read
// pool with its prepared statement: the verify cache's miss path, which
// must neither pay for BEGIN and COMMIT nor wait behind a writer.
func (s *Store) CredentialByDigest(ctx context.Context, d credential.Digest) (credential.Credential, error) {
	if err := s.readGate.enter(ctx); err != nil {
		return credential.Credential{}, err
	}
	defer s.readGate.leave()
	if s.watch != nil { // as in run: an unanswering PostgreSQL fails the read
		bound, release, err := s.watch.bind(ctx)
		if err != nil {
			return credential.Credential{}, err
		}
		defer release()
		ctx = bound
	}
	var row *sql.Row
	if st := s.readerStmts[credentialByDigest]; st != nil {
		// SQLite: the gate has admitted this read to an idle connection,
		// and one probe of a unique index cannot run long, so it need not
		// be cancellable. With a cancellable context the driver starts a
		// goroutine per statement, to interrupt it, which costs a cache
		// miss more than the read.
		row = st.QueryRowContext(context.WithoutCancel(ctx), d[:])
	} else {
		row = s.reader.QueryRowContext(ctx, s.d.rebind(credentialByDigest), d[:])
	}
	c, err := scanCredential(row)
	if err == nil || errors.Is(err, sql.ErrNoRows) {
		s.sawAnswer()
	}
	return c, s.outageOr(ctx, translate(err, "credential"))
}

func (t *tx) GetCredential(ctx context.Context, instanceID, id string) (credential.Credential, error) {
	c, err := scanCredential(t.queryRow(ctx,
		`SELECT `+credentialColumns+` FROM credentials WHERE instance_id = ? AND id = ?`, instanceID, id))
	return c, translate(err, "credential")
}

// LockCredential is GetCredential that also locks the row until the
// transaction ends (FOR NO KEY UPDATE on PostgreSQL: it does not block the
// key-share lock of a row that references it; SQLite has a single writer).
func (t *tx) LockCredential(ctx context.Context, instanceID, id string) (credential.Credential, error) {
	query := `SELECT ` + credentialColumns + ` FROM credentials WHERE instance_id = ? AND id = ?`
	if t.d.name == "postgres" {
		query += " FOR NO KEY UPDATE"
	}
	c, err := scanCredential(t.queryRow(ctx, query, instanceID, id))
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

func (t *tx) SetCredentialSubject(ctx context.Context, instanceID, id, subject string, at time.Time) error {
	return t.execOne(ctx, "credential",
		`UPDATE credentials SET subject = ?, updated_at = ? WHERE instance_id = ? AND id = ?`,
		subject, millis(at), instanceID, id)
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

// DeleteCredential deletes one credential of the instance.
func (t *tx) DeleteCredential(ctx context.Context, instanceID, id string) error {
	return t.execOne(ctx, "credential", `DELETE FROM credentials WHERE instance_id = ? AND id = ?`, instanceID, id)
}

// UpdateCredentialAttrs stores nil attrs as the empty object, as
// InsertCredential does.
func (t *tx) UpdateCredentialAttrs(ctx context.Context, instanceID, id string, attrs json.RawMessage, at time.Time) error {
	return t.execOne(ctx, "credential", `UPDATE credentials SET attrs = ?, updated_at = ? WHERE instance_id = ? AND id = ?`,
		jsonText(attrs), millis(at), instanceID, id)
}

// RevokeMatching also sets updated_at to at; revoked credentials keep their
// first revocation. A query without an instance or a kind is CodeInvalid,
// so a mistake cannot revoke across kinds. Only InstanceID, Kind, Subject
// and ParentID select: the query's state, time and page fields are
// ignored.
func (t *tx) RevokeMatching(ctx context.Context, q authority.CredentialQuery, at time.Time, reason string) (int, error) {
	if q.InstanceID == "" || q.Kind == "" {
		return 0, credential.Errorf(credential.CodeInvalid, "a credential revocation needs an instance and a kind")
	}
	where, args := []string{"instance_id = ?", "kind = ?"}, []any{q.InstanceID, q.Kind}
	if q.Subject != "" {
		where, args = append(where, "subject = ?"), append(args, q.Subject)
	}
	if q.ParentID != "" {
		where, args = append(where, "parent_id = ?"), append(args, q.ParentID)
	}
	res, err := t.exec(ctx, `UPDATE credentials
		SET revoked_at = ?, revocation_reason = ?, updated_at = ?
		WHERE `+strings.Join(where, " AND ")+` AND revoked_at IS NULL`,
		append([]any{millis(at), reason, millis(at)}, args...)...)
	if err != nil {
		return 0, translate(err, "credential")
	}
	n, err := res.RowsAffected()
	return int(n), translate(err, "credential")
}

// RevokeCredentialsOf also sets updated_at to at. Revoked credentials keep
// their first revocation. Unlike RevokeMatching, an empty subject matches
// only credentials whose subject is empty.
func (t *tx) RevokeCredentialsOf(ctx context.Context, instanceID string, kind credential.Kind, subject string, at time.Time, reason string) (int, error) {
	res, err := t.exec(ctx, `UPDATE credentials
		SET revoked_at = ?, revocation_reason = ?, updated_at = ?
		WHERE instance_id = ? AND kind = ? AND subject = ? AND revoked_at IS NULL`,
		millis(at), reason, millis(at), instanceID, kind, subject)
	if err != nil {
		return 0, translate(err, "credential")
	}
	n, err := res.RowsAffected()
	return int(n), translate(err, "credential")
}

// PageCredentials reads the page and the total in one transaction, so on
// either engine they come from one snapshot. A query without a kind, or
// with Expired but no Now, is CodeInvalid. Now and ExpiresAfter compare
// at whole milliseconds, as expires_at is stored; truncating them gives
// the same answer as comparing the exact times. A Limit ≤ 0 means no
// limit.
func (t *tx) PageCredentials(ctx context.Context, q authority.CredentialQuery) ([]credential.Credential, int, error) {
	if q.Kind == "" {
		return nil, 0, credential.Errorf(credential.CodeInvalid, "a credential query needs a kind")
	}
	where, args := []string{"instance_id = ?", "kind = ?"}, []any{q.InstanceID, q.Kind}
	if q.Subject != "" {
		where, args = append(where, "subject = ?"), append(args, q.Subject)
	}
	if q.ParentID != "" {
		where, args = append(where, "parent_id = ?"), append(args, q.ParentID)
	}
	if q.Revoked != nil {
		if *q.Revoked {
			where = append(where, "revoked_at IS NOT NULL")
		} else {
			where = append(where, "revoked_at IS NULL")
		}
	}
	if q.Expired != nil {
		if q.Now.IsZero() {
			return nil, 0, credential.Errorf(credential.CodeInvalid, "a credential query by expiry needs the time")
		}
		if *q.Expired {
			where = append(where, "expires_at IS NOT NULL AND expires_at <= ?")
		} else {
			where = append(where, "(expires_at IS NULL OR expires_at > ?)")
		}
		args = append(args, q.Now.UnixMilli())
	}
	if !q.ExpiresAfter.IsZero() {
		where, args = append(where, "expires_at IS NOT NULL AND expires_at > ?"), append(args, q.ExpiresAfter.UnixMilli())
	}
	cond := strings.Join(where, " AND ")
	total, err := t.count(ctx, "credential", `SELECT COUNT(*) FROM credentials WHERE `+cond, args...)
	if err != nil {
		return nil, 0, err
	}
	page, err := queryAll(ctx, t, "credential", scanCredential, `SELECT `+credentialColumns+` FROM credentials
		WHERE `+cond+` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, pageLimit(q.Limit), max(q.Offset, 0))...)
	return page, total, err
}

// touchCredential raises last_used_at to the usage's time, never lowering
// it; updated_at is left alone, as a use is not a change.
const touchCredential = `UPDATE credentials SET last_used_at = ?
	WHERE instance_id = ? AND id = ? AND (last_used_at IS NULL OR last_used_at < ?)`

// TouchCredentials runs one prepared statement per usage, in
// (instance, id) order whatever the order of usages: on PostgreSQL,
// concurrent batches then lock their rows in one order and cannot deadlock
// on each other. Usages with a zero time are skipped.
func (t *tx) TouchCredentials(ctx context.Context, usages []authority.Usage) error {
	sorted := make([]authority.Usage, 0, len(usages))
	for _, u := range usages {
		if !u.At.IsZero() {
			sorted = append(sorted, u)
		}
	}
	if len(sorted) == 0 {
		return nil
	}
	slices.SortFunc(sorted, func(a, b authority.Usage) int {
		return cmp.Or(strings.Compare(a.InstanceID, b.InstanceID), strings.Compare(a.CredentialID, b.CredentialID))
	})
	ctx = t.stmtCtx(ctx)
	stmt, err := t.prepare(ctx, touchCredential)
	if err != nil {
		return translate(err, "credential")
	}
	defer stmt.Close()
	for i, u := range sorted {
		at := u.At.UnixMilli()
		if _, err := stmt.ExecContext(ctx, at, u.InstanceID, u.CredentialID, at); err != nil {
			return translate(err, "credential")
		}
		t.yieldEvery(i, len(sorted))
	}
	return translate(stmt.Close(), "credential")
}
