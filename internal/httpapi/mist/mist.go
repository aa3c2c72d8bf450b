// Package mist speaks Juniper Mist's wire protocol for organization API
// tokens (/api/v1/orgs/{org_id}/apitokens), mounted under /mist so Mist
// clients work with the base URL http://host:port/mist.
//
// Callers send `Authorization: Token <key>` (or Bearer): the admin key, or
// an org token of the same organization with admin at org scope. Every
// call an org token makes counts against its hourly limit, and every
// response to one carries X-RateLimit-Limit, -Remaining and -Reset. Errors
// are Mist's {"detail": "..."}.
package mist

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Prefix is where the surface is mounted.
const Prefix = "/mist"

// RateLimitedDetail is Mist's exact 429 text.
const RateLimitedDetail = "Too Many Request. The API Token used for the request reached the 5000 API Calls per hour threshold"

type surface struct {
	wire.Surface
	auth    *authority.Authority
	log     *slog.Logger
	trusted []netip.Prefix
}

// Register mounts the Mist surface on mux. trusted are the proxies whose
// X-Forwarded-For is believed when finding the caller's address.
func Register(mux wire.Router, a *authority.Authority, log *slog.Logger, trusted []netip.Prefix) {
	s := &surface{auth: a, log: log, trusted: trusted}
	s.Surface = wire.Surface{Authenticate: s.authenticate, WriteError: s.writeError}
	base := Prefix + "/api/v1/orgs/{org_id}/apitokens"
	mux.Handle("GET "+base, s.Authenticated(s.list))
	mux.Handle("POST "+base, s.Authenticated(s.create))
	mux.Handle("GET "+base+"/{apitoken_id}", s.Authenticated(s.get))
	mux.Handle("PUT "+base+"/{apitoken_id}", s.Authenticated(s.update))
	mux.Handle("DELETE "+base+"/{apitoken_id}", s.Authenticated(s.delete))
	// Mist's API document has no 405: a wrong method is a 404, as an
	// unknown path is.
	unrouted := wire.NewUnrouted(s.writeError, "not found")
	unrouted.NotFoundOnly = true
	mux.Handle(Prefix+"/", unrouted)
}

// Errors is the Mist surface's error writer.
func Errors(log *slog.Logger) wire.ErrorWriter { return (&surface{log: log}).writeError }

// authenticate resolves the caller. An org token is checked against its
// source IPs and its hourly limit on every call, and its window is
// reported in headers whatever the outcome.
func (s *surface) authenticate(w http.ResponseWriter, r *http.Request) (authority.Caller, error) {
	token := wire.Credential(r, "Token", "Bearer")
	if _, kind, err := credential.Parse(token); err != nil || kind != credential.KindOrgToken {
		return s.auth.AuthenticateAdmin(r.Context(), token)
	}
	caller, rl, err := s.auth.AuthenticateOrgToken(r.Context(), token, wire.ClientIP(r, s.trusted))
	if rl.Limit > 0 {
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(rl.Limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(rl.Remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.ResetAt.Unix(), 10))
		if credential.IsCode(err, credential.CodeRateLimited) && rl.RetryIn > 0 {
			h.Set("Retry-After", strconv.FormatInt(int64((rl.RetryIn+time.Second-1)/time.Second), 10))
		}
	}
	return caller, err
}

// mistError is how Mist answers one of keyward's codes: the status, and
// the detail (a fixed text, or "" to show the error's own message).
type mistError struct {
	status int
	detail string
}

