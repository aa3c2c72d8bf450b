package authority

import (
	"context"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sync/singleflight"

	"github.com/keyward/keyward/internal/credential"
)

// Cache bounds and lifetimes. A positive entry lives at most
// positiveTTL, so a change made by another node is seen within that time
// even with no invalidation; this node's own changes invalidate at once.
// Negative entries are short: a digest that is not found now is almost
// always garbage, but a fresh credential must never wait long.
const (
	// DefaultCacheBytes is the credential cache's default budget: about
	// 20 000 credentials.
	DefaultCacheBytes = 16 << 20
	// MinCacheBytes is the smallest budget New accepts; smaller ones are
	// raised to it.
	MinCacheBytes = 1 << 20
	// negativeShare is the part of the budget for "not found" answers, kept
	// apart so a flood of unknown tokens evicts only other unknown tokens.
	negativeShare = 8
	positiveTTL   = 30 * time.Second
	negativeTTL   = 2 * time.Second
	// storeReadTimeout bounds a shared cache-miss read.
	storeReadTimeout = 10 * time.Second
	// cacheSize bounds the verified-JWT cache (a count: its entries are
	// small and fixed).
	cacheSize = 65536
)

// cacheEntry is a credential as read from the store, or the fact that no
// credential has a digest. Only what verification uses is set: the
// credential has no digest, display prefix, sealed secret or attribute
// JSON (attrs holds the attributes decoded).
type cacheEntry struct {
	found bool
	cred  credential.Credential
	attrs tokenAttrs
	// needsSearchDigest: the stored row has no search digest yet (it was
	// made before search digests existed); its next good use fills it.
	needsSearchDigest bool
}

// cachedCredential is the compact form a positive entry is kept in: the
// credential's fields verification reads, times as Unix milliseconds (as
// stored), and its attributes decoded once. It never holds the attribute
// JSON, the sealed secret, the digest (the key) or the display prefix.
// The decoded attributes are kept whole, so an attribute added later (an
// admin key's permissions, say) cannot be dropped by the cache.
type cachedCredential struct {
	id, instanceID, subject, parentID, revocationReason string
	kind                                                credential.Kind
	expiresAt, revokedAt, lastUsedAt, createdAt         int64
	updatedAt                                           int64
	needsSearchDigest                                   bool
	attrs                                               tokenAttrs
	expires                                             int64 // of the entry, in Unix nanoseconds
	size                                                int   // what the entry is charged against the budget
}

// noTime stands for the zero time.Time in a cachedCredential.
const noTime = math.MinInt64

func compactTime(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return t.UnixMilli()
}

