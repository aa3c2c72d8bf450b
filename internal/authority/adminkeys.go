package authority

import (
	"context"
	"encoding/json"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// AdminKeyNameMax bounds an admin key's name.
const AdminKeyNameMax = 255

// AdminKey is an admin key as keyward shows it: never its secret.
type AdminKey struct {
	ID            string
	InstanceID    string
	Name          string
	Permissions   []credential.Permission
	DisplayPrefix string
	CreatedAt     time.Time
	ExpiresAt     time.Time // zero: never
	LastUsedAt    time.Time
	RevokedAt     time.Time
}

// adminKeyAttrs are what an admin key's credential row keeps beside the
// digest. A row without them (keys made before permissions existed) holds
// PermAll.
type adminKeyAttrs struct {
	Name        string                  `json:"name"`
	Permissions []credential.Permission `json:"permissions"`
}

func adminKeyPermissions(a tokenAttrs) []credential.Permission {
	if len(a.Permissions) == 0 {
		return []credential.Permission{credential.PermAll}
	}
	return a.Permissions
}

func adminKeyView(c credential.Credential, a tokenAttrs) AdminKey {
	return AdminKey{
		ID: c.ID, InstanceID: c.InstanceID, Name: a.Name, Permissions: adminKeyPermissions(a),
		DisplayPrefix: c.DisplayPrefix, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt,
		LastUsedAt: c.LastUsedAt, RevokedAt: c.RevokedAt,
	}
}

// CreateAdminKeyInput is what creating an admin key takes. Permissions
// are names from the vocabulary; nil ExpiresAt means never.
type CreateAdminKeyInput struct {
	Name        *string
	Permissions []string
	ExpiresAt   *time.Time
}

// AdminKeyInput is a validated CreateAdminKeyInput.
type AdminKeyInput struct {
	Name        string
	Permissions []credential.Permission
	ExpiresAt   time.Time
}

// CreateAdminKey issues an admin key for the caller's instance holding
// the given permissions. A key grants only what it holds: permissions
// beyond the caller's, or an expiry later than the caller's (or none when
// the caller expires), are CodeForbidden and nothing is written. The
// secret is returned this once.
func (a *Authority) CreateAdminKey(ctx context.Context, c Caller, in CreateAdminKeyInput) (AdminKey, credential.Secret, error) {
	g, err := a.enter(ctx, c, "CreateAdminKey")
	if err != nil {
		return AdminKey{}, credential.Secret{}, err
	}
	if in.Name == nil {
		return AdminKey{}, credential.Secret{}, credential.ParamError(credential.CodeMissing, "name", "is required")
	}
	if err := validateName("name", *in.Name, AdminKeyNameMax); err != nil {
		return AdminKey{}, credential.Secret{}, err
	}
	perms, err := credential.ParsePermissions("permissions", in.Permissions)
	if err != nil {
		return AdminKey{}, credential.Secret{}, err
	}
	now := g.now
	v := AdminKeyInput{Name: *in.Name, Permissions: perms}
	if in.ExpiresAt != nil {
		if !in.ExpiresAt.After(now) {
			return AdminKey{}, credential.Secret{}, credential.ParamError(credential.CodeInvalid, "expires_at", "must be in the future")
		}
		v.ExpiresAt = in.ExpiresAt.UTC().Truncate(time.Millisecond)
	}
	if err := a.refusedIf(ctx, c, "permission_escalation", grantsOnly(c, perms)); err != nil {
		return AdminKey{}, credential.Secret{}, err
	}
	if err := a.refusedIf(ctx, c, "outlives_creator", outlivesNot(c, v.ExpiresAt)); err != nil {
		return AdminKey{}, credential.Secret{}, err
	}
	key, err := credential.Generate(credential.KindAdminKey)
	if err != nil {
		return AdminKey{}, credential.Secret{}, err
	}
	cred, detail, err := a.newAdminKey(c.InstanceID, key, v, now)
	if err != nil {
		return AdminKey{}, credential.Secret{}, err
	}
	var out AdminKey
	err = g.mutate(ctx, func(tx *change) error {
		if _, err := tx.GetInstance(ctx, c.InstanceID); err != nil {
			return err
		}
		if err := tx.InsertCredential(ctx, cred); err != nil {
			return err
		}
		if err := tx.audit("admin_key.create", "admin_key", cred.ID, detail); err != nil {
			return err
		}
		attrs, err := parseTokenAttrs(cred)
		out = adminKeyView(cred, attrs)
		return err
	})
	if err != nil {
		return AdminKey{}, credential.Secret{}, err
	}
	return out, key, nil
}

// grantsOnly refuses a grant of permissions the caller does not hold.
func grantsOnly(c Caller, perms []credential.Permission) error {
	for _, p := range perms {
		if !c.holds(p) {
			return credential.Errorf(credential.CodeForbidden, "a key cannot grant the %s permission, which it does not hold", p)
		}
	}
	return nil
}

// outlivesNot refuses a credential that would outlive the caller's own
// (expiresAt zero means never).
func outlivesNot(c Caller, expiresAt time.Time) error {
	switch {
	case c.ExpiresAt.IsZero():
		return nil
	case expiresAt.IsZero():
		return credential.Errorf(credential.CodeForbidden, "a credential that expires cannot create one that does not: set an expiry no later than %s", c.ExpiresAt.UTC().Format(time.RFC3339))
	case expiresAt.After(c.ExpiresAt):
		return credential.Errorf(credential.CodeForbidden, "a credential cannot create one that outlives it: the expiry must be no later than %s", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// newAdminKey builds an admin key's row of the instance at now, and the
// detail of its admin_key.create event.
func (a *Authority) newAdminKey(instanceID string, key credential.Secret, in AdminKeyInput, now time.Time) (credential.Credential, map[string]any, error) {
	cred := a.newCredential(credential.NewID(credential.PrefixAdminKey, now), instanceID, credential.KindAdminKey, key, instanceID, now)
	cred.ExpiresAt = in.ExpiresAt
	var err error
	if cred.Attrs, err = json.Marshal(adminKeyAttrs{Name: in.Name, Permissions: in.Permissions}); err != nil {
		return cred, nil, credential.Wrap(credential.CodeInternal, err, "encode admin key")
	}
	detail := map[string]any{"name": in.Name, "permissions": in.Permissions}
	if !in.ExpiresAt.IsZero() {
		detail["expires_at"] = in.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return cred, detail, nil
}

// insertAdminKey writes an admin key and its audit event in housekeeping
// (an instance's first key, made by the operator's command).
func (a *Authority) insertAdminKey(ctx context.Context, tx Tx, c Caller, key credential.Secret, in AdminKeyInput) (credential.Credential, error) {
	now := a.clock.Now()
	cred, detail, err := a.newAdminKey(c.InstanceID, key, in, now)
	if err != nil {
		return cred, err
	}
	if err := tx.InsertCredential(ctx, cred); err != nil {
		return cred, err
	}
	return cred, a.auditAt(ctx, tx, c, now, "admin_key.create", "admin_key", cred.ID, detail)
}

// ListAdminKeys returns the instance's admin keys, revoked ones included,
// oldest first; secrets and digests stay inside.
func (a *Authority) ListAdminKeys(ctx context.Context, c Caller) ([]AdminKey, error) {
	if _, err := a.enter(ctx, c, "ListAdminKeys"); err != nil {
		return nil, err
	}
	var out []AdminKey
	err := a.store.View(ctx, func(tx Tx) error {
		creds, err := tx.ListCredentials(ctx, CredentialFilter{InstanceID: c.InstanceID, Kind: credential.KindAdminKey})
		if err != nil {
			return err
		}
		out = make([]AdminKey, 0, len(creds))
		for _, cred := range creds {
			attrs, err := parseTokenAttrs(cred)
			if err != nil {
				return err
			}
			out = append(out, adminKeyView(cred, attrs))
		}
		return nil
	})
	return out, err
}

// adminKeyOf loads one admin key of the caller's instance; any other
// credential, or one of another instance, is CodeNotFound.
func adminKeyOf(ctx context.Context, tx CredentialTx, instanceID, id string) (credential.Credential, tokenAttrs, error) {
	cred, err := tx.GetCredential(ctx, instanceID, id)
	if credential.IsCode(err, credential.CodeNotFound) || (err == nil && cred.Kind != credential.KindAdminKey) {
		return cred, tokenAttrs{}, credential.Errorf(credential.CodeNotFound, "no admin key %.64s", id)
	}
	if err != nil {
		return cred, tokenAttrs{}, err
	}
	attrs, err := parseTokenAttrs(cred)
	return cred, attrs, err
}

// GetAdminKey returns one admin key of the caller's instance.
func (a *Authority) GetAdminKey(ctx context.Context, c Caller, id string) (AdminKey, error) {
	if _, err := a.enter(ctx, c, "GetAdminKey"); err != nil {
		return AdminKey{}, err
	}
	var out AdminKey
	err := a.store.View(ctx, func(tx Tx) error {
		cred, attrs, err := adminKeyOf(ctx, tx, c.InstanceID, id)
		out = adminKeyView(cred, attrs)
		return err
	})
	return out, err
}

// RevokeAdminKey revokes one admin key of the caller's instance; it stops
// authenticating at once. A key cannot revoke one holding permissions
// beyond its own. Revoking a revoked or unknown key is CodeNotFound.
func (a *Authority) RevokeAdminKey(ctx context.Context, c Caller, id string) (AdminKey, error) {
	var out AdminKey
	err := a.mutate(ctx, c, "RevokeAdminKey", func(tx *change) error {
		cred, attrs, err := adminKeyOf(ctx, tx, c.InstanceID, id)
		if err != nil {
			return err
		}
		if cred.Revoked() {
			return credential.Errorf(credential.CodeNotFound, "no admin key %.64s", id)
		}
		if !grantsAll(c, adminKeyPermissions(attrs)) {
			return a.forbidIn(ctx, tx, c, "permission_escalation", credential.Errorf(credential.CodeForbidden, "a key cannot revoke a key holding permissions beyond its own"))
		}
		now := tx.now
		if err := tx.RevokeCredential(ctx, c.InstanceID, id, now, "revoked by "+c.actorKind()); err != nil {
			return err
		}
		cred.RevokedAt, cred.UpdatedAt = now, now
		out = adminKeyView(cred, attrs)
		tx.invalidate(cred.Digest)
		return tx.audit("admin_key.revoke", "admin_key", id, nil)
	})
	return out, err
}

func grantsAll(c Caller, perms []credential.Permission) bool { return grantsOnly(c, perms) == nil }