// errorTable maps keyward's codes to Mist's statuses and texts.
var errorTable = map[credential.Code]mistError{
	credential.CodeMalformed:        {http.StatusBadRequest, ""},
	credential.CodeMissing:          {http.StatusBadRequest, ""},
	credential.CodeInvalid:          {http.StatusBadRequest, ""},
	credential.CodeWrongType:        {http.StatusBadRequest, ""},
	credential.CodeUnknownParam:     {http.StatusBadRequest, ""},
	credential.CodeTooLong:          {http.StatusBadRequest, ""},
	credential.CodeTooMany:          {http.StatusBadRequest, ""},
	credential.CodeConstraint:       {http.StatusBadRequest, ""},
	credential.CodeReserved:         {http.StatusBadRequest, ""},
	credential.CodeTooLarge:         {http.StatusRequestEntityTooLarge, "Request body too large."},
	credential.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, ""},
	credential.CodeNotFound:         {http.StatusNotFound, "Not found."},
	credential.CodeConflict:         {http.StatusConflict, ""},
	credential.CodeUnauthenticated:  {http.StatusUnauthorized, "Invalid token."},
	credential.CodeForbidden:        {http.StatusForbidden, "You do not have permission to perform this action."},
	credential.CodeRateLimited:      {http.StatusTooManyRequests, RateLimitedDetail},
	credential.CodeUnavailable:      {http.StatusServiceUnavailable, "Service unavailable."},
	credential.CodeInternal:         {http.StatusInternalServerError, "Internal server error."},
}

// statusAndDetail is the table's answer for e, with the shapes Mist gives
// a parse error, a parameter's error and a wrong method.
func statusAndDetail(r *http.Request, e *credential.Error) (int, string) {
	t, ok := errorTable[e.Code]
	if !ok {
		t = errorTable[credential.CodeInternal]
	}
	switch {
	case e.Code == credential.CodeMalformed:
		return t.status, "JSON parse error - " + e.Message
	case e.Code == credential.CodeMethodNotAllowed:
		return t.status, `Method "` + r.Method + `" not allowed.` // Django REST framework's text
	case e.Code == credential.CodeRateLimited && e.RetryAfter > 0: // the address is over its failed-authentication budget
		return t.status, "Too many failed authentications from this address. Retry later."
	case t.detail != "":
		return t.status, t.detail
	case e.Param != "" && e.Code != credential.CodeConflict:
		return t.status, e.Param + ": " + e.Message
	}
	return t.status, e.Message
}

func (s *surface) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := credential.AsError(err)
	status, detail := statusAndDetail(r, e)
	if status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "mist request failed",
			slog.String("request_id", authority.RequestID(r.Context())), slog.String("error", err.Error()))
	}
	wire.SetRetryAfter(w, e)
	wire.WriteJSON(w, status, map[string]string{"detail": detail})
}

// privilegeJSON is Mist's PrivilegeOrg.
type privilegeJSON struct {
	Scope       string   `json:"scope"`
	Role        string   `json:"role"`
	OrgID       string   `json:"org_id,omitempty"`
	SiteID      string   `json:"site_id,omitempty"`
	SitegroupID string   `json:"sitegroup_id,omitempty"`
	Views       []string `json:"views,omitempty"`
}

// tokenJSON is Mist's OrgApitoken: UUIDs, epoch seconds.
type tokenJSON struct {
	ID          string          `json:"id"`
	OrgID       string          `json:"org_id"`
	Name        string          `json:"name"`
	Key         string          `json:"key"`
	Privileges  []privilegeJSON `json:"privileges"`
	SrcIPs      []string        `json:"src_ips,omitempty"`
	CreatedBy   string          `json:"created_by"`
	CreatedTime int64           `json:"created_time"`
	LastUsed    *int64          `json:"last_used"`
}

func toToken(t authority.OrgToken, key string) tokenJSON {
	out := tokenJSON{
		ID: t.ID, OrgID: t.OrgID, Name: t.Name, Key: key, SrcIPs: t.SrcIPs,
		CreatedBy: t.CreatedBy, CreatedTime: t.CreatedAt.Unix(), Privileges: make([]privilegeJSON, len(t.Privileges)),
	}
	for i, p := range t.Privileges {
		out.Privileges[i] = privilegeJSON{Scope: string(p.Scope), Role: string(p.Role), SiteID: p.SiteID, SitegroupID: p.SitegroupID, Views: p.Views}
		if p.Scope == credential.ScopeOrg {
			out.Privileges[i].OrgID = t.OrgID
		}
	}
	if !t.LastUsedAt.IsZero() {
		sec := t.LastUsedAt.Unix()
		out.LastUsed = &sec
	}
	return out
}

func (s *surface) list(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	toks, err := s.auth.ListOrgTokens(r.Context(), c, r.PathValue("org_id"), nil)
	if err != nil {
		return err
	}
	out := make([]tokenJSON, len(toks))
	for i, t := range toks {
		out[i] = toToken(t, t.Mask)
	}
	wire.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *surface) get(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	t, err := s.auth.GetOrgToken(r.Context(), c, r.PathValue("org_id"), r.PathValue("apitoken_id"))
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, toToken(t, t.Mask))
	return nil
}

