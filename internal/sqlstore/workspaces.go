package sqlstore

import (
	"context"
	"slices"
	"strings"

	"github.com/keyward/keyward/internal/credential"
)

// Workspaces and their members. A workspace carries its instance and
// organization, and every query matches both, so a workspace of another
// organization or instance is not found. A membership carries its
// instance, and every query matches it. Deleting an organization leaves its
// workspaces, and deleting a workspace its memberships, to ON DELETE
// CASCADE.

const workspaceColumns = `id, instance_id, org_id, slug, name, created_at, updated_at`

func scanWorkspace(s scanner) (credential.Workspace, error) {
	var w credential.Workspace
	err := s.Scan(&w.ID, &w.InstanceID, &w.OrgID, &w.Slug, &w.Name, scanTime(&w.CreatedAt), scanTime(&w.UpdatedAt))
	return w, err
}

// InsertWorkspace inserts the workspace only if its organization belongs
// to its instance (the foreign key alone would accept another instance's
// organization); CodeNotFound otherwise. A slug (or id) already taken in
// the organization is CodeConflict.
func (t *tx) InsertWorkspace(ctx context.Context, w credential.Workspace) error {
	return t.execOne(ctx, "workspace", `INSERT INTO workspaces (`+workspaceColumns+`)
		SELECT ?, ?, ?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM organizations WHERE instance_id = ? AND id = ?)`,
		w.ID, w.InstanceID, w.OrgID, w.Slug, w.Name, millis(w.CreatedAt), millis(w.UpdatedAt),
		w.InstanceID, w.OrgID)
}

func (t *tx) GetWorkspace(ctx context.Context, instanceID, orgID, id string) (credential.Workspace, error) {
	w, err := scanWorkspace(t.queryRow(ctx, `SELECT `+workspaceColumns+` FROM workspaces
		WHERE instance_id = ? AND org_id = ? AND id = ?`, instanceID, orgID, id))
	return w, translate(err, "workspace")
}

// GetWorkspaceBySlug matches the slug exactly (byte for byte).
func (t *tx) GetWorkspaceBySlug(ctx context.Context, instanceID, orgID, slug string) (credential.Workspace, error) {
	w, err := scanWorkspace(t.queryRow(ctx, `SELECT `+workspaceColumns+` FROM workspaces
		WHERE instance_id = ? AND org_id = ? AND slug = ?`, instanceID, orgID, slug))
	return w, translate(err, "workspace")
}

// FindWorkspace is GetWorkspace bounded by the instance alone: a
// workspace of any of its organizations.
func (t *tx) FindWorkspace(ctx context.Context, instanceID, id string) (credential.Workspace, error) {
	w, err := scanWorkspace(t.queryRow(ctx, `SELECT `+workspaceColumns+` FROM workspaces
		WHERE instance_id = ? AND id = ?`, instanceID, id))
	return w, translate(err, "workspace")
}

// ListWorkspaces orders by created_at, id. An unknown organization has no
// workspaces.
func (t *tx) ListWorkspaces(ctx context.Context, instanceID, orgID string) ([]credential.Workspace, error) {
	return queryAll(ctx, t, "workspace", scanWorkspace, `SELECT `+workspaceColumns+` FROM workspaces
		WHERE instance_id = ? AND org_id = ? ORDER BY created_at, id`, instanceID, orgID)
}

// UpdateWorkspace reports CodeConflict for a slug another workspace of the
// organization has.
func (t *tx) UpdateWorkspace(ctx context.Context, w credential.Workspace) error {
	return t.execOne(ctx, "workspace", `UPDATE workspaces SET slug = ?, name = ?, updated_at = ?
		WHERE instance_id = ? AND org_id = ? AND id = ?`,
		w.Slug, w.Name, millis(w.UpdatedAt), w.InstanceID, w.OrgID, w.ID)
}

// DeleteWorkspace leaves its memberships to ON DELETE CASCADE. Credentials
// bound to it (parent_id) stay: revoking them is the caller's business.
func (t *tx) DeleteWorkspace(ctx context.Context, instanceID, orgID, id string) error {
	return t.execOne(ctx, "workspace", `DELETE FROM workspaces WHERE instance_id = ? AND org_id = ? AND id = ?`,
		instanceID, orgID, id)
}

const memberColumns = `instance_id, workspace_id, user_id, role, created_at, updated_at`

func scanMember(s scanner) (credential.Member, error) {
	var m credential.Member
	err := s.Scan(&m.InstanceID, &m.WorkspaceID, &m.UserID, &m.Role, scanTime(&m.CreatedAt), scanTime(&m.UpdatedAt))
	return m, err
}

// PutMember inserts the membership only if the workspace belongs to m's
// instance; CodeNotFound otherwise. An existing membership gets m's role
// and updated_at and keeps its created_at.
func (t *tx) PutMember(ctx context.Context, m credential.Member) error {
	// The SELECT's WHERE also keeps SQLite from reading ON CONFLICT as a
	// join constraint. The DO UPDATE's WHERE can only fail for a row written
	// under another instance by other means; it then reads as not found.
	return t.execOne(ctx, "workspace member", `INSERT INTO workspace_members (`+memberColumns+`)
		SELECT ?, ?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM workspaces WHERE instance_id = ? AND id = ?)
		ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at
		WHERE workspace_members.instance_id = excluded.instance_id`,
		m.InstanceID, m.WorkspaceID, m.UserID, m.Role, millis(m.CreatedAt), millis(m.UpdatedAt),
		m.InstanceID, m.WorkspaceID)
}

func (t *tx) GetMember(ctx context.Context, instanceID, workspaceID, userID string) (credential.Member, error) {
	m, err := scanMember(t.queryRow(ctx, `SELECT `+memberColumns+` FROM workspace_members
		WHERE instance_id = ? AND workspace_id = ? AND user_id = ?`, instanceID, workspaceID, userID))
	return m, translate(err, "workspace member")
}

// ListMembers sorts by user id in byte order here rather than in the
// database, whose collation of ids may differ. An unknown workspace has no
// members.
func (t *tx) ListMembers(ctx context.Context, instanceID, workspaceID string) ([]credential.Member, error) {
	members, err := queryAll(ctx, t, "workspace member", scanMember, `SELECT `+memberColumns+` FROM workspace_members
		WHERE instance_id = ? AND workspace_id = ?`, instanceID, workspaceID)
	slices.SortFunc(members, func(a, b credential.Member) int { return strings.Compare(a.UserID, b.UserID) })
	return members, err
}

func (t *tx) DeleteMember(ctx context.Context, instanceID, workspaceID, userID string) error {
	return t.execOne(ctx, "workspace member", `DELETE FROM workspace_members
		WHERE instance_id = ? AND workspace_id = ? AND user_id = ?`, instanceID, workspaceID, userID)
}
