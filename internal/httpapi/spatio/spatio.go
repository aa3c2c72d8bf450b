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
	wire.Surface
	auth *authority.Authority
	log  *slog.Logger
}

// Register mounts the Spatio surface on mux.
func Register(mux wire.Router, a *authority.Authority, log *slog.Logger) {
	s := &surface{auth: a, log: log}
	s.Surface = wire.Surface{Authenticate: s.authenticate, WriteError: s.writeError}
	ws := Prefix + "/organizations/{org}/workspaces/{workspace}/tokens"
	mux.Handle("POST "+Prefix+"/tokens", s.Authenticated(s.create))
	mux.Handle("GET "+Prefix+"/tokens", s.Authenticated(s.list))
	mux.Handle("GET "+Prefix+"/tokens/scopes", s.Authenticated(s.scopes))
	mux.Handle("PATCH "+Prefix+"/tokens/{id}", s.Authenticated(s.update))
	mux.Handle("DELETE "+Prefix+"/tokens/{id}", s.Authenticated(s.revoke))
	mux.Handle("POST "+ws, s.Authenticated(s.create))
	mux.Handle("GET "+ws, s.Authenticated(s.list))
	mux.Handle("PATCH "+ws+"/{id}", s.Authenticated(s.update))
	mux.Handle("DELETE "+ws+"/{id}", s.Authenticated(s.revoke))
	mux.Handle(Prefix+"/", wire.NewUnrouted(s.writeError, "not found"))
}

// Errors is the Spatio surface's error writer.
func Errors(log *slog.Logger) wire.ErrorWriter { return (&surface{log: log}).writeError }

// authenticate resolves a PAT, or the admin key acting for X-User-ID.
func (s *surface) authenticate(_ http.ResponseWriter, r *http.Request) (authority.Caller, error) {
	return s.auth.AuthenticateUser(r.Context(), wire.Credential(r, "Bearer"), r.Header.Get("X-User-ID"))
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

// spatioError is how Spatio answers one of keyward's codes: the status
// and its code; scopesCode, when set, replaces the code for an error about
// the scopes parameter.
type spatioError struct {
	status     int
	code       string
	scopesCode string
}

// errorTable maps keyward's codes to Spatio's, in one place.
var errorTable = map[credential.Code]spatioError{
	credential.CodeMalformed:        {http.StatusBadRequest, "invalid_json", ""},
	credential.CodeMissing:          {http.StatusBadRequest, "invalid_request", "invalid_scope"},
	credential.CodeInvalid:          {http.StatusBadRequest, "invalid_request", "invalid_scope"},
	credential.CodeWrongType:        {http.StatusBadRequest, "invalid_request", "invalid_scope"},
	credential.CodeTooLong:          {http.StatusBadRequest, "invalid_request", "invalid_scope"},
	credential.CodeTooMany:          {http.StatusBadRequest, "invalid_request", "invalid_scope"},
	credential.CodeConstraint:       {http.StatusBadRequest, "invalid_request", "invalid_scope"},
	credential.CodeReserved:         {http.StatusBadRequest, "invalid_request", "invalid_scope"},
	credential.CodeUnknownParam:     {http.StatusBadRequest, "unknown_field", "scopes_immutable"},
	credential.CodeTooLarge:         {http.StatusRequestEntityTooLarge, "payload_too_large", ""},
	credential.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, "method_not_allowed", ""},
	credential.CodeNotFound:         {http.StatusNotFound, "not_found", ""},
	credential.CodeConflict:         {http.StatusConflict, "conflict", ""},
	credential.CodeUnauthenticated:  {http.StatusUnauthorized, "unauthorized", ""},
	credential.CodeForbidden:        {http.StatusForbidden, "forbidden", ""},
	credential.CodeRateLimited:      {http.StatusTooManyRequests, "rate_limited", ""},
	credential.CodeUnavailable:      {http.StatusServiceUnavailable, "unavailable", ""},
	credential.CodeInternal:         {http.StatusInternalServerError, "internal_error", ""},
}

// paramNames spell the authority's parameter names as Spatio's camelCase
// JSON does.
var paramNames = map[string]string{
	"workspace_id": "workspaceId",
	"expires_at":   "expiresAt",
}

func statusAndCode(e *credential.Error) (int, string) {
	t, ok := errorTable[e.Code]
	if !ok {
		t = errorTable[credential.CodeInternal]
	}
	if e.Param == "scopes" && t.scopesCode != "" {
		return t.status, t.scopesCode
	}
	return t.status, t.code
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
		param := e.Param
		if spelled, ok := paramNames[param]; ok {
			param = spelled
		}
		msg = param + ": " + e.Message
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

func (s *surface) create(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
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
		return err
	}
	pat, err := s.auth.CreatePAT(r.Context(), c, ref, in)
	if err != nil {
		return err
	}
	// The create response is the one place the token is handed out.
	wire.WriteSecretJSON(w, http.StatusCreated, map[string]any{"token": pat.Token, "pat": toPAT(pat)})
	return nil
}

func (s *surface) list(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	pats, err := s.auth.ListPATs(r.Context(), c, workspaceRef(r), nil)
	var available []string
	if err == nil {
		available, err = s.auth.AvailableScopes(r.Context(), c)
	}
	if err != nil {
		return err
	}
	out := make([]patJSON, len(pats))
	for i, p := range pats {
		out[i] = toPAT(p)
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"tokens": out, "availableScopes": available})
	return nil
}

func (s *surface) scopes(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	available, err := s.auth.AvailableScopes(r.Context(), c)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, map[string]any{"scopes": available})
	return nil
}

func (s *surface) update(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "name", "description")
	var in authority.UpdatePATInput
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.Description, err = f.String("description")
	}
	if err != nil {
		return err
	}
	pat, err := s.auth.UpdatePAT(r.Context(), c, workspaceRef(r), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toPAT(pat))
	return nil
}

func (s *surface) revoke(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	if err := s.auth.RevokePAT(r.Context(), c, workspaceRef(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
