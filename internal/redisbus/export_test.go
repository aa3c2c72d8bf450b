package redisbus

import "time"

// SetHealthEvery changes how long a silent subscription waits before a
// ping, for tests, and returns a function restoring it.
func SetHealthEvery(d time.Duration) (restore func()) {
	old := healthEvery.Swap(int64(d))
	return func() { healthEvery.Store(old) }
}
