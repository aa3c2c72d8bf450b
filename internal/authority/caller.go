package authority

import (
	"context"
	"slices"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Caller is an authenticated party: who is asking, for which instance.
type Caller struct {
	InstanceID   string
	Kind         credential.Kind // KindAdminKey or KindMachineKey; "" for the host operator
	CredentialID string
	MachineID    string                 // set for machine keys
	OrgID        string                 // set for org tokens
	Privileges   []credential.Privilege // set for org tokens
	// UserID is the user a PAT speaks for, or the user an admin key acts
	// for on user-scoped surfaces (X-User-ID), set with ActingFor.
	UserID      string
	Scopes      []string // set for PATs
	WorkspaceID string   // set for PATs bound to a workspace
	// Permissions are an admin key's permissions (the operator holds
	// every permission without listing them).
	Permissions []credential.Permission
	// ExpiresAt is when the caller's credential expires (zero: never); a
	// credential it creates may not outlive it.
	ExpiresAt time.Time
	// SrcIPs is the caller's source-IP allowlist (org tokens); a
	// credential it creates must lie inside it.
	SrcIPs credential.Allowlist
}

// ActingFor returns the admin caller acting for a user (the X-User-ID
// header of user-scoped surfaces). Other callers are returned unchanged:
// a PAT always acts as its own user.
func (c Caller) ActingFor(userID string) Caller {
	if c.IsAdmin() {
		c.UserID = userID
	}
	return c
}

// ForUser is the caller acting for the user a route names in its path: an
// admin key (or the operator) acts for any user; a PAT acts only as its
// own user, and any other user does not exist for it (a 404, so a PAT
// cannot probe which users exist).
func (c Caller) ForUser(userID string) (Caller, error) {
	if !ValidUserID(userID) {
		return Caller{}, credential.ParamError(credential.CodeInvalid, "user_id", "must be 1 to 255 printable characters without spaces")
	}
	if c.Kind == credential.KindPAT && c.UserID != userID {
		return Caller{}, credential.Errorf(credential.CodeNotFound, "no such user")
	}
	return c.ActingFor(userID), nil
}

// Operator is the party at the host's shell: CLI commands that open the
// store directly act as the operator of one instance.
func Operator(instanceID string) Caller { return Caller{InstanceID: instanceID} }

// IsAdmin reports whether the caller is an admin key or the operator; what
// it may do is decided by its permissions (see useCases).
func (c Caller) IsAdmin() bool { return c.Kind == credential.KindAdminKey || c.Kind == "" }

func (c Caller) actorKind() string {
	if c.Kind == "" {
		return "operator"
	}
	return string(c.Kind)
}

func (c Caller) actorID() string {
	if c.Kind == credential.KindMachineKey {
		return c.MachineID
	}
	return c.CredentialID
}

// errUnauthenticated is the one answer to every failed authentication, so
// a caller cannot tell a malformed key from a revoked one.
var errUnauthenticated = credential.Errorf(credential.CodeUnauthenticated, "invalid authentication")

// errForbidden is the answer to an authenticated caller acting outside its
// rights inside its own instance.
var errForbidden = credential.Errorf(credential.CodeForbidden, "the credential is not allowed to perform this operation")

// Authenticate resolves a presented caller secret (an admin key, a
// machine secret key or a personal access token) to a Caller; each
// operation then decides what that kind of caller may do. A credential
// with controls is held to them first (admitCaller): a refusal is
// CodeRateLimited. Every failure is the same
// CodeUnauthenticated error; a store failure is CodeUnavailable or
// CodeInternal, never a 401.
func (a *Authority) Authenticate(ctx context.Context, token string) (Caller, error) {
	return a.authenticate(ctx, token, nil)
}

// authenticate is Authenticate with the surface's own rule: accept, when
// set, may refuse the caller (a kind the surface does not serve, another
// OAuth client's key) before it is held to its controls or counted as a
// use, so a refused call spends none of its limits or credits.
func (a *Authority) authenticate(ctx context.Context, token string, accept func(Caller) error) (Caller, error) {
	p, err := a.present(ctx, token, credential.KindAdminKey, credential.KindMachineKey, credential.KindPAT)
	if err != nil {
		return Caller{}, err
	}
	e := p.e
	caller := Caller{InstanceID: e.cred.InstanceID, Kind: e.cred.Kind, CredentialID: e.cred.ID, ExpiresAt: e.cred.ExpiresAt}
	switch e.cred.Kind {
	case credential.KindAdminKey:
		caller.Permissions = adminKeyPermissions(e.attrs)
	case credential.KindMachineKey:
		caller.MachineID = e.cred.Subject
	case credential.KindPAT:
		caller.UserID, caller.Scopes, caller.WorkspaceID = e.cred.Subject, e.attrs.Scopes, e.cred.ParentID
	}
	if accept != nil {
		if err := accept(caller); err != nil {
			return Caller{}, err
		}
	}
	if e.attrs.Controls != nil {
		r, err := a.admitCaller(ctx, e, nil, p.now)
		if err != nil {
			return Caller{}, err
		}
		if !r.Valid {
			return Caller{}, a.refuseCaller(e.cred, r, p.now)
		}
	}
	a.used(ctx, p.resolved, p.now)
	a.countCaller(e.cred, ReasonValid, p.now)
	noteCaller(ctx, e.cred.ID)
	return caller, nil
}

// resolved is a presented secret and the stored credential it is the
// secret of.
type resolved struct {
	e      cacheEntry
	secret credential.Secret
	kind   credential.Kind // the kind the secret's format says
}

// resolve parses token as one of kinds and finds its credential: where
// every authentication and every verification starts. failure names why
// nothing was found (a malformed or missing secret, another kind, an
// unknown one); err is a store failure only, never "not found".
func (a *Authority) resolve(ctx context.Context, now time.Time, token string, kinds ...credential.Kind) (r resolved, failure string, err error) {
	secret, kind, err := credential.Parse(token)
	if err != nil || !slices.Contains(kinds, kind) {
		return resolved{}, parseFailure(token, err), nil
	}
	e, err := a.lookup(ctx, a.keyring.Digest(secret), now)
	if err != nil {
		return resolved{}, "", err
	}
	if !e.found {
		return resolved{}, "unknown_credential", nil
	}
	return resolved{e: e, secret: secret, kind: kind}, "", nil
}

// presented is a secret that authenticates: resolved, and active at now.
type presented struct {
	resolved
	now time.Time
}

// present is the one authentication pipeline: the failure throttle, then
// resolve, then the credential's state at now. Every failure is audited
// and answered with the same CodeUnauthenticated. The clock is read once:
// the whole of it happens at the moment the request is taken up.
func (a *Authority) present(ctx context.Context, token string, kinds ...credential.Kind) (presented, error) {
	now := a.clock.Now()
	if err := a.checkThrottle(ctx, now); err != nil {
		return presented{}, err
	}
	r, failure, err := a.resolve(ctx, now, token, kinds...)
	if err != nil {
		return presented{}, err
	}
	if failure != "" {
		return presented{}, a.authFailed(ctx, nil, failure)
	}
	if reason := inactive(r.e.cred, r.kind, now); reason != "" {
		switch reason {
		case "revoked":
			a.countCaller(r.e.cred, ReasonRevoked, now)
		case "expired":
			a.countCaller(r.e.cred, ReasonExpired, now)
		}
		return presented{}, a.authFailed(ctx, &r.e.cred, reason)
	}
	return presented{resolved: r, now: now}, nil
}

// used records a good use of a credential: its last-used time, and its
// search digest if it has none yet.
func (a *Authority) used(ctx context.Context, r resolved, now time.Time) {
	a.usage.record(r.e.cred.InstanceID, r.e.cred.ID, now)
	a.fillSearchDigest(ctx, r.e, r.secret)
}

// parseFailure names why a presented secret could not be used at all.
func parseFailure(token string, err error) string {
	switch {
	case token == "":
		return "missing_credential"
	case err != nil:
		return failureMalformed
	}
	return "wrong_kind"
}

// failureMalformed: the secret is not in any of keyward's formats.
const failureMalformed = "malformed_credential"

// inactive names why a found credential does not authenticate as kind at
// now ("" when it does).
func inactive(c credential.Credential, kind credential.Kind, now time.Time) string {
	switch {
	case c.Kind != kind:
		return "wrong_kind"
	case c.Revoked():
		return "revoked"
	case c.ExpiredAt(now):
		return "expired"
	case !c.ActiveAt(now):
		return "inactive"
	}
	return ""
}

// fillSearchDigest gives a credential made before search digests existed
// its digest, on its first successful use. The write is conditional, so
// nodes racing to do it agree, and the cache entry then stops asking for
// it. A failure is harmless: the next use retries.
func (a *Authority) fillSearchDigest(ctx context.Context, e cacheEntry, s credential.Secret) {
	if !e.needsSearchDigest {
		return
	}
	c := e.cred
	d := a.keyring.SearchDigestOf(s)
	if err := a.store.Update(ctx, func(tx Tx) error {
		return tx.SetCredentialSearchDigest(ctx, c.InstanceID, c.ID, d)
	}); err == nil {
		a.cache.searchDigestFilled(a.keyring.Digest(s))
	}
}

// AuthenticateUser resolves the caller of a user-scoped surface (Spatio,
// Freezer): a PAT, which acts as its own user, or the admin key acting for
// the user named by userHeader (X-User-ID, as Keystone's middleware
// supplies it). Any other credential is unauthenticated there.
func (a *Authority) AuthenticateUser(ctx context.Context, token, userHeader string) (Caller, error) {
	c, err := a.authenticate(ctx, token, func(c Caller) error {
		if c.Kind != credential.KindPAT && !c.IsAdmin() {
			return a.wrongKind(ctx, c)
		}
		return nil
	})
	if err != nil {
		return Caller{}, err
	}
	return c.ActingFor(userHeader), nil
}

// wrongKind refuses a valid credential on a surface that does not serve
// its kind, as unauthenticated, and records it.
func (a *Authority) wrongKind(ctx context.Context, c Caller) error {
	cred := credential.Credential{ID: c.CredentialID, InstanceID: c.InstanceID, Kind: c.Kind, Subject: c.MachineID}
	return a.authFailed(ctx, &cred, "wrong_kind")
}

// AuthenticateAdmin resolves the caller of a surface only admin keys may
// use (besides its own tokens): any other valid credential is refused as
// unauthenticated there, and recorded as such.
func (a *Authority) AuthenticateAdmin(ctx context.Context, token string) (Caller, error) {
	return a.authenticate(ctx, token, func(c Caller) error {
		if !c.IsAdmin() {
			return a.wrongKind(ctx, c)
		}
		return nil
	})
}
