package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"

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
	head, err := t.chainHead(ctx, e.InstanceID)
	if err != nil {
		return e, err
	}
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage("{}")
	}
	if e.Count < 1 {
		e.Count = 1
	}
	e.Seq, e.PrevHash = head.seq+1, head.hash
	e.Hash = e.ChainHash(head.hash)
	if t.hold && !e.At.IsZero() {
		t.heldAudit = append(t.heldAudit, e)
	} else if _, err := t.exec(ctx, insertAuditEvent,
		e.ID, e.InstanceID, millis(e.At), e.ActorKind, e.ActorID, e.Action, e.TargetKind, e.TargetID,
		e.RequestID, e.Outcome, string(e.Detail), e.ClientIP, e.CredentialID, e.Count, e.Seq, e.PrevHash, e.Hash); err != nil {
		return e, translate(err, "audit event")
	}
	next := chainHead{seq: e.Seq, hash: e.Hash}
	if t.chains != nil {
		// A group commit writes the head once, before its COMMIT.
		t.chains.heads[e.InstanceID] = chainHeadState{chainHead: next, dirty: true}
		return e, nil
	}
	return e, t.writeChainHead(ctx, e.InstanceID, next)
}

const (
	insertAuditEvent = `INSERT INTO audit_events (` + auditColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	ensureChainHead = `INSERT INTO audit_chain_heads (instance_id, seq, hash) VALUES (?, 0, '')
		ON CONFLICT (instance_id) DO NOTHING`
	selectChainHead          = `SELECT seq, hash, webhooks_gen FROM audit_chain_heads WHERE instance_id = ?`
	selectChainHeadForUpdate = selectChainHead + ` FOR UPDATE`
	updateChainHead          = `UPDATE audit_chain_heads SET seq = ?, hash = ? WHERE instance_id = ?`
)

type chainHead struct {
	seq  int64
	hash string
}

type chainHeadState struct {
	chainHead
	dirty bool // extended in this transaction, not yet written back
}

// batchChains keeps the chain heads a group commit has read (and locked)
// or extended, so each closure of the batch appends to its chain with one
// statement instead of four, and the webhook subscriptions read under
// those locks (see ListWebhooks). Savepoints snapshot and restore it with
// the rows they undo.
type batchChains struct {
	heads map[string]chainHeadState
	hooks map[string][]credential.Webhook
	// gens are the webhook generations read with the heads, and written
	// the instances whose endpoints the batch wrote (see ListWebhooks).
	gens    map[string]int64
	written map[string]bool
	// endpoints are the reads of earlier batches, the committer's (nil
	// outside a group commit).
	endpoints endpointReads
}

func (b *batchChains) snapshot() batchChains {
	return batchChains{heads: maps.Clone(b.heads), hooks: maps.Clone(b.hooks), gens: maps.Clone(b.gens),
		written: maps.Clone(b.written), endpoints: b.endpoints}
}

func (b *batchChains) restore(saved batchChains) { *b = saved }

// holds reports whether the batch has read (and so locked) the instance's
// chain head.
func (b *batchChains) holds(instanceID string) bool {
	_, ok := b.heads[instanceID]
	return ok
}

// chainHead reads the instance's chain head, locking it for the rest of
// the transaction (FOR UPDATE on PostgreSQL; SQLite has a single writer).
func (t *tx) chainHead(ctx context.Context, instanceID string) (chainHead, error) {
	if t.chains != nil {
		if h, ok := t.chains.heads[instanceID]; ok {
			return h.chainHead, nil
		}
	}
	query := selectChainHead
	if t.d.name == "postgres" {
		query = selectChainHeadForUpdate
	}
	// The head row exists from the instance's first event on, so it is
	// read (and locked) in one statement, and made first only when it is
	// missing.
	var h chainHead
	var gen int64
	begun, err := true, error(nil)
	if t.pg != nil {
		// The first statement of most batches: BEGIN rides with it.
		begun, err = t.pg.beginReadingHead(t.stmtCtx(ctx), t.d.rebind(query), instanceID, &h.seq, &h.hash, &gen)
	}
	if begun {
		err = t.queryRow(ctx, query, instanceID).Scan(&h.seq, &h.hash, &gen)
	}
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := t.exec(ctx, ensureChainHead, instanceID); err != nil {
			return chainHead{}, translate(err, "audit chain")
		}
		err = t.queryRow(ctx, query, instanceID).Scan(&h.seq, &h.hash, &gen)
	}
	if err != nil {
		return chainHead{}, translate(err, "audit chain")
	}
	if t.chains != nil {
		t.chains.heads[instanceID] = chainHeadState{chainHead: h}
		if t.chains.gens == nil {
			t.chains.gens = map[string]int64{}
		}
		t.chains.gens[instanceID] = gen
	}
	return h, nil
}

func (t *tx) writeChainHead(ctx context.Context, instanceID string, h chainHead) error {
	if _, err := t.exec(ctx, updateChainHead, h.seq, h.hash, instanceID); err != nil {
		return translate(err, "audit chain")
	}
	return nil
}

// flushChains writes back the heads a group commit extended.
func (t *tx) flushChains(ctx context.Context) error {
	for id, h := range t.chains.heads {
		if h.dirty {
			if err := t.writeChainHead(ctx, id, h.chainHead); err != nil {
				return err
			}
		}
	}
	return nil
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
	if t.chains != nil {
		if h, ok := t.chains.heads[instanceID]; ok {
			return h.seq, h.hash, nil
		}
	}
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
