package authority

import (
	"context"

	"github.com/google/uuid"

	"github.com/keyward/keyward/internal/credential"
)

// WorkspaceInput creates or changes a workspace; nil leaves a field as is.
type WorkspaceInput struct {
	Slug *string
	Name *string
}

// findWorkspace resolves an organization and a workspace of it, each by id
// or slug.
func findWorkspace(ctx context.Context, tx Tx, instanceID, org, ws string) (credential.Organization, credential.Workspace, error) {
	o, err := findOrganization(ctx, tx, instanceID, org)
	if err != nil {
		return o, credential.Workspace{}, err
	}
	var w credential.Workspace
	if _, perr := uuid.Parse(ws); perr == nil {
		w, err = tx.GetWorkspace(ctx, instanceID, o.ID, ws)
	} else {
		w, err = tx.GetWorkspaceBySlug(ctx, instanceID, o.ID, ws)
	}
	if credential.IsCode(err, credential.CodeNotFound) {
		err = credential.Errorf(credential.CodeNotFound, "no such workspace")
	}
	return o, w, err
}

func workspaceSlugTaken(err error) error {
	if credential.IsCode(err, credential.CodeConflict) {
		return credential.ParamError(credential.CodeConflict, "slug", "is already taken by another workspace of this organization")
	}
	return err
}

// CreateWorkspace creates a workspace in an organization.
func (a *Authority) CreateWorkspace(ctx context.Context, c Caller, org string, in WorkspaceInput) (credential.Workspace, error) {
	g, err := a.enter(ctx, c, "CreateWorkspace")
	if err != nil {
		return credential.Workspace{}, err
	}
	if err := validateOrganization(OrganizationInput(in), true); err != nil {
		return credential.Workspace{}, err
	}
	var w credential.Workspace
	err = g.mutate(ctx, func(tx *change) error {
		o, err := findOrganization(ctx, tx, c.InstanceID, org)
		if err != nil {
			return err
		}
		now := tx.now
		w = credential.Workspace{ID: uuid.NewString(), InstanceID: c.InstanceID, OrgID: o.ID, Slug: *in.Slug, Name: *in.Name, CreatedAt: now, UpdatedAt: now}
		if err := tx.InsertWorkspace(ctx, w); err != nil {
			return workspaceSlugTaken(err)
		}
		return tx.audit("workspace.create", "workspace", w.ID, map[string]string{"org_id": o.ID, "slug": w.Slug})
	})
	return w, err
}

// ListWorkspaces lists an organization's workspaces.
func (a *Authority) ListWorkspaces(ctx context.Context, c Caller, org string) ([]credential.Workspace, error) {
	return readInOrg(ctx, a, c, "ListWorkspaces", org, func(tx Tx, orgID string) ([]credential.Workspace, error) {
		return tx.ListWorkspaces(ctx, c.InstanceID, orgID)
	})
}

// GetWorkspace returns one workspace.
func (a *Authority) GetWorkspace(ctx context.Context, c Caller, org, ws string) (credential.Workspace, error) {
	if _, err := a.enter(ctx, c, "GetWorkspace"); err != nil {
		return credential.Workspace{}, err
	}
	var w credential.Workspace
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		_, w, err = findWorkspace(ctx, tx, c.InstanceID, org, ws)
		return err
	})
	return w, err
}

// UpdateWorkspace changes a workspace's slug or name.
func (a *Authority) UpdateWorkspace(ctx context.Context, c Caller, org, ws string, in WorkspaceInput) (credential.Workspace, error) {
	g, err := a.enter(ctx, c, "UpdateWorkspace")
	if err != nil {
		return credential.Workspace{}, err
	}
	if err := validateOrganization(OrganizationInput(in), false); err != nil {
		return credential.Workspace{}, err
	}
	var w credential.Workspace
	err = g.mutate(ctx, func(tx *change) error {
		var err error
		if _, w, err = findWorkspace(ctx, tx, c.InstanceID, org, ws); err != nil {
			return err
		}
		if in.Slug != nil {
			w.Slug = *in.Slug
		}
		if in.Name != nil {
			w.Name = *in.Name
		}
		w.UpdatedAt = tx.now
		if err := tx.UpdateWorkspace(ctx, w); err != nil {
			return workspaceSlugTaken(err)
		}
		return tx.audit("workspace.update", "workspace", w.ID, map[string]string{"slug": w.Slug, "name": w.Name})
	})
	return w, err
}

