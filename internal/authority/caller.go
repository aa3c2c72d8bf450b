package authority

import (
	"context"

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
}

// Operator is the party at the host's shell: CLI commands that open the
// store directly act as the operator of one instance.
func Operator(instanceID string) Caller { return Caller{InstanceID: instanceID} }

// IsAdmin reports whether the caller may do everything in its instance.
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

// Authenticate resolves a presented caller secret (an admin key or a
// machine secret key) to a Caller. Every failure is the same
// CodeUnauthenticated error; a store failure is CodeUnavailable or
// CodeInternal, never a 401.
func (a *Authority) Authenticate(ctx context.Context, token string) (Caller, error) {
	secret, kind, err := credential.Parse(token)
	if err != nil || (kind != credential.KindAdminKey && kind != credential.KindMachineKey) {
		return Caller{}, errUnauthenticated
	}
	e, err := a.lookup(ctx, a.keyring.Digest(secret))
	if err != nil {
		return Caller{}, err
	}
	now := a.clock.Now()
	if !e.found || e.cred.Kind != kind || !e.cred.ActiveAt(now) {
		return Caller{}, errUnauthenticated
	}
	a.usage.record(e.cred.InstanceID, e.cred.ID, now)
	caller := Caller{InstanceID: e.cred.InstanceID, Kind: e.cred.Kind, CredentialID: e.cred.ID}
	if e.cred.Kind == credential.KindMachineKey {
		caller.MachineID = e.cred.Subject
	}
	return caller, nil
}

func requireAdmin(c Caller) error {
	if !c.IsAdmin() {
		return errForbidden
	}
	return nil
}
