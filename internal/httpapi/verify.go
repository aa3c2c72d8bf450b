package httpapi

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
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
	// Controls at verify time (native_controls.go).
	Meta               json.RawMessage  `json:"meta,omitempty"`
	Permissions        []string         `json:"permissions,omitempty"`
	Roles              []string         `json:"roles,omitempty"`
	MissingPermissions []string         `json:"missing_permissions,omitempty"`
	Limits             []limitStateJSON `json:"ratelimits,omitempty"`
	Credits            *creditsLeftJSON `json:"credits,omitempty"`
	Identity           *identityRefJSON `json:"identity,omitempty"`
}

type rateLimitJSON struct {
	Limit     int    `json:"limit"`
	Remaining int    `json:"remaining"`
	ResetAt   string `json:"reset_at"`
}

// verify is the one verify call for every credential kind: always 200 for
// a decision, whatever it is.
func (n *native) verify(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	r.Body = http.MaxBytesReader(w, r.Body, verifyBodyLimit)
	body, err := wire.Body(r)
	var f *wire.Form
	if err == nil {
		f, err = wire.ParseForm(body)
	}
	if err == nil {
		err = f.Only("token", "client_ip", "required_scopes", "required_privilege", "permissions", "ratelimits", "credits")
	}
	var in authority.VerifyInput
	if err == nil {
		if in.Token, err = f.Text("token"); err == nil && in.Token == "" {
			err = credential.ParamError(credential.CodeMissing, "token", "is missing")
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
	if err == nil {
		err = verifyControlsInput(f, &in)
	}
	if err != nil {
		return err
	}
	res, err := n.auth.Verify(r.Context(), c, in)
	if err != nil {
		return err
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
		setVerifyControls(&out, &res)
	}
	writeVerifyResponse(w, out)
	return nil
}

// writeVerifyResponse writes out as json.Encoder would, without reflection.
func writeVerifyResponse(w http.ResponseWriter, out verifyResponse) {
	buf := wire.AnswerBuffer()
	b, ok := appendVerifyResponse(*buf, &out)
	if !ok {
		wire.WriteJSON(w, http.StatusOK, out)
		return
	}
	*buf = b
	wire.WriteJSONBytes(w, http.StatusOK, buf)
}

// appendVerifyResponse appends out and a newline, byte for byte what
// json.Encoder writes for it; ok is false only for claims that are not
// valid JSON.
func appendVerifyResponse(b []byte, out *verifyResponse) (_ []byte, ok bool) {
	b = append(b, `{"valid":`...)
	b = strconv.AppendBool(b, out.Valid)
	b = append(b, `,"code":`...)
	b = wire.AppendString(b, out.Code)
	for _, f := range [...]struct{ name, value string }{{`,"kind":`, out.Kind}, {`,"id":`, out.ID}, {`,"subject":`, out.Subject}} {
		if f.value != "" {
			b = append(b, f.name...)
			b = wire.AppendString(b, f.value)
		}
	}
	if len(out.Scopes) > 0 {
		b = append(b, `,"scopes":`...)
		b = appendStrings(b, out.Scopes)
	}
	if len(out.Privileges) > 0 {
		b = append(b, `,"privileges":[`...)
		for i, p := range out.Privileges {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"scope":`...)
			b = wire.AppendString(b, string(p.Scope))
			b = append(b, `,"role":`...)
			b = wire.AppendString(b, string(p.Role))
			if p.SiteID != "" {
				b = append(b, `,"site_id":`...)
				b = wire.AppendString(b, p.SiteID)
			}
			if p.SitegroupID != "" {
				b = append(b, `,"sitegroup_id":`...)
				b = wire.AppendString(b, p.SitegroupID)
			}
			if len(p.Views) > 0 {
				b = append(b, `,"views":`...)
				b = appendStrings(b, p.Views)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if out.WorkspaceID != "" {
		b = append(b, `,"workspace_id":`...)
		b = wire.AppendString(b, out.WorkspaceID)
	}
	if len(out.Claims) > 0 {
		b = append(b, `,"claims":`...)
		if b, ok = wire.AppendRaw(b, out.Claims); !ok {
			return b, false
		}
	}
	if out.ExpiresAt != nil {
		b = append(b, `,"expires_at":`...)
		b = wire.AppendString(b, *out.ExpiresAt)
	}
	if rl := out.RateLimit; rl != nil {
		b = append(b, `,"ratelimit":{"limit":`...)
		b = strconv.AppendInt(b, int64(rl.Limit), 10)
		b = append(b, `,"remaining":`...)
		b = strconv.AppendInt(b, int64(rl.Remaining), 10)
		b = append(b, `,"reset_at":`...)
		b = wire.AppendString(b, rl.ResetAt)
		b = append(b, '}')
	}
	if b, ok = appendVerifyControls(b, out); !ok {
		return b, false
	}
	return append(b, "}\n"...), true
}

// appendStrings appends a non-nil []string as a JSON array.
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendString(b, s)
	}
	return append(b, ']')
}

// introspect is RFC 7662 token introspection. Anything not valid gets
// {"active":false} and nothing else.
func (n *native) introspect(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, verifyBodyLimit)
	c, err := n.auth.Authenticate(r.Context(), wire.Credential(r, "Bearer"))
	if err != nil {
		if credential.CodeOf(err) == credential.CodeUnauthenticated {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyward"`)
			wire.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "a valid admin or machine secret key is required"})
			return nil
		}
		return err
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
		return nil
	}
	res, err := n.auth.Verify(r.Context(), c, authority.VerifyInput{Token: form.Get("token")})
	if err != nil {
		return err
	}
	buf := wire.AnswerBuffer()
	*buf = appendIntrospection(*buf, res)
	wire.WriteJSONBytes(w, http.StatusOK, buf)
	return nil
}

// appendIntrospection appends the RFC 7662 answer for res and a newline:
// {"active":false} for anything not valid, else the members in the sorted
// order json.Encoder gave the map this answer used to be.
func appendIntrospection(b []byte, res authority.VerifyResult) []byte {
	if !res.Valid {
		return append(b, "{\"active\":false}\n"...)
	}
	b = append(b, `{"active":true`...)
	if res.Kind == credential.KindM2MToken {
		b = append(b, `,"client_id":`...)
		b = wire.AppendString(b, res.Subject)
	}
	if !res.ExpiresAt.IsZero() {
		b = append(b, `,"exp":`...)
		b = strconv.AppendInt(b, res.ExpiresAt.Unix(), 10)
	}
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, res.IssuedAt.Unix(), 10)
	b = append(b, `,"jti":`...)
	b = wire.AppendString(b, res.ID)
	b = append(b, `,"kind":`...)
	b = wire.AppendString(b, string(res.Kind))
	if len(res.Scopes) > 0 {
		b = append(b, `,"scope":`...)
		b = wire.AppendString(b, strings.Join(res.Scopes, " "))
	}
	b = append(b, `,"sub":`...)
	b = wire.AppendString(b, res.Subject)
	return append(b, `,"token_type":"Bearer"}`+"\n"...)
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
