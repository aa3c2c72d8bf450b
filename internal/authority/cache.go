package authority

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/keyward/keyward/internal/credential"
)

// Cache bounds and lifetimes. A positive entry lives at most
// positiveTTL, so a change made by another node is seen within that time
// even with no invalidation; this node's own changes invalidate at once.
// Negative entries are short: a digest that is not found now is almost
// always garbage, but a fresh credential must never wait long.
const (
	cacheSize   = 65536
	positiveTTL = 30 * time.Second
	negativeTTL = 2 * time.Second
	// storeReadTimeout bounds a shared cache-miss read.
	storeReadTimeout = 10 * time.Second
)

// cacheEntry is a credential as read from the store, or the fact that no
// credential has a digest.
type cacheEntry struct {
	found   bool
	cred    credential.Credential
	attrs   tokenAttrs
	expires time.Time // of the entry, not the credential
}

// credentialCache maps digests to store reads. Lookups are checked against
// the caller's instance after the hit, and the digest is globally unique,
// so one entry can never answer for another tenant.
//
// Every invalidation bumps an epoch; a fill that began before the latest
// invalidation is dropped, so a read racing a revoke cannot put the
// pre-revoke row back (the "fill race").
type credentialCache struct {
	lru   *lru.Cache[credential.Digest, cacheEntry]
	group singleflight.Group
	ttl   atomic.Int64 // positive entries' lifetime, in nanoseconds

	mu    sync.Mutex // orders fills against invalidations
	epoch uint64

	// beforeFill, when set by a test, runs between the store read and the
	// fill, to hold a fill open while a revoke lands.
	beforeFill func()
}

func newCredentialCache() *credentialCache {
	c, err := lru.New[credential.Digest, cacheEntry](cacheSize)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	cc := &credentialCache{lru: c}
	cc.setPositiveTTL(positiveTTL)
	return cc
}

func (c *credentialCache) setPositiveTTL(d time.Duration) { c.ttl.Store(int64(d)) }

// positiveLifetime is how long anything read from the store may be
// trusted now: 30 s, or FallbackTTL while invalidations may go unheard.
func (c *credentialCache) positiveLifetime() time.Duration { return time.Duration(c.ttl.Load()) }

func (c *credentialCache) get(d credential.Digest, now time.Time) (cacheEntry, bool) {
	e, ok := c.lru.Get(d)
	if !ok || !now.Before(e.expires) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *credentialCache) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// fill stores e unless an invalidation happened since epoch was read.
func (c *credentialCache) fill(d credential.Digest, e cacheEntry, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch {
		c.lru.Add(d, e)
	}
}

// invalidate drops the given digests; with none, it drops everything.
func (c *credentialCache) invalidate(digests ...credential.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if len(digests) == 0 {
		c.lru.Purge()
		return
	}
	for _, d := range digests {
		c.lru.Remove(d)
	}
}

// lookup returns the credential with digest d, from the cache or the store
// (one store read per digest however many callers miss at once).
func (a *Authority) lookup(ctx context.Context, d credential.Digest) (cacheEntry, error) {
	now := a.clock.Now()
	if e, ok := a.cache.get(d, now); ok {
		a.observer.CacheLookup(true)
		return e, nil
	}
	a.observer.CacheLookup(false)
	// The epoch is part of the flight's key: a lookup that starts after an
	// invalidation must not join a store read that began before it (that
	// read may have seen the row as it was before a revoke).
	epoch := a.cache.currentEpoch()
	key := string(d[:]) + strconv.FormatUint(epoch, 36)
	v, err, _ := a.cache.group.Do(key, func() (any, error) {
		// The read serves every caller that joins it, so it must not die
		// with the first caller's request: it gets its own deadline.
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeReadTimeout)
		defer cancel()
		var cred credential.Credential
		err := a.store.View(readCtx, func(tx Tx) error {
			var err error
			cred, err = tx.CredentialByDigest(readCtx, d)
			return err
		})
		e := cacheEntry{expires: now.Add(negativeTTL)}
		switch {
		case credential.IsCode(err, credential.CodeNotFound):
		case err != nil:
			return nil, err // a store failure is an error, never "not found"
		case !cred.Digest.Equal(d):
			// Unreachable with a unique digest column; checked in constant
			// time all the same.
		default:
			attrs, err := parseTokenAttrs(cred)
			if err != nil {
				return nil, err
			}
			e = cacheEntry{found: true, cred: cred, attrs: attrs, expires: now.Add(a.cache.positiveLifetime())}
		}
		if a.cache.beforeFill != nil {
			a.cache.beforeFill()
		}
		a.cache.fill(d, e, epoch)
		return e, nil
	})
	if err != nil {
		return cacheEntry{}, err
	}
	return v.(cacheEntry), nil
}
