package authority

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/permquery"
)

// Reason is the outcome of a verification. Failure is a value, not an
// error: an error from Verify means the system failed.
type Reason string

const (
	ReasonValid             Reason = "valid"
	ReasonNotFound          Reason = "not_found"
	ReasonExpired           Reason = "expired"
	ReasonRevoked           Reason = "revoked"
	ReasonIPNotAllowed      Reason = "ip_not_allowed"
	ReasonInsufficientScope Reason = "insufficient_scope"
	ReasonRateLimited       Reason = "rate_limited"
	// ReasonInsufficientPermissions: the verify's permission query does not
	// hold for the credential's permissions and roles (controls.go).
	ReasonInsufficientPermissions Reason = "insufficient_permissions"
	// ReasonUsageExceeded: the credential's credits do not cover the cost.
	ReasonUsageExceeded Reason = "usage_exceeded"
)

// VerifyInput is one credential to verify and what the resource requires.
type VerifyInput struct {
	Token string
	// ClientIP is where the credential was presented from, for source-IP
	// allowlists; the zero Addr matches no allowlist.
	ClientIP netip.Addr
	// RequiredScopes must all be among the credential's scopes (for M2M
	// tokens, the scopes are the ids of the machines it may call).
	RequiredScopes []string
	// RequiredPrivilege must be granted by an org token's privileges,
	// through the scope hierarchy and the role order.
	RequiredPrivilege *credential.Privilege
	// Permissions, when not zero, must hold for the credential's
	// permissions and its roles' (controls.go).
	Permissions permquery.Query
	// RateLimits names the credential's limits to apply and their cost;
	// nil applies every auto_apply limit at cost 1.
	RateLimits []LimitUse
	// CreditCost is the credits the call takes (nil: 1 when the credential
	// has credits; 0 reads them).
	CreditCost *int64
}

// VerifyResult is a verification decision. Fields other than Valid and
// Reason are set only for a credential the caller is entitled to see.
type VerifyResult struct {
	Valid     bool
	Reason    Reason
	Kind      credential.Kind
	ID        string
	Subject   string
	Scopes    []string
	Claims    json.RawMessage
	ExpiresAt time.Time
	IssuedAt  time.Time
	// Privileges are an org token's privileges.
	Privileges []credential.Privilege
	// WorkspaceID is the workspace a PAT is bound to.
	WorkspaceID string
	// RateLimit is the credential's window after this call, for limited
	// kinds.
	RateLimit *RateLimit
	// M2M is the token's view, for M2M tokens.
	M2M *M2MToken
	// APIKey is the key's view, for API keys.
	APIKey *APIKey
	// Controls (controls.go): the credential's meta, permissions and roles;
	// the permissions a refused query misses; each applied named limit's
	// state; the credits remaining after the call.
	Meta               json.RawMessage
	Permissions, Roles []string
	MissingPermissions []string
	Limits             []NamedLimitState
	Credits            *int64
	// IdentityID and ExternalID name the credential's identity.
	IdentityID, ExternalID string
}

var notFound = VerifyResult{Reason: ReasonNotFound}

// Verify decides whether a presented credential is valid for the caller,
// in one fixed order:
//
//  1. shape: a JWT, or a secret with a known prefix and a good checksum,
//     or (admin callers) a key under a prefix the instance imported
//     foreign keys under (verifyForeign); anything else is not_found
//     without touching the store;
//  2. lookup by HMAC digest, through the cache;
//  3. entitlement: the credential is in the caller's instance and, for a
//     machine caller, scoped to that machine; otherwise not_found, so an
//     unentitled caller learns nothing (not even "revoked");
//  4. revoked → expired → not yet valid → source IP → required scopes or
//     privilege → rate limit (only a call that passed everything else
//     counts against the limit).
//
// A valid use is recorded as last-used, coalesced in memory; every
// decision is counted per credential, outcome and minute (analytics.go).
func (a *Authority) Verify(ctx context.Context, c Caller, in VerifyInput) (VerifyResult, error) {
	g, err := a.enter(ctx, c, "Verify")
	if err != nil {
		return VerifyResult{}, err
	}
	start := time.Now() // wall time: this measures work, not the authority's clock
	// One reading of the authority's clock for the whole decision.
	r, err := a.verify(ctx, c, in, g.now)
	if err == nil {
		a.observer.Verified(r.Kind, r.Reason, time.Since(start))
		a.counts.add(c.InstanceID, r.ID, r.Reason, g.now)
		if r.Reason == ReasonRateLimited {
			a.observer.RateLimited(r.Kind)
		}
	}
	return r, err
}

