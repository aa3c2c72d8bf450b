package client

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Defaults of a Verifier.
const (
	DefaultCacheStaleness      = 5 * time.Second
	DefaultJWKSRefetchInterval = 10 * time.Second
	MaxLeeway                  = 60 * time.Second

	negativeCacheTTL = time.Second // invalid answers are never kept longer
	jwksMaxAge       = 10 * time.Minute
	maxTokenLength   = 16 << 10
	cacheEntries     = 10000
	m2mCategory      = "cl_B7d4PD333AAA" // Clerk's M2M JWT category header
	sessionTokenType = "at+jwt"
)

// reservedClaims are the structural claims of keyward's JWTs; the rest
// are a token's custom claims.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scopes", "act", "sid"}

// Verifier decides on bearer credentials for a protected API: keyward's
// JWTs offline against its JWKS, every other token through POST /v1/verify
// with a short local cache. It is safe for concurrent use and meant to be
// shared by every request of a process.
//
// Offline JWT verification sees only signature, expiry, not-before, issuer
// (when configured) and scopes: a revoked M2M JWT, one whose machine was
// deleted, or an ended impersonation session keeps passing until it
// expires, and the JWKS holds the keys of every instance of the keyward
// server. Use WithOnlineJWTs to send JWTs through /v1/verify as well.
type Verifier struct {
	c          *Client
	staleness  time.Duration
	leeway     time.Duration
	issuer     string
	now        func() time.Time
	refetchGap time.Duration
	onlineJWTs bool

	jwksMu    sync.Mutex // guards keys, fetchedAt, lastFetch
	fetchMu   sync.Mutex // one JWKS fetch at a time
	keys      map[string]jose.JSONWebKey
	fetchedAt time.Time // of the keys in use
	lastFetch time.Time // of the last attempt
	lastErr   error     // of the last attempt, while no keys were ever fetched

	cacheMu sync.Mutex
	cache   map[[32]byte]cacheEntry
}

type cacheEntry struct {
	res     VerifyResult
	until   time.Time // wall-clock bound on staleness
	expires time.Time // the credential's expiry, on the verifier's clock (zero: none)
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithCacheStaleness bounds how long a valid answer from /v1/verify is
// reused without asking keyward again (default 5 s; 0 disables the cache).
// A token revoked in keyward may keep passing on this process for up to
// that long. Answers for org tokens (which carry a rate limit that counts
// every call) are never cached; invalid answers are kept at most 1 s.
func WithCacheStaleness(d time.Duration) VerifierOption {
	return func(v *Verifier) { v.staleness = max(d, 0) }
}

// WithLeeway tolerates clock skew on a JWT's exp and nbf (default 0, at
// most 60 s).
func WithLeeway(d time.Duration) VerifierOption {
	return func(v *Verifier) { v.leeway = min(max(d, 0), MaxLeeway) }
}

// WithIssuer requires JWTs to carry this iss (keyward's --public-url, or
// "keyward" when none is set). Unset, iss is not checked.
func WithIssuer(iss string) VerifierOption {
	return func(v *Verifier) { v.issuer = iss }
}

// WithClock sets the time source for token validity (exp, nbf, cached
// expiries, Retry-After); default time.Now.
func WithClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) {
		if now != nil {
			v.now = now
		}
	}
}

// WithJWKSRefetchInterval bounds how often a JWT with an unknown kid may
// make the verifier fetch the JWKS again (default 10 s), so that forged
// kids cannot turn into a flood of fetches.
func WithJWKSRefetchInterval(d time.Duration) VerifierOption {
	return func(v *Verifier) { v.refetchGap = max(d, 0) }
}

// WithOnlineJWTs sends JWTs through POST /v1/verify too, so that revoked
// M2M JWTs and ended sessions are refused and JWTs of other instances are
// not accepted, at the cost of a round trip (cached like opaque tokens).
func WithOnlineJWTs() VerifierOption {
	return func(v *Verifier) { v.onlineJWTs = true }
}

