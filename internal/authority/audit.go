package authority

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/keyward/keyward/internal/credential"
)

// Audit list limits.
const (
	AuditListLimitDefault = 20
	AuditListLimitMax     = 200
)

// ListAuditEventsInput selects a page of audit events. Nil Limit and Offset
// take their defaults; empty filters match everything.
type ListAuditEventsInput struct {
	Action   string
	TargetID string
	// CredentialSHA256 is the hex SHA-256 of a presented secret (GitHub's
	// hashed_token): when set, only the events of the instance's credential
	// with that secret are listed, those it did and those done to it; none
	// when no credential of the instance has it.
	CredentialSHA256 string
	Limit            *int64
	Offset           *int64
}

// ListAuditEvents returns a page of the caller's instance's audit events,
// newest first, and the total count.
func (a *Authority) ListAuditEvents(ctx context.Context, c Caller, in ListAuditEventsInput) ([]credential.AuditEvent, int, error) {
	if _, err := a.enter(ctx, c, "ListAuditEvents"); err != nil {
		return nil, 0, err
	}
	limit, offset, err := page(in.Limit, in.Offset, AuditListLimitDefault, AuditListLimitMax)
	if err != nil {
		return nil, 0, err
	}
	f := AuditFilter{InstanceID: c.InstanceID, Action: in.Action, TargetID: in.TargetID, Limit: limit, Offset: offset}
	var search credential.Digest
	if in.CredentialSHA256 != "" {
		sum, err := hex.DecodeString(in.CredentialSHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, 0, credential.ParamError(credential.CodeInvalid, "credential_sha256", "must be the SHA-256 of a secret, as 64 hex digits")
		}
		search = a.keyring.SearchDigest([sha256.Size]byte(sum))
	}
	var (
		out   []credential.AuditEvent
		total int
	)
	err = a.store.View(ctx, func(tx Tx) error {
		if in.CredentialSHA256 != "" {
			cred, err := tx.CredentialBySearchDigest(ctx, c.InstanceID, search)
			if credential.IsCode(err, credential.CodeNotFound) {
				return nil // no such credential here: no events
			}
			if err != nil {
				return err
			}
			f.CredentialID = cred.ID
		}
		var err error
		out, total, err = tx.ListAuditEvents(ctx, f)
		return err
	})
	return out, total, err
}

// ChainBreak is the first link of an audit chain that does not hold.
type ChainBreak struct {
	EventID string // the event whose link is broken ("" when the head itself disagrees)
	Seq     int64  // that event's seq (the head's, or the checkpoint's, when EventID is "")
	// BrokenAt is the first seq the chain no longer vouches for: the one
	// after the last event that verified (so a deleted event's own seq,
	// not that of the event found after the gap), or the checkpoint's
	// when the checkpoint does not authenticate. Events appended after a
	// break leave it where it is, so it names the break:
	// audit.chain_broken is sent once per instance and BrokenAt.
	BrokenAt int64
	Reason   string
}

// ChainReport is what VerifyAuditChain found in one instance's chain.
type ChainReport struct {
	InstanceID string
	Events     int64 // chained events checked
	// PrunedThrough is the seq of the chain's pruning checkpoint: events up
	// to it were deleted by the janitor (0 when none were).
	PrunedThrough int64
	Break         *ChainBreak // nil when the chain holds
}

// checkpointForged is the reason of a checkpoint that does not
// authenticate.
const checkpointForged = "the pruning checkpoint does not authenticate: it was edited, or written under another keyring"

// chainPage is how many events VerifyAuditChain reads per transaction.
const chainPage = 1000

// VerifyAuditChain walks an instance's audit chain in order, recomputing
// every hash, and reports the first broken link: an event whose fields
// were edited (its hash no longer matches), a deleted or inserted event
// (a gap in seq, or a prev_hash that is not its predecessor's hash), or a
// truncated tail (the chain head names a later event). A break is also
// sent as the instance's audit.chain_broken event (once per break; see
// reportChainBreak); the error then says if that failed, and the report
// still names the break. It is the host operator's (it takes no Caller,
// like ListInstances: no credential may reach it). instanceID "" is the
// host-wide chain (refusals no instance could be named for).
func (a *Authority) VerifyAuditChain(ctx context.Context, instanceID string) (ChainReport, error) {
	return a.checkAuditChain(ctx, instanceID, chainFoundByVerify)
}

// checkAuditChain is VerifyAuditChain for the named finder.
func (a *Authority) checkAuditChain(ctx context.Context, instanceID, foundBy string) (ChainReport, error) {
	rep, err := a.walkAuditChain(ctx, instanceID)
	if err != nil || rep.Break == nil {
		return rep, err
	}
	return rep, a.reportChainBreak(ctx, instanceID, *rep.Break, foundBy)
}