// DeleteWorkspace deletes a workspace and its memberships, and revokes
// every token bound to it.
func (a *Authority) DeleteWorkspace(ctx context.Context, c Caller, org, ws string) error {
	return a.mutate(ctx, c, "DeleteWorkspace", func(tx *change) error {
		o, w, err := findWorkspace(ctx, tx, c.InstanceID, org, ws)
		if err != nil {
			return err
		}
		revoked, err := tx.RevokeMatching(ctx, CredentialQuery{InstanceID: c.InstanceID, Kind: credential.KindPAT, ParentID: w.ID}, tx.now, "workspace deleted")
		if err != nil {
			return err
		}
		if err := tx.DeleteWorkspace(ctx, c.InstanceID, o.ID, w.ID); err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("workspace.delete", "workspace", w.ID, map[string]int{"pats_revoked": revoked})
	})
}

// MaxUserIDLength bounds user ids (they come from the caller's identity
// system, as Keystone's X-User-ID does).
const MaxUserIDLength = 255

// ValidUserID reports whether id can name a user: 1 to 255 printable
// ASCII characters without spaces.
func ValidUserID(id string) bool {
	if id == "" || len(id) > MaxUserIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// PutMember adds a user to a workspace or changes their role.
func (a *Authority) PutMember(ctx context.Context, c Caller, org, ws, userID, role string) (credential.Member, error) {
	g, err := a.enter(ctx, c, "PutMember")
	if err != nil {
		return credential.Member{}, err
	}
	if !ValidUserID(userID) {
		return credential.Member{}, credential.ParamError(credential.CodeInvalid, "user_id", "must be 1 to 255 printable characters without spaces")
	}
	if role != credential.MemberOwner && role != credential.MemberAdmin && role != credential.MemberMember {
		return credential.Member{}, credential.ParamError(credential.CodeInvalid, "role", "must be owner, admin or member")
	}
	var m credential.Member
	err = g.mutate(ctx, func(tx *change) error {
		_, w, err := findWorkspace(ctx, tx, c.InstanceID, org, ws)
		if err != nil {
			return err
		}
		now := tx.now
		m = credential.Member{InstanceID: c.InstanceID, WorkspaceID: w.ID, UserID: userID, Role: role, CreatedAt: now, UpdatedAt: now}
		if existing, err := tx.GetMember(ctx, c.InstanceID, w.ID, userID); err == nil {
			m.CreatedAt = existing.CreatedAt
		}
		if err := tx.PutMember(ctx, m); err != nil {
			return err
		}
		return tx.audit("workspace.member.put", "workspace", w.ID, map[string]string{"user_id": userID, "role": role})
	})
	return m, err
}

// ListMembers lists a workspace's members.
func (a *Authority) ListMembers(ctx context.Context, c Caller, org, ws string) ([]credential.Member, error) {
	if _, err := a.enter(ctx, c, "ListMembers"); err != nil {
		return nil, err
	}
	var out []credential.Member
	err := a.store.View(ctx, func(tx Tx) error {
		_, w, err := findWorkspace(ctx, tx, c.InstanceID, org, ws)
		if err != nil {
			return err
		}
		out, err = tx.ListMembers(ctx, c.InstanceID, w.ID)
		return err
	})
	return out, err
}

// GetMember returns one membership.
func (a *Authority) GetMember(ctx context.Context, c Caller, org, ws, userID string) (credential.Member, error) {
	if _, err := a.enter(ctx, c, "GetMember"); err != nil {
		return credential.Member{}, err
	}
	var m credential.Member
	err := a.store.View(ctx, func(tx Tx) error {
		_, w, err := findWorkspace(ctx, tx, c.InstanceID, org, ws)
		if err != nil {
			return err
		}
		m, err = tx.GetMember(ctx, c.InstanceID, w.ID, userID)
		return err
	})
	return m, err
}

// RemoveMember removes a user from a workspace and revokes the tokens they
// hold bound to it.
func (a *Authority) RemoveMember(ctx context.Context, c Caller, org, ws, userID string) error {
	return a.mutate(ctx, c, "RemoveMember", func(tx *change) error {
		_, w, err := findWorkspace(ctx, tx, c.InstanceID, org, ws)
		if err != nil {
			return err
		}
		if err := tx.DeleteMember(ctx, c.InstanceID, w.ID, userID); err != nil {
			return err
		}
		revoked, err := tx.RevokeMatching(ctx, CredentialQuery{InstanceID: c.InstanceID, Kind: credential.KindPAT, Subject: userID, ParentID: w.ID}, tx.now, "removed from workspace")
		if err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("workspace.member.remove", "workspace", w.ID, map[string]any{"user_id": userID, "pats_revoked": revoked})
	})
}
