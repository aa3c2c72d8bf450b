package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Decision codes of the controls at verify time.
const (
	CodeInsufficientPermissions = "insufficient_permissions"
	CodeUsageExceeded           = "usage_exceeded"
)

// NamedLimit is a named rate limit of a credential or an identity: at most
// Limit units per Duration milliseconds, counted "fixed" (windows aligned
// to the epoch) or "sliding". AutoApply limits apply to a verify that
// names none.
type NamedLimit struct {
	Name      string `json:"name"`
	Limit     int64  `json:"limit"`
	Duration  int64  `json:"duration"`
	Algorithm string `json:"algorithm"`
	AutoApply bool   `json:"auto_apply"`
}

// Refill resets the remaining credits to Amount at 00:00 UTC every day
// ("daily") or on DayOfMonth ("monthly", default the 1st).
type Refill struct {
	Amount     int64  `json:"amount"`
	Interval   string `json:"interval"`
	DayOfMonth int    `json:"day_of_month,omitempty"`
}

// Credits are a credential's or an identity's remaining uses.
type Credits struct {
	Remaining int64   `json:"remaining"`
	Refill    *Refill `json:"refill,omitempty"`
}

// Controls are a credential's controls at verify time.
type Controls struct {
	CredentialID string          `json:"credential_id"`
	Meta         json.RawMessage `json:"meta"`
	Permissions  []string        `json:"permissions"`
	Roles        []string        `json:"roles"`
	RateLimits   []NamedLimit    `json:"ratelimits"`
	Credits      *Credits        `json:"credits"`
	IdentityID   *string         `json:"identity_id"`
}

// ControlsUpdate changes a credential's controls: each field set replaces
// the stored one. To clear a field, set it to its empty value (Meta
// `null` or `{}`, an empty slice, ClearCredits, an empty IdentityID).
type ControlsUpdate struct {
	Meta         json.RawMessage
	Permissions  *[]string
	Roles        *[]string
	RateLimits   *[]NamedLimit
	Credits      *Credits
	ClearCredits bool
	IdentityID   *string
}

func (u ControlsUpdate) body() map[string]any {
	m := map[string]any{}
	if u.Meta != nil {
		m["meta"] = u.Meta
	}
	if u.Permissions != nil {
		m["permissions"] = *u.Permissions
	}
	if u.Roles != nil {
		m["roles"] = *u.Roles
	}
	if u.RateLimits != nil {
		m["ratelimits"] = *u.RateLimits
	}
	if u.Credits != nil {
		m["credits"] = u.Credits
	} else if u.ClearCredits {
		m["credits"] = nil
	}
	if u.IdentityID != nil {
		if *u.IdentityID == "" {
			m["identity_id"] = nil
		} else {
			m["identity_id"] = *u.IdentityID
		}
	}
	return m
}

func controlsPath(id string) string { return "/v1/credentials/" + seg(id) }

// CredentialControls reads a credential's controls (any kind; needs
// credentials:read).
func (c *Client) CredentialControls(ctx context.Context, credentialID string) (Controls, error) {
	var out Controls
	err := c.get(ctx, controlsPath(credentialID)+"/controls", &out)
	return out, err
}

// SetCredentialControls changes a credential's controls (needs
// credentials:write); the change applies to the next verify.
func (c *Client) SetCredentialControls(ctx context.Context, credentialID string, u ControlsUpdate) (Controls, error) {
	var out Controls
	err := c.do(ctx, request{method: http.MethodPatch, path: controlsPath(credentialID) + "/controls", body: jsonBody(u.body()), idempotent: true}, &out)
	return out, err
}

// ChangeCredits sets, increments or decrements a credential's remaining
// credits (op "set", "increment" or "decrement"; needs credentials:write).
// Not retried: an increment must not land twice.
func (c *Client) ChangeCredits(ctx context.Context, credentialID, op string, amount int64) (Credits, error) {
	var out Credits
	err := c.do(ctx, request{method: http.MethodPost, path: controlsPath(credentialID) + "/credits",
		body: jsonBody(map[string]any{"op": op, "amount": amount})}, &out)
	return out, err
}