func (a *Authority) verify(ctx context.Context, c Caller, in VerifyInput, now time.Time) (VerifyResult, error) {
	if c.Kind != credential.KindAdminKey && c.Kind != credential.KindMachineKey {
		return notFound, nil
	}
	if looksLikeJWT(in.Token) {
		return a.verifyJWT(ctx, c, in, now)
	}
	found, failure, err := a.resolve(ctx, now, in.Token, credential.KindM2MToken, credential.KindOrgToken, credential.KindPAT, credential.KindAPIKey)
	if failure == failureMalformed {
		return a.verifyForeign(ctx, c, in, now) // not keyward's shape: perhaps a key imported by its hash
	}
	if err != nil {
		return VerifyResult{}, err
	}
	e, kind := found.e, found.kind
	if failure != "" || e.cred.InstanceID != c.InstanceID || e.cred.Kind != kind {
		return notFound, nil
	}
	var r VerifyResult
	switch kind {
	case credential.KindOrgToken:
		if r, err = a.verifyOrgToken(ctx, c, e, in, now); err != nil {
			return VerifyResult{}, err
		}
	case credential.KindPAT:
		r = verifyPAT(c, e, in, now)
	case credential.KindAPIKey:
		r = verifyAPIKey(c, e, in, now)
	default:
		r = verifyM2M(c, e, in, now)
	}
	var hourly *LimitTake
	if kind == credential.KindOrgToken && r.Valid {
		if hourly, err = a.hourlyTake(ctx, e.cred); err != nil {
			return VerifyResult{}, err
		}
	}
	if (e.attrs.Controls != nil || in.asksControls() || hourly != nil) && r.Reason != ReasonNotFound {
		if err := a.verifyControls(ctx, e, in, hourly, now, &r); err != nil {
			return VerifyResult{}, err
		}
	}
	if r.Valid {
		a.used(ctx, found, now)
	}
	return r, nil
}

// verifyM2M applies the rules to an opaque M2M token: an admin key may
// verify any of the instance's, a machine only those that may call it.
func verifyM2M(c Caller, e cacheEntry, in VerifyInput, now time.Time) VerifyResult {
	if c.Kind == credential.KindMachineKey && !slices.Contains(e.attrs.Scopes, c.MachineID) {
		return notFound
	}
	tok := m2mView(e.cred, e.attrs, now)
	r := VerifyResult{
		Kind:      credential.KindM2MToken,
		ID:        e.cred.ID,
		Subject:   e.cred.Subject,
		Scopes:    e.attrs.Scopes,
		Claims:    e.attrs.Claims,
		ExpiresAt: e.cred.ExpiresAt,
		IssuedAt:  e.cred.CreatedAt,
		M2M:       &tok,
	}
	r.Reason = decide(e.cred.Revoked(), e.cred.ExpiresAt, time.Time{}, now, e.attrs.Scopes, in, false)
	if r.Valid = r.Reason == ReasonValid; r.Valid {
		tok.LastUsedAt = now
	}
	return r
}

// decide applies the state rules in their fixed order, and the
// resource's requirements: every required scope must be among scopes, and
// a required privilege can only be met by a kind that holds privileges
// (org tokens check theirs afterwards and pass privileged=true); any other
// kind fails it rather than ignore it.
func decide(revoked bool, expiresAt, notBefore, now time.Time, scopes []string, in VerifyInput, privileged bool) Reason {
	switch {
	case revoked:
		return ReasonRevoked
	case credential.Expired(expiresAt, now):
		return ReasonExpired
	case !notBefore.IsZero() && now.Before(notBefore):
		return ReasonNotFound // not yet valid: nothing to show yet
	case in.RequiredPrivilege != nil && !privileged:
		return ReasonInsufficientScope
	}
	for _, s := range in.RequiredScopes {
		if !slices.Contains(scopes, s) {
			return ReasonInsufficientScope
		}
	}
	return ReasonValid
}

