package authority

import (
	"context"
	"strings"

	"github.com/keyward/keyward/internal/credential"
)

// DefaultInstanceName is the name of the instance created on first start.
const DefaultInstanceName = "default"

// Bootstrap prepares an empty store on first start: it creates the default
// instance and one admin key, with the value of preset when it is given
// (KEYWARD_BOOTSTRAP_ADMIN_KEY) or a fresh one otherwise. On a store that
// already has an instance it changes nothing and returns created=false.
func (a *Authority) Bootstrap(ctx context.Context, preset string) (in credential.Instance, key credential.Secret, created bool, err error) {
	if preset != "" {
		s, kind, err := credential.Parse(strings.TrimSpace(preset))
		if err != nil || kind != credential.KindAdminKey {
			return in, key, false, credential.Errorf(credential.CodeInvalid, "the bootstrap admin key is not a well-formed %s key", credential.KindAdminKey.Prefix())
		}
		key = s
	} else if key, err = credential.Generate(credential.KindAdminKey); err != nil {
		return in, key, false, err
	}
	err = a.store.Update(ctx, func(tx Tx) error {
		existing, err := tx.ListInstances(ctx)
		if err != nil || len(existing) > 0 {
			return err
		}
		in, err = a.createInstance(ctx, tx, DefaultInstanceName, key)
		created = err == nil
		return err
	})
	if !created {
		key = credential.Secret{}
	}
	return in, key, created, err
}

// CreateInstance creates a tenant and its first admin key.
func (a *Authority) CreateInstance(ctx context.Context, name string) (credential.Instance, credential.Secret, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 255 {
		return credential.Instance{}, credential.Secret{}, credential.ParamError(credential.CodeInvalid, "name", "must be 1 to 255 characters")
	}
	key, err := credential.Generate(credential.KindAdminKey)
	if err != nil {
		return credential.Instance{}, credential.Secret{}, err
	}
	var in credential.Instance
	err = a.store.Update(ctx, func(tx Tx) error {
		in, err = a.createInstance(ctx, tx, name, key)
		return err
	})
	if err != nil {
		return credential.Instance{}, credential.Secret{}, err
	}
	return in, key, nil
}

func (a *Authority) createInstance(ctx context.Context, tx Tx, name string, key credential.Secret) (credential.Instance, error) {
	now := a.clock.Now()
	in := credential.Instance{ID: credential.NewID(credential.PrefixInstance, now), Name: name, CreatedAt: now}
	if err := tx.CreateInstance(ctx, in); err != nil {
		return in, err
	}
	op := Operator(in.ID)
	if err := a.audit(ctx, tx, op, "instance.create", "instance", in.ID, map[string]string{"name": name}); err != nil {
		return in, err
	}
	_, err := a.insertAdminKey(ctx, tx, op, key)
	return in, err
}

// ListInstances returns every instance (an operator command).
func (a *Authority) ListInstances(ctx context.Context) ([]credential.Instance, error) {
	var out []credential.Instance
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.ListInstances(ctx)
		return err
	})
	return out, err
}

// CreateAdminKey issues a new admin key for the caller's instance.
func (a *Authority) CreateAdminKey(ctx context.Context, c Caller) (credential.Credential, credential.Secret, error) {
	if err := requireAdmin(c); err != nil {
		return credential.Credential{}, credential.Secret{}, err
	}
	key, err := credential.Generate(credential.KindAdminKey)
	if err != nil {
		return credential.Credential{}, credential.Secret{}, err
	}
	var cred credential.Credential
	err = a.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.GetInstance(ctx, c.InstanceID); err != nil {
			return err
		}
		cred, err = a.insertAdminKey(ctx, tx, c, key)
		return err
	})
	if err != nil {
		return credential.Credential{}, credential.Secret{}, err
	}
	return cred, key, nil
}

func (a *Authority) insertAdminKey(ctx context.Context, tx Tx, c Caller, key credential.Secret) (credential.Credential, error) {
	cred := a.newCredential(credential.NewID(credential.PrefixAdminKey, a.clock.Now()), c.InstanceID, credential.KindAdminKey, key, c.InstanceID)
	if err := tx.InsertCredential(ctx, cred); err != nil {
		return cred, err
	}
	return cred, a.audit(ctx, tx, c, "admin_key.create", "admin_key", cred.ID, nil)
}

// ListAdminKeys returns the instance's admin keys (digests stay inside).
func (a *Authority) ListAdminKeys(ctx context.Context, c Caller) ([]credential.Credential, error) {
	if err := requireAdmin(c); err != nil {
		return nil, err
	}
	var out []credential.Credential
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.ListCredentials(ctx, CredentialFilter{InstanceID: c.InstanceID, Kind: credential.KindAdminKey})
		return err
	})
	return out, err
}

// RevokeAdminKey revokes one admin key of the caller's instance. Revoking a
// revoked or unknown key is CodeNotFound.
func (a *Authority) RevokeAdminKey(ctx context.Context, c Caller, id string) error {
	if err := requireAdmin(c); err != nil {
		return err
	}
	var cred credential.Credential
	err := a.store.Update(ctx, func(tx Tx) error {
		var err error
		if cred, err = tx.GetCredential(ctx, c.InstanceID, id); err != nil {
			return err
		}
		if cred.Kind != credential.KindAdminKey {
			return credential.Errorf(credential.CodeNotFound, "no admin key %s", id)
		}
		if err := tx.RevokeCredential(ctx, c.InstanceID, id, a.clock.Now(), "revoked by operator"); err != nil {
			return err
		}
		return a.audit(ctx, tx, c, "admin_key.revoke", "admin_key", id, nil)
	})
	if err == nil {
		a.invalidate(ctx, cred.Digest)
	}
	return err
}

// Instance returns the caller's instance.
func (a *Authority) Instance(ctx context.Context, c Caller) (credential.Instance, error) {
	if err := requireAdmin(c); err != nil {
		return credential.Instance{}, err
	}
	var in credential.Instance
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		in, err = tx.GetInstance(ctx, c.InstanceID)
		return err
	})
	return in, err
}
