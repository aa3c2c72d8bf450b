package authority

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Audit chain breaks: when keyward finds an instance's audit hash chain
// broken, by the janitor's pruning (which refuses to prune past the
// break), by VerifyAuditChain (keyward audit verify) or by the scheduled
// check in serve (CheckAuditChains), it sends the instance's endpoints one
// audit.chain_broken event, with actor "system" and the chain as target
// ("audit_chain", the instance id). The event is sent once per instance
// and break (ChainBreak.BrokenAt, which events appended after the break
// leave where it is): the break is recorded in credential_notices
// (credential_id "", notice audit_chain_broken, threshold the seq),
// inserted if absent in the same transaction as its outbox row, so of
// several nodes, finders and restarts exactly one sends it; a break at
// another seq is sent again. As for every notice, nothing is written when
// no endpoint of the instance subscribes. The host-wide chain has no
// instance, so no endpoint hears of it (serve logs it).
//
// The break is not written to the audit log itself: appending an event to
// a chain whose tail was cut would move its break, and the chain is the
// evidence.

// Who found a break, in the event's detail.found_by.
const (
	chainFoundByVerify  = "audit_verify"
	chainFoundByJanitor = "janitor"
	chainFoundByCheck   = "scheduled_check"
)

// noticeAuditChainBroken is the notice name of a reported break.
const noticeAuditChainBroken = "audit_chain_broken"

// chainTarget is the target kind of an audit.chain_broken event.
const chainTarget = "audit_chain"

// DefaultAuditChainCheckInterval is how often serve verifies every audit
// chain unless told otherwise: a full walk, so daily rather than each
// minute.
const DefaultAuditChainCheckInterval = 24 * time.Hour

// chainBreakDetail is an audit.chain_broken event's detail: where the
// chain broke and why, never a secret (the audit fields are not copied).
type chainBreakDetail struct {
	InstanceID string `json:"instance_id"`
	Seq        int64  `json:"seq"`                // ChainBreak.BrokenAt
	EventID    string `json:"event_id,omitempty"` // the event the walk stopped at
	Reason     string `json:"reason"`
	FoundBy    string `json:"found_by"`
}

// reportChainBreak sends the instance's audit.chain_broken event for b,
// unless it was sent for that break already or no endpoint subscribes.
func (a *Authority) reportChainBreak(ctx context.Context, instanceID string, b ChainBreak, foundBy string) error {
	if instanceID == "" {
		return nil
	}
	t := credential.EventAuditChainBroken
	// Most instances have no endpoint for it: find out without a write.
	hooks, ok := a.cachedSubscribers(instanceID, t)
	if !ok {
		if err := a.store.View(ctx, func(tx Tx) error {
			var err error
			hooks, err = a.subscribersOf(ctx, tx, instanceID, t)
			return err
		}); err != nil {
			return err
		}
	}
	if len(hooks) == 0 {
		return nil
	}
	now := a.clock.Now()
	detail := chainBreakDetail{InstanceID: instanceID, Seq: b.BrokenAt, EventID: b.EventID, Reason: b.Reason, FoundBy: foundBy}
	emitted := false
	err := a.store.Update(ctx, func(tx Tx) error {
		emitted = false
		ch := a.noticeChange(ctx, tx, instanceID, now)
		hooks, err := a.subscribersOf(ctx, tx, instanceID, t)
		if err != nil || len(hooks) == 0 {
			return err
		}
		inserted, err := ch.InsertNotice(ctx, Notice{InstanceID: instanceID, Notice: noticeAuditChainBroken,
			Threshold: strconv.FormatInt(b.BrokenAt, 10), SentAt: now})
		if err != nil || !inserted {
			return err
		}
		if _, err := ch.writeEvent(t, chainTarget, instanceID, detail, hooks); err != nil {
			return err
		}
		emitted = ch.emitted
		return nil
	})
	if err != nil {
		return fmt.Errorf("send %s for the audit chain of %s: %w", t, instanceID, err)
	}
	if emitted {
		a.wakeDispatcher()
	}
	return nil
}

// CheckAuditChains verifies every audit chain, as keyward audit verify
// does, and sends audit.chain_broken for each break (serve runs it every
// --audit-check-interval). It returns the broken chains' reports; a chain
// it could not check, or whose break it could not send, is in the error,
// and the others are still checked.
func (a *Authority) CheckAuditChains(ctx context.Context) ([]ChainReport, error) {
	ids, err := a.AuditChains(ctx)
	if err != nil {
		return nil, err
	}
	var (
		broken []ChainReport
		errs   []error
	)
	for _, id := range ids {
		rep, err := a.checkAuditChain(ctx, id, chainFoundByCheck)
		if rep.Break != nil {
			broken = append(broken, rep)
		}
		if err != nil {
			if ctx.Err() != nil {
				return broken, err
			}
			errs = append(errs, fmt.Errorf("audit chain %q: %w", id, err))
		}
	}
	return broken, errors.Join(errs...)
}

// RunAuditChainCheck runs CheckAuditChains every interval until ctx ends
// (the first pass at once), reporting each pass's outcome to done.
func (a *Authority) RunAuditChainCheck(ctx context.Context, interval time.Duration, done func([]ChainReport, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		broken, err := a.CheckAuditChains(ctx)
		if ctx.Err() != nil {
			return
		}
		done(broken, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
