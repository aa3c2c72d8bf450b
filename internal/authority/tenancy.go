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
		in, created = credential.Instance{}, false // a run before this one may have set them
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
	_, err := a.insertAdminKey(ctx, tx, op, key, AdminKeyInput{Name: "first key", Permissions: []credential.Permission{credential.PermAll}})
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

// Instance returns the caller's instance.
func (a *Authority) Instance(ctx context.Context, c Caller) (credential.Instance, error) {
	if _, err := a.enter(ctx, c, "Instance"); err != nil {
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
