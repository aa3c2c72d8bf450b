package authority

import (
	"context"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// A grant is a caller let into one use case: enter makes it after the
// permission table said yes, and only a grant opens a change, so no
// mutation runs for a caller who was not authorized for it. It carries
// the one instant the use case happens at: every timestamp the use case
// writes (rows, expiries, its audit event) is this one.
type grant struct {
	a      *Authority
	caller Caller
	uc     useCase
	now    time.Time
}

// A change is one use case's mutation in flight: its transaction, the
// grant's instant, and what committed caches must forget.
type change struct {
	Tx
	ctx       context.Context
	g         grant
	now       time.Time
	audited   bool
	unchanged bool
	digests   []credential.Digest
	all       bool
	emitted   bool                 // wrote webhook deliveries: wake the dispatcher
	hooks     []credential.Webhook // the instance's endpoints, read in this transaction
	hooksRead bool
}

// mutate is the one path of a use case that writes: authorize (the
// permission the use case declares in useCases), then one transaction.
func (a *Authority) mutate(ctx context.Context, c Caller, uc useCase, fn func(*change) error) error {
	g, err := a.enter(ctx, c, uc)
	if err != nil {
		return err
	}
	return g.mutate(ctx, fn)
}

// mutate runs fn in one transaction at the grant's instant, refuses to
// commit a change that left no audit event (unless fn declared that
// nothing changed), and once it has committed drops from every node's
// cache what fn named. Work that needs no transaction (generating and
// sealing secrets, hashing) belongs before it, between enter and mutate,
// so the writer is not held for it.
func (g grant) mutate(ctx context.Context, fn func(*change) error) error {
	var done *change
	err := g.a.store.Update(ctx, func(tx Tx) error {
		// A closure may run again (its batch run again after another
		// closure failed, or after a deadlock), so each run starts from
		// nothing.
		ch := &change{Tx: tx, ctx: ctx, g: g, now: g.now}
		if err := fn(ch); err != nil {
			return err
		}
		if !ch.audited && !ch.unchanged {
			return credential.Errorf(credential.CodeInternal, "use case %s wrote no audit event", g.uc)
		}
		done = ch
		return nil
	})
	if err != nil {
		return err
	}
	if done.emitted {
		g.a.wakeDispatcher()
	}
	switch {
	case done.all:
		g.a.invalidate(ctx)
	case len(done.digests) > 0:
		g.a.invalidate(ctx, done.digests...)
	}
	return nil
}

// audit records the change, by the grant's caller, at the grant's instant.
func (ch *change) audit(action, targetKind, targetID string, detail any) error {
	if err := ch.g.a.auditAt(ch.ctx, ch.Tx, ch.g.caller, ch.now, action, targetKind, targetID, detail); err != nil {
		return err
	}
	// Its lifecycle event goes to the outbox in the same transaction, so
	// a change that rolls back emits nothing.
	if err := ch.emit(action, targetKind, targetID, detail); err != nil {
		return err
	}
	ch.audited = true
	return nil
}

// nothingChanged declares that this run wrote nothing (revoking what is
// already revoked), so there is nothing to audit.
func (ch *change) nothingChanged() { ch.unchanged = true }

// invalidate names credentials every node's cache must drop once the
// change commits.
func (ch *change) invalidate(digests ...credential.Digest) {
	ch.digests = append(ch.digests, digests...)
}

// invalidateAll drops every cached credential once the change commits: a
// structural change (a delete, a rotation, a scope edit) is rare, and
// dropping everything cannot miss a derived credential.
func (ch *change) invalidateAll() { ch.all = true }
