package client

import (
	"context"
	"net/http"
	"time"
)

// Admin key permissions. Write implies read; PermissionVerify verifies and
// introspects every kind of credential and does nothing else.
const (
	PermissionAll    = "*"
	PermissionVerify = "verify"
)

// AdminKey is an admin key as keyward shows it; Secret is set in the
// create response only.
type AdminKey struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Permissions []string   `json:"permissions"`
	Prefix      string     `json:"prefix"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	Revoked     bool       `json:"revoked"`
	RevokedAt   *time.Time `json:"revoked_at"`
	Secret      string     `json:"secret,omitempty"`
}

// AdminKeyParams creates an admin key. Permissions must be held by the
// client's own key; ExpiresAt, when set, must be no later than its expiry.
type AdminKeyParams struct {
	Name        string     `json:"name"`
	Permissions []string   `json:"permissions"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

// CreateAdminKey creates an admin key (POST /v1/admin_keys); the secret is
// in the result this once.
func (c *Client) CreateAdminKey(ctx context.Context, in AdminKeyParams) (AdminKey, error) {
	var out AdminKey
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/admin_keys", body: jsonBody(in)}, &out)
	return out, err
}

// ListAdminKeys lists all the instance's admin keys, revoked ones
// included, walking every page (GET /v1/admin_keys).
func (c *Client) ListAdminKeys(ctx context.Context) ([]AdminKey, error) {
	return All(ctx, func(ctx context.Context, cursor string) (CursorPage[AdminKey], error) {
		return c.ListAdminKeysPage(ctx, ListParams{Limit: maxPage, Cursor: cursor})
	})
}

// ListAdminKeysPage lists one page of the instance's admin keys.
func (c *Client) ListAdminKeysPage(ctx context.Context, p ListParams) (CursorPage[AdminKey], error) {
	return listPage[AdminKey](ctx, c, "/v1/admin_keys", nil, p)
}

// GetAdminKey reads one admin key (GET /v1/admin_keys/{id}).
func (c *Client) GetAdminKey(ctx context.Context, id string) (AdminKey, error) {
	var out AdminKey
	if err := need("id", id); err != nil {
		return out, err
	}
	err := c.get(ctx, "/v1/admin_keys/"+seg(id), &out)
	return out, err
}

// RevokeAdminKey revokes an admin key; it stops authenticating at once
// (POST /v1/admin_keys/{id}/revoke).
func (c *Client) RevokeAdminKey(ctx context.Context, id string) (AdminKey, error) {
	var out AdminKey
	if err := need("id", id); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/admin_keys/" + seg(id) + "/revoke"}, &out)
	return out, err
}
