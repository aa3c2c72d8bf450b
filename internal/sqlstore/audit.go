package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

const auditColumns = `id, instance_id, at, actor_kind, actor_id, action, target_kind, target_id,
	request_id, outcome, detail, client_ip, credential_id, count, seq, prev_hash, hash`

func scanAuditEvent(s scanner) (credential.AuditEvent, error) {
	var (
		e      credential.AuditEvent
		detail string
	)
	err := s.Scan(&e.ID, &e.InstanceID, scanTime(&e.At), &e.ActorKind, &e.ActorID, &e.Action,
		&e.TargetKind, &e.TargetID, &e.RequestID, &e.Outcome, &detail, &e.ClientIP, &e.CredentialID,
		&e.Count, &e.Seq, &e.PrevHash, &e.Hash)
	e.Detail = json.RawMessage(detail)
	return e, err
}

// InsertAuditEvent appends e to its instance's hash chain. The chain head
// row is locked for the rest of the transaction (FOR UPDATE on PostgreSQL;
// SQLite has a single writer), so two transactions can never both extend
// the same head.
func (t *tx) InsertAuditEvent(ctx context.Context, e credential.AuditEvent) (credential.AuditEvent, error) {
	if _, err := t.exec(ctx, `INSERT INTO audit_chain_heads (instance_id, seq, hash) VALUES (?, 0, '')
		ON CONFLICT (instance_id) DO NOTHING`, e.InstanceID); err != nil {
		return e, translate(err, "audit chain")
	}
	lock := ""
	if t.d.name == "postgres" {
		lock = " FOR UPDATE"
	}
	var (
		seq  int64
		prev string
	)
	if err := t.queryRow(ctx, `SELECT seq, hash FROM audit_chain_heads WHERE instance_id = ?`+lock, e.InstanceID).Scan(&seq, &prev); err != nil {
		return e, translate(err, "audit chain")
	}
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage("{}")
	}
	if e.Count < 1 {
		e.Count = 1
	}
	e.Seq, e.PrevHash = seq+1, prev
	e.Hash = e.ChainHash(prev)
	if _, err := t.exec(ctx, `INSERT INTO audit_events (`+auditColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.InstanceID, millis(e.At), e.ActorKind, e.ActorID, e.Action, e.TargetKind, e.TargetID,
		e.RequestID, e.Outcome, string(e.Detail), e.ClientIP, e.CredentialID, e.Count, e.Seq, e.PrevHash, e.Hash); err != nil {
		return e, translate(err, "audit event")
	}
	if _, err := t.exec(ctx, `UPDATE audit_chain_heads SET seq = ?, hash = ? WHERE instance_id = ?`,
		e.Seq, e.Hash, e.InstanceID); err != nil {
		return e, translate(err, "audit chain")
	}
	return e, nil
}

// ListAuditEvents reads the page and the total in one transaction. A
// Limit ≤ 0 means no limit.
func (t *tx) ListAuditEvents(ctx context.Context, f authority.AuditFilter) ([]credential.AuditEvent, int, error) {
	where, args := "instance_id = ?", []any{f.InstanceID}
	if f.Action != "" {
		where, args = where+" AND action = ?", append(args, f.Action)
	}
	if f.TargetID != "" {
		where, args = where+" AND target_id = ?", append(args, f.TargetID)
	}
	if f.CredentialID != "" {
		where, args = where+" AND (credential_id = ? OR target_id = ?)", append(args, f.CredentialID, f.CredentialID)
	}
	total, err := t.count(ctx, "audit event", `SELECT COUNT(*) FROM audit_events WHERE `+where, args...)
	if err != nil {
		return nil, 0, err
	}
	page, err := queryAll(ctx, t, "audit event", scanAuditEvent, `SELECT `+auditColumns+` FROM audit_events
		WHERE `+where+` ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, pageLimit(f.Limit), max(f.Offset, 0))...)
	return page, total, err
}

// ChainEvents returns up to limit chained events of the instance with seq
// greater than afterSeq, in seq order.
func (t *tx) ChainEvents(ctx context.Context, instanceID string, afterSeq int64, limit int) ([]credential.AuditEvent, error) {
	return queryAll(ctx, t, "audit event", scanAuditEvent, `SELECT `+auditColumns+` FROM audit_events
		WHERE instance_id = ? AND seq > ? ORDER BY seq LIMIT ?`, instanceID, afterSeq, pageLimit(limit))
}

// AuditChainHead returns the instance's last seq and hash (0 and "" when
// it has no chained event).
func (t *tx) AuditChainHead(ctx context.Context, instanceID string) (int64, string, error) {
	var (
		seq  int64
		hash string
	)
	err := t.queryRow(ctx, `SELECT seq, hash FROM audit_chain_heads WHERE instance_id = ?`, instanceID).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return seq, hash, translate(err, "audit chain")
}

// AuditChains lists every instance id that has a chain ("" included: the
// host-wide chain of refusals no instance could be named for).
func (t *tx) AuditChains(ctx context.Context) ([]string, error) {
	return queryAll(ctx, t, "audit chain", func(s scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	}, `SELECT instance_id FROM audit_chain_heads ORDER BY instance_id`)
}
