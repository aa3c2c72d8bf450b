package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// APIKey is an API key of a user (user_…), an organization (org_…) or a
// machine (mch_…). Secret is set in the create answer only.
type APIKey struct {
	ID               string          `json:"id"`
	Type             string          `json:"type"`
	Name             string          `json:"name"`
	Subject          string          `json:"subject"`
	Description      *string         `json:"description"`
	Claims           json.RawMessage `json:"claims"`
	Scopes           []string        `json:"scopes"`
	Revoked          bool            `json:"revoked"`
	RevocationReason *string         `json:"revocation_reason"`
	Expired          bool            `json:"expired"`
	ExpiresAt        *time.Time      `json:"expires_at"`
	CreatedBy        *string         `json:"created_by"`
	LastUsedAt       *time.Time      `json:"last_used_at"`
	CreatedAt        time.Time       `json:"created_at"`
	UpdatedAt        time.Time       `json:"updated_at"`
	Meta             json.RawMessage `json:"meta"`
	Permissions      []string        `json:"permissions"`
	Roles            []string        `json:"roles"`
	Secret           string          `json:"secret,omitempty"`
}

// APIKeyParams creates an API key; Name and Subject are required.
type APIKeyParams struct {
	Type                   string          `json:"type,omitempty"`
	Name                   string          `json:"name"`
	Description            string          `json:"description,omitempty"`
	Subject                string          `json:"subject"`
	Claims                 json.RawMessage `json:"claims,omitempty"`
	Scopes                 []string        `json:"scopes,omitempty"`
	CreatedBy              string          `json:"created_by,omitempty"`
	SecondsUntilExpiration *float64        `json:"seconds_until_expiration,omitempty"`
	// Controls at verify time (see SetCredentialControls for the rest).
	Meta        json.RawMessage `json:"meta,omitempty"`
	Permissions []string        `json:"permissions,omitempty"`
	Roles       []string        `json:"roles,omitempty"`
	RateLimits  []NamedLimit    `json:"ratelimits,omitempty"`
	Credits     *Credits        `json:"credits,omitempty"`
	IdentityID  string          `json:"identity_id,omitempty"`
}

// APIKeyUpdate changes what is set. The name and type cannot change.
type APIKeyUpdate struct {
	Subject                *string         `json:"subject,omitempty"`
	Description            *string         `json:"description,omitempty"`
	Claims                 json.RawMessage `json:"claims,omitempty"`
	Scopes                 []string        `json:"scopes,omitempty"`
	SecondsUntilExpiration *float64        `json:"seconds_until_expiration,omitempty"`
}

// APIKeyQuery selects one subject's keys (Subject required).
type APIKeyQuery struct {
	ListParams
	Subject        string
	Type           string
	Query          string // a name substring
	IncludeInvalid bool   // revoked and expired keys too
	// Meta keeps keys whose meta has each key with the value (at most
	// MaxMetaFilters keys).
	Meta map[string]string
}

func apiKeyPath(id string) string { return "/v1/api_keys/" + seg(id) }

// CreateAPIKey issues an API key; the secret is in the result (and in
// APIKeySecret). Needs api_keys:write.
func (c *Client) CreateAPIKey(ctx context.Context, in APIKeyParams) (APIKey, error) {
	var out APIKey
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/api_keys", body: jsonBody(in)}, &out)
	return out, err
}

// ListAPIKeys lists one page of a subject's keys, newest first.
func (c *Client) ListAPIKeys(ctx context.Context, q APIKeyQuery) (CursorPage[APIKey], error) {
	if err := need("subject", q.Subject); err != nil {
		return CursorPage[APIKey]{}, err
	}
	v := url.Values{"subject": {q.Subject}}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	if q.Query != "" {
		v.Set("query", q.Query)
	}
	if q.IncludeInvalid {
		v.Set("include_invalid", "true")
	}
	return listPage[APIKey](ctx, c, "/v1/api_keys", addMeta(v, q.Meta), q.ListParams)
}

// GetAPIKey reads a key (never its secret).
func (c *Client) GetAPIKey(ctx context.Context, id string) (APIKey, error) {
	var out APIKey
	if err := need("api_key_id", id); err != nil {
		return out, err
	}
	err := c.get(ctx, apiKeyPath(id), &out)
	return out, err
}

// UpdateAPIKey changes a key's metadata.
func (c *Client) UpdateAPIKey(ctx context.Context, id string, in APIKeyUpdate) (APIKey, error) {
	var out APIKey
	if err := need("api_key_id", id); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPatch, path: apiKeyPath(id), body: jsonBody(in)}, &out)
	return out, err
}

