package console

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/keyward/keyward/client"
)

type loginData struct {
	Error          string
	Idle, Absolute string
}

func (c *Console) loginData(msg string) loginData {
	return loginData{Error: msg, Idle: c.sessions.idle.String(), Absolute: c.sessions.absolute.String()}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.sessions.get(r) != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.render(w, r, nil, http.StatusOK, "login.html", "Sign in", "", c.loginData(""))
}

// login exchanges an admin key for a session. The key is checked by the
// API itself (GET /v1/caller), so a wrong key is a failed authentication
// the server audits and throttles per client address.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		c.render(w, r, nil, http.StatusBadRequest, "login.html", "Sign in", "", c.loginData("The form could not be read."))
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	if key == "" {
		c.render(w, r, nil, http.StatusBadRequest, "login.html", "Sign in", "", c.loginData("Enter an admin key."))
		return
	}
	kw := client.New("http://keyward.console", key, client.WithHTTPClient(&http.Client{Transport: c.api}),
		client.WithRetries(0), client.WithUserAgent("keyward-console"))
	caller, err := kw.Caller(context.WithValue(r.Context(), originalKey{}, r))
	if err == nil && caller.Kind != "admin_key" {
		err = errNotAdminKey
	}
	if err != nil {
		status, msg := http.StatusUnauthorized, "That key was not accepted."
		switch {
		case errors.Is(err, client.ErrRateLimited):
			status, msg = http.StatusTooManyRequests, "Too many failed sign-ins from this address; wait a while and try again."
		case errors.Is(err, errNotAdminKey):
			msg = "That is not an admin key; the console takes admin keys only."
		case !errors.Is(err, client.ErrUnauthorized) && !errors.Is(err, client.ErrForbidden):
			status, msg = http.StatusBadGateway, "The key could not be checked: "+messageOf(err)
		}
		c.log.Info("console sign-in refused", "client", r.RemoteAddr, "status", status)
		c.render(w, r, nil, status, "login.html", "Sign in", "", c.loginData(msg))
		return
	}
	if old := c.sessions.get(r); old != nil {
		c.sessions.destroy(old) // a sign-in ends the browser's earlier session, whoever's it was
	}
	c.sessions.create(w, r, key, caller)
	c.log.Info("console sign-in", "credential_id", caller.CredentialID, "client", r.RemoteAddr)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

var errNotAdminKey = errors.New("not an admin key")

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session, _ *client.Client) error {
	c.sessions.destroy(s)
	c.sessions.clearCookie(w, r)
	c.log.Info("console sign-out", "credential_id", s.caller.CredentialID)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
	return nil
}
