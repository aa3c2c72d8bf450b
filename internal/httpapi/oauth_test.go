package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// oauthFleet is a client machine scoped to two targets, and a bystander
// it may not call.
type oauthFleet struct {
	client, secret, targetA, targetB, bystander string
}

func newOAuthFleet(t *testing.T, e *apitest.Env) oauthFleet {
	t.Helper()
	var f oauthFleet
	f.targetA, _ = clerkMachine(t, e, map[string]any{"name": "a"})
	f.targetB, _ = clerkMachine(t, e, map[string]any{"name": "b"})
	f.bystander, _ = clerkMachine(t, e, map[string]any{"name": "bystander"})
	f.client, f.secret = clerkMachine(t, e, map[string]any{"name": "client", "scoped_machines": []string{f.targetA, f.targetB}})
	return f
}

func (f oauthFleet) config(e *apitest.Env, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: f.client, ClientSecret: f.secret, TokenURL: e.URL + "/oauth/token", Scopes: scopes, AuthStyle: style}
}

func retrieveError(t *testing.T, err error) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want an OAuth error response, got %v", err)
	}
	return re
}

func TestClientCredentialsGrantWithTheOAuth2Library(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		f := newOAuthFleet(t, e)
		ctx := context.Background()
		for _, style := range []struct {
			name  string
			style oauth2.AuthStyle
		}{{"client_secret_basic", oauth2.AuthStyleInHeader}, {"client_secret_post", oauth2.AuthStyleInParams}} {
			// No scope: every machine it may call.
			tok, err := f.config(e, style.style).Token(ctx)
			if err != nil {
				t.Fatalf("%s: %v", style.name, err)
			}
			e.Remember(tok.AccessToken)
			if tok.TokenType != "Bearer" || tok.Extra("scope") != f.targetA+" "+f.targetB || !strings.HasPrefix(tok.AccessToken, "eyJ") {
				t.Fatalf("%s: %+v scope %v, want a Bearer JWT for both targets", style.name, tok, tok.Extra("scope"))
			}
			if got := tok.Extra("expires_in"); got != float64(3600) {
				t.Errorf("%s: expires_in %v, want the machine's default TTL 3600", style.name, got)
			}
			r := authz(t, e, "GET", "/v1/authz?scope="+f.targetB, bearerHeader(tok.AccessToken))
			if r.Status != 200 || r.Header.Get("X-Keyward-Subject") != f.client {
				t.Fatalf("%s: the token at /v1/authz: %d %v", style.name, r.Status, r.Header)
			}

			// A narrower scope; an opaque token on request.
			cfg := f.config(e, style.style, f.targetA)
			cfg.EndpointParams = url.Values{"token_format": {"opaque"}}
			tok, err = cfg.Token(ctx)
			if err != nil {
				t.Fatalf("%s narrowed: %v", style.name, err)
			}
			e.Remember(tok.AccessToken)
			if !strings.HasPrefix(tok.AccessToken, "mt_") || tok.Extra("scope") != f.targetA {
				t.Fatalf("%s narrowed: %q scope %v", style.name, tok.AccessToken, tok.Extra("scope"))
			}
			if r := authz(t, e, "GET", "/v1/authz?scope="+f.targetB, bearerHeader(tok.AccessToken)); r.Status != 403 {
				t.Fatalf("%s: a token narrowed to A may not call B: %d", style.name, r.Status)
			}

			// RFC 6749 §5.2 errors, as the library reports them.
			for _, tc := range []struct {
				name   string
				cfg    *clientcredentials.Config
				status int
				code   string
			}{
				{"a machine it may not call", f.config(e, style.style, f.bystander), 400, "invalid_scope"},
				{"a wrong secret", &clientcredentials.Config{ClientID: f.client, ClientSecret: "ak_wrong", TokenURL: e.URL + "/oauth/token", AuthStyle: style.style}, 401, "invalid_client"},
				{"another machine's id", &clientcredentials.Config{ClientID: f.targetA, ClientSecret: f.secret, TokenURL: e.URL + "/oauth/token", AuthStyle: style.style}, 401, "invalid_client"},
				{"the admin key as secret", &clientcredentials.Config{ClientID: f.client, ClientSecret: e.AdminKey, TokenURL: e.URL + "/oauth/token", AuthStyle: style.style}, 401, "invalid_client"},
			} {
				_, err := tc.cfg.Token(ctx)
				re := retrieveError(t, err)
				if re.Response.StatusCode != tc.status || re.ErrorCode != tc.code {
					t.Errorf("%s %s: %d %s, want %d %s", style.name, tc.name, re.Response.StatusCode, re.ErrorCode, tc.status, tc.code)
				}
				if tc.status == 401 && re.Response.Header.Get("WWW-Authenticate") != `Basic realm="keyward"` {
					t.Errorf("%s %s: WWW-Authenticate %q", style.name, tc.name, re.Response.Header.Get("WWW-Authenticate"))
				}
			}
		}
		for _, s := range e.Secrets() {
			if strings.Contains(e.Logs.String(), s) {
				t.Fatal("a secret reached the log")
			}
		}
	})
}

