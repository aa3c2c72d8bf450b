package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keyward/keyward/client"
)

type actorTokensData struct {
	User, Status string
	Tokens       []client.ActorToken
	Next         string
}

// actorTokens lists the impersonation tickets, by user and status, with
// the forms that issue and revoke them and end an impersonation session
// (the native API lists no sessions: it revokes one by id).
func (c *Console) actorTokens(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	q := r.URL.Query()
	d := actorTokensData{User: strings.TrimSpace(q.Get("user_id")), Status: q.Get("status")}
	switch d.Status {
	case "pending", "accepted", "revoked":
	default:
		d.Status = ""
	}
	page, err := kw.ListActorTokens(r.Context(), client.ActorTokenQuery{ListParams: client.ListParams{Limit: 50, Cursor: q.Get("cursor")},
		UserID: d.User, Status: d.Status})
	if err != nil {
		return err
	}
	d.Tokens = page.Data
	if page.NextCursor != "" {
		v := url.Values{"cursor": {page.NextCursor}}
		if d.User != "" {
			v.Set("user_id", d.User)
		}
		if d.Status != "" {
			v.Set("status", d.Status)
		}
		d.Next = Prefix + "actor_tokens?" + v.Encode()
	}
	return c.ok(w, r, s, "actortokens.html", "Impersonation", "actor_tokens", d)
}

func optionalSeconds(f url.Values, field, what string) (*int64, error) {
	v := strings.TrimSpace(f.Get(field))
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return nil, formError(what + " is a whole number of seconds above 0.")
	}
	return &n, nil
}

func (c *Console) createActorToken(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	f := r.PostForm
	user, sub := strings.TrimSpace(f.Get("user_id")), strings.TrimSpace(f.Get("actor_sub"))
	if user == "" || sub == "" {
		return formError("An actor token needs the user to act as and the actor (who acts).")
	}
	actor, _ := json.Marshal(map[string]string{"sub": sub})
	in := client.ActorTokenParams{UserID: user, Actor: actor}
	var err error
	if in.ExpiresInSeconds, err = optionalSeconds(f, "expires_in_seconds", "The ticket's lifetime"); err != nil {
		return err
	}
	if in.SessionMaxDurationInSeconds, err = optionalSeconds(f, "session_max_duration_in_seconds", "The session's longest duration"); err != nil {
		return err
	}
	t, err := kw.CreateActorToken(r.Context(), in)
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret.html", "Actor token created", "actor_tokens", secretData{
		Title: "Actor token for " + t.UserID + " created", Label: "Ticket of " + t.ID + " (" + sub + " acting as " + t.UserID + ")",
		Value: t.Token, URL: t.URL, Again: "it works once, until " + when(t.ExpiresAt),
		Back: Prefix + "actor_tokens", BackLabel: "Back to impersonation"})
}

func (c *Console) revokeActorToken(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	if _, err := kw.RevokeActorToken(r.Context(), id); err != nil {
		return err
	}
	return done(w, r, s, Prefix+"actor_tokens", "Actor token "+id+" revoked; it can no longer be redeemed.")
}

func (c *Console) revokeImpersonationSession(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := strings.TrimSpace(r.PostForm.Get("session_id"))
	if id == "" {
		return formError("Name the impersonation session to end.")
	}
	sess, err := kw.RevokeImpersonationSession(r.Context(), id)
	if err != nil {
		return err
	}
	return done(w, r, s, Prefix+"actor_tokens", "Impersonation session "+sess.ID+" of "+sess.UserID+" ended.")
}