// NewVerifier returns a verifier asking the keyward behind c. c's key must
// be allowed to verify the credentials the API accepts: the admin key
// verifies every kind; a machine key only M2M tokens scoped to it.
func NewVerifier(c *Client, opts ...VerifierOption) *Verifier {
	v := &Verifier{
		c:          c,
		staleness:  DefaultCacheStaleness,
		now:        time.Now,
		refetchGap: DefaultJWKSRefetchInterval,
		cache:      make(map[[32]byte]cacheEntry),
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

// Verify decides on req.Token like POST /v1/verify does: a decision is a
// result, valid or not; an error means keyward (or its JWKS) could not be
// reached or answered with an error, and nothing was decided.
func (v *Verifier) Verify(ctx context.Context, req VerifyRequest) (VerifyResult, error) {
	if req.Token == "" || len(req.Token) > maxTokenLength {
		return VerifyResult{Code: CodeNotFound}, nil
	}
	if looksLikeJWT(req.Token) && !v.onlineJWTs {
		return v.verifyJWT(ctx, req)
	}
	return v.verifyOnline(ctx, req)
}

func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// verifyOnline asks keyward, through the local cache.
func (v *Verifier) verifyOnline(ctx context.Context, req VerifyRequest) (VerifyResult, error) {
	if v.staleness == 0 {
		return v.c.Verify(ctx, req)
	}
	key := cacheKey(req)
	wall := time.Now()
	v.cacheMu.Lock()
	e, ok := v.cache[key]
	v.cacheMu.Unlock()
	if ok && wall.Before(e.until) && (e.expires.IsZero() || v.now().Before(e.expires)) {
		return e.res, nil
	}
	res, err := v.c.Verify(ctx, req)
	if err != nil {
		return res, err
	}
	ttl := v.staleness
	if !res.Valid {
		ttl = min(ttl, negativeCacheTTL)
	} else if res.RateLimit != nil || len(res.RateLimits) > 0 || res.Credits != nil {
		ttl = 0 // every call counts against the credential's limits or credits
	}
	if ttl > 0 {
		e := cacheEntry{res: res, until: wall.Add(ttl)}
		if res.Valid && res.ExpiresAt != nil {
			e.expires = *res.ExpiresAt
		}
		v.store(key, e, wall)
	}
	return res, nil
}

func (v *Verifier) store(key [32]byte, e cacheEntry, wall time.Time) {
	v.cacheMu.Lock()
	defer v.cacheMu.Unlock()
	if len(v.cache) >= cacheEntries {
		for k, old := range v.cache {
			if !wall.Before(old.until) {
				delete(v.cache, k)
			}
		}
		for k := range v.cache { // still full: drop arbitrary entries
			if len(v.cache) < cacheEntries {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[key] = e
}

// cacheKey digests everything the decision depends on; the token itself
// is never kept.
func cacheKey(req VerifyRequest) [32]byte {
	b, _ := json.Marshal(req)
	return sha256.Sum256(b)
}

// verifyJWT verifies one of keyward's JWTs offline.
func (v *Verifier) verifyJWT(ctx context.Context, req VerifyRequest) (VerifyResult, error) {
	notFound := VerifyResult{Code: CodeNotFound}
	tok, err := jwt.ParseSigned(req.Token, []jose.SignatureAlgorithm{jose.RS256, jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		return notFound, nil
	}
	h := tok.Headers[0]
	if h.KeyID == "" || h.JSONWebKey != nil {
		return notFound, nil // an embedded key is never trusted
	}
	key, found, err := v.key(ctx, h.KeyID)
	if err != nil {
		return VerifyResult{}, err
	}
	// The algorithm comes from the key, never from the token alone.
	if !found || key.Algorithm != h.Algorithm || (key.Use != "" && key.Use != "sig") {
		return notFound, nil
	}
	var std struct {
		jwt.Claims
		Scopes string          `json:"scopes"`
		Act    json.RawMessage `json:"act"`
		SID    string          `json:"sid"`
	}
	var all map[string]json.RawMessage
	if err := tok.Claims(key.Key, &std, &all); err != nil {
		return notFound, nil
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	cat, _ := h.ExtraHeaders[jose.HeaderKey("cat")].(string)
	res := VerifyResult{Subject: std.Subject}
	switch {
	case typ == "JWT" && cat == m2mCategory:
		res.Kind, res.ID, res.Scopes = KindM2MToken, std.ID, strings.Fields(std.Scopes)
		for _, name := range reservedClaims {
			delete(all, name)
		}
		if len(all) > 0 {
			res.Claims, _ = json.Marshal(all)
		}
	case typ == sessionTokenType && cat == "" && len(std.Act) > 0:
		res.Kind, res.ID = KindImpersonationSession, std.SID
		res.Claims, _ = json.Marshal(map[string]json.RawMessage{"act": std.Act})
	default:
		return notFound, nil
	}
	if std.Expiry == nil || std.Subject == "" || (v.issuer != "" && std.Issuer != v.issuer) {
		return notFound, nil
	}
	exp := std.Expiry.Time()
	res.ExpiresAt = &exp
	now := v.now()
	switch {
	case !now.Before(exp.Add(v.leeway)): // valid while now < exp, as keyward decides
		res.Code = CodeExpired
	case std.NotBefore != nil && now.Add(v.leeway).Before(std.NotBefore.Time()):
		return notFound, nil // not yet valid: nothing to show yet
	case req.RequiredPrivilege != nil:
		res.Code = CodeInsufficientScope // JWTs carry no privileges
	default:
		res.Code = CodeValid
		for _, s := range req.RequiredScopes {
			if !slices.Contains(res.Scopes, s) {
				res.Code = CodeInsufficientScope
				break
			}
		}
	}
	res.Valid = res.Code == CodeValid
	return res, nil
}

// key returns the JWKS key kid, fetching the set on first use, when it is
// old, or (at most once per refetch interval) when kid is unknown.
func (v *Verifier) key(ctx context.Context, kid string) (jose.JSONWebKey, bool, error) {
	lookup := func() (k jose.JSONWebKey, found, fresh, mayFetch bool) {
		v.jwksMu.Lock()
		defer v.jwksMu.Unlock()
		wall := time.Now()
		k, found = v.keys[kid]
		fresh = v.keys != nil && wall.Sub(v.fetchedAt) < jwksMaxAge
		mayFetch = v.lastFetch.IsZero() || wall.Sub(v.lastFetch) >= v.refetchGap
		return
	}
	settled := func(k jose.JSONWebKey, found, fresh, mayFetch bool) (bool, error) {
		if found && fresh {
			return true, nil
		}
		if mayFetch {
			return false, nil
		}
		v.jwksMu.Lock()
		defer v.jwksMu.Unlock()
		if v.keys == nil {
			return true, v.lastErr // the last fetch failed a moment ago
		}
		return true, nil
	}
	k, found, fresh, mayFetch := lookup()
	if done, err := settled(k, found, fresh, mayFetch); done {
		return k, found, err
	}
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	// Another request may have fetched meanwhile.
	k, found, fresh, mayFetch = lookup()
	if done, err := settled(k, found, fresh, mayFetch); done {
		return k, found, err
	}
	set, err := v.c.JWKS(ctx)
	v.jwksMu.Lock()
	defer v.jwksMu.Unlock()
	if err != nil && ctx.Err() != nil {
		return jose.JSONWebKey{}, false, err // this request gave up; others may fetch
	}
	v.lastFetch = time.Now()
	if err != nil {
		if v.keys != nil { // keep using the keys we have
			k, found = v.keys[kid]
			return k, found, nil
		}
		v.lastErr = err
		return jose.JSONWebKey{}, false, err
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.KeyID != "" && k.IsPublic() && k.Valid() {
			keys[k.KeyID] = k
		}
	}
	v.keys, v.fetchedAt, v.lastErr = keys, v.lastFetch, nil
	k, found = keys[kid]
	return k, found, nil
}
