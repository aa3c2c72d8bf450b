package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// OrgToken is an organization's API token. Key is set in the create
// answer only; Mask is its first and last four characters.
type OrgToken struct {
	ID         string          `json:"id"`
	OrgID      string          `json:"org_id"`
	Name       string          `json:"name"`
	Privileges []Privilege     `json:"privileges"`
	SrcIPs     []string        `json:"src_ips"`
	CreatedBy  string          `json:"created_by"`
	Mask       string          `json:"mask"`
	CreatedAt  time.Time       `json:"created_at"`
	LastUsedAt *time.Time      `json:"last_used_at"`
	Meta       json.RawMessage `json:"meta"` // the token's meta ({} when none)
	Key        string          `json:"key,omitempty"`
}

// OrgTokenParams creates an org token (Name and Privileges required) or,
// on update, changes what is set.
type OrgTokenParams struct {
	Name       string      `json:"name,omitempty"`
	Privileges []Privilege `json:"privileges,omitempty"`
	SrcIPs     []string    `json:"src_ips,omitzero"` // an empty, non-nil list is sent (any address)
}

func orgTokensPath(org string) string { return "/v1/organizations/" + seg(org) + "/tokens" }

// CreateOrgToken creates a token for the organization (its id); the key is
// in the result this once. Needs organizations:write.
func (c *Client) CreateOrgToken(ctx context.Context, org string, in OrgTokenParams) (OrgToken, error) {
	var out OrgToken
	if err := need("org", org); err != nil {
		return out, err
	}
	if in.Privileges == nil {
		in.Privileges = []Privilege{}
	}
	err := c.do(ctx, request{method: http.MethodPost, path: orgTokensPath(org), body: jsonBody(in)}, &out)
	return out, err
}

// OrgTokenQuery selects a page of an organization's tokens. Meta keeps
// those whose meta has each key with the value (at most MaxMetaFilters
// keys).
type OrgTokenQuery struct {
	ListParams
	Meta map[string]string
}

// ListOrgTokens lists one page of the organization's tokens (masks only).
func (c *Client) ListOrgTokens(ctx context.Context, org string, q OrgTokenQuery) (CursorPage[OrgToken], error) {
	if err := need("org", org); err != nil {
		return CursorPage[OrgToken]{}, err
	}
	return listPage[OrgToken](ctx, c, orgTokensPath(org), addMeta(nil, q.Meta), q.ListParams)
}

// GetOrgToken reads a token (its mask only).
func (c *Client) GetOrgToken(ctx context.Context, org, id string) (OrgToken, error) {
	var out OrgToken
	if err := need("org", org); err != nil {
		return out, err
	}
	if err := need("org_token_id", id); err != nil {
		return out, err
	}
	err := c.get(ctx, orgTokensPath(org)+"/"+seg(id), &out)
	return out, err
}

// UpdateOrgToken changes a token's name, privileges or source IPs.
func (c *Client) UpdateOrgToken(ctx context.Context, org, id string, in OrgTokenParams) (OrgToken, error) {
	var out OrgToken
	if err := need("org", org); err != nil {
		return out, err
	}
	if err := need("org_token_id", id); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPatch, path: orgTokensPath(org) + "/" + seg(id), body: jsonBody(in)}, &out)
	return out, err
}

// DeleteOrgToken deletes a token; it stops authenticating at once.
func (c *Client) DeleteOrgToken(ctx context.Context, org, id string) error {
	if err := need("org", org); err != nil {
		return err
	}
	if err := need("org_token_id", id); err != nil {
		return err
	}
	return c.del(ctx, orgTokensPath(org)+"/"+seg(id))
}
