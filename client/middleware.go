package client

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Principal is who a request's credential stands for.
type Principal struct {
	Kind        string          // m2m_token, pat, org_token, impersonation_session
	ID          string          // the credential's id
	Subject     string          // the machine or user it acts for
	Scopes      []string        // PAT scopes, or the machines an M2M token is scoped to
	Privileges  []Privilege     // an org token's privileges
	WorkspaceID string          // a workspace-bound PAT's workspace
	Claims      json.RawMessage // custom claims (M2M), or {"act":…} (sessions)
	ExpiresAt   *time.Time
}

type principalKey struct{}

// ContextWithPrincipal returns ctx carrying p, as the middleware passes it
// to the next handler (useful in handler tests).
func ContextWithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the middleware authenticated.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

type middleware struct {
	v         *Verifier
	realm     string
	scopes    []string
	privilege *Privilege
	clientIP  func(*http.Request) string
	log       *slog.Logger
}

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middleware)

// WithRealm sets the realm of WWW-Authenticate challenges (default "api").
func WithRealm(realm string) MiddlewareOption {
	return func(m *middleware) { m.realm = realm }
}

// WithRequiredScopes requires every one of scopes (PAT scopes; for M2M
// tokens, machine ids the token must be scoped to).
func WithRequiredScopes(scopes ...string) MiddlewareOption {
	return func(m *middleware) { m.scopes = append([]string(nil), scopes...) }
}

// WithRequiredPrivilege requires an org token to hold p (tokens of other
// kinds then fail with insufficient_scope).
func WithRequiredPrivilege(p Privilege) MiddlewareOption {
	return func(m *middleware) { m.privilege = &p }
}

// WithClientIP sets how the caller's address is found (default: the TCP
// peer, r.RemoteAddr). Behind a proxy, return the address it vouches for;
// keyward checks org tokens' src_ips against it.
func WithClientIP(f func(*http.Request) string) MiddlewareOption {
	return func(m *middleware) {
		if f != nil {
			m.clientIP = f
		}
	}
}

// WithLogger logs why keyward could not be asked (default: slog.Default()).
// Tokens are never logged.
func WithLogger(l *slog.Logger) MiddlewareOption {
	return func(m *middleware) {
		if l != nil {
			m.log = l
		}
	}
}

// RemoteIP is the default client address: the host of r.RemoteAddr.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return host
}

// Middleware protects a handler with keyward credentials presented as
// "Authorization: Bearer <token>".
//
//   - no token: 401 with a bare Bearer challenge;
//   - a token in the query string (access_token): 400 invalid_request;
//   - not_found, expired, revoked: 401 error="invalid_token";
//   - insufficient_scope, ip_not_allowed: 403 error="insufficient_scope";
//   - rate_limited: 429 with Retry-After;
//   - keyward or its JWKS unreachable (or refusing the verifier's key):
//     503, failing closed;
//   - valid: the next handler, with the Principal in the request context.
func Middleware(v *Verifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	m := &middleware{v: v, realm: "api", clientIP: RemoteIP, log: slog.Default()}
	for _, o := range opts {
		o(m)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.serve(w, r, next)
		})
	}
}

func (m *middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	// RFC 6750 §2.3 allows the URI query, but it leaks into logs and
	// histories: refuse it outright.
	if r.URL.Query().Has("access_token") {
		m.refuse(w, http.StatusBadRequest, "invalid_request", "send the token in the Authorization header, not the URL")
		return
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", m.challenge(""))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	res, err := m.v.Verify(r.Context(), VerifyRequest{
		Token:             token,
		ClientIP:          cleanIP(m.clientIP(r)),
		RequiredScopes:    m.scopes,
		RequiredPrivilege: m.privilege,
	})
	if err != nil {
		if r.Context().Err() == nil {
			m.log.LogAttrs(r.Context(), slog.LevelError, "keyward verification unavailable", slog.String("error", err.Error()))
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable", "error_description": "credentials cannot be verified right now"})
		return
	}
	switch res.Code {
	case CodeValid:
		if !res.Valid {
			break
		}
		p := Principal{
			Kind: res.Kind, ID: res.ID, Subject: res.Subject, Scopes: res.Scopes, Privileges: res.Privileges,
			WorkspaceID: res.WorkspaceID, Claims: res.Claims, ExpiresAt: res.ExpiresAt,
		}
		next.ServeHTTP(w, r.WithContext(ContextWithPrincipal(r.Context(), p)))
		return
	case CodeInsufficientScope, CodeIPNotAllowed:
		m.refuse(w, http.StatusForbidden, "insufficient_scope", "the token does not allow this request")
		return
	case CodeRateLimited:
		retry := 1
		if res.RateLimit != nil {
			if d := res.RateLimit.ResetAt.Sub(m.v.now()); d > 0 {
				retry = int(math.Ceil(d.Seconds()))
			}
			w.Header().Set("X-RateLimit-Limit", strconv.Itoa(res.RateLimit.Limit))
			w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(res.RateLimit.Remaining))
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(res.RateLimit.ResetAt.Unix(), 10))
		}
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "rate_limited", "error_description": "the token's rate limit is exhausted"})
		return
	}
	// not_found, expired, revoked, and any code this SDK does not know.
	m.refuse(w, http.StatusUnauthorized, "invalid_token", "the token is not valid")
}

// cleanIP keeps an address keyward accepts as client_ip, or nothing.
func cleanIP(s string) string {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	return ip.WithZone("").Unmap().String()
}

// bearer extracts the token of "Bearer <token>" (scheme case-insensitive).
func bearer(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	t := strings.TrimSpace(h[len(scheme):])
	return t, t != ""
}

func (m *middleware) challenge(code string) string {
	c := `Bearer realm="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(m.realm) + `"`
	if code != "" {
		c += `, error="` + code + `"`
	}
	return c
}

func (m *middleware) refuse(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("WWW-Authenticate", m.challenge(code))
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
