package redisbus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// pingTimeout bounds the one PING that Open sends.
const pingTimeout = 3 * time.Second

// Defaults Open applies when the URL does not set them: a verification
// that consults the Limiter must not wait seconds for an unreachable
// Redis. go-redis's own defaults are 5 s to dial, 3 s to read or write and
// three retries.
const (
	defaultDialTimeout  = time.Second
	defaultReadTimeout  = 500 * time.Millisecond
	defaultWriteTimeout = 500 * time.Millisecond
	defaultMaxRetries   = 1
	dialAttempts        = 1 // go-redis's default is 5, 100 ms apart
)

// Open connects to the Redis server at rawURL (redis://[user:pass@]host:port/db
// or rediss:// for TLS; go-redis's query options such as dial_timeout are
// honoured) and pings it once. Unless the URL says otherwise, it dials within
// 1 s, reads and writes within 500 ms and retries a failed command once; a
// failed dial is not retried at once (the Limiter and the Bus retry later). The
// error never repeats the URL, which may hold a password. The caller closes
// the client.
func Open(ctx context.Context, rawURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("redisbus: invalid Redis URL: %w", err)
	}
	q := url.Values{}
	if u, err := url.Parse(rawURL); err == nil {
		q = u.Query()
	}
	if !q.Has("dial_timeout") {
		opt.DialTimeout = defaultDialTimeout
	}
	if !q.Has("read_timeout") {
		opt.ReadTimeout = defaultReadTimeout
	}
	if !q.Has("write_timeout") {
		opt.WriteTimeout = defaultWriteTimeout
	}
	if !q.Has("max_retries") {
		opt.MaxRetries = defaultMaxRetries
	}
	opt.DialerRetries = dialAttempts
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redisbus: ping Redis at %s: %w", opt.Addr, err)
	}
	return rdb, nil
}