// walkAuditChain is VerifyAuditChain's walk: it reads, and writes nothing.
func (a *Authority) walkAuditChain(ctx context.Context, instanceID string) (ChainReport, error) {
	rep := ChainReport{InstanceID: instanceID}
	var (
		seq      int64
		prev     string
		cp       AuditCheckpoint
		headSeq  int64
		headHash string
	)
	// A pruned chain starts after its checkpoint, which must authenticate:
	// moving it forward would hide deleted events.
	checkpoint := func(tx Tx) error {
		var err error
		if cp, err = tx.AuditCheckpoint(ctx, instanceID); err != nil {
			return err
		}
		if cp.Seq > 0 && !a.checkpointValid(instanceID, cp) {
			rep.Break = &ChainBreak{Seq: cp.Seq, BrokenAt: cp.Seq, Reason: checkpointForged}
		}
		return nil
	}
	first := true
	for {
		var page []credential.AuditEvent
		if err := a.store.View(ctx, func(tx Tx) error {
			if first {
				// The checkpoint and the first page from one snapshot.
				if err := checkpoint(tx); err != nil || rep.Break != nil {
					return err
				}
				seq, prev, rep.PrunedThrough = cp.Seq, cp.Hash, cp.Seq
				first = false
			}
			var err error
			if page, err = tx.ChainEvents(ctx, instanceID, seq, chainPage); err != nil {
				return err
			}
			if len(page) == chainPage {
				return nil // not the last page: the head is read with that one
			}
			// The head from the last page's own snapshot: one read later,
			// an event appended meanwhile would look like a truncated tail.
			headSeq, headHash, err = tx.AuditChainHead(ctx, instanceID)
			return err
		}); err != nil || rep.Break != nil {
			return rep, err
		}
		if len(page) > 0 && page[0].Seq != seq+1 && seq >= rep.PrunedThrough {
			// A janitor may have pruned past this walk since it began:
			// go on from its new checkpoint.
			if err := a.store.View(ctx, checkpoint); err != nil || rep.Break != nil {
				return rep, err
			}
			if cp.Seq > seq && cp.Seq < page[0].Seq {
				seq, prev, rep.PrunedThrough = cp.Seq, cp.Hash, cp.Seq
			}
		}
		for _, e := range page {
			if rep.Break = linkBreak(e, seq, prev); rep.Break != nil {
				return rep, nil
			}
			seq, prev = e.Seq, e.Hash
			rep.Events++
		}
		if len(page) < chainPage {
			break
		}
	}
	if headSeq != seq || headHash != prev {
		rep.Break = &ChainBreak{Seq: headSeq, BrokenAt: seq + 1, Reason: fmt.Sprintf("the chain head is seq %d but the last event found is seq %d: events were removed or the head was edited", headSeq, seq)}
	}
	return rep, nil
}

// linkBreak checks e as the event that follows seq, whose hash is prev:
// nil when the link holds.
func linkBreak(e credential.AuditEvent, seq int64, prev string) *ChainBreak {
	b := &ChainBreak{EventID: e.ID, Seq: e.Seq, BrokenAt: seq + 1}
	switch {
	case e.Seq != seq+1:
		b.Reason = fmt.Sprintf("seq %d follows seq %d: events are missing", e.Seq, seq)
	case e.PrevHash != prev:
		b.Reason = "prev_hash is not the previous event's hash"
	case !hmac.Equal([]byte(e.ChainHash(prev)), []byte(e.Hash)):
		b.Reason = "hash does not match the event's fields"
	default:
		return nil
	}
	return b
}

// AuditChains lists the instance ids with an audit chain ("" is the
// host-wide one), for the host operator.
func (a *Authority) AuditChains(ctx context.Context) ([]string, error) {
	var ids []string
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		ids, err = tx.AuditChains(ctx)
		return err
	})
	return ids, err
}

// maxOffset bounds offsets so they fit every engine's integer.
const maxOffset = 1 << 31

// page checks limit (1..max, default def) and offset (0..maxOffset,
// default 0).
func page(limit, offset *int64, def, max int) (int, int, error) {
	l, o := def, 0
	if limit != nil {
		if *limit < 1 || *limit > int64(max) {
			return 0, 0, credential.ParamError(credential.CodeInvalid, "limit", fmt.Sprintf("must be between 1 and %d", max))
		}
		l = int(*limit)
	}
	if offset != nil {
		if *offset < 0 || *offset > maxOffset {
			return 0, 0, credential.ParamError(credential.CodeInvalid, "offset", "must be greater than or equal to 0")
		}
		o = int(*offset)
	}
	return l, o, nil
}
