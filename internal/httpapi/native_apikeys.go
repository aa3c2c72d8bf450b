package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Native API keys (for a user, an organization or a machine) and actor
// tokens (one-time impersonation tickets). An API key's secret is in the
// create answer and GET …/secret only; a ticket in its create answer only.

type nativeAPIKeyJSON struct {
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
	ExpiresAt        *string         `json:"expires_at"`
	CreatedBy        *string         `json:"created_by"`
	LastUsedAt       *string         `json:"last_used_at"`
	CreatedAt        string          `json:"created_at"`
	UpdatedAt        string          `json:"updated_at"`
	// The key's controls at verify time (native_controls.go); rate limits
	// and credits are at GET /v1/credentials/{credential_id}/controls.
	Meta        json.RawMessage `json:"meta"`
	Permissions []string        `json:"permissions"`
	Roles       []string        `json:"roles"`
}

func optionalText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// nativeMeta is a credential's meta as every native item shows it: the
// object, or {} when it has none.
func nativeMeta(meta json.RawMessage) json.RawMessage {
	if len(meta) == 0 {
		return json.RawMessage("{}")
	}
	return meta
}

func toNativeAPIKey(k authority.APIKey) nativeAPIKeyJSON {
	out := nativeAPIKeyJSON{ID: k.ID, Type: k.Type, Name: k.Name, Subject: k.Subject, Description: k.Description, Claims: k.Claims,
		Scopes: k.Scopes, Revoked: k.Revoked, RevocationReason: optionalText(k.RevocationReason), Expired: k.Expired,
		ExpiresAt: optionalTime(k.ExpiresAt), CreatedBy: optionalText(k.CreatedBy), LastUsedAt: optionalTime(k.LastUsedAt),
		CreatedAt: rfc3339(k.CreatedAt), UpdatedAt: rfc3339(k.UpdatedAt)}
	if len(out.Claims) == 0 {
		out.Claims = json.RawMessage("null")
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	out.Meta, out.Permissions, out.Roles = nativeMeta(k.Meta), k.Permissions, k.Roles
	if out.Permissions == nil {
		out.Permissions = []string{}
	}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	return out
}

type nativeActorTokenJSON struct {
	ID                 string          `json:"id"`
	UserID             string          `json:"user_id"`
	Actor              json.RawMessage `json:"actor"`
	Status             string          `json:"status"`
	ExpiresAt          string          `json:"expires_at"`
	SessionMaxDuration int64           `json:"session_max_duration_in_seconds"`
	CreatedAt          string          `json:"created_at"`
	UpdatedAt          string          `json:"updated_at"`
	Token              string          `json:"token,omitempty"` // the create answer only
	URL                string          `json:"url,omitempty"`   // the create answer only
}

func toNativeActorToken(t credential.ActorToken) nativeActorTokenJSON {
	return nativeActorTokenJSON{ID: t.ID, UserID: t.UserID, Actor: t.Actor, Status: t.Status, ExpiresAt: rfc3339(t.ExpiresAt),
		SessionMaxDuration: t.SessionMaxDuration, CreatedAt: rfc3339(t.CreatedAt), UpdatedAt: rfc3339(t.UpdatedAt)}
}

func (n *native) registerAPIKeys(mux wire.Router) {
	const k = "/v1/api_keys/{api_key_id}"
	const a = "/v1/actor_tokens/{actor_token_id}"
	routes := map[string]wire.Handler{
		"POST /v1/api_keys":     n.createAPIKey,
		"GET /v1/api_keys":      n.listAPIKeys,
		"GET " + k:              n.getAPIKey,
		"PATCH " + k:            n.updateAPIKey,
		"POST " + k + "/revoke": n.revokeAPIKey,
		"GET " + k + "/secret":  n.getAPIKeySecret,
		"POST /v1/actor_tokens": n.createActorToken,
		"GET /v1/actor_tokens":  n.listActorTokens,
		"GET " + a:              n.getActorToken,
		"POST " + a + "/revoke": n.revokeActorToken,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, n.Authenticated(h))
	}
}

func (n *native) createAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, append([]string{"type", "name", "description", "subject", "claims", "scopes", "created_by", "seconds_until_expiration"}, controlsFields...)...)
	var in authority.CreateAPIKeyInput
	for _, field := range []struct {
		name string
		dst  **string
	}{{"type", &in.Type}, {"name", &in.Name}, {"description", &in.Description}, {"subject", &in.Subject}, {"created_by", &in.CreatedBy}} {
		if err == nil {
			*field.dst, err = f.String(field.name)
		}
	}
	if err == nil {
		in.Scopes, err = f.Strings("scopes")
	}
	if err == nil {
		in.SecondsUntilExpiration, err = f.Number("seconds_until_expiration")
	}
	if err == nil {
		in.Controls, err = controlsInput(f)
	}
	if err != nil {
		return err
	}
	in.Claims = f.Raw("claims")
	k, err := n.auth.CreateAPIKey(r.Context(), c, in)
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusCreated, struct {
		nativeAPIKeyJSON
		Secret string `json:"secret"`
	}{toNativeAPIKey(k), k.Secret})
	return nil
}

