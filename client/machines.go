package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MachineRef names a machine a machine may call.
type MachineRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Machine is a machine as keyward shows it. SecretKey is set in the create
// answer only.
type Machine struct {
	ID              string       `json:"id"`
	Name            string       `json:"name"`
	DefaultTokenTTL int64        `json:"default_token_ttl"` // seconds
	ScopedMachines  []MachineRef `json:"scoped_machines"`
	CreatedAt       time.Time    `json:"created_at"`
	UpdatedAt       time.Time    `json:"updated_at"`
	SecretKey       string       `json:"secret_key,omitempty"`
}

// MachineParams creates a machine (Name required) or, on update, changes
// what is set (ScopedMachines is for create only).
type MachineParams struct {
	Name            string   `json:"name,omitempty"`
	ScopedMachines  []string `json:"scoped_machines,omitempty"`
	DefaultTokenTTL *int64   `json:"default_token_ttl,omitempty"`
}

// MachineQuery filters and orders the machine list. OrderBy is "name" or
// "created_at", optionally prefixed by + or - (default "-created_at").
type MachineQuery struct {
	ListParams
	Query   string
	OrderBy string
}

// MachineSecretKey is a machine's current secret key.
type MachineSecretKey struct {
	MachineID string `json:"machine_id"`
	SecretKey string `json:"secret_key"`
}

// MachineScope lets FromMachineID call ToMachineID.
type MachineScope struct {
	FromMachineID string    `json:"from_machine_id"`
	ToMachineID   string    `json:"to_machine_id"`
	CreatedAt     time.Time `json:"created_at"`
}

func machinePath(id string) string { return "/v1/machines/" + seg(id) }

// CreateMachine creates a machine and its first secret key (in the result
// this once). Needs machines:write.
func (c *Client) CreateMachine(ctx context.Context, in MachineParams) (Machine, error) {
	var out Machine
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/machines", body: jsonBody(in)}, &out)
	return out, err
}

// ListMachines lists one page of machines. Needs machines:read.
func (c *Client) ListMachines(ctx context.Context, q MachineQuery) (CursorPage[Machine], error) {
	v := url.Values{}
	if q.Query != "" {
		v.Set("query", q.Query)
	}
	if q.OrderBy != "" {
		v.Set("order_by", q.OrderBy)
	}
	return listPage[Machine](ctx, c, "/v1/machines", v, q.ListParams)
}

// GetMachine reads a machine (never its secret key).
func (c *Client) GetMachine(ctx context.Context, id string) (Machine, error) {
	var out Machine
	if err := need("machine_id", id); err != nil {
		return out, err
	}
	err := c.get(ctx, machinePath(id), &out)
	return out, err
}

// UpdateMachine renames a machine or changes its default token lifetime.
func (c *Client) UpdateMachine(ctx context.Context, id string, in MachineParams) (Machine, error) {
	var out Machine
	if err := need("machine_id", id); err != nil {
		return out, err
	}
	in.ScopedMachines = nil
	err := c.do(ctx, request{method: http.MethodPatch, path: machinePath(id), body: jsonBody(in)}, &out)
	return out, err
}

// DeleteMachine deletes a machine and revokes its tokens.
func (c *Client) DeleteMachine(ctx context.Context, id string) error {
	if err := need("machine_id", id); err != nil {
		return err
	}
	return c.del(ctx, machinePath(id))
}

// MachineSecretKey reads a machine's current secret key (needs
// machines:write: whoever holds it can act as the machine).
func (c *Client) MachineSecretKey(ctx context.Context, id string) (MachineSecretKey, error) {
	var out MachineSecretKey
	if err := need("machine_id", id); err != nil {
		return out, err
	}
	err := c.get(ctx, machinePath(id)+"/secret_key", &out)
	return out, err
}

// RotateMachineSecretKey issues a new secret key; the previous one keeps
// working for previousTTL seconds (0: stops at once).
func (c *Client) RotateMachineSecretKey(ctx context.Context, id string, previousTTL int64) (MachineSecretKey, error) {
	var out MachineSecretKey
	if err := need("machine_id", id); err != nil {
		return out, err
	}
	body := jsonBody(map[string]int64{"previous_token_ttl": previousTTL})
	err := c.do(ctx, request{method: http.MethodPost, path: machinePath(id) + "/secret_key/rotate", body: body}, &out)
	return out, err
}