// RevokeAPIKey revokes a key at once; reason may be "".
func (c *Client) RevokeAPIKey(ctx context.Context, id, reason string) (APIKey, error) {
	var out APIKey
	if err := need("api_key_id", id); err != nil {
		return out, err
	}
	body := jsonBody(map[string]string{"revocation_reason": reason})
	err := c.do(ctx, request{method: http.MethodPost, path: apiKeyPath(id) + "/revoke", body: body}, &out)
	return out, err
}

// APIKeySecret reads a key's secret (needs api_keys:write).
func (c *Client) APIKeySecret(ctx context.Context, id string) (string, error) {
	var out struct {
		Secret string `json:"secret"`
	}
	if err := need("api_key_id", id); err != nil {
		return "", err
	}
	err := c.get(ctx, apiKeyPath(id)+"/secret", &out)
	return out.Secret, err
}

// ActorToken is a one-time impersonation ticket for a user. Token and URL
// are set in the create answer only.
type ActorToken struct {
	ID                 string          `json:"id"`
	UserID             string          `json:"user_id"`
	Actor              json.RawMessage `json:"actor"`
	Status             string          `json:"status"` // pending | accepted | revoked
	ExpiresAt          time.Time       `json:"expires_at"`
	SessionMaxDuration int64           `json:"session_max_duration_in_seconds"`
	CreatedAt          time.Time       `json:"created_at"`
	UpdatedAt          time.Time       `json:"updated_at"`
	Token              string          `json:"token,omitempty"`
	URL                string          `json:"url,omitempty"`
}

// ActorTokenParams creates an actor token; Actor is a JSON object with
// "sub".
type ActorTokenParams struct {
	UserID                      string          `json:"user_id"`
	Actor                       json.RawMessage `json:"actor"`
	ExpiresInSeconds            *int64          `json:"expires_in_seconds,omitempty"`
	SessionMaxDurationInSeconds *int64          `json:"session_max_duration_in_seconds,omitempty"`
}

// ActorTokenQuery filters actor tokens by user and status.
type ActorTokenQuery struct {
	ListParams
	UserID string
	Status string
}

func actorTokenPath(id string) string { return "/v1/actor_tokens/" + seg(id) }

// CreateActorToken issues an impersonation ticket. Needs
// actor_tokens:write.
func (c *Client) CreateActorToken(ctx context.Context, in ActorTokenParams) (ActorToken, error) {
	var out ActorToken
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/actor_tokens", body: jsonBody(in)}, &out)
	return out, err
}

// ListActorTokens lists one page of actor tokens, newest first.
func (c *Client) ListActorTokens(ctx context.Context, q ActorTokenQuery) (CursorPage[ActorToken], error) {
	v := url.Values{}
	if q.UserID != "" {
		v.Set("user_id", q.UserID)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	return listPage[ActorToken](ctx, c, "/v1/actor_tokens", v, q.ListParams)
}

// GetActorToken reads an actor token (never its ticket).
func (c *Client) GetActorToken(ctx context.Context, id string) (ActorToken, error) {
	var out ActorToken
	if err := need("actor_token_id", id); err != nil {
		return out, err
	}
	err := c.get(ctx, actorTokenPath(id), &out)
	return out, err
}

// RevokeActorToken revokes a pending ticket; any other is ErrConflict.
func (c *Client) RevokeActorToken(ctx context.Context, id string) (ActorToken, error) {
	var out ActorToken
	if err := need("actor_token_id", id); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPost, path: actorTokenPath(id) + "/revoke"}, &out)
	return out, err
}

// ImpersonationSession is the session a redeemed actor token started.
type ImpersonationSession struct {
	ID           string          `json:"id"`
	UserID       string          `json:"user_id"`
	Actor        json.RawMessage `json:"actor"`
	ActorTokenID string          `json:"actor_token_id"`
	StartedAt    time.Time       `json:"started_at"`
	ExpiresAt    time.Time       `json:"expires_at"`
	RevokedAt    time.Time       `json:"revoked_at"`
	Revoked      bool            `json:"revoked"`
}

// RevokeImpersonationSession ends an impersonation session at once. Needs
// actor_tokens:write.
func (c *Client) RevokeImpersonationSession(ctx context.Context, id string) (ImpersonationSession, error) {
	var out ImpersonationSession
	if err := need("id", id); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/impersonation_sessions/" + seg(id) + "/revoke"}, &out)
	return out, err
}
