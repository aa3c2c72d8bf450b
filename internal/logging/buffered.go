package logging

import (
	"context"
	"io"
	"sync"
	"time"
)

// Buffered batches log lines in memory and writes them to the underlying
// writer every flush interval (Run), when its buffer fills, and on Flush:
// one write(2) per batch instead of one per access-log line, which cost a
// third of keyward's verify throughput. Each Write lands whole and in
// order. A line is lost only if the process dies (kill -9) before the
// next flush; serve flushes on every way out.
type Buffered struct {
	w     io.Writer
	limit int

	writeMu sync.Mutex // serializes writes to w, keeping batches in order
	mu      sync.Mutex // guards buf and spare
	buf     []byte
	spare   []byte
}

// DefaultBufferBytes is the size at which Buffered writes without waiting
// for the next flush.
const DefaultBufferBytes = 64 << 10

// NewBuffered returns a Buffered in front of w.
func NewBuffered(w io.Writer) *Buffered {
	return &Buffered{w: w, limit: DefaultBufferBytes, buf: make([]byte, 0, DefaultBufferBytes)}
}

// Write appends p, a whole log line, to the batch.
func (b *Buffered) Write(p []byte) (int, error) {
	b.mu.Lock()
	full := len(b.buf)+len(p) > b.limit && len(b.buf) > 0
	b.mu.Unlock()
	if full {
		if err := b.Flush(); err != nil {
			return 0, err
		}
	}
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	return len(p), nil
}

// Flush writes everything buffered so far.
func (b *Buffered) Flush() error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	b.mu.Lock()
	if len(b.buf) == 0 {
		b.mu.Unlock()
		return nil
	}
	batch := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.mu.Unlock()
	_, err := b.w.Write(batch)
	if cap(batch) <= 4*b.limit { // keep the usual size, not an outlier
		b.mu.Lock()
		b.spare = batch[:0]
		b.mu.Unlock()
	}
	return err
}

// Run flushes every interval until ctx is done, then once more.
func (b *Buffered) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = b.Flush()
			return
		case <-t.C:
			_ = b.Flush()
		}
	}
}
