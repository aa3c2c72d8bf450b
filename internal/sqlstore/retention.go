package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keyward/keyward/internal/authority"
)

// DeleteLapsedCredentials deletes one bounded batch, picked through the
// partial indexes on expires_at and revoked_at. Deleting rows another node
// deleted first is no error: the batch is just smaller. A machine's newest
// key is kept whatever its state: it holds the machine's controls, which
// the next rotation copies (authority.newestKey; a tie on created_at keeps
// both).
func (t *tx) DeleteLapsedCredentials(ctx context.Context, expiredBefore, revokedBefore time.Time, limit int) (int, error) {
	total := 0
	for _, c := range []struct {
		column string
		before time.Time
	}{{"expires_at", expiredBefore}, {"revoked_at", revokedBefore}} {
		if c.before.IsZero() || total >= limit {
			continue
		}
		res, err := t.exec(ctx, `DELETE FROM credentials WHERE id IN (SELECT id FROM credentials c
			WHERE `+c.column+` IS NOT NULL AND `+c.column+` <= ?
			AND (kind <> 'machine_key' OR EXISTS (SELECT 1 FROM credentials n WHERE n.instance_id = c.instance_id
				AND n.kind = 'machine_key' AND n.subject = c.subject AND n.created_at > c.created_at))
			LIMIT ?)`, millis(c.before), limit-total)
		if err != nil {
			return total, translate(err, "credential")
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}

const checkpointColumns = `checkpoint_seq, checkpoint_hash, checkpoint_mac, seq, hash`

func (t *tx) LockAuditCheckpoint(ctx context.Context, instanceID string) (authority.AuditCheckpoint, error) {
	lock := ""
	if t.d.name == "postgres" {
		lock = " FOR UPDATE"
	}
	var cp authority.AuditCheckpoint
	err := t.queryRow(ctx, `SELECT `+checkpointColumns+` FROM audit_chain_heads WHERE instance_id = ?`+lock, instanceID).
		Scan(&cp.Seq, &cp.Hash, &cp.MAC, &cp.HeadSeq, &cp.HeadHash)
	return cp, translate(err, "audit chain")
}

func (t *tx) AuditCheckpoint(ctx context.Context, instanceID string) (authority.AuditCheckpoint, error) {
	var cp authority.AuditCheckpoint
	err := t.queryRow(ctx, `SELECT `+checkpointColumns+` FROM audit_chain_heads WHERE instance_id = ?`, instanceID).
		Scan(&cp.Seq, &cp.Hash, &cp.MAC, &cp.HeadSeq, &cp.HeadHash)
	if err != nil && !isNoRows(err) {
		return cp, translate(err, "audit chain")
	}
	return cp, nil
}

func (t *tx) SetAuditCheckpoint(ctx context.Context, instanceID string, cp authority.AuditCheckpoint) error {
	return t.execOne(ctx, "audit chain", `UPDATE audit_chain_heads SET checkpoint_seq = ?, checkpoint_hash = ?, checkpoint_mac = ?
		WHERE instance_id = ?`, cp.Seq, cp.Hash, cp.MAC, instanceID)
}

func (t *tx) DeleteChainEvents(ctx context.Context, instanceID string, afterSeq, throughSeq int64) (int, error) {
	res, err := t.exec(ctx, `DELETE FROM audit_events WHERE instance_id = ? AND seq > ? AND seq <= ?`, instanceID, afterSeq, throughSeq)
	if err != nil {
		return 0, translate(err, "audit event")
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *tx) DeleteUnchainedEvents(ctx context.Context, instanceID string, before time.Time, limit int) (int, error) {
	res, err := t.exec(ctx, `DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events
		WHERE instance_id = ? AND seq = 0 AND at <= ? LIMIT ?)`, instanceID, millis(before), limit)
	if err != nil {
		return 0, translate(err, "audit event")
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
