package clerk

import (
	"encoding/json"
	"net/http"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// actorTokenJSON is Clerk's actor_token object (times in ms).
type actorTokenJSON struct {
	Object    string          `json:"object"`
	ID        string          `json:"id"`
	Status    string          `json:"status"`
	UserID    string          `json:"user_id"`
	Actor     json.RawMessage `json:"actor"`
	Token     string          `json:"token,omitempty"`
	URL       string          `json:"url,omitempty"`
	CreatedAt int64           `json:"created_at"`
	UpdatedAt int64           `json:"updated_at"`
}

func toActorToken(t credential.ActorToken) actorTokenJSON {
	return actorTokenJSON{Object: "actor_token", ID: t.ID, Status: t.Status, UserID: t.UserID, Actor: t.Actor,
		CreatedAt: t.CreatedAt.UnixMilli(), UpdatedAt: t.UpdatedAt.UnixMilli()}
}

func (s *surface) createActorToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
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
	t, err := s.auth.CreateActorToken(r.Context(), c, in, s.publicURL)
	if err != nil {
		return err
	}
	out := toActorToken(t.ActorToken)
	// The create response is the one place the ticket is handed out.
	out.Token, out.URL = t.Token, t.URL
	wire.WriteSecretJSON(w, http.StatusOK, out)
	return nil
}

func (s *surface) revokeActorToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	t, err := s.auth.RevokeActorToken(r.Context(), c, r.PathValue("actor_token_id"))
	if e := credential.AsError(err); e.Reason == authority.ReasonNotPending {
		wire.WriteJSON(w, http.StatusBadRequest, errorBody{Errors: []errorItem{{
			Code: "actor_token_cannot_be_revoked_code", Message: "cannot be revoked",
			LongMessage: "This actor token cannot be revoked because its status is " + t.Status + ". Only pending tokens can be revoked.",
		}}, ClerkTraceID: authority.RequestID(r.Context())})
		return nil
	}
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toActorToken(t))
	return nil
}

// getActorToken and listActorTokens are keyward's additions: Clerk has no
// such endpoints.
func (s *surface) getActorToken(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	t, err := s.auth.GetActorToken(r.Context(), c, r.PathValue("actor_token_id"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toActorToken(t))
	return nil
}

func (s *surface) listActorTokens(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	limit, offset, err := wire.Page(r)
	var (
		list  []credential.ActorToken
		total int
	)
	if err == nil {
		list, total, err = s.auth.ListActorTokens(r.Context(), c, r.URL.Query().Get("user_id"), r.URL.Query().Get("status"), limit, offset)
	}
	if err != nil {
		return err
	}
	data := make([]actorTokenJSON, len(list))
	for i, t := range list {
		data[i] = toActorToken(t)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"data": data, "total_count": total})
	return nil
}
