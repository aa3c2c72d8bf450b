package authority

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Retention is how long the janitor keeps what no longer verifies. A zero
// duration keeps it forever.
type Retention struct {
	// Credentials: expired credentials are deleted this long after they
	// expired, revoked ones this long after they were revoked.
	Credentials time.Duration
	// Audit: events are deleted this long after they happened, oldest
	// first, each chain keeping a checkpoint of its last pruned event.
	Audit time.Duration
	// Analytics: verification counts are deleted this long after their
	// minute.
	Analytics time.Duration
	// Batch bounds the rows one transaction deletes (DefaultJanitorBatch
	// when ≤ 0), so no pass holds the SQLite writer for long.
	Batch int
}

// DefaultAnalyticsRetention is how long serve keeps verification counts
// unless told otherwise.
const DefaultAnalyticsRetention = 90 * 24 * time.Hour

// DefaultJanitorBatch is how many rows one janitor transaction deletes.
const DefaultJanitorBatch = 500

// JanitorReport counts what one janitor pass deleted.
type JanitorReport struct {
	Credentials        int
	AuditEvents        int
	VerificationCounts int
}

// checkpointKey is the purpose of the key checkpoints are MACed with.
const checkpointKey = "keyward/v1/audit-checkpoint"

// RunJanitor makes one pass: it deletes every credential and audit event
// past its retention, in batches of one short transaction each, with time
// from the authority's clock. Several nodes may run it at once: deletes of
// rows already gone delete nothing, and a chain's pruning holds the chain
// head's lock, so two pruners take turns and the second starts from the
// first one's checkpoint. It is the host operator's (keyward serve runs it).
func (a *Authority) RunJanitor(ctx context.Context, r Retention) (JanitorReport, error) {
	var rep JanitorReport
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultJanitorBatch
	}
	now := a.clock.Now()
	if r.Credentials > 0 {
		cutoff := now.Add(-r.Credentials)
		for {
			var n int
			err := a.store.Update(ctx, func(tx Tx) error {
				var err error
				n, err = tx.DeleteLapsedCredentials(ctx, cutoff, cutoff, batch)
				return err
			})
			if err != nil {
				return rep, err
			}
			rep.Credentials += n
			if n < batch {
				break
			}
		}
	}
	// Foreign HMAC keys whose keys were all re-keyed or deleted.
	if err := a.store.Update(ctx, func(tx Tx) error {
		_, err := tx.DeleteUnusedForeignHMACKeys(ctx, now.Add(-ForeignHMACKeyGrace))
		return err
	}); err != nil {
		return rep, err
	}
	if r.Analytics > 0 {
		n, err := a.deleteOldVerificationCounts(ctx, now.Add(-r.Analytics), batch)
		rep.VerificationCounts += n
		if err != nil {
			return rep, err
		}
	}
	if r.Audit > 0 {
		cutoff := now.Add(-r.Audit)
		chains, err := a.AuditChains(ctx)
		if err != nil {
			return rep, err
		}
		for _, id := range chains {
			n, err := a.pruneChain(ctx, id, cutoff, batch)
			rep.AuditEvents += n
			if err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// pruneChain deletes the instance's events at or before cutoff, as a prefix
// of its chain: it stops at the first event after cutoff, so the chain
// left behind still starts right after the checkpoint. It checks every
// link it deletes and refuses to prune past a broken one: pruning must not
// erase the evidence of tampering; the break is sent as audit.chain_broken.
func (a *Authority) pruneChain(ctx context.Context, instanceID string, cutoff time.Time, batch int) (int, error) {
	total := 0
	for {
		var (
			n     int
			more  bool
			broke *ChainBreak
		)
		err := a.store.Update(ctx, func(tx Tx) error {
			n, more, broke = 0, false, nil
			cp, err := tx.LockAuditCheckpoint(ctx, instanceID)
			if credential.IsCode(err, credential.CodeNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			if cp.Seq > 0 && !a.checkpointValid(instanceID, cp) {
				broke = &ChainBreak{Seq: cp.Seq, BrokenAt: cp.Seq, Reason: checkpointForged}
				return credential.Errorf(credential.CodeInternal, "audit chain %q: the pruning checkpoint does not authenticate; not pruning (run keyward audit verify)", instanceID)
			}
			events, err := tx.ChainEvents(ctx, instanceID, cp.Seq, batch)
			if err != nil {
				return err
			}
			seq, prev := cp.Seq, cp.Hash
			for _, e := range events {
				if e.At.After(cutoff) {
					break
				}
				if broke = linkBreak(e, seq, prev); broke != nil {
					return credential.Errorf(credential.CodeInternal, "audit chain %q is broken at seq %d; not pruning past it (run keyward audit verify)", instanceID, e.Seq)
				}
				seq, prev = e.Seq, e.Hash
			}
			if seq > cp.Seq {
				if n, err = tx.DeleteChainEvents(ctx, instanceID, cp.Seq, seq); err != nil {
					return err
				}
				next := AuditCheckpoint{Seq: seq, Hash: prev}
				next.MAC = a.checkpointMAC(instanceID, next)
				if err := tx.SetAuditCheckpoint(ctx, instanceID, next); err != nil {
					return err
				}
				more = seq-cp.Seq == int64(batch)
			}
			return nil
		})
		total += n
		if err != nil {
			if broke != nil {
				// The refusal rolled back; the break is sent on its own.
				if rerr := a.reportChainBreak(ctx, instanceID, *broke, chainFoundByJanitor); rerr != nil {
					err = errors.Join(err, rerr)
				}
			}
			return total, err
		}
		if !more {
			break
		}
	}
	// Events from before chains existed stand outside the chain.
	for {
		var n int
		err := a.store.Update(ctx, func(tx Tx) error {
			var err error
			n, err = tx.DeleteUnchainedEvents(ctx, instanceID, cutoff, batch)
			return err
		})
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// checkpointMAC authenticates a checkpoint with a key derived from the
// keyring: whoever can write the database but does not hold the master key
// cannot move a checkpoint to hide deleted events.
func (a *Authority) checkpointMAC(instanceID string, cp AuditCheckpoint) string {
	key, err := a.keyring.DeriveKey(checkpointKey, 32)
	if err != nil { // unreachable: the purpose is set and the length small
		panic(err)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "keyward/audit-checkpoint/v1\x00%s\x00%s\x00%s", instanceID, strconv.FormatInt(cp.Seq, 10), cp.Hash)
	return hex.EncodeToString(m.Sum(nil))
}

func (a *Authority) checkpointValid(instanceID string, cp AuditCheckpoint) bool {
	return hmac.Equal([]byte(a.checkpointMAC(instanceID, cp)), []byte(cp.MAC))
}

// RunJanitorLoop runs RunJanitor every interval until ctx ends, reporting
// each pass's outcome to done.
func (a *Authority) RunJanitorLoop(ctx context.Context, r Retention, interval time.Duration, done func(JanitorReport, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rep, err := a.RunJanitor(ctx, r)
		if ctx.Err() != nil {
			return
		}
		done(rep, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
