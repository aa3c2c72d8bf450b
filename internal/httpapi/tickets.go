package httpapi

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Token exchange (RFC 8693) and the ticket accept page.
const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeActorTicket = "urn:keyward:params:oauth:token-type:actor-ticket"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// oauthError is RFC 6749's error body, plus keyward's precise code.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Code        string `json:"code,omitempty"`
}

func writeOAuthError(w http.ResponseWriter, status int, e oauthError) {
	w.Header().Set("Cache-Control", "no-store")
	wire.WriteJSON(w, status, e)
}

// readForm parses an application/x-www-form-urlencoded body.
func readForm(r *http.Request) (url.Values, error) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return nil, errors.New("the body must be application/x-www-form-urlencoded")
	}
	body, err := wire.Body(r)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	return form, wire.CheckValues(form)
}

// redemptionError answers a refused redemption in OAuth's shape; any
// other error is returned for the native envelope.
func redemptionError(w http.ResponseWriter, err error) error {
	if reason, ok := authority.TicketRefusal(err); ok {
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_grant", Code: reason, Description: authority.TicketMessage(reason)})
		return nil
	}
	return err
}

type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	SessionID       string `json:"session_id"`
}

func (n *native) tokenResponse(res authority.Redemption) tokenResponse {
	return tokenResponse{
		AccessToken: res.AccessToken, IssuedTokenType: tokenTypeAccessToken, TokenType: "Bearer",
		ExpiresIn: int64(res.Session.ExpiresAt.Sub(res.Session.StartedAt).Seconds()), SessionID: res.Session.ID,
	}
}

// tokenExchange redeems an actor ticket (RFC 8693): the ticket is the
// subject token; the answer is an access token for the impersonation
// session.
func (n *native) tokenExchange(w http.ResponseWriter, r *http.Request, form url.Values) error {
	switch {
	case form.Get("subject_token_type") != tokenTypeActorTicket:
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "subject_token_type must be " + tokenTypeActorTicket})
		return nil
	case len(form["subject_token"]) != 1:
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "send exactly one subject_token"})
		return nil
	}
	res, err := n.auth.RedeemTicket(r.Context(), form.Get("subject_token"))
	if err != nil {
		return redemptionError(w, err)
	}
	w.Header().Set("Cache-Control", "no-store")
	wire.WriteJSON(w, http.StatusOK, n.tokenResponse(res))
	return nil
}

var acceptPage = template.Must(template.New("accept").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Impersonation ticket</title></head>
<body>
<h1>Impersonation ticket</h1>
{{if .Usable}}
<p><strong>{{.ActorSub}}</strong> will act as user <strong>{{.UserID}}</strong>, for at most {{.Session}}.</p>
<p>The ticket expires at {{.Expires}} and works once.</p>
<form method="post"><input type="hidden" name="ticket" value="{{.Ticket}}"><button type="submit">Start impersonating</button></form>
{{else}}
<p>This ticket cannot be used: {{.Reason}}.</p>
{{end}}
</body></html>
`))

func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// previewTicket shows what a ticket would do and consumes nothing, so link
// scanners and chat previews cannot burn it.
func (n *native) previewTicket(w http.ResponseWriter, r *http.Request) error {
	noStore(w)
	ticket := r.URL.Query().Get("ticket")
	p, err := n.auth.PreviewTicket(r.Context(), ticket)
	if err != nil {
		return err
	}
	if wantsJSON(r) {
		out := map[string]any{"usable": p.Usable}
		if p.Reason != "" {
			out["code"] = p.Reason
		}
		if p.Token.ID != "" {
			out["actor_token_id"], out["user_id"], out["actor"], out["status"] = p.Token.ID, p.Token.UserID, p.Token.Actor, p.Token.Status
			out["expires_at"] = p.Token.ExpiresAt.UTC().Format(time.RFC3339)
		}
		wire.WriteJSON(w, http.StatusOK, out)
		return nil
	}
	var actor struct{ Sub string }
	_ = json.Unmarshal(p.Token.Actor, &actor)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = acceptPage.Execute(w, map[string]any{
		"Usable": p.Usable, "Reason": authority.TicketMessage(p.Reason), "ActorSub": actor.Sub, "UserID": p.Token.UserID,
		"Session": (time.Duration(p.Token.SessionMaxDuration) * time.Second).String(),
		"Expires": p.Token.ExpiresAt.UTC().Format(time.RFC1123), "Ticket": ticket,
	})
	return nil
}

// acceptTicket is the confirm: it redeems the ticket and redirects to the
// instance's impersonation redirect URL with the session token in the
// fragment (never the query, so it stays out of server logs), or answers
// JSON when asked or when no redirect URL is set.
func (n *native) acceptTicket(w http.ResponseWriter, r *http.Request) error {
	noStore(w)
	form, err := readForm(r)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: err.Error()})
		return nil
	}
	ticket := form.Get("ticket")
	if ticket == "" {
		ticket = r.URL.Query().Get("ticket")
	}
	res, err := n.auth.RedeemTicket(r.Context(), ticket)
	if err != nil {
		return redemptionError(w, err)
	}
	resp := n.tokenResponse(res)
	redirect, err := n.auth.ImpersonationRedirectURL(r.Context(), res.Session.InstanceID)
	if err != nil {
		return err
	}
	if redirect == "" || wantsJSON(r) {
		wire.WriteJSON(w, http.StatusOK, resp)
		return nil
	}
	fragment := url.Values{
		"access_token": {resp.AccessToken}, "token_type": {"Bearer"},
		"expires_in": {strconv.FormatInt(resp.ExpiresIn, 10)}, "session_id": {resp.SessionID},
	}
	http.Redirect(w, r, redirect+"#"+fragment.Encode(), http.StatusSeeOther)
	return nil
}

func (n *native) revokeSession(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	s, err := n.auth.RevokeImpersonationSession(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{
		"id": s.ID, "user_id": s.UserID, "actor": s.Actor, "actor_token_id": s.ActorTokenID,
		"started_at": rfc3339(s.StartedAt), "expires_at": rfc3339(s.ExpiresAt), "revoked_at": rfc3339(s.RevokedAt), "revoked": true,
	})
	return nil
}
