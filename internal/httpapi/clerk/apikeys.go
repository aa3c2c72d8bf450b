package clerk

import (
	"encoding/json"
	"net/http"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// apiKeyJSON is Clerk's api_key object (times in ms). Secret is set in the
// create response only.
type apiKeyJSON struct {
	Object           string          `json:"object"`
	ID               string          `json:"id"`
	Type             string          `json:"type"`
	Subject          string          `json:"subject"`
	Name             string          `json:"name"`
	Description      *string         `json:"description"`
	Claims           json.RawMessage `json:"claims"`
	Scopes           []string        `json:"scopes"`
	Secret           string          `json:"secret,omitempty"`
	Revoked          bool            `json:"revoked"`
	RevocationReason *string         `json:"revocation_reason"`
	Expired          bool            `json:"expired"`
	Expiration       *int64          `json:"expiration"`
	CreatedBy        *string         `json:"created_by"`
	LastUsedAt       *int64          `json:"last_used_at"`
	CreatedAt        int64           `json:"created_at"`
	UpdatedAt        int64           `json:"updated_at"`
}

func toAPIKey(k authority.APIKey) apiKeyJSON {
	out := apiKeyJSON{
		Object:      "api_key",
		ID:          k.ID,
		Type:        k.Type,
		Subject:     k.Subject,
		Name:        k.Name,
		Description: k.Description,
		Claims:      k.Claims,
		Scopes:      k.Scopes,
		Secret:      k.Secret,
		Revoked:     k.Revoked,
		Expired:     k.Expired,
		Expiration:  millis(k.ExpiresAt.UnixMilli(), !k.ExpiresAt.IsZero()),
		LastUsedAt:  millis(k.LastUsedAt.UnixMilli(), !k.LastUsedAt.IsZero()),
		CreatedAt:   k.CreatedAt.UnixMilli(),
		UpdatedAt:   k.UpdatedAt.UnixMilli(),
	}
	if out.Claims == nil {
		out.Claims = json.RawMessage("null")
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if k.RevocationReason != "" {
		out.RevocationReason = &k.RevocationReason
	}
	if k.CreatedBy != "" {
		out.CreatedBy = &k.CreatedBy
	}
	return out
}

func (s *surface) createAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "type", "name", "description", "subject", "claims", "scopes", "created_by", "seconds_until_expiration")
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
	if err != nil {
		return err
	}
	in.Claims = f.Raw("claims")
	k, err := s.auth.CreateAPIKey(r.Context(), c, in)
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusOK, toAPIKey(k))
	return nil
}

func (s *surface) listAPIKeys(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	q := r.URL.Query()
	in := authority.ListAPIKeysInput{Subject: q.Get("subject"), Query: q.Get("query")}
	var err error
	if q.Has("type") {
		t := q.Get("type")
		in.Type = &t
	}
	switch v := q.Get("include_invalid"); v {
	case "", "false":
	case "true":
		in.IncludeInvalid = true
	default:
		err = credential.ParamError(credential.CodeInvalid, "include_invalid", "must be true or false")
	}
	if err == nil {
		in.Limit, in.Offset, err = wire.Page(r)
	}
	if err != nil {
		return err
	}
	keys, total, err := s.auth.ListAPIKeys(r.Context(), c, in)
	if err != nil {
		return err
	}
	out := make([]apiKeyJSON, len(keys))
	for i, k := range keys {
		out[i] = toAPIKey(k)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"data": out, "total_count": total})
	return nil
}

func (s *surface) getAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	k, err := s.auth.GetAPIKey(r.Context(), c, r.PathValue("api_key_id"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toAPIKey(k))
	return nil
}

func (s *surface) updateAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "claims", "scopes", "description", "subject", "seconds_until_expiration")
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
	if err != nil {
		return err
	}
	in.SetClaims, in.Claims = f.Sent("claims"), f.Raw("claims")
	k, err := s.auth.UpdateAPIKey(r.Context(), c, r.PathValue("api_key_id"), in)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toAPIKey(k))
	return nil
}

func (s *surface) deleteAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	id, err := s.auth.DeleteAPIKey(r.Context(), c, r.PathValue("api_key_id"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "object": "api_key", "deleted": true})
	return nil
}

func (s *surface) revokeAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	reason, err := wire.ReadString(r, "revocation_reason")
	if err != nil {
		return err
	}
	k, err := s.auth.RevokeAPIKey(r.Context(), c, r.PathValue("api_key_id"), reason)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toAPIKey(k))
	return nil
}

// apiKeySecret is Clerk's get-secret: the one read after create that
// hands an API key's secret out.
func (s *surface) apiKeySecret(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	secret, err := s.auth.APIKeySecret(r.Context(), c, r.PathValue("api_key_id"))
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusOK, map[string]string{"secret": secret.Reveal()})
	return nil
}

// verifyAPIKey answers Clerk's verify: the key when valid, and the same
// 404 for every other outcome (invalid, revoked, expired or unknown).
func (s *surface) verifyAPIKey(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	secret, err := wire.RequireString(r, "secret")
	if err != nil {
		return err
	}
	res, err := s.auth.Verify(r.Context(), c, authority.VerifyInput{Token: secret})
	if err != nil {
		return err
	}
	if !res.Valid || res.APIKey == nil {
		return credential.Errorf(credential.CodeNotFound, "the API key is invalid, revoked or expired")
	}
	wire.WriteJSON(w, http.StatusOK, toAPIKey(*res.APIKey))
	return nil
}
