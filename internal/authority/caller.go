package authority

import (
	"context"
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
// operation then decides what that kind of caller may do. Every failure is the same
// CodeUnauthenticated error; a store failure is CodeUnavailable or
// CodeInternal, never a 401.
func (a *Authority) Authenticate(ctx context.Context, token string) (Caller, error) {
	if err := a.checkThrottle(ctx); err != nil {
		return Caller{}, err
	}
	secret, kind, err := credential.Parse(token)
	if err != nil || (kind != credential.KindAdminKey && kind != credential.KindMachineKey && kind != credential.KindPAT) {
		return Caller{}, a.authFailed(ctx, nil, parseFailure(token, err))
	}
	e, err := a.lookup(ctx, a.keyring.Digest(secret))
	if err != nil {
		return Caller{}, err
	}
	now := a.clock.Now()
	if !e.found {
		return Caller{}, a.authFailed(ctx, nil, "unknown_credential")
	}
	if reason := inactive(e.cred, kind, now); reason != "" {
		return Caller{}, a.authFailed(ctx, &e.cred, reason)
	}
	a.usage.record(e.cred.InstanceID, e.cred.ID, now)
	a.fillSearchDigest(ctx, e.cred, secret)
	caller := Caller{InstanceID: e.cred.InstanceID, Kind: e.cred.Kind, CredentialID: e.cred.ID, ExpiresAt: e.cred.ExpiresAt}
	noteCaller(ctx, e.cred.ID)
	switch e.cred.Kind {
	case credential.KindAdminKey:
		caller.Permissions = adminKeyPermissions(e.attrs)
	case credential.KindMachineKey:
		caller.MachineID = e.cred.Subject
	case credential.KindPAT:
		caller.UserID, caller.Scopes, caller.WorkspaceID = e.cred.Subject, e.attrs.Scopes, e.cred.ParentID
	}
	return caller, nil
}

// parseFailure names why a presented secret could not be used at all.
func parseFailure(token string, err error) string {
	switch {
	case token == "":
		return "missing_credential"
	case err != nil:
		return "malformed_credential"
	}
	return "wrong_kind"
}

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
// its digest, on its first successful use (once per node; the write is
// conditional, so nodes racing to do it agree). A failure is harmless: the
// next use retries.
func (a *Authority) fillSearchDigest(ctx context.Context, c credential.Credential, s credential.Secret) {
	if c.SearchDigest != (credential.Digest{}) {
		return
	}
	if _, done := a.searchFilled.Load(c.ID); done {
		return
	}
	d := a.keyring.SearchDigestOf(s)
	if err := a.store.Update(ctx, func(tx Tx) error {
		return tx.SetCredentialSearchDigest(ctx, c.InstanceID, c.ID, d)
	}); err == nil {
		a.searchFilled.Store(c.ID, true)
	}
}

// AuthenticateUser resolves the caller of a user-scoped surface (Spatio,
// Freezer): a PAT, which acts as its own user, or the admin key acting for
// the user named by userHeader (X-User-ID, as Keystone's middleware
// supplies it). Any other credential is unauthenticated there.
func (a *Authority) AuthenticateUser(ctx context.Context, token, userHeader string) (Caller, error) {
	c, err := a.Authenticate(ctx, token)
	if err != nil {
		return Caller{}, err
	}
	if c.Kind != credential.KindPAT && !c.IsAdmin() {
		cred := credential.Credential{ID: c.CredentialID, InstanceID: c.InstanceID, Kind: c.Kind, Subject: c.MachineID}
		return Caller{}, a.authFailed(ctx, &cred, "wrong_kind")
	}
	return c.ActingFor(userHeader), nil
}

// AuthenticateAdmin resolves the caller of a surface only admin keys may
// use (besides its own tokens): any other valid credential is refused as
// unauthenticated there, and recorded as such.
func (a *Authority) AuthenticateAdmin(ctx context.Context, token string) (Caller, error) {
	c, err := a.Authenticate(ctx, token)
	if err != nil {
		return Caller{}, err
	}
	if !c.IsAdmin() {
		cred := credential.Credential{ID: c.CredentialID, InstanceID: c.InstanceID, Kind: c.Kind, Subject: c.MachineID}
		return Caller{}, a.authFailed(ctx, &cred, "wrong_kind")
	}
	return c, nil
}
