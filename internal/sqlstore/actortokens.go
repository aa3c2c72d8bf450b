package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Actor tokens and impersonation sessions. Both carry their instance, and
// every query but ActorTokenByDigest matches it, so a row of another
// instance is not found. The actor object is stored as the JSON text it was
// given and read back byte for byte; a nil actor is stored as the empty
// object, as credential attrs are.

const actorTokenColumns = `id, instance_id, user_id, actor, status, digest, expires_at,
	session_max_duration, created_at, updated_at`

func scanActorToken(s scanner) (credential.ActorToken, error) {
	var (
		a      credential.ActorToken
		actor  string
		digest []byte
	)
	err := s.Scan(&a.ID, &a.InstanceID, &a.UserID, &actor, &a.Status, &digest, scanTime(&a.ExpiresAt),
		&a.SessionMaxDuration, scanTime(&a.CreatedAt), scanTime(&a.UpdatedAt))
	if err != nil {
		return a, err
	}
	if len(digest) != len(a.Digest) {
		return a, fmt.Errorf("sqlstore: actor token %s has a %d-byte digest", a.ID, len(digest))
	}
	copy(a.Digest[:], digest)
	a.Actor = json.RawMessage(actor)
	return a, nil
}

// InsertActorToken reports CodeConflict for an id or digest already used
// by any instance, and CodeNotFound for a missing instance.
func (t *tx) InsertActorToken(ctx context.Context, a credential.ActorToken) error {
	_, err := t.exec(ctx, `INSERT INTO actor_tokens (`+actorTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.InstanceID, a.UserID, jsonText(a.Actor), a.Status, a.Digest[:], millis(a.ExpiresAt),
		a.SessionMaxDuration, millis(a.CreatedAt), millis(a.UpdatedAt))
	return translate(err, "actor token")
}

func (t *tx) GetActorToken(ctx context.Context, instanceID, id string) (credential.ActorToken, error) {
	a, err := scanActorToken(t.queryRow(ctx,
		`SELECT `+actorTokenColumns+` FROM actor_tokens WHERE instance_id = ? AND id = ?`, instanceID, id))
	return a, translate(err, "actor token")
}

// ActorTokenByDigest is not bounded by an instance: digests are unique
// across instances, and the caller checks the instance.
func (t *tx) ActorTokenByDigest(ctx context.Context, d credential.Digest) (credential.ActorToken, error) {
	a, err := scanActorToken(t.queryRow(ctx,
		`SELECT `+actorTokenColumns+` FROM actor_tokens WHERE digest = ?`, d[:]))
	return a, translate(err, "actor token")
}

// ListActorTokens reads the page and the total in one transaction, so on
// either engine they come from one snapshot. A limit ≤ 0 means no limit.
func (t *tx) ListActorTokens(ctx context.Context, instanceID, userID, status string, limit, offset int) ([]credential.ActorToken, int, error) {
	where, args := []string{"instance_id = ?"}, []any{instanceID}
	if userID != "" {
		where, args = append(where, "user_id = ?"), append(args, userID)
	}
	if status != "" {
		where, args = append(where, "status = ?"), append(args, status)
	}
	cond := strings.Join(where, " AND ")
	total, err := t.count(ctx, "actor token", `SELECT COUNT(*) FROM actor_tokens WHERE `+cond, args...)
	if err != nil {
		return nil, 0, err
	}
	page, err := queryAll(ctx, t, "actor token", scanActorToken, `SELECT `+actorTokenColumns+` FROM actor_tokens
		WHERE `+cond+` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, pageLimit(limit), max(offset, 0))...)
	return page, total, err
}

// TransitionActorToken is one conditional UPDATE, never a read and then a
// write: of transactions racing to move the same token, the database lets
// exactly one match the row in status from (PostgreSQL re-checks the
// condition once the first writer's row lock is released; SQLite admits one
// writer at a time). A token whose expires_at is at or before notExpiredAt
// is expired. A missing token, or one of another instance, reports false.
func (t *tx) TransitionActorToken(ctx context.Context, instanceID, id, from, to string, at, notExpiredAt time.Time) (bool, error) {
	query := `UPDATE actor_tokens SET status = ?, updated_at = ? WHERE instance_id = ? AND id = ? AND status = ?`
	args := []any{to, millis(at), instanceID, id, from}
	if !notExpiredAt.IsZero() {
		query += ` AND expires_at > ?`
		args = append(args, millis(notExpiredAt))
	}
	res, err := t.exec(ctx, query, args...)
	if err != nil {
		return false, translate(err, "actor token")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, translate(err, "actor token")
	}
	return n == 1, nil
}

const impersonationSessionColumns = `id, instance_id, actor_token_id, user_id, actor, started_at, expires_at, revoked_at`

func scanImpersonationSession(s scanner) (credential.ImpersonationSession, error) {
	var (
		sess  credential.ImpersonationSession
		actor string
	)
	err := s.Scan(&sess.ID, &sess.InstanceID, &sess.ActorTokenID, &sess.UserID, &actor,
		scanTime(&sess.StartedAt), scanTime(&sess.ExpiresAt), scanTime(&sess.RevokedAt))
	if err != nil {
		return sess, err
	}
	sess.Actor = json.RawMessage(actor)
	return sess, nil
}

// InsertImpersonationSession reports CodeConflict for an id already used
// by any instance, and CodeNotFound for a missing instance. It does not
// check the actor token: the caller has just transitioned it.
func (t *tx) InsertImpersonationSession(ctx context.Context, s credential.ImpersonationSession) error {
	_, err := t.exec(ctx, `INSERT INTO impersonation_sessions (`+impersonationSessionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.InstanceID, s.ActorTokenID, s.UserID, jsonText(s.Actor),
		millis(s.StartedAt), millis(s.ExpiresAt), millis(s.RevokedAt))
	return translate(err, "impersonation session")
}

func (t *tx) GetImpersonationSession(ctx context.Context, instanceID, id string) (credential.ImpersonationSession, error) {
	s, err := scanImpersonationSession(t.queryRow(ctx, `SELECT `+impersonationSessionColumns+`
		FROM impersonation_sessions WHERE instance_id = ? AND id = ?`, instanceID, id))
	return s, translate(err, "impersonation session")
}

// RevokeImpersonationSession keeps the first revocation: an already
// revoked session is CodeNotFound, as a missing one is.
func (t *tx) RevokeImpersonationSession(ctx context.Context, instanceID, id string, at time.Time) error {
	return t.execOne(ctx, "impersonation session", `UPDATE impersonation_sessions SET revoked_at = ?
		WHERE instance_id = ? AND id = ? AND revoked_at IS NULL`,
		millis(at), instanceID, id)
}
