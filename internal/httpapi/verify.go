package httpapi

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// verifyBodyLimit bounds /v1/verify and /oauth/introspect bodies: a token
// and a few scopes, never more.
const verifyBodyLimit = 16 << 10

type verifyResponse struct {
	Valid       bool                   `json:"valid"`
	Code        string                 `json:"code"`
	Kind        string                 `json:"kind,omitempty"`
	ID          string                 `json:"id,omitempty"`
	Subject     string                 `json:"subject,omitempty"`
	Scopes      []string               `json:"scopes,omitempty"`
	Privileges  []credential.Privilege `json:"privileges,omitempty"`
	WorkspaceID string                 `json:"workspace_id,omitempty"`
	Claims      json.RawMessage        `json:"claims,omitempty"`
	ExpiresAt   *string                `json:"expires_at,omitempty"`
	RateLimit   *rateLimitJSON         `json:"ratelimit,omitempty"`
}

type rateLimitJSON struct {
	Limit     int    `json:"limit"`
	Remaining int    `json:"remaining"`
	ResetAt   string `json:"reset_at"`
}

// verify is the one verify call for every credential kind: always 200 for
// a decision, whatever it is.
func (n *native) verify(w http.ResponseWriter, r *http.Request, c authority.Caller) {
	r.Body = http.MaxBytesReader(w, r.Body, verifyBodyLimit)
	body, err := wire.Body(r)
	var f *wire.Form
	if err == nil {
		f, err = wire.ParseForm(body)
	}
	if err == nil {
		err = f.Only("token", "client_ip", "required_scopes", "required_privilege")
	}
	var in authority.VerifyInput
	if err == nil {
		var token *string
		if token, err = f.String("token"); err == nil && (token == nil || *token == "") {
			err = credential.ParamError(credential.CodeMissing, "token", "is missing")
		} else if token != nil {
			in.Token = *token
		}
	}
	if err == nil {
		in.RequiredScopes, err = f.Strings("required_scopes")
	}
	if err == nil {
		in.ClientIP, err = clientIPParam(f)
	}
	if err == nil && f.Has("required_privilege") {
		in.RequiredPrivilege, err = requiredPrivilege(f.Raw("required_privilege"))
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	res, err := n.auth.Verify(r.Context(), c, in)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	out := verifyResponse{Valid: res.Valid, Code: string(res.Reason)}
	if res.Reason != authority.ReasonNotFound {
		out.Kind, out.ID, out.Subject, out.Scopes, out.Claims = string(res.Kind), res.ID, res.Subject, res.Scopes, res.Claims
		out.Privileges, out.WorkspaceID = res.Privileges, res.WorkspaceID
		if rl := res.RateLimit; rl != nil {
			out.RateLimit = &rateLimitJSON{Limit: rl.Limit, Remaining: rl.Remaining, ResetAt: rl.ResetAt.UTC().Format(time.RFC3339)}
		}
		if !res.ExpiresAt.IsZero() {
			t := res.ExpiresAt.UTC().Format(time.RFC3339Nano)
			out.ExpiresAt = &t
		}
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

// introspect is RFC 7662 token introspection. Anything not valid gets
// {"active":false} and nothing else.
func (n *native) introspect(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, verifyBodyLimit)
	c, err := n.auth.Authenticate(r.Context(), wire.Credential(r, "Bearer"))
	if err != nil {
		if credential.CodeOf(err) == credential.CodeUnauthenticated {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyward"`)
			wire.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "a valid admin or machine secret key is required"})
			return
		}
		n.writeError(w, r, err)
		return
	}
	body, err := wire.Body(r)
	var form url.Values
	if err == nil {
		form, err = url.ParseQuery(string(body))
	}
	if err == nil {
		err = wire.CheckValues(form)
	}
	if err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") || len(form["token"]) != 1 {
		wire.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "send one token as application/x-www-form-urlencoded"})
		return
	}
	res, err := n.auth.Verify(r.Context(), c, authority.VerifyInput{Token: form.Get("token")})
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if !res.Valid {
		wire.WriteJSON(w, http.StatusOK, map[string]bool{"active": false})
		return
	}
	out := map[string]any{
		"active":     true,
		"token_type": "Bearer",
		"kind":       res.Kind,
		"sub":        res.Subject,
		"jti":        res.ID,
		"iat":        res.IssuedAt.Unix(),
	}
	if res.Kind == credential.KindM2MToken {
		out["client_id"] = res.Subject
	}
	if len(res.Scopes) > 0 {
		out["scope"] = strings.Join(res.Scopes, " ")
	}
	if !res.ExpiresAt.IsZero() {
		out["exp"] = res.ExpiresAt.Unix()
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

// jwks serves the public keys of every instance: what an offline verifier
// of keyward's JWTs needs. Public parameters only.
func (n *native) jwks(w http.ResponseWriter, r *http.Request) {
	keys, err := n.auth.PublishedKeys(r.Context(), "")
	if err == nil {
		var set any
		if set, err = wire.JWKS(keys); err == nil {
			w.Header().Set("Cache-Control", "public, max-age=60")
			wire.WriteJSON(w, http.StatusOK, set)
			return
		}
	}
	n.writeError(w, r, err)
}

func clientIPParam(f *wire.Form) (netip.Addr, error) {
	s, err := f.String("client_ip")
	if err != nil || s == nil {
		return netip.Addr{}, err
	}
	ip, perr := netip.ParseAddr(*s)
	if perr != nil || ip.Zone() != "" {
		return netip.Addr{}, credential.ParamError(credential.CodeInvalid, "client_ip", "must be an IPv4 or IPv6 address")
	}
	return ip.Unmap(), nil
}

// requiredPrivilege decodes {scope, role, site_id | sitegroup_id}.
func requiredPrivilege(raw json.RawMessage) (*credential.Privilege, error) {
	f, err := wire.ParseForm(raw)
	if err == nil {
		err = f.Only("scope", "role", "site_id", "sitegroup_id")
	}
	var scope, role, site, group string
	for _, field := range []struct {
		name string
		dst  *string
	}{{"scope", &scope}, {"role", &role}, {"site_id", &site}, {"sitegroup_id", &group}} {
		if err == nil {
			*field.dst, err = f.Text(field.name)
		}
	}
	if err != nil {
		e := credential.AsError(err)
		return nil, credential.ParamError(credential.CodeInvalid, "required_privilege", e.Param+" "+e.Message)
	}
	p := credential.Privilege{Scope: credential.Scope(scope), Role: credential.Role(role), SiteID: site, SitegroupID: group}
	if err := credential.ValidatePrivileges([]credential.Privilege{p}); err != nil {
		e := credential.AsError(err)
		return nil, credential.ParamError(credential.CodeInvalid, "required_privilege", e.Message)
	}
	return &p, nil
}
