package authority

import (
	"context"
	"encoding/json"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Refusal audit actions: a refused authentication (401), a refused
// authorization (403), and a request refused unread because its address
// is over its failed-authentication budget (429).
const (
	ActionAuthRefused  = "auth.refused"
	ActionAuthzRefused = "authz.refused"
	ActionThrottled    = "auth.throttled"
)

// UnknownCredential is the credential id of refusals whose secret matched
// no credential (or could not even be parsed).
const UnknownCredential = "unknown"

// refusalWindow is the aggregation period: at most one event per
// (instance, credential, client IP, action, reason) per window and node.
const refusalWindow = time.Minute

// MaxRefusalKeys bounds the distinct keys one node aggregates per window.
// Past it, further distinct keys fold into one overflow key per instance,
// action and reason (client IP "", credential "unknown"), so a flood from
// many addresses costs bounded memory and at most MaxRefusalKeys + a few
// events per minute.
const MaxRefusalKeys = 1000

type clientIPKey struct{}

// WithClientIP returns a context that carries the address the request came
// from, recorded in audit events and used by the brute-force throttle.
func WithClientIP(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the client address carried by ctx (set by WithClientIP
// or WithRequest), or the zero Addr.
func ClientIP(ctx context.Context) netip.Addr {
	if ip, ok := ctx.Value(clientIPKey{}).(netip.Addr); ok {
		return ip
	}
	if c, ok := ctx.Value(requestIDKey{}).(*requestIDContext); ok {
		return c.ip
	}
	return netip.Addr{}
}

func clientIPText(ctx context.Context) string {
	if ip := ClientIP(ctx); ip.IsValid() {
		return ip.Unmap().String()
	}
	return ""
}

// addressKey is what refusals are aggregated and throttled by: an IPv4
// address, or an IPv6 address's /64, since one host commonly holds a
// whole /64 and could otherwise rotate through it ("" when unknown).
func addressKey(ip netip.Addr) string {
	p, ok := addressPrefix(ip)
	switch {
	case !ok:
		return ""
	case p.Addr().Is4():
		return p.Addr().String()
	}
	return p.String()
}

// addressPrefix is addressKey as a comparable value: an IPv4 /32 or an
// IPv6 /64 (no allocation, for the per-request throttle check).
func addressPrefix(ip netip.Addr) (netip.Prefix, bool) {
	if !ip.IsValid() {
		return netip.Prefix{}, false
	}
	if ip = ip.Unmap(); ip.Is4() {
		return netip.PrefixFrom(ip, 32), true
	}
	p, err := ip.WithZone("").Prefix(64)
	return p, err == nil
}

type refusalKey struct {
	instanceID, credentialID, actorKind, actorID, clientIP, action, reason string
	window                                                                 int64 // start, Unix ms
}

type refusalCount struct {
	count       int
	first, last time.Time
	requestID   string // of the first occurrence
}

// refusalAggregator counts refusals in memory; the flusher writes one event
// per key once its window has ended, so a flood never writes per request.
type refusalAggregator struct {
	mu      sync.Mutex
	pending map[refusalKey]*refusalCount
	size    map[int64]int // keys per window, for MaxRefusalKeys
}

func (r *refusalAggregator) add(k refusalKey, at time.Time, requestID string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending, r.size = map[refusalKey]*refusalCount{}, map[int64]int{}
	}
	c, ok := r.pending[k]
	if !ok && r.size[k.window] >= MaxRefusalKeys {
		k.credentialID, k.actorKind, k.actorID, k.clientIP = UnknownCredential, "unknown", UnknownCredential, ""
		c, ok = r.pending[k]
	}
	if !ok {
		c = &refusalCount{first: at, requestID: requestID}
		r.pending[k] = c
		r.size[k.window]++
	}
	c.count += n
	if at.After(c.last) {
		c.last = at
	}
	if at.Before(c.first) {
		c.first = at
	}
}

// take removes and returns the keys whose window ended at or before now
// (every key with all).
func (r *refusalAggregator) take(now time.Time, all bool) map[refusalKey]*refusalCount {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[refusalKey]*refusalCount{}
	cut := now.Add(-refusalWindow).UnixMilli()
	for k, c := range r.pending {
		if all || k.window <= cut {
			out[k] = c
			delete(r.pending, k)
			if r.size[k.window]--; r.size[k.window] <= 0 {
				delete(r.size, k.window)
			}
		}
	}
	return out
}

// refused records one refusal of the caller: a 403 (authorization) from
// every place that returns CodeForbidden. It never writes: the event is
// aggregated and written by the flusher.
func (a *Authority) refused(ctx context.Context, c Caller, reason string) {
	credID := c.CredentialID
	if credID == "" && c.Kind != "" {
		credID = UnknownCredential
	}
	a.addRefusal(ctx, refusalKey{
		instanceID: c.InstanceID, credentialID: credID, actorKind: c.actorKind(), actorID: c.actorID(),
		action: ActionAuthzRefused, reason: reason,
	})
}

// forbid records a refusal and returns err (a CodeForbidden error).
func (a *Authority) forbid(ctx context.Context, c Caller, reason string, err error) error {
	a.refused(ctx, c, reason)
	return err
}

// forbidIn is forbid inside an Update closure, whose store may run it more
// than once: the refusal is counted for its last run only.
func (a *Authority) forbidIn(ctx context.Context, tx Tx, c Caller, reason string, err error) error {
	if h, ok := runHooksOf(tx); ok {
		h.Settled(func() { a.refused(ctx, c, reason) })
		return err
	}
	return a.forbid(ctx, c, reason, err)
}

// refusedIfIn is refusedIf inside an Update closure (see forbidIn).
func (a *Authority) refusedIfIn(ctx context.Context, tx Tx, c Caller, reason string, err error) error {
	if credential.IsCode(err, credential.CodeForbidden) {
		return a.forbidIn(ctx, tx, c, reason, err)
	}
	return err
}

// refusedIf records a refusal when err is CodeForbidden, and returns err:
// for the pure rule checks that do not know the authority.
func (a *Authority) refusedIf(ctx context.Context, c Caller, reason string, err error) error {
	if credential.IsCode(err, credential.CodeForbidden) {
		a.refused(ctx, c, reason)
	}
	return err
}

func (a *Authority) addRefusal(ctx context.Context, k refusalKey) {
	now := a.clock.Now()
	k.clientIP = addressKey(ClientIP(ctx))
	k.window = now.Truncate(refusalWindow).UnixMilli()
	a.refusals.add(k, now, RequestID(ctx), 1)
}

// authFailed records a refused authentication (in the audit aggregate, the
// metrics and the client address's failure budget) and returns the one
// unauthenticated error. cred is the credential the secret matched, if
// any (revoked, expired, wrong kind).
func (a *Authority) authFailed(ctx context.Context, cred *credential.Credential, reason string) error {
	k := refusalKey{credentialID: UnknownCredential, actorKind: "unknown", actorID: UnknownCredential,
		action: ActionAuthRefused, reason: reason}
	if cred != nil {
		k.instanceID, k.credentialID, k.actorKind, k.actorID = cred.InstanceID, cred.ID, string(cred.Kind), cred.ID
		if cred.Kind == credential.KindMachineKey {
			k.actorID = cred.Subject
		}
	}
	a.addRefusal(ctx, k)
	a.observer.AuthFailed(false)
	a.throttle.fail(ctx, a, a.clock.Now())
	return errUnauthenticated
}

// RefuseAmbiguousCredential refuses a request that presented two
// different credentials, which a surface finds before either can be
// authenticated: it is counted, throttled and audited like any failed
// authentication. The error is CodeRateLimited for a throttled address,
// else CodeUnauthenticated.
func (a *Authority) RefuseAmbiguousCredential(ctx context.Context) error {
	if err := a.checkThrottle(ctx, a.clock.Now()); err != nil {
		return err
	}
	return a.authFailed(ctx, nil, "ambiguous_credential")
}

// FlushRefusals writes one audit event per aggregated refusal key whose
// minute has ended (every key with all, at shutdown), in one transaction.
// On failure the counts are kept for the next flush.
func (a *Authority) FlushRefusals(ctx context.Context, all bool) error {
	batch := a.refusals.take(a.clock.Now(), all)
	if len(batch) == 0 {
		return nil
	}
	keys := make([]refusalKey, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	// Oldest first, so each chain reads in time order.
	sort.Slice(keys, func(i, j int) bool { return batch[keys[i]].first.Before(batch[keys[j]].first) })
	var sealed []credential.AuditEvent
	err := a.store.Update(ctx, func(tx Tx) error {
		sealed = sealed[:0]
		for _, k := range keys {
			c := batch[k]
			detail, err := json.Marshal(map[string]any{
				"reason": k.reason, "count": c.count,
				"first_at": c.first.UTC().Format(time.RFC3339Nano), "last_at": c.last.UTC().Format(time.RFC3339Nano),
			})
			if err != nil {
				return credential.Wrap(credential.CodeInternal, err, "encode audit detail")
			}
			e, err := tx.InsertAuditEvent(ctx, credential.AuditEvent{
				ID: credential.NewID(credential.PrefixAudit, c.first), InstanceID: k.instanceID, At: c.first,
				ActorKind: k.actorKind, ActorID: k.actorID, Action: k.action, RequestID: c.requestID,
				Outcome: credential.OutcomeDenied, Detail: detail, ClientIP: k.clientIP,
				CredentialID: k.credentialID, Count: c.count,
			})
			if err != nil {
				return err
			}
			sealed = append(sealed, e)
		}
		return nil
	})
	if err != nil {
		for k, c := range batch {
			a.refusals.add(k, c.first, c.requestID, c.count)
		}
		return err
	}
	for _, e := range sealed {
		a.writeSink(e) // a refusal is no mutation: a failing log never loses it from the store
	}
	return nil
}

// DefaultAuthFailureLimit and DefaultAuthFailureWindow are the default
// brute-force budget: failed authentications per client address per
// fixed window.
const (
	DefaultAuthFailureLimit  = 30
	DefaultAuthFailureWindow = time.Minute
)

// throttle refuses, before any store read, the requests of an address
// whose failed authentications in the current window reached the budget.
// Failures are counted through the Limiter (shared across nodes when it
// is); each node remembers the addresses it found over budget until their
// window ends, so a blocked address costs no store or Redis call.
type throttle struct {
	limit  int
	window time.Duration

	mu      sync.RWMutex
	blocked map[netip.Prefix]time.Time // by addressPrefix: until
}

// maxBlocked bounds the blocked-address map; expired entries are swept
// when it grows past this.
const maxBlocked = 4096

func (t *throttle) fail(ctx context.Context, a *Authority, now time.Time) {
	ip, ok := addressPrefix(ClientIP(ctx))
	if t.limit <= 0 || !ok {
		return
	}
	start := now.Truncate(t.window)
	end := start.Add(t.window)
	admitted, count, err := a.limiter.Take(ctx, "auth_failure/"+addressKey(ip.Addr()), t.limit, start, end)
	if err != nil || (admitted && count < t.limit) {
		return // a failing limiter never locks addresses out
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.blocked == nil {
		t.blocked = map[netip.Prefix]time.Time{}
	}
	if len(t.blocked) >= maxBlocked {
		for k, until := range t.blocked {
			if !now.Before(until) {
				delete(t.blocked, k)
			}
		}
	}
	t.blocked[ip] = end
}

// blockedFor reports how long the address in ctx stays over budget (0: not).
func (t *throttle) blockedFor(ctx context.Context, now time.Time) time.Duration {
	if t.limit <= 0 {
		return 0
	}
	ip, ok := addressPrefix(ClientIP(ctx))
	if !ok {
		return 0
	}
	t.mu.RLock()
	until, ok := t.blocked[ip]
	t.mu.RUnlock()
	if !ok || !now.Before(until) {
		return 0
	}
	return until.Sub(now)
}

// checkThrottle is the first step of every authentication: an address over
// its failure budget is refused with CodeRateLimited (and a Retry-After)
// before its secret is parsed or looked up.
func (a *Authority) checkThrottle(ctx context.Context, now time.Time) error {
	wait := a.throttle.blockedFor(ctx, now)
	if wait <= 0 {
		return nil
	}
	a.observer.AuthFailed(true)
	a.addRefusal(ctx, refusalKey{credentialID: UnknownCredential, actorKind: "unknown", actorID: UnknownCredential,
		action: ActionThrottled, reason: "too_many_failures"})
	return &credential.Error{Code: credential.CodeRateLimited,
		Message: "too many failed authentications from this address; retry later", RetryAfter: wait}
}
