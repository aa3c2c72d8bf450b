package redisbus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const redisAddr = "127.0.0.1:6379"

// newClient returns a client of the local Redis, closed at the end of the
// test, or skips the test if Redis does not answer.
func newClient(tb testing.TB, opt *redis.Options) *redis.Client {
	tb.Helper()
	if opt == nil {
		opt = &redis.Options{}
	}
	opt.Addr = redisAddr
	if opt.DialTimeout == 0 {
		opt.DialTimeout = time.Second
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		tb.Skipf("no Redis at %s (%v): start one with redis-server --port 6379 to run this test", redisAddr, err)
	}
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// unreachableClient returns a client of a port nobody listens on.
func unreachableClient(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:        "127.0.0.1:1",
		DialTimeout: 100 * time.Millisecond,
		MaxRetries:  -1,
	})
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// uniquePrefix returns a fresh name for a test's keys and channels; at the
// end of the test, it deletes the limiter keys made with it.
func uniquePrefix(tb testing.TB, rdb *redis.Client) string {
	tb.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	prefix := "test-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		// Take's windows, then TakeAll's named-limit windows.
		for _, pattern := range []string{"keyward:rl:{" + prefix + "*", "keyward:rl:n:{" + prefix + "*"} {
			iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				keys = append(keys, iter.Val())
			}
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return prefix
}

// killClients kills, with CLIENT KILL ID <id> TYPE <typ> issued through
// admin, the connections named name, and returns how many it killed.
func killClients(tb testing.TB, admin *redis.Client, name, typ string) int {
	tb.Helper()
	ctx := context.Background()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		tb.Fatal(err)
	}
	killed := 0
	for line := range strings.Lines(list) {
		var id string
		named := false
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if f == "name="+name {
				named = true
			}
		}
		if !named || id == "" {
			continue
		}
		n, err := admin.ClientKillByFilter(ctx, "ID", id, "TYPE", typ).Result()
		if err != nil {
			tb.Fatal(err)
		}
		killed += int(n)
	}
	return killed
}
