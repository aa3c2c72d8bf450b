package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyward/keyward/internal/authority"
)

var _ authority.Bus = (*Bus)(nil)

// Reconnection backoff: from minBackoff, doubling to maxBackoff, with
// jitter so that nodes losing one Redis do not return in lockstep.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// healthEvery is how long a subscription may stay silent before Subscribe
// pings it; a ping unanswered for as long again counts as a lost
// connection (a partition that sends no reset).
var healthEvery atomic.Int64 // a time.Duration; a variable for tests

func init() { healthEvery.Store(int64(15 * time.Second)) }

// Bus is authority.Bus over Redis pub/sub: one channel, JSON-encoded
// invalidations. Redis pub/sub is at most once: a publish while a
// subscriber is disconnected is lost to it, which is why Subscribe reports
// every loss and every return.
type Bus struct {
	rdb     *redis.Client
	channel string
}

// NewBus returns a Bus publishing to and subscribing on channel.
func NewBus(rdb *redis.Client, channel string) *Bus {
	return &Bus{rdb: rdb, channel: channel}
}

// Publish sends inv to every subscribed node, the publisher included.
func (b *Bus) Publish(ctx context.Context, inv authority.Invalidation) error {
	payload, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("redisbus: encode invalidation: %w", err)
	}
	if err := b.rdb.Publish(ctx, b.channel, payload).Err(); err != nil {
		return fmt.Errorf("redisbus: publish invalidation: %w", err)
	}
	return nil
}

// Subscribe delivers every invalidation published on the channel, in order,
// until ctx ends, and then returns nil. It calls connected(true) once Redis
// has confirmed a subscription, and connected(false) when an established
// subscription is lost (a receive error, the connection closed or a ping
// unanswered); it then resubscribes, waiting 50 ms after the first failure
// and doubling up to 2 s, and calls connected(true) when back. Messages
// that do not decode are skipped. deliver and connected run on Subscribe's
// goroutine; connected may be nil.
func (b *Bus) Subscribe(ctx context.Context, deliver func(authority.Invalidation), connected func(bool)) error {
	if connected == nil {
		connected = func(bool) {}
	}
	backoff := minBackoff
	for ctx.Err() == nil {
		if b.session(ctx, deliver, connected) {
			backoff = minBackoff // it was up: start the backoff afresh
		}
		if ctx.Err() != nil {
			break
		}
		// Sleep between half and all of backoff.
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return nil
}

// session subscribes once and delivers until the subscription fails or ctx
// ends. It reports whether the subscription was established.
func (b *Bus) session(ctx context.Context, deliver func(authority.Invalidation), connected func(bool)) (up bool) {
	ps := b.rdb.Subscribe(ctx) // no channel yet: no connection either
	defer ps.Close()
	// go-redis does not interrupt a blocked read when ctx ends; closing the
	// PubSub does.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer func() {
		if up && ctx.Err() == nil {
			connected(false)
		}
	}()

	if err := ps.Subscribe(ctx, b.channel); err != nil {
		return false
	}
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, time.Duration(healthEvery.Load()))
		if err != nil {
			var ne net.Error
			if !pinged && errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				if ps.Ping(ctx) == nil {
					pinged = true
					continue
				}
			}
			return up
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if !up && m.Kind == "subscribe" && m.Channel == b.channel {
				up = true
				connected(true)
			}
		case *redis.Message:
			var inv authority.Invalidation
			if json.Unmarshal([]byte(m.Payload), &inv) == nil {
				deliver(inv)
			}
		}
	}
}
