// Package spatio speaks Spatio's wire protocol for personal access tokens
// (/v1/tokens and the workspace variants), mounted under /spatio: camelCase
// JSON, RFC 3339 times, errors as {"error", "code"}.
//
// Callers are a PAT, acting as its own user, or the admin key acting for
// the user named in X-User-ID.
package spatio

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Prefix is where the surface is mounted.
const Prefix = "/spatio/v1"

type surface struct {
	auth *authority.Authority
	log  *slog.Logger
}

// Register mounts the Spatio surface on mux.
func Register(mux wire.Router, a *authority.Authority, log *slog.Logger) {
	s := &surface{auth: a, log: log}
	ws := Prefix + "/organizations/{org}/workspaces/{workspace}/tokens"
	routes := map[string]func(http.ResponseWriter, *http.Request, authority.Caller){
		"POST " + Prefix + "/tokens":        s.create,
		"GET " + Prefix + "/tokens":         s.list,
		"GET " + Prefix + "/tokens/scopes":  s.scopes,
		"PATCH " + Prefix + "/tokens/{id}":  s.update,
		"DELETE " + Prefix + "/tokens/{id}": s.revoke,
		"POST " + ws:                        s.create,
		"GET " + ws:                         s.list,
		"PATCH " + ws + "/{id}":             s.update,
		"DELETE " + ws + "/{id}":            s.revoke,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, s.authenticated(h))
	}
	mux.Handle(Prefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, credential.Errorf(credential.CodeNotFound, "not found"))
	}))
}

func (s *surface) authenticated(h func(http.ResponseWriter, *http.Request, authority.Caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := wire.CheckRequest(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		c, err := s.auth.AuthenticateUser(r.Context(), wire.Credential(r, "Bearer"), r.Header.Get("X-User-ID"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, c)
	})
}

// workspaceRef is the workspace of a workspace route, or nil.
func workspaceRef(r *http.Request) *authority.WorkspaceRef {
	if r.PathValue("workspace") == "" {
		return nil
	}
	return &authority.WorkspaceRef{Org: r.PathValue("org"), Workspace: r.PathValue("workspace")}
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func statusAndCode(e *credential.Error) (int, string) {
	switch e.Code {
	case credential.CodeMalformed:
		return http.StatusBadRequest, "invalid_json"
	case credential.CodeMissing, credential.CodeInvalid, credential.CodeWrongType, credential.CodeTooLong,
		credential.CodeTooMany, credential.CodeConstraint, credential.CodeReserved:
		if e.Param == "scopes" {
			return http.StatusBadRequest, "invalid_scope"
		}
		return http.StatusBadRequest, "invalid_request"
	case credential.CodeUnknownParam:
		if e.Param == "scopes" {
			return http.StatusBadRequest, "scopes_immutable"
		}
		return http.StatusBadRequest, "unknown_field"
	case credential.CodeTooLarge:
		return http.StatusRequestEntityTooLarge, "payload_too_large"
	case credential.CodeNotFound:
		return http.StatusNotFound, "not_found"
	case credential.CodeConflict:
		return http.StatusConflict, "conflict"
	case credential.CodeUnauthenticated:
		return http.StatusUnauthorized, "unauthorized"
	case credential.CodeForbidden:
		return http.StatusForbidden, "forbidden"
	case credential.CodeRateLimited:
		return http.StatusTooManyRequests, "rate_limited"
	case credential.CodeUnavailable:
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal_error"
}

func (s *surface) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := credential.AsError(err)
	status, code := statusAndCode(e)
	msg := e.Message
	switch {
	case status >= 500:
		msg = "internal error"
		s.log.LogAttrs(r.Context(), slog.LevelError, "spatio request failed",
			slog.String("request_id", authority.RequestID(r.Context())), slog.String("error", err.Error()))
	case e.Reason == authority.ReasonNotAMember || e.Reason == authority.ReasonOtherWorkspace:
		msg = "Insufficient permission: " + e.Message // Spatio's wording for a workspace refusal
	case code == "scopes_immutable":
		msg = "scopes cannot be changed after a token is created; create a new token instead"
	case e.Param != "":
		msg = e.Param + ": " + e.Message
	}
	wire.SetRetryAfter(w, e)
	wire.WriteJSON(w, status, errorBody{Error: msg, Code: code})
}

// patJSON is Spatio's PersonalAccessToken.
type patJSON struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Scopes      []string `json:"scopes"`
	WorkspaceID *string  `json:"workspaceId"`
	CreatedAt   string   `json:"createdAt"`
	LastUsedAt  *string  `json:"lastUsedAt"`
	ExpiresAt   *string  `json:"expiresAt"`
	TokenPrefix string   `json:"tokenPrefix"`
}

func rfc3339(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func toPAT(p authority.PAT) patJSON {
	out := patJSON{
		ID: p.ID, Name: p.Name, Description: p.Description, Scopes: p.Scopes, CreatedAt: *rfc3339(p.CreatedAt),
		LastUsedAt: rfc3339(p.LastUsedAt), ExpiresAt: rfc3339(p.ExpiresAt), TokenPrefix: p.TokenPrefix,
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	if p.WorkspaceID != "" {
		out.WorkspaceID = &p.WorkspaceID
	}
	return out
}

func (s *surface) create(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	f, err := wire.ReadForm(r, "name", "description", "scopes", "workspaceId", "expiresAt")
	var in authority.CreatePATInput
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.Description, err = f.String("description")
	}
	if err == nil {
		in.Scopes, err = f.Strings("scopes")
	}
	if err == nil {
		in.WorkspaceID, err = f.String("workspaceId")
	}
	var expires *string
	if err == nil {
		expires, err = f.String("expiresAt")
	}
	if err == nil && expires != nil {
		t, perr := time.Parse(time.RFC3339, *expires)
		if perr != nil {
			err = credential.ParamError(credential.CodeInvalid, "expiresAt", "must be an RFC 3339 date-time")
		}
		in.ExpiresAt = &t
	}
	ref := workspaceRef(r)
	if err == nil && ref != nil && in.WorkspaceID != nil {
		err = credential.ParamError(credential.CodeInvalid, "workspaceId", "is given by the route; leave it out")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pat, err := s.auth.CreatePAT(r.Context(), c, ref, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The create response is the one place the token is handed out.
	wire.WriteSecretJSON(w, http.StatusCreated, map[string]any{"token": pat.Token, "pat": toPAT(pat)})
}

func (s *surface) list(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	pats, err := s.auth.ListPATs(r.Context(), c, workspaceRef(r))
	var available []string
	if err == nil {
		available, err = s.auth.AvailableScopes(r.Context(), c)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]patJSON, len(pats))
	for i, p := range pats {
		out[i] = toPAT(p)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"tokens": out, "availableScopes": available})
}

func (s *surface) scopes(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	available, err := s.auth.AvailableScopes(r.Context(), c)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"scopes": available})
}

func (s *surface) update(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	f, err := wire.ReadForm(r, "name", "description")
	var in authority.UpdatePATInput
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.Description, err = f.String("description")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	pat, err := s.auth.UpdatePAT(r.Context(), c, workspaceRef(r), r.PathValue("id"), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, toPAT(pat))
}

func (s *surface) revoke(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	if err := s.auth.RevokePAT(r.Context(), c, workspaceRef(r), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