func expandTime(ms int64) time.Time {
	if ms == noTime {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Budget charges: the fixed parts of a positive and a negative entry
// (struct, list links, map slot with its key and the map's slack), to which
// a positive entry adds the bytes its strings and slices hold.
var (
	positiveOverhead = int(unsafe.Sizeof(lruNode[cachedCredential]{})) + mapSlotBytes
	negativeOverhead = int(unsafe.Sizeof(lruNode[int64]{})) + mapSlotBytes
)

// mapSlotBytes is a map entry of a digest to a node pointer, with the
// free slots a Go map keeps.
const mapSlotBytes = (len(credential.Digest{}) + 8 + 1) * 8 / 7

func compactCredential(c credential.Credential, a tokenAttrs, expires time.Time) cachedCredential {
	cc := cachedCredential{
		id: c.ID, instanceID: c.InstanceID, subject: c.Subject, parentID: c.ParentID,
		revocationReason: c.RevocationReason, kind: c.Kind,
		expiresAt: compactTime(c.ExpiresAt), revokedAt: compactTime(c.RevokedAt),
		lastUsedAt: compactTime(c.LastUsedAt), createdAt: compactTime(c.CreatedAt),
		updatedAt:         compactTime(c.UpdatedAt),
		needsSearchDigest: c.SearchDigest == (credential.Digest{}),
		attrs:             a,
		expires:           expires.UnixNano(),
	}
	cc.size = positiveOverhead + len(cc.id) + len(cc.instanceID) + len(cc.subject) + len(cc.parentID) +
		len(cc.revocationReason) + len(cc.kind) + attrsBytes(a)
	return cc
}

// attrsBytes is what the decoded attributes hold beyond their struct
// (which positiveOverhead counts): strings, slices and what they point to.
func attrsBytes(a tokenAttrs) int {
	n := cap(a.Claims) + len(a.Name) + len(a.CreatedBy) + len(a.Mask) + len(a.Description) +
		len(a.SrcIPs)*int(unsafe.Sizeof(netip.Prefix{})) // the parsed allowlist
	n += stringsBytes(a.Scopes) + stringsBytes(a.SrcIPs)
	for _, p := range a.Privileges {
		n += int(unsafe.Sizeof(p)) + len(p.Scope) + len(p.Role) + len(p.SiteID) + len(p.SitegroupID) + stringsBytes(p.Views)
	}
	for _, p := range a.Permissions {
		n += int(unsafe.Sizeof(p)) + len(p)
	}
	return n + a.Controls.bytes()
}

func stringsBytes(ss []string) int {
	n := 0
	for _, s := range ss {
		n += int(unsafe.Sizeof(s)) + len(s)
	}
	return n
}

func (cc *cachedCredential) entry() cacheEntry {
	return cacheEntry{
		found: true,
		cred: credential.Credential{
			ID: cc.id, InstanceID: cc.instanceID, Kind: cc.kind, Subject: cc.subject, ParentID: cc.parentID,
			ExpiresAt: expandTime(cc.expiresAt), RevokedAt: expandTime(cc.revokedAt),
			RevocationReason: cc.revocationReason, LastUsedAt: expandTime(cc.lastUsedAt),
			CreatedAt: expandTime(cc.createdAt), UpdatedAt: expandTime(cc.updatedAt),
		},
		attrs:             cc.attrs,
		needsSearchDigest: cc.needsSearchDigest,
	}
}

// credentialCache maps digests to store reads, within a byte budget.
// Lookups are checked against the caller's instance after the hit, and the
// digest is globally unique, so one entry can never answer for another
// tenant.
//
// Found credentials and "not found" answers live in two LRUs: the
// negative one gets 1/negativeShare of the budget and evicts only its own
// entries, so a flood of distinct unknown tokens cannot push a live
// credential out.
//
// Every invalidation bumps an epoch; a fill that began before the latest
// invalidation is dropped, so a read racing a revoke cannot put the
// pre-revoke row back (the "fill race").
type credentialCache struct {
	group singleflight.Group
	ttl   atomic.Int64 // positive entries' lifetime, in nanoseconds

	mu       sync.Mutex // guards both LRUs and orders fills against invalidations
	epoch    uint64
	positive *byteLRU[cachedCredential]
	negative *byteLRU[int64] // entry expiry, Unix nanoseconds
	// machines holds what minting a token reads of its machine (default
	// lifetime and scoped machines), by instance and machine id. Every
	// change to those invalidates everything, which empties it too.
	machines map[machineRef]machineProfile
	// roles holds roles' permissions, read when a verify asks a permission
	// query of a credential with roles; emptied with everything.
	roles map[roleRef]cachedRole
	// identities holds identities' limits and credits rules, read when a
	// verify meets a credential linked to one; emptied with everything.
	identities map[identityRef]cachedIdentity

	// beforeFill, when set by a test, runs between the store read and the
	// fill, to hold a fill open while a revoke lands.
	beforeFill func()
}

func newCredentialCache(budget int) *credentialCache {
	if budget <= 0 {
		budget = DefaultCacheBytes
	}
	budget = max(budget, MinCacheBytes)
	cc := &credentialCache{
		positive: newByteLRU[cachedCredential](budget - budget/negativeShare),
		negative: newByteLRU[int64](budget / negativeShare),
		machines: make(map[machineRef]machineProfile),
		roles:    make(map[roleRef]cachedRole),

		identities: make(map[identityRef]cachedIdentity),
	}
	cc.setPositiveTTL(positiveTTL)
	return cc
}

func (c *credentialCache) setPositiveTTL(d time.Duration) { c.ttl.Store(int64(d)) }

// positiveLifetime is how long anything read from the store may be
// trusted now: 30 s, or FallbackTTL while invalidations may go unheard.
func (c *credentialCache) positiveLifetime() time.Duration { return time.Duration(c.ttl.Load()) }

func (c *credentialCache) get(d credential.Digest, now time.Time) (cacheEntry, bool) {
	t := now.UnixNano()
	c.mu.Lock()
	if cc, ok := c.positive.get(d); ok && t < cc.expires {
		e := cc.entry()
		c.mu.Unlock()
		return e, true
	}
	if exp, ok := c.negative.get(d); ok && t < *exp {
		c.mu.Unlock()
		return cacheEntry{}, true
	}
	c.mu.Unlock()
	return cacheEntry{}, false
}

func (c *credentialCache) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// fillFound stores a found credential unless an invalidation happened
// since epoch was read. A credential is in at most one of the LRUs.
func (c *credentialCache) fillFound(d credential.Digest, cc cachedCredential, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch {
		c.negative.remove(d)
		c.positive.add(d, cc, cc.size)
	}
}

// fillNotFound records that no credential has digest d, until expires.
func (c *credentialCache) fillNotFound(d credential.Digest, expires time.Time, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch {
		c.positive.remove(d)
		c.negative.add(d, expires.UnixNano(), negativeOverhead)
	}
}

// invalidate drops the given digests; with none, it drops everything.
func (c *credentialCache) invalidate(digests ...credential.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if len(digests) == 0 {
		c.positive.purge()
		c.negative.purge()
		clear(c.machines)
		clear(c.roles)
		clear(c.identities)
		return
	}
	for _, d := range digests {
		c.positive.remove(d)
		c.negative.remove(d)
	}
}

// machineRef names a machine across instances.
type machineRef struct{ instanceID, machineID string }

// machineProfile is what minting a token needs of its machine.
type machineProfile struct {
	defaultTTL int64
	scopes     []string // ids of the machines it may call; never nil
	expires    int64    // of the entry, in Unix nanoseconds
}

// maxMachineProfiles bounds the profiles kept: a few hundred bytes each,
// and past the bound the map starts over rather than grow.
const maxMachineProfiles = 4096

func (c *credentialCache) machine(ref machineRef, now time.Time) (machineProfile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.machines[ref]
	return p, ok && now.UnixNano() < p.expires
}

// fillMachine keeps p unless an invalidation happened since epoch.
func (c *credentialCache) fillMachine(ref machineRef, p machineProfile, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.machines) >= maxMachineProfiles {
		clear(c.machines)
	}
	c.machines[ref] = p
}

// searchDigestFilled records that the row behind d now has its search
// digest, so the entry stops asking for it.
func (c *credentialCache) searchDigestFilled(d credential.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.positive.get(d); ok {
		cc.needsSearchDigest = false
	}
}

// usage reports the bytes charged and the entries held, positive and
// negative.
func (c *credentialCache) usage() (positiveBytes, positiveEntries, negativeBytes, negativeEntries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.positive.used, len(c.positive.items), c.negative.used, len(c.negative.items)
}

// credentialByDigest reads one credential from the store, in one
// statement when the store can.
func (a *Authority) credentialByDigest(ctx context.Context, d credential.Digest) (credential.Credential, error) {
	if r, ok := a.store.(DigestReader); ok {
		return r.CredentialByDigest(ctx, d)
	}
	var cred credential.Credential
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		cred, err = tx.CredentialByDigest(ctx, d)
		return err
	})
	return cred, err
}

