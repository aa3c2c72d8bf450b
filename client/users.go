package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// The user-scoped families, under /v1/users/{user}: an admin key acts for
// any user; a PAT only for its own.

// PAT is a personal access token. Token is set in the create answer only.
type PAT struct {
	ID          string          `json:"id"`
	UserID      string          `json:"user_id"`
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	Scopes      []string        `json:"scopes"`
	WorkspaceID *string         `json:"workspace_id"`
	TokenPrefix string          `json:"token_prefix"`
	CreatedAt   time.Time       `json:"created_at"`
	LastUsedAt  *time.Time      `json:"last_used_at"`
	ExpiresAt   *time.Time      `json:"expires_at"`
	Meta        json.RawMessage `json:"meta"` // the token's meta ({} when none)
	Token       string          `json:"token,omitempty"`
}

// PATParams creates a PAT (Name required); WorkspaceID binds it to a
// workspace.
type PATParams struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Scopes      []string   `json:"scopes,omitempty"`
	WorkspaceID string     `json:"workspace_id,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

// PATUpdate renames a PAT or changes its description.
type PATUpdate struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// BackupClient is a registered backup client: its client-info object as sent.
type BackupClient struct {
	ClientID  string          `json:"client_id"`
	UserID    string          `json:"user_id"`
	Client    json.RawMessage `json:"client"`
	CreatedAt time.Time       `json:"created_at"`
}

func userPath(user string) string { return "/v1/users/" + seg(user) }

// CreatePAT creates a PAT for user; the token is in the result this once.
func (c *Client) CreatePAT(ctx context.Context, user string, in PATParams) (PAT, error) {
	var out PAT
	if err := need("user_id", user); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPost, path: userPath(user) + "/pats", body: jsonBody(in)}, &out)
	return out, err
}

// PATQuery selects a page of a user's live PATs. Meta keeps those whose
// meta has each key with the value (at most MaxMetaFilters keys).
type PATQuery struct {
	ListParams
	Meta map[string]string
}

// ListPATs lists one page of user's live PATs (never a token).
func (c *Client) ListPATs(ctx context.Context, user string, q PATQuery) (CursorPage[PAT], error) {
	if err := need("user_id", user); err != nil {
		return CursorPage[PAT]{}, err
	}
	return listPage[PAT](ctx, c, userPath(user)+"/pats", addMeta(nil, q.Meta), q.ListParams)
}

// UpdatePAT renames one of user's PATs or changes its description.
func (c *Client) UpdatePAT(ctx context.Context, user, id string, in PATUpdate) (PAT, error) {
	var out PAT
	if err := need("user_id", user); err != nil {
		return out, err
	}
	if err := need("pat_id", id); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPatch, path: userPath(user) + "/pats/" + seg(id), body: jsonBody(in)}, &out)
	return out, err
}

// RevokePAT revokes one of user's PATs.
func (c *Client) RevokePAT(ctx context.Context, user, id string) error {
	if err := need("user_id", user); err != nil {
		return err
	}
	if err := need("pat_id", id); err != nil {
		return err
	}
	return c.do(ctx, request{method: http.MethodPost, path: userPath(user) + "/pats/" + seg(id) + "/revoke"}, nil)
}

// CreateBackupClient registers a backup client for user from its
// client-info object (client_id required).
func (c *Client) CreateBackupClient(ctx context.Context, user string, info json.RawMessage) (BackupClient, error) {
	var out BackupClient
	if err := need("user_id", user); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPost, path: userPath(user) + "/clients", body: info}, &out)
	return out, err
}

// ListBackupClients lists one page of user's clients.
func (c *Client) ListBackupClients(ctx context.Context, user string, p ListParams) (CursorPage[BackupClient], error) {
	if err := need("user_id", user); err != nil {
		return CursorPage[BackupClient]{}, err
	}
	return listPage[BackupClient](ctx, c, userPath(user)+"/clients", nil, p)
}

// GetBackupClient reads one of user's clients.
func (c *Client) GetBackupClient(ctx context.Context, user, clientID string) (BackupClient, error) {
	var out BackupClient
	if err := need("user_id", user); err != nil {
		return out, err
	}
	if err := need("client_id", clientID); err != nil {
		return out, err
	}
	err := c.get(ctx, userPath(user)+"/clients/"+seg(clientID), &out)
	return out, err
}

// DeleteBackupClient deletes one of user's clients.
func (c *Client) DeleteBackupClient(ctx context.Context, user, clientID string) error {
	if err := need("user_id", user); err != nil {
		return err
	}
	if err := need("client_id", clientID); err != nil {
		return err
	}
	return c.del(ctx, userPath(user)+"/clients/"+seg(clientID))
}