// listAPIKeys lists one subject's keys of one type (?subject, required;
// ?type; ?query, a name substring; ?include_invalid=true for revoked and
// expired keys too; ?meta.<key>=<value>), newest first.
func (n *native) listAPIKeys(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	q := r.URL.Query()
	in := authority.ListAPIKeysInput{Subject: q.Get("subject"), Query: q.Get("query")}
	if q.Has("type") {
		t := q.Get("type")
		in.Type = &t
	}
	p, err := readCursorPage(r)
	var invalid *bool
	if err == nil {
		invalid, err = queryBool(r, "include_invalid")
	}
	if err != nil {
		return err
	}
	in.IncludeInvalid = invalid != nil && *invalid
	in.Meta = metaQuery(r)
	in.Limit, in.Offset = p.limitOffset()
	list, total, err := n.auth.ListAPIKeys(r.Context(), c, in)
	return respond(w, http.StatusOK, mapPage(list, p.next(len(list), total), toNativeAPIKey), err)
}

func (n *native) getAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	k, err := n.auth.GetAPIKey(r.Context(), c, r.PathValue("api_key_id"))
	return respond(w, http.StatusOK, toNativeAPIKey(k), err)
}

// updateAPIKey changes what is sent; null clears description and claims,
// and seconds_until_expiration null makes the key never expire.
func (n *native) updateAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, append([]string{"claims", "scopes", "description", "subject", "seconds_until_expiration"}, controlsFields...)...)
	var in authority.UpdateAPIKeyInput
	if err == nil {
		in.Subject, err = f.String("subject")
	}
	if err == nil {
		in.SetDescription = f.Sent("description")
		in.Description, err = f.String("description")
	}
	if err == nil {
		in.Scopes, err = f.Strings("scopes")
	}
	if err == nil {
		in.SetSecondsUntilExpiration = f.Sent("seconds_until_expiration")
		in.SecondsUntilExpiration, err = f.Number("seconds_until_expiration")
	}
	if err == nil {
		in.Controls, err = controlsInput(f)
	}
	var k authority.APIKey
	if err == nil {
		in.SetClaims, in.Claims = f.Sent("claims"), f.Raw("claims")
		k, err = n.auth.UpdateAPIKey(r.Context(), c, r.PathValue("api_key_id"), in)
	}
	return respond(w, http.StatusOK, toNativeAPIKey(k), err)
}

// revokeAPIKey: {"revocation_reason": "…"} (optional).
func (n *native) revokeAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	reason, err := wire.ReadString(r, "revocation_reason")
	if err != nil {
		return err
	}
	k, err := n.auth.RevokeAPIKey(r.Context(), c, r.PathValue("api_key_id"), reason)
	return respond(w, http.StatusOK, toNativeAPIKey(k), err)
}

// getAPIKeySecret is the documented secret read: needs api_keys:write.
func (n *native) getAPIKeySecret(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	id := r.PathValue("api_key_id")
	secret, err := n.auth.APIKeySecret(r.Context(), c, id)
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusOK, map[string]string{"id": id, "secret": secret.Reveal()})
	return nil
}

func (n *native) createActorToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "user_id", "actor", "expires_in_seconds", "session_max_duration_in_seconds")
	var in authority.CreateActorTokenInput
	if err == nil {
		in.UserID, err = f.String("user_id")
	}
	if err == nil {
		in.ExpiresInSeconds, err = f.Int("expires_in_seconds")
	}
	if err == nil {
		in.SessionMaxDurationInSeconds, err = f.Int("session_max_duration_in_seconds")
	}
	if err != nil {
		return err
	}
	in.Actor = f.Raw("actor")
	t, err := n.auth.CreateActorToken(r.Context(), c, in, n.publicURL)
	if err != nil {
		return err
	}
	out := toNativeActorToken(t.ActorToken)
	out.Token, out.URL = t.Token, t.URL
	wire.WriteSecretJSON(w, http.StatusCreated, out)
	return nil
}

// listActorTokens: ?user_id and ?status (pending, accepted, revoked)
// filter; newest first.
func (n *native) listActorTokens(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	if err != nil {
		return err
	}
	limit, offset := p.limitOffset()
	list, total, err := n.auth.ListActorTokens(r.Context(), c, r.URL.Query().Get("user_id"), r.URL.Query().Get("status"), limit, offset)
	return respond(w, http.StatusOK, mapPage(list, p.next(len(list), total), toNativeActorToken), err)
}

func (n *native) getActorToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	t, err := n.auth.GetActorToken(r.Context(), c, r.PathValue("actor_token_id"))
	return respond(w, http.StatusOK, toNativeActorToken(t), err)
}

// revokeActorToken revokes a pending ticket; one already accepted or
// revoked is a 409.
func (n *native) revokeActorToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	t, err := n.auth.RevokeActorToken(r.Context(), c, r.PathValue("actor_token_id"))
	return respond(w, http.StatusOK, toNativeActorToken(t), err)
}
