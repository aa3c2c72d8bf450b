package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/client"
)

// jwksServer publishes one Ed25519 key and answers /v1/verify with verify.
type jwksServer struct {
	*httptest.Server
	priv       ed25519.PrivateKey
	kid        string
	jwksCalls  atomic.Int32
	verifyHits atomic.Int32
	mu         sync.Mutex
	answer     string
	down       atomic.Bool
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &jwksServer{priv: priv, kid: "sk_test", answer: `{"valid":true,"code":"valid","kind":"pat","subject":"user_1"}`}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			w.WriteHeader(503)
			return
		}
		switch r.URL.Path {
		case "/.well-known/jwks.json":
			s.jwksCalls.Add(1)
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: s.kid, Algorithm: "EdDSA", Use: "sig"}}})
		case "/v1/verify":
			s.verifyHits.Add(1)
			s.mu.Lock()
			defer s.mu.Unlock()
			io.WriteString(w, s.answer)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) sign(t *testing.T, kid string, header map[jose.HeaderKey]any, claims ...any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid)
	for k, v := range header {
		opts = opts.WithHeader(k, v)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: s.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b := jwt.Signed(sig)
	for _, c := range claims {
		b = b.Claims(c)
	}
	tok, err := b.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var m2mHeader = map[jose.HeaderKey]any{"typ": "JWT", "cat": "cl_B7d4PD333AAA"}

func TestVerifierJWTOffline(t *testing.T) {
	s := newJWKSServer(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	v := client.NewVerifier(client.New(s.URL, secretKey), client.WithClock(func() time.Time { return *clock.Load() }),
		client.WithIssuer("keyward"), client.WithJWKSRefetchInterval(time.Hour))
	ctx := context.Background()
	std := jwt.Claims{Issuer: "keyward", Subject: "mch_a", ID: "mt_1", IssuedAt: jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	tok := s.sign(t, s.kid, m2mHeader, std, map[string]any{"scopes": "mch_b mch_c", "job": "nightly"})

	res, err := v.Verify(ctx, client.VerifyRequest{Token: tok, RequiredScopes: []string{"mch_b"}})
	if err != nil || !res.Valid || res.Kind != client.KindM2MToken || res.Subject != "mch_a" || res.ID != "mt_1" ||
		strings.Join(res.Scopes, " ") != "mch_b mch_c" || string(res.Claims) != `{"job":"nightly"}` {
		t.Fatalf("valid: %+v %v", res, err)
	}
	if res, _ := v.Verify(ctx, client.VerifyRequest{Token: tok, RequiredScopes: []string{"mch_z"}}); res.Code != client.CodeInsufficientScope {
		t.Errorf("scope: %+v", res)
	}
	if s.verifyHits.Load() != 0 || s.jwksCalls.Load() != 1 {
		t.Errorf("verify hits %d, JWKS fetches %d; want 0 and 1", s.verifyHits.Load(), s.jwksCalls.Load())
	}

	// now == exp is expired, as keyward decides.
	later := now.Add(time.Minute)
	clock.Store(&later)
	if res, _ := v.Verify(ctx, client.VerifyRequest{Token: tok}); res.Code != client.CodeExpired || res.Valid {
		t.Errorf("expired: %+v", res)
	}
	lenient := client.NewVerifier(client.New(s.URL, secretKey), client.WithClock(func() time.Time { return later }), client.WithLeeway(time.Hour))
	if res, _ := lenient.Verify(ctx, client.VerifyRequest{Token: tok}); !res.Valid {
		t.Errorf("leeway is capped at 60 s, a minute late should pass: %+v", res)
	}
	clock.Store(&now)

	refused := map[string]string{
		"unknown kid":    s.sign(t, "other", m2mHeader, std),
		"wrong issuer":   s.sign(t, s.kid, m2mHeader, jwt.Claims{Issuer: "evil", Subject: "mch_a", Expiry: std.Expiry}),
		"no exp":         s.sign(t, s.kid, m2mHeader, jwt.Claims{Issuer: "keyward", Subject: "mch_a"}),
		"not yet valid":  s.sign(t, s.kid, m2mHeader, jwt.Claims{Issuer: "keyward", Subject: "mch_a", Expiry: std.Expiry, NotBefore: jwt.NewNumericDate(now.Add(time.Second))}),
		"no category":    s.sign(t, s.kid, map[jose.HeaderKey]any{"typ": "JWT"}, std),
		"tampered":       tok[:len(tok)-4] + "AAAA",
		"garbage":        "eyJhbGciOiJub25lIn0.e30.",
		"opaque garbage": "",
	}
	for name, tok := range refused {
		if res, err := v.Verify(ctx, client.VerifyRequest{Token: tok}); err != nil || res.Valid || res.Code != client.CodeNotFound {
			t.Errorf("%s: %+v %v", name, res, err)
		}
	}
	// The unknown kid made one refetch; more unknown kids within the
	// interval make none.
	for range 5 {
		v.Verify(ctx, client.VerifyRequest{Token: refused["unknown kid"]})
	}
	if n := s.jwksCalls.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
}

func TestVerifierJWKSUnavailableIsAnError(t *testing.T) {
	s := newJWKSServer(t)
	s.down.Store(true)
	v := client.NewVerifier(client.New(s.URL, secretKey, client.WithRetries(0)))
	tok := s.sign(t, s.kid, m2mHeader, jwt.Claims{Subject: "mch_a", Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))})
	if _, err := v.Verify(context.Background(), client.VerifyRequest{Token: tok}); err == nil {
		t.Error("no error with the JWKS unreachable")
	}
}

func TestVerifierCachesValidAnswersOnly(t *testing.T) {
	s := newJWKSServer(t)
	ctx := context.Background()
	req := client.VerifyRequest{Token: "pat_abc"}

	v := client.NewVerifier(client.New(s.URL, secretKey), client.WithCacheStaleness(time.Minute))
	for range 3 {
		if res, err := v.Verify(ctx, req); err != nil || !res.Valid {
			t.Fatalf("%+v %v", res, err)
		}
	}
	if n := s.verifyHits.Load(); n != 1 {
		t.Errorf("valid answer: %d calls, want 1", n)
	}
	// Another client IP or other required scopes is another question.
	v.Verify(ctx, client.VerifyRequest{Token: "pat_abc", ClientIP: "192.0.2.1"})
	v.Verify(ctx, client.VerifyRequest{Token: "pat_abc", RequiredScopes: []string{"read"}})
	if n := s.verifyHits.Load(); n != 3 {
		t.Errorf("distinct questions: %d calls, want 3", n)
	}

	// Invalid answers live at most a second.
	s.mu.Lock()
	s.answer = `{"valid":false,"code":"revoked","kind":"pat"}`
	s.mu.Unlock()
	s.verifyHits.Store(0)
	req.Token = "pat_revoked"
	v.Verify(ctx, req)
	time.Sleep(1100 * time.Millisecond)
	if res, _ := v.Verify(ctx, req); res.Code != client.CodeRevoked || s.verifyHits.Load() != 2 {
		t.Errorf("invalid answer reused after 1 s: %+v, %d calls", res, s.verifyHits.Load())
	}

	// Org tokens' answers count against a rate limit: never cached.
	s.mu.Lock()
	s.answer = `{"valid":true,"code":"valid","kind":"org_token","ratelimit":{"limit":5,"remaining":4,"reset_at":"2030-01-01T00:00:00Z"}}`
	s.mu.Unlock()
	s.verifyHits.Store(0)
	req.Token = "otk_abc"
	v.Verify(ctx, req)
	v.Verify(ctx, req)
	if n := s.verifyHits.Load(); n != 2 {
		t.Errorf("org token: %d calls, want 2", n)
	}

	// Staleness 0: every call asks.
	s.verifyHits.Store(0)
	v0 := client.NewVerifier(client.New(s.URL, secretKey), client.WithCacheStaleness(0))
	v0.Verify(ctx, client.VerifyRequest{Token: "pat_abc"})
	v0.Verify(ctx, client.VerifyRequest{Token: "pat_abc"})
	if n := s.verifyHits.Load(); n != 2 {
		t.Errorf("staleness 0: %d calls, want 2", n)
	}
}

func TestMiddlewareWithoutKeyward(t *testing.T) {
	s := newJWKSServer(t)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := client.PrincipalFrom(r.Context())
		if !ok {
			t.Error("no principal")
		}
		io.WriteString(w, p.Subject)
	})
	h := client.Middleware(client.NewVerifier(client.New(s.URL, secretKey, client.WithRetries(0))), client.WithRealm("test"))(next)
	do := func(target, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("/", "bearer pat_abc"); w.Code != 200 || w.Body.String() != "user_1" {
		t.Errorf("valid: %d %s", w.Code, w.Body)
	}
	if w := do("/", ""); w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer realm="test"` || w.Body.Len() != 0 {
		t.Errorf("no token: %d %q %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
	}
	if w := do("/", "Basic dXNlcjpwYXNz"); w.Code != 401 {
		t.Errorf("basic: %d", w.Code)
	}
	if w := do("/?access_token=pat_abc", ""); w.Code != 400 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_request"`) {
		t.Errorf("query token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	s.down.Store(true)
	if w := do("/", "Bearer pat_other"); w.Code != 503 || strings.Contains(w.Body.String(), "pat_other") {
		t.Errorf("keyward down: %d %s", w.Code, w.Body)
	}
}
