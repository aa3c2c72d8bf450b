package authority

import (
	"context"

	"github.com/keyward/keyward/internal/credential"
)

// Test hooks for the external test package.

// SetBeforeCacheFill makes every cache fill run f between its store read
// and the fill.
func SetBeforeCacheFill(a *Authority, f func()) { a.cache.beforeFill = f }

// TakePendingUsage returns and clears the coalesced last-used times.
func TakePendingUsage(a *Authority) []Usage {
	var out []Usage
	for _, p := range a.usage.take() {
		out = append(out, p)
	}
	return out
}

// DropCache empties the credential cache.
func DropCache(a *Authority) { a.cache.invalidate() }

// DropVerifiedJWTs forgets every checked JWT signature.
func DropVerifiedJWTs(a *Authority) { a.jwtKeys.verified.Purge() }

// CacheUsage reports the credential cache's charged bytes and entries,
// positive and negative.
func CacheUsage(a *Authority) (positiveBytes, positiveEntries, negativeBytes, negativeEntries int) {
	return a.cache.usage()
}

// InsertMachineUnaudited runs a change for the UpdateMachine use case that
// inserts m and forgets its audit event.
func InsertMachineUnaudited(ctx context.Context, a *Authority, c Caller, m credential.Machine) error {
	return a.mutate(ctx, c, "UpdateMachine", func(tx *change) error {
		return tx.InsertMachine(ctx, m)
	})
}

// SetMaxPendingCounts sets how many new verification-count keys ask for an
// early analytics flush.
func SetMaxPendingCounts(a *Authority, n int64) { a.counts.maxPending = n }