func postOAuth(t *testing.T, e *apitest.Env, path string, form url.Values, header http.Header) apitest.Response {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for k, v := range header {
		h[k] = v
	}
	return e.DoWith(t, "POST", path, form.Encode(), h)
}

func basicAuth(id, secret string) http.Header {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return http.Header{"Authorization": req.Header["Authorization"]}
}

func TestTokenEndpointRefusesMalformedRequests(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		f := newOAuthFleet(t, e)
		cc := url.Values{"grant_type": {"client_credentials"}}
		for _, tc := range []struct {
			name   string
			form   url.Values
			header http.Header
			status int
			code   string
		}{
			{"another grant", url.Values{"grant_type": {"password"}}, nil, 400, "unsupported_grant_type"},
			{"no grant", url.Values{}, nil, 400, "invalid_request"},
			{"no client authentication", cc, nil, 401, "invalid_client"},
			{"both Basic and a body secret", url.Values{"grant_type": {"client_credentials"}, "client_secret": {f.secret}}, basicAuth(f.client, f.secret), 400, "invalid_request"},
			{"two Authorization headers", cc, http.Header{"Authorization": append(basicAuth(f.client, f.secret)["Authorization"], basicAuth(f.client, f.secret)["Authorization"]...)}, 400, "invalid_request"},
			{"a parameter twice", url.Values{"grant_type": {"client_credentials"}, "scope": {f.targetA, f.targetB}}, basicAuth(f.client, f.secret), 400, "invalid_request"},
			{"an unknown token format", url.Values{"grant_type": {"client_credentials"}, "token_format": {"paseto"}}, basicAuth(f.client, f.secret), 400, "invalid_request"},
		} {
			resp := postOAuth(t, e, "/oauth/token", tc.form, tc.header)
			if resp.Status != tc.status || resp.JSON(t)["error"] != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, resp.Status, resp.Body, tc.status, tc.code)
			}
		}
		// Nothing was minted by any of them.
		list := e.Do(t, "GET", "/clerk/v1/m2m_tokens?subject="+f.client, e.AdminKey, nil).JSON(t)
		if list["total_count"] != float64(0) {
			t.Fatalf("refused requests minted tokens: %v", list)
		}
	})
}

func TestOIDCDiscoveryClientVerifiesAnM2MToken(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.StartWith(t, store, apitest.Options{PublicURL: true})
		f := newOAuthFleet(t, e)
		ctx := context.Background()
		provider, err := oidc.NewProvider(ctx, e.URL)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		var meta struct {
			Token      string   `json:"token_endpoint"`
			Introspect string   `json:"introspection_endpoint"`
			Revoke     string   `json:"revocation_endpoint"`
			Grants     []string `json:"grant_types_supported"`
			Auth       []string `json:"token_endpoint_auth_methods_supported"`
		}
		if err := provider.Claims(&meta); err != nil {
			t.Fatal(err)
		}
		if meta.Token != e.URL+"/oauth/token" || meta.Introspect != e.URL+"/oauth/introspect" || meta.Revoke != e.URL+"/oauth/revoke" ||
			!slices.Contains(meta.Grants, "client_credentials") || !slices.Equal(meta.Auth, []string{"client_secret_basic", "client_secret_post"}) {
			t.Fatalf("metadata: %+v", meta)
		}
		oidcDoc := e.Do(t, "GET", "/.well-known/openid-configuration", "", nil)
		asDoc := e.Do(t, "GET", "/.well-known/oauth-authorization-server", "", nil)
		if asDoc.Status != 200 || string(asDoc.Body) != string(oidcDoc.Body) {
			t.Fatalf("the RFC 8414 document differs: %d %s", asDoc.Status, asDoc.Body)
		}

		// The token endpoint the provider names mints the token.
		cfg := clientcredentials.Config{ClientID: f.client, ClientSecret: f.secret, TokenURL: provider.Endpoint().TokenURL, Scopes: []string{f.targetA}}
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(tok.AccessToken)
		// The verifier fetches the JWKS from jwks_uri and checks the
		// signature, the issuer, the expiry and the audience: the machine
		// the token may call.
		verifier := provider.Verifier(&oidc.Config{ClientID: f.targetA, Now: e.Clock.Now})
		idt, err := verifier.Verify(ctx, tok.AccessToken)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if idt.Subject != f.client || idt.Issuer != e.URL || !slices.Equal(idt.Audience, []string{f.targetA}) {
			t.Fatalf("token: sub %s iss %s aud %v", idt.Subject, idt.Issuer, idt.Audience)
		}
		if _, err := provider.Verifier(&oidc.Config{ClientID: f.targetB, Now: e.Clock.Now}).Verify(ctx, tok.AccessToken); err == nil {
			t.Fatal("a token for A verified for B")
		}
		parts := strings.Split(tok.AccessToken, ".")
		sig := []byte(parts[2])
		sig[5] ^= 1
		if _, err := verifier.Verify(ctx, parts[0]+"."+parts[1]+"."+string(sig)); err == nil {
			t.Fatal("a tampered signature verified")
		}
	})
}