// looksLikeJWT reports whether s has a JWS compact shape: three base64url
// segments, the first starting with a JSON object ("eyJ").
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// verifyOrgToken applies the rules to an org token: only the admin key
// may verify one (a machine has no business with org tokens).
func (a *Authority) verifyOrgToken(ctx context.Context, c Caller, e cacheEntry, in VerifyInput, now time.Time) (VerifyResult, error) {
	if c.Kind != credential.KindAdminKey {
		return notFound, nil
	}
	r := VerifyResult{
		Kind: credential.KindOrgToken, ID: e.cred.ID, Subject: e.cred.Subject,
		Privileges: e.attrs.Privileges, IssuedAt: e.cred.CreatedAt, ExpiresAt: e.cred.ExpiresAt,
	}
	r.Reason = decide(e.cred.Revoked(), e.cred.ExpiresAt, time.Time{}, now, nil, in, true)
	if r.Reason == ReasonValid && !e.attrs.allowsFrom(in.ClientIP) {
		r.Reason = ReasonIPNotAllowed
	}
	if r.Reason == ReasonValid && in.RequiredPrivilege != nil {
		t, err := a.topology(ctx, e.cred.InstanceID, e.cred.Subject)
		if err != nil {
			return VerifyResult{}, err
		}
		if !credential.Grants(e.attrs.Privileges, *in.RequiredPrivilege, t) {
			r.Reason = ReasonInsufficientScope
		}
	}
	r.Valid = r.Reason == ReasonValid
	return r, nil
}

// verifyPAT applies the rules to a personal access token: only the admin
// key may verify one.
func verifyPAT(c Caller, e cacheEntry, in VerifyInput, now time.Time) VerifyResult {
	if c.Kind != credential.KindAdminKey {
		return notFound
	}
	r := VerifyResult{
		Kind: credential.KindPAT, ID: e.cred.ID, Subject: e.cred.Subject, Scopes: e.attrs.Scopes,
		WorkspaceID: e.cred.ParentID, ExpiresAt: e.cred.ExpiresAt, IssuedAt: e.cred.CreatedAt,
	}
	r.Reason = decide(e.cred.Revoked(), e.cred.ExpiresAt, time.Time{}, now, e.attrs.Scopes, in, false)
	r.Valid = r.Reason == ReasonValid
	return r
}

// tokenAttrs are the kind-specific attributes of a stored token, decoded
// once per cache fill.
type tokenAttrs struct {
	// M2M tokens.
	Claims json.RawMessage `json:"claims,omitempty"`
	Scopes []string        `json:"scopes,omitempty"`
	// Reusable marks an M2M token minted for reuse: its secret is kept
	// sealed in the credential row so it can be handed out again.
	Reusable bool `json:"reusable,omitempty"`

	// Org tokens (and the name of PATs).
	orgTokenAttrs
	allowlist credential.Allowlist

	// PATs and API keys.
	Description string `json:"description,omitempty"`

	// Admin keys (and their name, above).
	Permissions []credential.Permission `json:"permissions,omitempty"`
}

func parseTokenAttrs(c credential.Credential) (tokenAttrs, error) {
	var a tokenAttrs
	switch c.Kind {
	case credential.KindM2MToken, credential.KindOrgToken, credential.KindPAT, credential.KindAdminKey, credential.KindAPIKey, credential.KindMachineKey:
	default:
		return a, nil
	}
	if len(c.Attrs) == 0 {
		return a, nil
	}
	if err := json.Unmarshal(c.Attrs, &a); err != nil {
		return a, credential.Wrap(credential.CodeInternal, err, "decode token attributes of "+c.ID)
	}
	if c.Kind == credential.KindOrgToken {
		var err error
		if a.allowlist, _, err = credential.ParseAllowlist(a.SrcIPs); err != nil {
			return a, credential.Wrap(credential.CodeInternal, err, "stored src_ips of "+c.ID)
		}
	}
	return a, nil
}
