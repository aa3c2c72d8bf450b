package authority

import (
	"context"

	"github.com/keyward/keyward/internal/credential"
)

// AuthenticateClient authenticates an OAuth client (RFC 6749 §2.3.1): the
// client id is a machine id and the client secret that machine's secret
// key. A secret of another machine, or of another kind, fails exactly as a
// wrong one does.
func (a *Authority) AuthenticateClient(ctx context.Context, clientID, secret string) (Caller, error) {
	return a.authenticate(ctx, secret, func(c Caller) error {
		if c.Kind != credential.KindMachineKey || c.MachineID != clientID {
			return errUnauthenticated
		}
		return nil
	})
}

// RevokeM2MTokenBySecret is RFC 7009 revocation: it revokes the opaque M2M
// token whose secret is token. A machine may revoke only tokens it minted,
// an admin any token of its instance. A token that is unknown, already
// revoked or not the caller's to revoke changes nothing and is no error
// (the RFC answers 200 alike, so the endpoint is no oracle). A JWT cannot
// be revoked (it is checked offline until it expires), nor may other
// kinds be revoked here: both are CodeWrongType, the RFC's
// unsupported_token_type.
func (a *Authority) RevokeM2MTokenBySecret(ctx context.Context, c Caller, token string) error {
	if _, err := a.enter(ctx, c, "RevokeM2MTokenBySecret"); err != nil {
		return err
	}
	if looksLikeJWT(token) {
		return credential.ParamError(credential.CodeWrongType, "token", "a JWT cannot be revoked; it is valid until it expires")
	}
	secret, kind, err := credential.Parse(token)
	if err != nil {
		return nil
	}
	if kind != credential.KindM2MToken {
		return credential.ParamError(credential.CodeWrongType, "token", "only M2M tokens are revoked here")
	}
	e, err := a.lookup(ctx, a.keyring.Digest(secret), a.clock.Now())
	if err != nil {
		return err
	}
	if !e.found || e.cred.InstanceID != c.InstanceID || e.cred.Kind != kind ||
		(c.Kind == credential.KindMachineKey && e.cred.Subject != c.MachineID) {
		return nil
	}
	_, err = a.RevokeM2MToken(ctx, c, e.cred.ID, "revoked through OAuth token revocation")
	if credential.IsCode(err, credential.CodeNotFound) {
		return nil
	}
	return err
}