func TestRevocationFollowsRFC7009(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		f := newOAuthFleet(t, e)
		other, otherSecret := clerkMachine(t, e, map[string]any{"name": "other", "scoped_machines": []string{f.targetA}})
		ctx := context.Background()
		opaque := func(id, secret string) string {
			t.Helper()
			cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: e.URL + "/oauth/token", EndpointParams: url.Values{"token_format": {"opaque"}}}
			tok, err := cfg.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			e.Remember(tok.AccessToken)
			return tok.AccessToken
		}
		valid := func(tok string) bool {
			t.Helper()
			return authz(t, e, "GET", "/v1/authz", bearerHeader(tok)).Status == 200
		}
		mine, theirs, byAdmin := opaque(f.client, f.secret), opaque(other, otherSecret), opaque(other, otherSecret)

		revoke := func(token string, header http.Header, extra url.Values) apitest.Response {
			t.Helper()
			form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
			for k, v := range extra {
				form[k] = v
			}
			return postOAuth(t, e, "/oauth/revoke", form, header)
		}
		// Another machine's token: 200, and it still works.
		if r := revoke(theirs, basicAuth(f.client, f.secret), nil); r.Status != 200 || !valid(theirs) {
			t.Fatalf("revoking another machine's token: %d, still valid %v", r.Status, valid(theirs))
		}
		// Its own (client_secret_post): revoked at once.
		if r := revoke(mine, nil, url.Values{"client_id": {f.client}, "client_secret": {f.secret}}); r.Status != 200 || len(r.Body) != 0 || valid(mine) {
			t.Fatalf("revoking its own token: %d %s, still valid %v", r.Status, r.Body, valid(mine))
		}
		// Again, and an unknown token: 200 all the same.
		for _, tok := range []string{mine, "mt_unknown", "nonsense"} {
			if r := revoke(tok, basicAuth(f.client, f.secret), nil); r.Status != 200 {
				t.Fatalf("revoking %q: %d %s", tok, r.Status, r.Body)
			}
		}
		// Another instance's admin key: 200, and the token still works.
		_, otherAdmin := e.NewInstance(t, "other")
		if r := revoke(theirs, bearerHeader(otherAdmin), nil); r.Status != 200 || !valid(theirs) {
			t.Fatalf("another instance's admin: %d, still valid %v", r.Status, valid(theirs))
		}
		// The admin key revokes any token of its instance.
		if r := revoke(byAdmin, bearerHeader(e.AdminKey), nil); r.Status != 200 || valid(byAdmin) {
			t.Fatalf("admin revocation: %d, still valid %v", r.Status, valid(byAdmin))
		}
		jwt, err := (&clientcredentials.Config{ClientID: f.client, ClientSecret: f.secret, TokenURL: e.URL + "/oauth/token"}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			token  string
			header http.Header
			status int
			code   string
		}{
			{"a JWT", jwt.AccessToken, basicAuth(f.client, f.secret), 400, "unsupported_token_type"},
			{"no client authentication", theirs, nil, 401, "invalid_client"},
			{"a wrong secret", theirs, basicAuth(other, "ak_wrong"), 401, "invalid_client"},
			{"a bad bearer key", theirs, bearerHeader("sk_live_wrong"), 401, "invalid_client"},
		} {
			r := revoke(tc.token, tc.header, nil)
			if r.Status != tc.status || r.JSON(t)["error"] != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, r.Status, r.Body, tc.status, tc.code)
			}
		}
		if !valid(theirs) {
			t.Fatal("a refused revocation revoked the token")
		}
		resp, err := http.Post(e.URL+"/oauth/revoke", "text/plain", strings.NewReader("token="+theirs))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "invalid_request") {
			t.Fatalf("not a form: %d %s", resp.StatusCode, body)
		}
	})
}