// lookup returns the credential with digest d, from the cache or the store
// (one store read per digest however many callers miss at once), as of
// now, the request's time.
func (a *Authority) lookup(ctx context.Context, d credential.Digest, now time.Time) (cacheEntry, error) {
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
	v, err, _ := a.cache.group.Do(key, func() (_ any, err error) {
		// The read serves every caller that joins it, so it must not die
		// with the first caller's request: it gets its own deadline.
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeReadTimeout)
		defer cancel()
		if a.tracer != nil {
			var end func(error)
			readCtx, end = a.tracer.Start(readCtx, "cache.fill")
			defer func() { end(err) }()
		}
		cred, err := a.credentialByDigest(readCtx, d)
		found := false
		var cc cachedCredential
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
			found = true
			cc = compactCredential(cred, attrs, now.Add(a.cache.positiveLifetime()))
		}
		if a.cache.beforeFill != nil {
			a.cache.beforeFill()
		}
		if !found {
			a.cache.fillNotFound(d, now.Add(negativeTTL), epoch)
			return cacheEntry{}, nil
		}
		a.cache.fillFound(d, cc, epoch)
		return cc.entry(), nil
	})
	if err != nil {
		return cacheEntry{}, err
	}
	return v.(cacheEntry), nil
}

// byteLRU is a least-recently-used map of digests within a byte budget:
// adding past the budget evicts the least recently used entries. It is not
// safe for concurrent use (credentialCache locks it).
type byteLRU[V any] struct {
	budget, used int
	items        map[credential.Digest]*lruNode[V]
	head         lruNode[V] // sentinel: head.next is the most recently used
}

