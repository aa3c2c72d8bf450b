package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

const auditColumns = `id, instance_id, at, actor_kind, actor_id, action, target_kind, target_id,
	request_id, outcome, detail`

func scanAuditEvent(s scanner) (credential.AuditEvent, error) {
	var (
		e      credential.AuditEvent
		detail string
	)
	err := s.Scan(&e.ID, &e.InstanceID, scanTime(&e.At), &e.ActorKind, &e.ActorID, &e.Action,
		&e.TargetKind, &e.TargetID, &e.RequestID, &e.Outcome, &detail)
	e.Detail = json.RawMessage(detail)
	return e, err
}

const insertAuditEvent = `INSERT INTO audit_events (` + auditColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (t *tx) InsertAuditEvent(ctx context.Context, e credential.AuditEvent) error {
	_, err := t.exec(ctx, insertAuditEvent,
		e.ID, e.InstanceID, millis(e.At), e.ActorKind, e.ActorID, e.Action, e.TargetKind, e.TargetID,
		e.RequestID, e.Outcome, jsonText(e.Detail))
	return translate(err, "audit event")
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
	total, err := t.count(ctx, "audit event", `SELECT COUNT(*) FROM audit_events WHERE `+where, args...)
	if err != nil {
		return nil, 0, err
	}
	page, err := queryAll(ctx, t, "audit event", scanAuditEvent, `SELECT `+auditColumns+` FROM audit_events
		WHERE `+where+` ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, pageLimit(f.Limit), max(f.Offset, 0))...)
	return page, total, err
}
