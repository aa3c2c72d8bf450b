package httpapi

import (
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
	"github.com/keyward/keyward/internal/signing"
)

// OAuth 2.0 interop: discovery (RFC 8414, OpenID Connect Discovery), the
// client credentials grant (RFC 6749 §4.4) beside token exchange at
// /oauth/token, and revocation (RFC 7009). Clients are machines: the
// client id is the machine id, the client secret its secret key.
const (
	grantClientCredentials = "client_credentials"
	authBasic              = "client_secret_basic"
	authPost               = "client_secret_post"
	// basicChallenge answers a failed client authentication (RFC 6749
	// §5.2: 401 with the scheme the client may use).
	basicChallenge = `Basic realm="keyward"`
)

// token serves every grant of the token endpoint.
func (n *native) token(w http.ResponseWriter, r *http.Request) error {
	form, err := readForm(r)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: err.Error()})
		return nil
	}
	for name, vs := range form {
		if len(vs) > 1 { // RFC 6749 §3.2: no parameter more than once
			writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: name + " is sent more than once"})
			return nil
		}
	}
	switch form.Get("grant_type") {
	case grantClientCredentials:
		return n.clientCredentials(w, r, form)
	case grantTokenExchange:
		return n.tokenExchange(w, r, form)
	case "":
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "grant_type is missing"})
	default:
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "unsupported_grant_type", Description: "the supported grants are " + grantClientCredentials + " and " + grantTokenExchange})
	}
	return nil
}

// clientCaller authenticates the OAuth client by HTTP Basic or by
// client_id and client_secret in the form, never both (RFC 6749 §2.3).
// It reports false on failure, having written the OAuth error, or with
// the error for the native envelope to write.
func (n *native) clientCaller(w http.ResponseWriter, r *http.Request, form url.Values) (authority.Caller, bool, error) {
	if len(r.Header.Values("Authorization")) > 1 {
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "send one Authorization header"})
		return authority.Caller{}, false, nil
	}
	id, secret, basic := r.BasicAuth()
	_, inForm := form["client_secret"]
	switch {
	case basic && (inForm || form.Has("client_id") && form.Get("client_id") != decodeBasic(id)):
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "authenticate the client one way: HTTP Basic or client_secret in the body"})
		return authority.Caller{}, false, nil
	case basic:
		// RFC 6749 §2.3.1: both halves are form-urlencoded before Basic.
		id, secret = decodeBasic(id), decodeBasic(secret)
	case inForm:
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" || secret == "" {
		w.Header().Set("WWW-Authenticate", basicChallenge)
		writeOAuthError(w, http.StatusUnauthorized, oauthError{Error: "invalid_client", Description: "client authentication is required: the machine id and its secret key"})
		return authority.Caller{}, false, nil
	}
	c, err := n.auth.AuthenticateClient(r.Context(), id, secret)
	if err != nil {
		if credential.IsCode(err, credential.CodeUnauthenticated) {
			w.Header().Set("WWW-Authenticate", basicChallenge)
			writeOAuthError(w, http.StatusUnauthorized, oauthError{Error: "invalid_client", Description: "client authentication failed"})
			return authority.Caller{}, false, nil
		}
		return authority.Caller{}, false, oauthFailure(w, err)
	}
	return c, true, nil
}

func decodeBasic(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

type clientCredentialsResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// clientCredentials mints an M2M token for the authenticated machine
// through the same use case as Clerk's POST /m2m_tokens. scope is the
// space-separated machine ids the token may call (absent: all the
// machine's scoped machines); token_format is jwt (the default: any
// OAuth resource server can check it offline against the JWKS) or opaque
// (revocable at once, checked through keyward).
func (n *native) clientCredentials(w http.ResponseWriter, r *http.Request, form url.Values) error {
	c, ok, err := n.clientCaller(w, r, form)
	if !ok {
		return err
	}
	in := authority.CreateM2MTokenInput{Format: authority.FormatJWT}
	switch f := form.Get("token_format"); f {
	case "", authority.FormatJWT:
	case authority.FormatOpaque:
		in.Format = f
	default:
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "token_format must be jwt or opaque"})
		return nil
	}
	if s := strings.Fields(form.Get("scope")); len(s) > 0 {
		in.Scopes = s
	}
	tok, err := n.auth.CreateM2MToken(r.Context(), c, in)
	if err != nil {
		if e := credential.AsError(err); e.Param == "scopes" {
			writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_scope", Description: e.Message})
			return nil
		}
		return oauthFailure(w, err)
	}
	wire.WriteSecretJSON(w, http.StatusOK, clientCredentialsResponse{
		AccessToken: tok.Token, TokenType: "Bearer",
		ExpiresIn: int64(math.Round(tok.ExpiresAt.Sub(n.auth.Now()).Seconds())),
		Scope:     strings.Join(tok.Scopes, " "),
	})
	return nil
}

