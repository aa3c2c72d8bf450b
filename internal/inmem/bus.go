package inmem

import (
	"context"
	"sync"

	"github.com/keyward/keyward/internal/authority"
)

// Bus is an in-process authority.Bus: every subscriber of the same Bus
// receives every publish. It joins several authorities in one process (in
// tests); it cannot reach other processes.
type Bus struct {
	mu   sync.Mutex
	subs map[int]func(authority.Invalidation)
	next int
	down bool
}

var _ authority.Bus = (*Bus)(nil)

// NewBus returns an empty Bus.
func NewBus() *Bus { return &Bus{subs: map[int]func(authority.Invalidation){}} }

// Publish delivers inv to every subscriber, synchronously; it drops it
// while the bus is down.
func (b *Bus) Publish(_ context.Context, inv authority.Invalidation) error {
	b.mu.Lock()
	subs := make([]func(authority.Invalidation), 0, len(b.subs))
	if !b.down {
		for _, s := range b.subs {
			subs = append(subs, s)
		}
	}
	b.mu.Unlock()
	for _, deliver := range subs {
		deliver(inv)
	}
	return nil
}

// Subscribe delivers until ctx ends.
func (b *Bus) Subscribe(ctx context.Context, deliver func(authority.Invalidation), connected func(bool)) error {
	b.mu.Lock()
	id := b.next
	b.next++
	b.subs[id] = deliver
	b.mu.Unlock()
	connected(true)
	<-ctx.Done()
	b.mu.Lock()
	delete(b.subs, id)
	b.mu.Unlock()
	return nil
}

// SetDown makes the bus drop (down) or carry (up) publishes, to test a
// lost connection; subscribers are not told, as a silent partition would.
func (b *Bus) SetDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}
