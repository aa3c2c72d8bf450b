package authority

import (
	"context"
	"errors"
	"iter"
	"sync"
	"time"
)

// usageRecorder coalesces last-used times in memory so verification never
// writes: the flusher writes them in one batch per interval.
type usageRecorder struct {
	mu      sync.Mutex
	pending map[string]Usage // by credential id
}

func (u *usageRecorder) record(instanceID, credentialID string, at time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.pending == nil {
		u.pending = make(map[string]Usage)
	}
	if p, ok := u.pending[credentialID]; !ok || at.After(p.At) {
		u.pending[credentialID] = Usage{InstanceID: instanceID, CredentialID: credentialID, At: at}
	}
}

// take returns the last-used times recorded since the previous take and
// empties the recorder.
func (u *usageRecorder) take() map[string]Usage {
	u.mu.Lock()
	defer u.mu.Unlock()
	taken := u.pending
	u.pending = nil
	return taken
}

// restore puts back last-used times that were taken and not written; a
// later one recorded meanwhile wins.
func (u *usageRecorder) restore(chunk []Usage, rest map[string]Usage) {
	for _, p := range chunk {
		u.record(p.InstanceID, p.CredentialID, p.At)
	}
	for _, p := range rest {
		u.record(p.InstanceID, p.CredentialID, p.At)
	}
}

// usageFlushChunk bounds the usages written in one transaction. A flush
// after a burst of distinct credentials holds thousands; in one
// transaction they would hold the single SQLite writer (and the creates
// queued behind it) for as long as they all take. In chunks, a create
// waits behind one chunk at most, and, group-committed, shares its fsync.
const usageFlushChunk = 256

// FlushUsage writes the last-used times recorded since the previous flush,
// in transactions of at most usageFlushChunk. Those not written, on a
// failure before they commit, are kept for the next flush. It walks the
// recorder's map a chunk at a time, as FlushVerificationCounts does,
// rather than copying it whole first.
func (a *Authority) FlushUsage(ctx context.Context) error {
	taken := a.usage.take()
	usages := func(yield func(Usage) bool) {
		for id, p := range taken {
			delete(taken, id)
			if !yield(p) {
				return
			}
		}
	}
	failed, err := writeChunks(usages, usageFlushChunk, func(chunk []Usage) error {
		return a.store.Update(ctx, func(tx Tx) error { return tx.TouchCredentials(ctx, chunk) })
	})
	if err != nil {
		a.usage.restore(failed, taken) // what was written is gone from taken
	}
	return err
}

// writeChunks hands items to write in chunks of at most size, reusing one
// slice (write must not keep it), and stops at the first write that fails,
// returning that chunk. The flushers' items are taken out of what they
// took as they are reached, so on failure that chunk and what is left
// there are exactly what was not written.
func writeChunks[T any](items iter.Seq[T], size int, write func([]T) error) ([]T, error) {
	var chunk []T
	for item := range items {
		if chunk == nil {
			chunk = make([]T, 0, size)
		}
		chunk = append(chunk, item)
		if len(chunk) == size {
			if err := write(chunk); err != nil {
				return chunk, err
			}
			chunk = chunk[:0]
		}
	}
	if len(chunk) > 0 {
		if err := write(chunk); err != nil {
			return chunk, err
		}
	}
	return nil, nil
}

// UsageFlushInterval is how often RunUsageFlusher writes last-used times.
const UsageFlushInterval = time.Second

// finalFlushTimeout bounds the flush at shutdown.
const finalFlushTimeout = 5 * time.Second

// RunUsageFlusher flushes last-used times (and the aggregated refusals
// whose minute has ended) every interval until ctx ends, then once more,
// everything, so a graceful shutdown loses none. onError is told of
// failed flushes (which are retried on the next tick).
func (a *Authority) RunUsageFlusher(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := errors.Join(a.FlushUsage(ctx), a.FlushRefusals(ctx, false)); err != nil && onError != nil {
				onError(err)
			}
		case <-ctx.Done():
			// The last flush must not hold shutdown hostage to an
			// unreachable store.
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			if err := errors.Join(a.FlushUsage(final), a.FlushRefusals(final, true)); err != nil && onError != nil {
				onError(err)
			}
			cancel()
			return
		}
	}
}
