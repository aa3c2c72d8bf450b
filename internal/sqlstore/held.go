package sqlstore

import (
	"context"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Held rows. On PostgreSQL every statement is a round trip, and the group
// committer's writer makes them one after another, so in a batch of creates
// the credential and audit INSERTs were most of the batch's time. In a pass
// without savepoints (see groupCommitter.commit) a batch instead holds
// those rows back and writes them all in one statement (INSERT … SELECT
// FROM unnest(…), one array per column, for each table) before the next
// statement that could see them (any but those of blindToHeld), and
// before the COMMIT. A statement that reads (or references) the
// rows so runs after they are in, as it would have. A held row that cannot
// be written (a duplicate digest) fails the pass, and the careful pass,
// which holds nothing, names the closure it was.

// flushHeld writes the held rows, both tables' in one statement (one
// round trip). Neither table references the other. With heads, the last
// write before COMMIT, the statement also writes back the chain heads the
// batch extended (flushChains then has none left), saving that UPDATE's
// round trip: the heads are locked by this transaction already, and no
// part of the statement reads another's rows.
func (t *tx) flushHeld(ctx context.Context, heads bool) error {
	if !t.holds() {
		return nil
	}
	stmt, written := t.heldStatement(heads)
	if _, err := t.runner().ExecContext(t.stmtCtx(ctx), stmt.query, stmt.args...); err != nil {
		t.flushFailed = true
		return translate(err, "credential or audit event")
	}
	t.headsWritten(written)
	return nil
}

// heldStatement takes the held rows into the statement that writes them
// and, with heads, the dirty chain heads, which it returns (to mark them
// written once it has run).
func (t *tx) heldStatement(heads bool) (stmt pgStatement, written []string) {
	stmt = pgStatement{query: insertHeld, args: append(credentialArrays(t.heldCredentials), auditArrays(t.heldAudit)...)}
	t.heldCredentials, t.heldAudit = nil, nil
	if heads && t.chains != nil {
		var seqs []int64
		var hashes []string
		for id, h := range t.chains.heads {
			if h.dirty {
				written, seqs, hashes = append(written, id), append(seqs, h.seq), append(hashes, h.hash)
			}
		}
		if len(written) > 0 {
			stmt = pgStatement{query: insertHeldAndHeads, args: append(stmt.args, written, seqs, hashes)}
		}
	}
	return stmt, written
}

// headsWritten marks the chain heads of ids written back.
func (t *tx) headsWritten(ids []string) {
	for _, id := range ids {
		t.chains.heads[id] = chainHeadState{chainHead: t.chains.heads[id].chainHead}
	}
}

// finalStatements are the writes a PostgreSQL batch still owes before its
// COMMIT: the held rows with the dirty chain heads, or the heads alone.
// It leaves the heads dirty: nothing reads them after.
func (t *tx) finalStatements() []pgStatement {
	if t.holds() {
		stmt, _ := t.heldStatement(true)
		return []pgStatement{stmt}
	}
	var stmts []pgStatement
	if t.chains != nil {
		for id, h := range t.chains.heads {
			if h.dirty {
				stmts = append(stmts, pgStatement{query: t.d.rebind(updateChainHead), args: []any{h.seq, h.hash, id}})
			}
		}
	}
	return stmts
}

// insertHeld inserts credentials and audit events given as one array per
// column (PostgreSQL), in credentialColumns' and auditColumns' order;
// insertHeldAndHeads also sets the chain heads given as three more arrays
// (instance ids, seqs, hashes). A data-modifying WITH runs whether or not
// the statement reads its result.
const (
	heldCredentials = `held_credentials AS (INSERT INTO credentials (` + credentialColumns + `)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[], $7::text[],
		$8::bigint[], $9::bigint[], $10::text[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bytea[],
		$15::text[], $16::bytea[]))`
	heldAudit = `INSERT INTO audit_events (` + auditColumns + `)
	SELECT * FROM unnest($17::text[], $18::text[], $19::bigint[], $20::text[], $21::text[], $22::text[], $23::text[],
		$24::text[], $25::text[], $26::text[], $27::text[], $28::text[], $29::text[], $30::bigint[], $31::bigint[],
		$32::text[], $33::text[])`
	heldHeads = `held_heads AS (UPDATE audit_chain_heads AS h SET seq = u.seq, hash = u.hash
	FROM unnest($34::text[], $35::bigint[], $36::text[]) AS u (instance_id, seq, hash) WHERE h.instance_id = u.instance_id)`
	insertHeld         = `WITH ` + heldCredentials + ` ` + heldAudit
	insertHeldAndHeads = `WITH ` + heldCredentials + `, ` + heldHeads + ` ` + heldAudit
)

// credentialArrays returns the columns of cs, one array each.
func credentialArrays(cs []credential.Credential) []any {
	n := len(cs)
	var text [7][]string
	for i := range text {
		text[i] = make([]string, n)
	}
	bytes := [3][][]byte{make([][]byte, n), make([][]byte, n), make([][]byte, n)}
	times := [3][]*int64{make([]*int64, n), make([]*int64, n), make([]*int64, n)}
	created, updated, attrs := make([]int64, n), make([]int64, n), make([]string, n)
	for i, c := range cs {
		for col, v := range [...]string{c.ID, c.InstanceID, string(c.Kind), c.DisplayPrefix, c.Subject, c.ParentID, c.RevocationReason} {
			text[col][i] = v
		}
		bytes[0][i] = c.Digest[:]
		bytes[1][i] = c.Sealed
		if c.SearchDigest != (credential.Digest{}) {
			bytes[2][i] = c.SearchDigest[:]
		}
		times[0][i], times[1][i], times[2][i] = nullMillis(c.ExpiresAt), nullMillis(c.RevokedAt), nullMillis(c.LastUsedAt)
		created[i], updated[i] = c.CreatedAt.UnixMilli(), c.UpdatedAt.UnixMilli()
		attrs[i] = jsonText(c.Attrs)
	}
	return []any{text[0], text[1], text[2], bytes[0], text[3], text[4], text[5],
		times[0], times[1], text[6], times[2], created, updated, bytes[1], attrs, bytes[2]}
}

// nullMillis is millis for an array element: nil (NULL) for no time.
func nullMillis(at time.Time) *int64 {
	if at.IsZero() {
		return nil
	}
	ms := at.UnixMilli()
	return &ms
}

// auditArrays returns the columns of es, one array each.
func auditArrays(es []credential.AuditEvent) []any {
	n := len(es)
	var text [14][]string
	for i := range text {
		text[i] = make([]string, n)
	}
	at, count, seq := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, e := range es {
		for col, v := range [...]string{e.ID, e.InstanceID, e.ActorKind, e.ActorID, e.Action, e.TargetKind, e.TargetID,
			e.RequestID, e.Outcome, string(e.Detail), e.ClientIP, e.CredentialID, e.PrevHash, e.Hash} {
			text[col][i] = v
		}
		at[i], count[i], seq[i] = e.At.UnixMilli(), int64(e.Count), e.Seq
	}
	return []any{text[0], text[1], at, text[2], text[3], text[4], text[5], text[6], text[7], text[8], text[9],
		text[10], text[11], count, seq, text[12], text[13]}
}

// blindToHeld are the statements a batch runs without writing its held
// rows first: the audit chain head's read and the webhook endpoints'
// (once per batch each), which neither read nor reference credentials or
// audit events.
var blindToHeld = map[string]bool{
	selectChainHeadForUpdate: true, ensureChainHead: true, listWebhooks: true,
}

// flushHeldBefore writes the held rows before query runs, unless it is
// blind to them.
func (t *tx) flushHeldBefore(ctx context.Context, query string) error {
	if !t.holds() || blindToHeld[query] {
		return nil
	}
	return t.flushHeld(ctx, false)
}

// holds reports whether rows are held back, not yet written.
func (t *tx) holds() bool { return len(t.heldCredentials) > 0 || len(t.heldAudit) > 0 }
