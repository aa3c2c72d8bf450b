package clerk

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// m2mTokenJSON is Clerk's machine_to_machine_token object (times in ms).
type m2mTokenJSON struct {
	Object           string          `json:"object"`
	ID               string          `json:"id"`
	Subject          string          `json:"subject"`
	Claims           json.RawMessage `json:"claims"`
	Scopes           []string        `json:"scopes"`
	Token            string          `json:"token,omitempty"`
	Revoked          bool            `json:"revoked"`
	RevocationReason *string         `json:"revocation_reason"`
	Expired          bool            `json:"expired"`
	Expiration       *int64          `json:"expiration"`
	LastUsedAt       *int64          `json:"last_used_at"`
	CreatedAt        int64           `json:"created_at"`
	UpdatedAt        int64           `json:"updated_at"`
}

func toM2MToken(t authority.M2MToken) m2mTokenJSON {
	out := m2mTokenJSON{
		Object:     "machine_to_machine_token",
		ID:         t.ID,
		Subject:    t.Subject,
		Claims:     t.Claims,
		Scopes:     t.Scopes,
		Token:      t.Token,
		Revoked:    t.Revoked,
		Expired:    t.Expired,
		Expiration: millis(t.ExpiresAt.UnixMilli(), !t.ExpiresAt.IsZero()),
		LastUsedAt: millis(t.LastUsedAt.UnixMilli(), !t.LastUsedAt.IsZero()),
		CreatedAt:  t.CreatedAt.UnixMilli(),
		UpdatedAt:  t.UpdatedAt.UnixMilli(),
	}
	if out.Claims == nil {
		out.Claims = json.RawMessage("null")
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if t.RevocationReason != "" {
		out.RevocationReason = &t.RevocationReason
	}
	return out
}

func millis(ms int64, ok bool) *int64 {
	if !ok {
		return nil
	}
	return &ms
}

func (s *surface) createM2MToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "token_format", "seconds_until_expiration", "claims", "min_remaining_ttl_seconds")
	var in authority.CreateM2MTokenInput
	if err == nil {
		var format *string
		if format, err = f.String("token_format"); format != nil {
			in.Format = *format
		}
	}
	if err == nil {
		in.SecondsUntilExpiration, err = f.Number("seconds_until_expiration")
	}
	if err == nil {
		in.MinRemainingTTLSeconds, err = f.Int("min_remaining_ttl_seconds")
	}
	if err != nil {
		return err
	}
	in.Claims = f.Raw("claims")
	tok, err := s.auth.CreateM2MToken(r.Context(), c, in)
	if err != nil {
		return err
	}
	// The create response is the one place the token is handed out (a
	// reused token included: it was minted for reuse).
	wire.WriteSecretJSON(w, http.StatusCreated, toM2MToken(tok))
	return nil
}

func (s *surface) listM2MTokens(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	q := r.URL.Query()
	in := authority.ListM2MTokensInput{Subject: q.Get("subject")}
	var err error
	for name, dst := range map[string]**bool{"revoked": &in.Revoked, "expired": &in.Expired} {
		if v := q.Get(name); v != "" && err == nil {
			b, perr := strconv.ParseBool(v)
			if perr != nil {
				err = credential.ParamError(credential.CodeWrongType, name, "must be true or false")
			}
			*dst = &b
		}
	}
	if err == nil {
		in.Limit, in.Offset, err = wire.Page(r)
	}
	if err != nil {
		return err
	}
	toks, total, err := s.auth.ListM2MTokens(r.Context(), c, in)
	if err != nil {
		return err
	}
	out := make([]m2mTokenJSON, len(toks))
	for i, t := range toks {
		out[i] = toM2MToken(t)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"m2m_tokens": out, "total_count": total})
	return nil
}

func (s *surface) revokeM2MToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	reason, err := wire.ReadString(r, "revocation_reason")
	if err != nil {
		return err
	}
	tok, err := s.auth.RevokeM2MToken(r.Context(), c, r.PathValue("m2m_token_id"), reason)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toM2MToken(tok))
	return nil
}

// verifyM2MToken answers Clerk's verify: the token object when valid,
// and the same 404 for every other outcome (invalid, revoked, expired,
// unknown, or not scoped to the verifying machine).
func (s *surface) verifyM2MToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	token, err := wire.RequireString(r, "token")
	if err != nil {
		return err
	}
	res, err := s.auth.Verify(r.Context(), c, authority.VerifyInput{Token: token})
	if err != nil {
		return err
	}
	if !res.Valid || res.M2M == nil {
		return credential.Errorf(credential.CodeNotFound, "the token is invalid, revoked, expired or not scoped to the verifying machine")
	}
	wire.WriteJSON(w, http.StatusOK, toM2MToken(*res.M2M))
	return nil
}