type lruNode[V any] struct {
	key        credential.Digest
	val        V
	size       int
	prev, next *lruNode[V]
}

func newByteLRU[V any](budget int) *byteLRU[V] {
	l := &byteLRU[V]{budget: budget, items: make(map[credential.Digest]*lruNode[V])}
	l.head.prev, l.head.next = &l.head, &l.head
	return l
}

func (l *byteLRU[V]) unlink(n *lruNode[V]) {
	n.prev.next, n.next.prev = n.next, n.prev
}

func (l *byteLRU[V]) pushFront(n *lruNode[V]) {
	n.prev, n.next = &l.head, l.head.next
	l.head.next.prev = n
	l.head.next = n
}

// get returns the entry and marks it most recently used.
func (l *byteLRU[V]) get(k credential.Digest) (*V, bool) {
	n, ok := l.items[k]
	if !ok {
		return nil, false
	}
	if l.head.next != n {
		l.unlink(n)
		l.pushFront(n)
	}
	return &n.val, true
}

// add inserts or replaces k, then evicts from the cold end until the
// budget holds. An entry larger than the whole budget is not kept.
func (l *byteLRU[V]) add(k credential.Digest, v V, size int) {
	if n, ok := l.items[k]; ok {
		l.used += size - n.size
		n.val, n.size = v, size
		l.unlink(n)
		l.pushFront(n)
	} else {
		n := &lruNode[V]{key: k, val: v, size: size}
		l.items[k] = n
		l.used += size
		l.pushFront(n)
	}
	for l.used > l.budget && l.head.prev != &l.head {
		l.removeNode(l.head.prev)
	}
}

func (l *byteLRU[V]) remove(k credential.Digest) {
	if n, ok := l.items[k]; ok {
		l.removeNode(n)
	}
}

func (l *byteLRU[V]) removeNode(n *lruNode[V]) {
	l.unlink(n)
	delete(l.items, n.key)
	l.used -= n.size
}

// purge drops everything. A new map, so the memory of a large one goes.
func (l *byteLRU[V]) purge() {
	l.items = make(map[credential.Digest]*lruNode[V])
	l.head.prev, l.head.next = &l.head, &l.head
	l.used = 0
}
