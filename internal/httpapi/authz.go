package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
	"github.com/keyward/keyward/internal/permquery"
)

// Forward auth: a gateway (nginx auth_request, Traefik ForwardAuth, Caddy
// forward_auth, Envoy ext_authz in HTTP mode) sends the client's request
// headers here, and lets the request through on a 200.
const (
	authzPath = "/v1/authz"
	// HeaderRequiredScopes and HeaderRequiredPrivilege carry what the
	// upstream requires, as the gateway sets them.
	HeaderRequiredScopes    = "X-Keyward-Required-Scopes"
	HeaderRequiredPrivilege = "X-Keyward-Required-Privilege"
	// HeaderRequiredPermissions carries a permission query (permquery) the
	// credential's permissions and roles must satisfy; ?permissions= too.
	HeaderRequiredPermissions = "X-Keyward-Required-Permissions"
)

// authzMethods are the methods registered one by one (so each is a
// documented operation); a bare catch-all answers any other.
var authzMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

func (n *native) registerAuthz(mux wire.Router) {
	h := n.Checked(n.authz)
	for _, m := range authzMethods {
		mux.Handle(m+" "+authzPath, h)
	}
	mux.Handle(authzPath, h)
	// Envoy's ext_authz appends the original path to its path_prefix: any
	// path below answers the same (the path itself is not looked at).
	mux.Handle(authzPath+"/", h)
}

// authz answers whether the request's credential may pass. The body is
// never read (gateways send none; one that does is ignored). Requirements
// come from the query (?scope=a&scope=b&privilege={json}) and from the
// X-Keyward-Required-* headers, and only add up: whoever can add to them
// (a client, through a gateway that forwards its query or headers) can
// make the check stricter, never looser.
func (n *native) authz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	token := n.authzCredential(r)
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keyward"`)
		n.authzDenied(w, r, http.StatusUnauthorized, "unauthenticated", "no credential was presented")
		return nil
	}
	in := authority.VerifyInput{Token: token, ClientIP: wire.ClientIP(r, n.trusted)}
	q := r.URL.Query()
	in.RequiredScopes = splitScopes(append(q["scope"], r.Header.Values(HeaderRequiredScopes)...))
	privileges := append(q["privilege"], r.Header.Values(HeaderRequiredPrivilege)...)
	switch len(privileges) {
	case 0:
	case 1:
		p, err := requiredPrivilege([]byte(privileges[0]))
		if err != nil {
			return err
		}
		in.RequiredPrivilege = p
	default:
		return credential.ParamError(credential.CodeTooMany, "privilege", "require at most one privilege")
	}
	switch perms := append(q["permissions"], r.Header.Values(HeaderRequiredPermissions)...); len(perms) {
	case 0:
	case 1:
		pq, err := permquery.Parse(perms[0])
		if err != nil {
			return credential.ParamError(credential.CodeInvalid, "permissions", err.Error())
		}
		in.Permissions = pq
	default:
		return credential.ParamError(credential.CodeTooMany, "permissions", "send at most one permission query")
	}
	res, err := n.auth.VerifyForGateway(r.Context(), n.authzInstance, in)
	if err != nil {
		return err
	}
	h := w.Header()
	switch res.Reason {
	case authority.ReasonValid:
		h.Set("X-Keyward-Subject", res.Subject)
		h.Set("X-Keyward-Kind", string(res.Kind))
		h.Set("X-Keyward-Scopes", strings.Join(res.Scopes, " "))
		h.Set("X-Keyward-Credential-Id", res.ID)
		w.WriteHeader(http.StatusOK)
	case authority.ReasonInsufficientScope:
		challenge := `Bearer realm="keyward", error="insufficient_scope"`
		if len(in.RequiredScopes) > 0 && !strings.ContainsAny(strings.Join(in.RequiredScopes, ""), `"\\`) {
			challenge += `, scope="` + strings.Join(in.RequiredScopes, " ") + `"`
		}
		h.Set("WWW-Authenticate", challenge)
		n.authzDenied(w, r, http.StatusForbidden, string(res.Reason), "the credential lacks a required scope or privilege")
	case authority.ReasonIPNotAllowed:
		n.authzDenied(w, r, http.StatusForbidden, string(res.Reason), "the credential may not be used from this address")
	case authority.ReasonInsufficientPermissions:
		if len(res.MissingPermissions) > 0 {
			h.Set("X-Keyward-Missing-Permissions", strings.Join(res.MissingPermissions, " "))
		}
		n.authzDenied(w, r, http.StatusForbidden, string(res.Reason), "the credential lacks a required permission")
	case authority.ReasonUsageExceeded:
		n.authzDenied(w, r, http.StatusTooManyRequests, string(res.Reason), "the credential has no credits left")
	case authority.ReasonRateLimited:
		if rl := res.RateLimit; rl != nil {
			wait := math.Ceil(rl.ResetAt.Sub(n.auth.Now()).Seconds())
			h.Set("Retry-After", strconv.Itoa(max(int(wait), 1)))
		} else if reset, ok := namedLimitReset(res.Limits); ok {
			wait := math.Ceil(reset.Sub(n.auth.Now()).Seconds())
			h.Set("Retry-After", strconv.Itoa(max(int(wait), 1)))
		}
		n.authzDenied(w, r, http.StatusTooManyRequests, string(res.Reason), "the credential's rate limit is exhausted")
	default: // not_found, expired, revoked
		h.Set("WWW-Authenticate", `Bearer realm="keyward", error="invalid_token"`)
		n.authzDenied(w, r, http.StatusUnauthorized, string(res.Reason), "the credential is not valid")
	}
	return nil
}

// authzCredential reads the credential: from the configured header when
// there is one (exactly one line of it; a "Bearer " prefix is allowed),
// else from Authorization: Bearer.
// namedLimitReset is the latest reset among the exhausted named limits:
// when every limit that refused could admit again.
func namedLimitReset(ls []authority.NamedLimitState) (time.Time, bool) {
	var at time.Time
	for _, l := range ls {
		if l.Remaining == 0 && l.Reset.After(at) {
			at = l.Reset
		}
	}
	return at, !at.IsZero()
}

func (n *native) authzCredential(r *http.Request) string {
	if n.authzHeader == "" {
		return wire.Credential(r, "Bearer") // "" for two Authorization lines
	}
	v := r.Header.Values(n.authzHeader)
	if len(v) != 1 {
		return ""
	}
	s := strings.TrimSpace(v[0])
	if len(s) > 7 && strings.EqualFold(s[:7], "bearer ") {
		s = strings.TrimSpace(s[7:])
	}
	return s
}

func (n *native) authzDenied(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	w.Header().Set("X-Keyward-Reason", code)
	wire.WriteJSON(w, status, map[string]any{
		"error":      map[string]string{"code": code, "message": message},
		"request_id": authority.RequestID(r.Context()),
	})
}

// splitScopes splits space- or comma-separated scope lists into one list.
func splitScopes(lists []string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, strings.FieldsFunc(l, func(c rune) bool { return c == ' ' || c == ',' })...)
	}
	return out
}