// AddMachineScope lets machine id call machine to.
func (c *Client) AddMachineScope(ctx context.Context, id, to string) (MachineScope, error) {
	var out MachineScope
	if err := need("machine_id", id); err != nil {
		return out, err
	}
	body := jsonBody(map[string]string{"to_machine_id": to})
	err := c.do(ctx, request{method: http.MethodPost, path: machinePath(id) + "/scopes", body: body}, &out)
	return out, err
}

// RemoveMachineScope stops machine id from calling machine to.
func (c *Client) RemoveMachineScope(ctx context.Context, id, to string) error {
	if err := need("machine_id", id); err != nil {
		return err
	}
	if err := need("other_machine_id", to); err != nil {
		return err
	}
	return c.del(ctx, machinePath(id)+"/scopes/"+seg(to))
}

// M2MToken is a machine-to-machine token. Token is set in the mint answer
// only.
type M2MToken struct {
	ID               string          `json:"id"`
	MachineID        string          `json:"machine_id"`
	Claims           json.RawMessage `json:"claims"`
	Scopes           []string        `json:"scopes"`
	Revoked          bool            `json:"revoked"`
	RevocationReason *string         `json:"revocation_reason"`
	Expired          bool            `json:"expired"`
	ExpiresAt        *time.Time      `json:"expires_at"`
	LastUsedAt       *time.Time      `json:"last_used_at"`
	CreatedAt        time.Time       `json:"created_at"`
	UpdatedAt        time.Time       `json:"updated_at"`
	Meta             json.RawMessage `json:"meta"` // the token's meta ({} when none)
	Token            string          `json:"token,omitempty"`
}

// M2MTokenParams mints a token. Format is "opaque" (default) or "jwt";
// Scopes narrows the token to some of the machine's scoped machines.
type M2MTokenParams struct {
	Format                 string          `json:"token_format,omitempty"`
	SecondsUntilExpiration *float64        `json:"seconds_until_expiration,omitempty"`
	Claims                 json.RawMessage `json:"claims,omitempty"`
	MinRemainingTTLSeconds *int64          `json:"min_remaining_ttl_seconds,omitempty"`
	Scopes                 []string        `json:"scopes,omitempty"`
}

// M2MTokenQuery selects a machine's tokens: live ones, or revoked or
// expired ones when those are set. Meta keeps tokens whose meta has each
// key with the value (at most MaxMetaFilters keys).
type M2MTokenQuery struct {
	ListParams
	Revoked *bool
	Expired *bool
	Meta    map[string]string
}

// CreateM2MToken mints a token for the calling machine: the client's key
// must be a machine secret key.
func (c *Client) CreateM2MToken(ctx context.Context, in M2MTokenParams) (M2MToken, error) {
	var out M2MToken
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/m2m_tokens", body: jsonBody(in)}, &out)
	return out, err
}

// ListM2MTokens lists one page of a machine's opaque tokens (never the
// tokens themselves). Needs m2m_tokens:read or the machine's own key.
func (c *Client) ListM2MTokens(ctx context.Context, machineID string, q M2MTokenQuery) (CursorPage[M2MToken], error) {
	if err := need("machine_id", machineID); err != nil {
		return CursorPage[M2MToken]{}, err
	}
	v := url.Values{}
	if q.Revoked != nil {
		v.Set("revoked", strconv.FormatBool(*q.Revoked))
	}
	if q.Expired != nil {
		v.Set("expired", strconv.FormatBool(*q.Expired))
	}
	return listPage[M2MToken](ctx, c, machinePath(machineID)+"/m2m_tokens", addMeta(v, q.Meta), q.ListParams)
}

// RevokeM2MToken revokes a token at once; reason may be "".
func (c *Client) RevokeM2MToken(ctx context.Context, id, reason string) (M2MToken, error) {
	var out M2MToken
	if err := need("m2m_token_id", id); err != nil {
		return out, err
	}
	body := jsonBody(map[string]string{"revocation_reason": reason})
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/m2m_tokens/" + seg(id) + "/revoke", body: body}, &out)
	return out, err
}