// revoke is RFC 7009 token revocation, for the client that holds the
// token (Basic or body credentials) or an admin key (Bearer). It answers
// 200 for an unknown token and for one the caller may not revoke, so it
// tells nobody whether a token exists.
func (n *native) revoke(w http.ResponseWriter, r *http.Request) error {
	form, err := readForm(r)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: err.Error()})
		return nil
	}
	var c authority.Caller
	if bearer := wire.Credential(r, "Bearer"); bearer != "" { // one Authorization line only
		if c, err = n.auth.Authenticate(r.Context(), bearer); err != nil {
			if credential.IsCode(err, credential.CodeUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="keyward"`)
				writeOAuthError(w, http.StatusUnauthorized, oauthError{Error: "invalid_client", Description: "client authentication failed"})
				return nil
			}
			return oauthFailure(w, err)
		}
	} else {
		var ok bool
		if c, ok, err = n.clientCaller(w, r, form); !ok {
			return err
		}
	}
	if len(form["token"]) != 1 || form.Get("token") == "" {
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "invalid_request", Description: "send exactly one token"})
		return nil
	}
	// token_type_hint is only a hint (RFC 7009 §2.1); the token's shape
	// says what it is.
	if err := n.auth.RevokeM2MTokenBySecret(r.Context(), c, form.Get("token")); err != nil {
		return oauthFailure(w, err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// oauthFailure maps an authority error to RFC 6749 §5.2's shape, or
// returns it when it is a server error: the native envelope logs it and
// says only "internal error".
func oauthFailure(w http.ResponseWriter, err error) error {
	e := credential.AsError(err)
	switch e.Code {
	case credential.CodeWrongType:
		writeOAuthError(w, http.StatusBadRequest, oauthError{Error: "unsupported_token_type", Description: e.Message})
	case credential.CodeForbidden:
		writeOAuthError(w, http.StatusForbidden, oauthError{Error: "unauthorized_client", Description: e.Message})
	case credential.CodeUnavailable:
		w.Header().Set("Retry-After", "1")
		writeOAuthError(w, http.StatusServiceUnavailable, oauthError{Error: "temporarily_unavailable", Description: "the store is unavailable; retry later"})
	default:
		if status := nativeStatus(e.Code); status < 500 {
			writeOAuthError(w, status, oauthError{Error: "invalid_request", Description: e.Message})
			return nil
		}
		return err
	}
	return nil
}

// discovery serves the authorization server metadata (RFC 8414) at both
// well-known names; OpenID Connect discovery clients read the same
// document. keyward has no authorization endpoint (no user login), so it
// lists no response types.
func (n *native) discovery(w http.ResponseWriter, r *http.Request) error {
	iss := n.auth.Issuer()
	methods := []string{authBasic, authPost}
	w.Header().Set("Cache-Control", "public, max-age=300")
	wire.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                     iss,
		"jwks_uri":                                   iss + "/.well-known/jwks.json",
		"token_endpoint":                             iss + "/oauth/token",
		"introspection_endpoint":                     iss + "/oauth/introspect",
		"revocation_endpoint":                        iss + "/oauth/revoke",
		"grant_types_supported":                      []string{grantClientCredentials, grantTokenExchange},
		"token_endpoint_auth_methods_supported":      methods,
		"revocation_endpoint_auth_methods_supported": methods,
		"response_types_supported":                   []string{},
		"subject_types_supported":                    []string{"public"},
		"id_token_signing_alg_values_supported":      []string{signing.RS256, signing.EdDSA},
		"claims_supported":                           []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scopes"},
		"service_documentation":                      iss + "/openapi.json",
	})
	return nil
}
