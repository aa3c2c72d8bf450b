package testkit

import (
	"sync"
	"time"

	"github.com/keyward/keyward/internal/authority"
)

// Clock is a fake authority.Clock that moves only when told to. It is safe
// for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

var _ authority.Clock = (*Clock)(nil)

// ClockStart is where NewClock starts: whole milliseconds, so times survive
// a store round trip unchanged.
var ClockStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// NewClock returns a Clock at ClockStart.
func NewClock() *Clock { return &Clock{now: ClockStart} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}
