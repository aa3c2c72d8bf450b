package authority

import (
	"context"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// FallbackTTL bounds how long a node trusts a cached credential while it
// cannot hear other nodes' invalidations (no bus subscription yet, or the
// bus connection lost): a change made elsewhere is seen within this time.
const FallbackTTL = 5 * time.Second

// invalidate drops credentials from this node's cache at once and, with a
// bus, from every other node's. It runs after the change has committed.
// A failed publish is not an error of the change (it is committed); other
// nodes then converge within the positive cache lifetime.
func (a *Authority) invalidate(ctx context.Context, digests ...credential.Digest) {
	a.cache.invalidate(digests...)
	if a.bus == nil {
		return
	}
	inv := Invalidation{Digests: digests, All: len(digests) == 0}
	if err := a.bus.Publish(context.WithoutCancel(ctx), inv); err != nil {
		a.publishFailed(err)
	}
}

// RunBus applies other nodes' invalidations until ctx ends. onState is
// told when the subscription is up (true) or lost (false). While it is
// down, cached credentials live at most FallbackTTL; on every change of
// state the cache is emptied, since invalidations may have been missed.
func (a *Authority) RunBus(ctx context.Context, onState func(connected bool)) error {
	if a.bus == nil {
		return nil
	}
	return a.bus.Subscribe(ctx, func(inv Invalidation) {
		if inv.All {
			a.cache.invalidate()
			return
		}
		a.cache.invalidate(inv.Digests...)
	}, func(connected bool) {
		if connected {
			a.cache.setPositiveTTL(positiveTTL)
		} else {
			a.cache.setPositiveTTL(FallbackTTL)
		}
		a.cache.invalidate()
		if onState != nil {
			onState(connected)
		}
	})
}

// publishFailed is where a failed publish goes; set by SetPublishErrorHandler.
func (a *Authority) publishFailed(err error) {
	if a.onPublishError != nil {
		a.onPublishError(err)
	}
}

// SetPublishErrorHandler receives failures to publish invalidations (for
// logging); the changes themselves are committed.
func (a *Authority) SetPublishErrorHandler(f func(error)) { a.onPublishError = f }
