package authority

// Test hooks for the external test package.

// SetBeforeCacheFill makes every cache fill run f between its store read
// and the fill.
func SetBeforeCacheFill(a *Authority, f func()) { a.cache.beforeFill = f }

// TakePendingUsage returns and clears the coalesced last-used times.
func TakePendingUsage(a *Authority) []Usage { return a.usage.take() }

// DropCache empties the credential cache.
func DropCache(a *Authority) { a.cache.invalidate() }

// DropVerifiedJWTs forgets every checked JWT signature.
func DropVerifiedJWTs(a *Authority) { a.jwtKeys.verified.Purge() }

// CacheUsage reports the credential cache's charged bytes and entries,
// positive and negative.
func CacheUsage(a *Authority) (positiveBytes, positiveEntries, negativeBytes, negativeEntries int) {
	return a.cache.usage()
}