// readOnly are OrgApitoken fields a client may echo back; they are ignored.
var readOnly = []string{"id", "org_id", "key", "created_by", "created_time", "last_used"}

// decodeToken reads an OrgApitoken body for the organization orgID (the
// path's).
func decodeToken(r *http.Request, orgID string) (authority.OrgTokenInput, error) {
	var in authority.OrgTokenInput
	body, err := wire.Body(r)
	if err != nil {
		return in, err
	}
	f, err := wire.ParseForm(body)
	if err != nil {
		return in, err
	}
	if err := f.Only(append([]string{"name", "privileges", "src_ips"}, readOnly...)...); err != nil {
		return in, err
	}
	if in.Name, err = f.String("name"); err != nil {
		return in, err
	}
	if in.SrcIPs, err = f.Strings("src_ips"); err != nil {
		return in, err
	}
	if raw := f.Raw("privileges"); raw != nil {
		if in.Privileges, err = decodePrivileges(raw, orgID); err != nil {
			return in, err
		}
	}
	return in, nil
}

// decodePrivileges reads PrivilegeOrg objects. A privilege's org_id is
// redundant with the path, so it may only name the path's organization:
// one naming another is refused, never silently rewritten.
func decodePrivileges(raw json.RawMessage, orgID string) ([]credential.Privilege, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, credential.ParamError(credential.CodeWrongType, "privileges", "must be an array of privilege objects")
	}
	out := make([]credential.Privilege, 0, len(items))
	for i, item := range items {
		f, err := wire.ParseForm(item)
		if err == nil {
			err = f.Only("scope", "role", "org_id", "site_id", "sitegroup_id", "views")
		}
		var p credential.Privilege
		var scope, role, privOrg string
		if err == nil {
			scope, err = f.Text("scope")
		}
		if err == nil {
			privOrg, err = f.Text("org_id")
		}
		if err == nil && privOrg != "" && !sameUUID(privOrg, orgID) {
			err = credential.ParamError(credential.CodeInvalid, "org_id", "must be the organization in the path ("+orgID+")")
		}
		if err == nil {
			role, err = f.Text("role")
		}
		if err == nil {
			p.SiteID, err = f.Text("site_id")
		}
		if err == nil {
			p.SitegroupID, err = f.Text("sitegroup_id")
		}
		if err == nil {
			p.Views, err = f.Strings("views")
		}
		if err != nil {
			e := credential.AsError(err)
			return nil, credential.ParamError(credential.CodeInvalid, "privileges", "privileges["+strconv.Itoa(i)+"]: "+e.Param+" "+e.Message)
		}
		p.Scope, p.Role = credential.Scope(scope), credential.Role(role)
		out = append(out, p)
	}
	return out, nil
}

// sameUUID reports whether a and b are one UUID, however each is spelled.
func sameUUID(a, b string) bool {
	ua, errA := uuid.Parse(a)
	ub, errB := uuid.Parse(b)
	return errA == nil && errB == nil && ua == ub
}

func (s *surface) create(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := decodeToken(r, r.PathValue("org_id"))
	if err == nil && in.Privileges == nil {
		in.Privileges = []credential.Privilege{}
	}
	if err != nil {
		return err
	}
	t, err := s.auth.CreateOrgToken(r.Context(), c, r.PathValue("org_id"), in)
	if err != nil {
		return err
	}
	// The create response is the one place the key is shown in full.
	wire.WriteSecretJSON(w, http.StatusOK, toToken(t, t.Key))
	return nil
}

func (s *surface) update(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := decodeToken(r, r.PathValue("org_id"))
	if err == nil {
		err = s.auth.UpdateOrgToken(r.Context(), c, r.PathValue("org_id"), r.PathValue("apitoken_id"), in)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK) // Mist answers PUT with an empty body
	return nil
}

func (s *surface) delete(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	if err := s.auth.DeleteOrgToken(r.Context(), c, r.PathValue("org_id"), r.PathValue("apitoken_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
