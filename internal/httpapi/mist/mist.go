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
	auth    *authority.Authority
	log     *slog.Logger
	trusted []netip.Prefix
}

// Register mounts the Mist surface on mux. trusted are the proxies whose
// X-Forwarded-For is believed when finding the caller's address.
func Register(mux wire.Router, a *authority.Authority, log *slog.Logger, trusted []netip.Prefix) {
	s := &surface{auth: a, log: log, trusted: trusted}
	base := Prefix + "/api/v1/orgs/{org_id}/apitokens"
	mux.Handle("GET "+base, s.authenticated(s.list))
	mux.Handle("POST "+base, s.authenticated(s.create))
	mux.Handle("GET "+base+"/{apitoken_id}", s.authenticated(s.get))
	mux.Handle("PUT "+base+"/{apitoken_id}", s.authenticated(s.update))
	mux.Handle("DELETE "+base+"/{apitoken_id}", s.authenticated(s.delete))
	mux.Handle(Prefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, credential.Errorf(credential.CodeNotFound, "not found"))
	}))
}

// authenticated resolves the caller. An org token is checked against its
// source IPs and its hourly limit on every call, and its window is
// reported in headers whatever the outcome.
func (s *surface) authenticated(h func(http.ResponseWriter, *http.Request, authority.Caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := wire.CheckRequest(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		token := wire.Credential(r, "Token", "Bearer")
		if _, kind, err := credential.Parse(token); err == nil && kind == credential.KindOrgToken {
			caller, rl, err := s.auth.AuthenticateOrgToken(r.Context(), token, wire.ClientIP(r, s.trusted))
			if rl.Limit > 0 {
				h := w.Header()
				h.Set("X-RateLimit-Limit", strconv.Itoa(rl.Limit))
				h.Set("X-RateLimit-Remaining", strconv.Itoa(rl.Remaining))
				h.Set("X-RateLimit-Reset", strconv.FormatInt(rl.ResetAt.Unix(), 10))
				if credential.IsCode(err, credential.CodeRateLimited) {
					h.Set("Retry-After", strconv.FormatInt(int64((rl.ResetIn+time.Second-1)/time.Second), 10))
				}
			}
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			h(w, r, caller)
			return
		}
		caller, err := s.auth.AuthenticateAdmin(r.Context(), token)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, caller)
	})
}

// statusAndDetail maps keyward's codes to Mist's statuses and texts.
func statusAndDetail(e *credential.Error) (int, string) {
	switch e.Code {
	case credential.CodeMalformed:
		return http.StatusBadRequest, "JSON parse error - " + e.Message
	case credential.CodeMissing, credential.CodeInvalid, credential.CodeWrongType, credential.CodeUnknownParam,
		credential.CodeTooLong, credential.CodeTooMany, credential.CodeConstraint, credential.CodeReserved:
		if e.Param != "" {
			return http.StatusBadRequest, e.Param + ": " + e.Message
		}
		return http.StatusBadRequest, e.Message
	case credential.CodeTooLarge:
		return http.StatusRequestEntityTooLarge, "Request body too large."
	case credential.CodeNotFound:
		return http.StatusNotFound, "Not found."
	case credential.CodeConflict:
		return http.StatusConflict, e.Message
	case credential.CodeUnauthenticated:
		return http.StatusUnauthorized, "Invalid token."
	case credential.CodeForbidden:
		return http.StatusForbidden, "You do not have permission to perform this action."
	case credential.CodeRateLimited:
		if e.RetryAfter > 0 { // the address is over its failed-authentication budget
			return http.StatusTooManyRequests, "Too many failed authentications from this address. Retry later."
		}
		return http.StatusTooManyRequests, RateLimitedDetail
	case credential.CodeUnavailable:
		return http.StatusServiceUnavailable, "Service unavailable."
	}
	return http.StatusInternalServerError, "Internal server error."
}

func (s *surface) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := credential.AsError(err)
	status, detail := statusAndDetail(e)
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

func (s *surface) list(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	toks, err := s.auth.ListOrgTokens(r.Context(), c, r.PathValue("org_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]tokenJSON, len(toks))
	for i, t := range toks {
		out[i] = toToken(t, t.Mask)
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

func (s *surface) get(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	t, err := s.auth.GetOrgToken(r.Context(), c, r.PathValue("org_id"), r.PathValue("apitoken_id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, toToken(t, t.Mask))
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

func (s *surface) create(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	in, err := decodeToken(r, r.PathValue("org_id"))
	if err == nil && in.Privileges == nil {
		in.Privileges = []credential.Privilege{}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.auth.CreateOrgToken(r.Context(), c, r.PathValue("org_id"), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The create response is the one place the key is shown in full.
	wire.WriteSecretJSON(w, http.StatusOK, toToken(t, t.Key))
}

func (s *surface) update(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	in, err := decodeToken(r, r.PathValue("org_id"))
	if err == nil {
		err = s.auth.UpdateOrgToken(r.Context(), c, r.PathValue("org_id"), r.PathValue("apitoken_id"), in)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK) // Mist answers PUT with an empty body
}

func (s *surface) delete(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	if err := s.auth.DeleteOrgToken(r.Context(), c, r.PathValue("org_id"), r.PathValue("apitoken_id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