// Role is a named set of permissions of the instance.
type Role struct {
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func rolePath(name string) string { return "/v1/roles/" + seg(name) }

// CreateRole creates a role (needs credentials:write).
func (c *Client) CreateRole(ctx context.Context, name string, permissions []string) (Role, error) {
	var out Role
	if permissions == nil {
		permissions = []string{}
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/roles", body: jsonBody(map[string]any{"name": name, "permissions": permissions})}, &out)
	return out, err
}

// ListRoles lists the instance's roles by name.
func (c *Client) ListRoles(ctx context.Context) ([]Role, error) {
	var out struct {
		Data []Role `json:"data"`
	}
	err := c.get(ctx, "/v1/roles", &out)
	return out.Data, err
}

// GetRole reads one role.
func (c *Client) GetRole(ctx context.Context, name string) (Role, error) {
	var out Role
	err := c.get(ctx, rolePath(name), &out)
	return out, err
}

// UpdateRole replaces a role's permissions.
func (c *Client) UpdateRole(ctx context.Context, name string, permissions []string) (Role, error) {
	var out Role
	if permissions == nil {
		permissions = []string{}
	}
	err := c.do(ctx, request{method: http.MethodPatch, path: rolePath(name), body: jsonBody(map[string]any{"permissions": permissions}), idempotent: true}, &out)
	return out, err
}

// DeleteRole deletes a role.
func (c *Client) DeleteRole(ctx context.Context, name string) error {
	return c.del(ctx, rolePath(name))
}

// Identity groups credentials under an external id; its limits and
// credits are shared by its credentials.
type Identity struct {
	ID         string          `json:"id"`
	ExternalID string          `json:"external_id"`
	Meta       json.RawMessage `json:"meta"`
	RateLimits []NamedLimit    `json:"ratelimits"`
	Credits    *Credits        `json:"credits"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

// IdentityParams creates or changes an identity: in an update, only what
// is set changes (ClearCredits removes the credits).
type IdentityParams struct {
	ExternalID   string
	Meta         json.RawMessage
	RateLimits   *[]NamedLimit
	Credits      *Credits
	ClearCredits bool
}

func (p IdentityParams) body() map[string]any {
	m := ControlsUpdate{Meta: p.Meta, RateLimits: p.RateLimits, Credits: p.Credits, ClearCredits: p.ClearCredits}.body()
	if p.ExternalID != "" {
		m["external_id"] = p.ExternalID
	}
	return m
}

// IdentityCredential is a credential linked to an identity.
type IdentityCredential struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Revoked bool            `json:"revoked"`
	Meta    json.RawMessage `json:"meta"` // the credential's meta ({} when none)
}

func identityPath(id string) string { return "/v1/identities/" + seg(id) }

// CreateIdentity creates an identity (needs credentials:write).
func (c *Client) CreateIdentity(ctx context.Context, in IdentityParams) (Identity, error) {
	var out Identity
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/identities", body: jsonBody(in.body())}, &out)
	return out, err
}

// ListIdentities lists one page of identities, oldest first; externalID
// (optional) finds one.
func (c *Client) ListIdentities(ctx context.Context, externalID string, p ListParams) (CursorPage[Identity], error) {
	v := url.Values{}
	if externalID != "" {
		v.Set("external_id", externalID)
	}
	return listPage[Identity](ctx, c, "/v1/identities", v, p)
}

// GetIdentity reads one identity.
func (c *Client) GetIdentity(ctx context.Context, id string) (Identity, error) {
	var out Identity
	err := c.get(ctx, identityPath(id), &out)
	return out, err
}

// UpdateIdentity changes an identity.
func (c *Client) UpdateIdentity(ctx context.Context, id string, in IdentityParams) (Identity, error) {
	var out Identity
	err := c.do(ctx, request{method: http.MethodPatch, path: identityPath(id), body: jsonBody(in.body()), idempotent: true}, &out)
	return out, err
}

// DeleteIdentity deletes an identity and revokes its credentials,
// returning how many it revoked.
func (c *Client) DeleteIdentity(ctx context.Context, id string) (int, error) {
	var out struct {
		Revoked int `json:"revoked_credentials"`
	}
	err := c.do(ctx, request{method: http.MethodDelete, path: identityPath(id), idempotent: true}, &out)
	return out.Revoked, err
}

// IdentityCredentialQuery selects among an identity's credentials: Meta
// keeps those whose meta has each key with the value (at most
// MaxMetaFilters keys); empty keeps every one.
type IdentityCredentialQuery struct {
	Meta map[string]string
}

// IdentityCredentials lists the credentials linked to an identity.
func (c *Client) IdentityCredentials(ctx context.Context, id string, q IdentityCredentialQuery) ([]IdentityCredential, error) {
	var out struct {
		Data []IdentityCredential `json:"data"`
	}
	err := c.get(ctx, identityPath(id)+"/credentials"+listQuery(addMeta(nil, q.Meta), ListParams{}), &out)
	return out.Data, err
}
