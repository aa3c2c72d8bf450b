package clerk_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	clerksdk "github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/m2m_token"
	"github.com/golang-jwt/jwt/v5"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// fleet is three machines: minter is scoped to target; bystander is not.
type fleet struct {
	minter, target, bystander          string
	minterKey, targetKey, bystanderKey string
}

func newFleet(t *testing.T, e *apitest.Env) fleet {
	t.Helper()
	var f fleet
	f.target, f.targetKey = createMachine(t, e, e.AdminKey, map[string]any{"name": "target"})
	f.bystander, f.bystanderKey = createMachine(t, e, e.AdminKey, map[string]any{"name": "bystander"})
	f.minter, f.minterKey = createMachine(t, e, e.AdminKey, map[string]any{"name": "minter", "scoped_machines": []string{f.target}})
	return f
}

// jwtCreateParams adds token_format, which the Go SDK's CreateParams lacks;
// the request still goes through the SDK's own backend.
type jwtCreateParams struct {
	m2m_token.CreateParams
	TokenFormat string `json:"token_format"`
}

func createJWTWithSDK(t *testing.T, client *m2m_token.Client, params jwtCreateParams) *clerksdk.M2MTokenWithToken {
	t.Helper()
	params.TokenFormat = "jwt"
	req := clerksdk.NewAPIRequest(http.MethodPost, "/m2m_tokens")
	req.SetParams(&params)
	tok := &clerksdk.M2MTokenWithToken{}
	if err := client.Backend.Call(context.Background(), req, tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestClerkSDKDrivesM2MTokens(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		f := newFleet(t, e)
		ctx := context.Background()
		minter := m2m_token.NewClient(sdkConfig(e, f.minterKey))
		target := m2m_token.NewClient(sdkConfig(e, f.targetKey))
		bystander := m2m_token.NewClient(sdkConfig(e, f.bystanderKey))
		admin := m2m_token.NewClient(sdkConfig(e, e.AdminKey))

		claims := json.RawMessage(`{"tenant":"acme","tier":2}`)
		opaque, err := minter.Create(ctx, &m2m_token.CreateParams{Claims: &claims})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(opaque.Token)
		if opaque.Object != "machine_to_machine_token" || !strings.HasPrefix(opaque.ID, "mt_") || len(opaque.ID) != 35 ||
			!strings.HasPrefix(opaque.Token, "mt_") || opaque.Subject != f.minter {
			t.Fatalf("create returned %+v", opaque.M2MToken)
		}
		if len(opaque.Scopes) != 1 || opaque.Scopes[0] != f.target {
			t.Fatalf("scopes = %v, want the minter's scoped machines [%s]", opaque.Scopes, f.target)
		}
		if want := e.Clock.Now().Add(time.Hour).UnixMilli(); opaque.Expiration == nil || *opaque.Expiration != want {
			t.Fatalf("expiration = %v, want the machine's default TTL (%d)", opaque.Expiration, want)
		}
		if string(opaque.Claims) != string(claims) || opaque.Revoked || opaque.Expired || opaque.LastUsedAt != nil {
			t.Fatalf("create returned %+v", opaque.M2MToken)
		}

		ttl := int64(120)
		jwtTok := createJWTWithSDK(t, minter, jwtCreateParams{CreateParams: m2m_token.CreateParams{SecondsUntilExpiration: &ttl, Claims: &claims}})
		e.Remember(jwtTok.Token)
		if strings.Count(jwtTok.Token, ".") != 2 || !strings.HasPrefix(jwtTok.ID, "mt_") {
			t.Fatalf("JWT create returned %+v", jwtTok)
		}

		// The scoped machine verifies both; the bystander gets Clerk's 404.
		for name, token := range map[string]string{"opaque": opaque.Token, "jwt": jwtTok.Token} {
			got, err := target.Verify(ctx, &m2m_token.VerifyParams{Token: token})
			if err != nil {
				t.Fatalf("%s: the scoped machine cannot verify: %v", name, err)
			}
			if got.Subject != f.minter || got.Scopes[0] != f.target || string(got.Claims) != string(claims) {
				t.Fatalf("%s: verify returned %+v", name, got)
			}
			_, err = bystander.Verify(ctx, &m2m_token.VerifyParams{Token: token})
			if status, code := clerkError(t, err); status != 404 || code != "resource_not_found" {
				t.Fatalf("%s: an unscoped machine verifying: %d %s, want 404", name, status, code)
			}
			if _, err := admin.Verify(ctx, &m2m_token.VerifyParams{Token: token}); err != nil {
				t.Fatalf("%s: the admin key verifies any token of its instance: %v", name, err)
			}
		}

		// Revoke; the very next verify fails.
		reason := "rotated out"
		revoked, err := minter.Revoke(ctx, opaque.ID, &m2m_token.RevokeParams{RevocationReason: &reason})
		if err != nil {
			t.Fatal(err)
		}
		if !revoked.Revoked || revoked.RevocationReason == nil || *revoked.RevocationReason != reason || revoked.ID != opaque.ID {
			t.Fatalf("revoke returned %+v", revoked)
		}
		_, err = target.Verify(ctx, &m2m_token.VerifyParams{Token: opaque.Token})
		if status, _ := clerkError(t, err); status != 404 {
			t.Fatalf("a revoked token verified (status %d)", status)
		}
		again, err := admin.Revoke(ctx, opaque.ID, &m2m_token.RevokeParams{})
		if err != nil || !again.Revoked || *again.RevocationReason != reason {
			t.Fatalf("revoking twice must be harmless and keep the first reason: %+v %v", again, err)
		}

		// List: live tokens by default, revoked ones on request. JWTs are not stored.
		second, err := minter.Create(ctx, &m2m_token.CreateParams{})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(second.Token)
		live, err := admin.List(ctx, &m2m_token.ListParams{Subject: clerksdk.String(f.minter)})
		if err != nil {
			t.Fatal(err)
		}
		if live.TotalCount != 1 || live.M2MTokens[0].ID != second.ID {
			t.Fatalf("live list = %d tokens, want only %s", live.TotalCount, second.ID)
		}
		gone, err := minter.List(ctx, &m2m_token.ListParams{Subject: clerksdk.String(f.minter), Revoked: clerksdk.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if gone.TotalCount != 1 || gone.M2MTokens[0].ID != opaque.ID || !gone.M2MTokens[0].Revoked {
			t.Fatalf("revoked list = %+v", gone.M2MTokens)
		}
		e.Clock.Advance(time.Hour)
		expired, err := admin.List(ctx, &m2m_token.ListParams{Subject: clerksdk.String(f.minter), Expired: clerksdk.Bool(true)})
		if err != nil || expired.TotalCount != 1 || expired.M2MTokens[0].ID != second.ID || !expired.M2MTokens[0].Expired {
			t.Fatalf("expired list = %+v %v", expired, err)
		}
		_, err = minter.List(ctx, &m2m_token.ListParams{Subject: clerksdk.String(f.target)})
		if status, _ := clerkError(t, err); status != 403 {
			t.Fatalf("a machine listing another machine's tokens: %d, want 403", status)
		}
		for _, list := range []*clerksdk.M2MTokenList{live, gone, expired} {
			for _, tok := range list.M2MTokens {
				if tok.ID == "" || strings.Contains(string(mustJSON(t, tok)), `"token"`) {
					t.Fatalf("a listed token carries its secret: %s", mustJSON(t, tok))
				}
			}
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mint creates an M2M token over HTTP with a machine key.
func mint(t *testing.T, e *apitest.Env, machineKey string, body any) map[string]any {
	t.Helper()
	resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens", machineKey, body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("mint: %d %s", resp.Status, resp.Body)
	}
	tok := resp.JSON(t)
	e.Remember(tok["token"].(string))
	return tok
}

func verifyCode(t *testing.T, e *apitest.Env, key, token string, required ...string) string {
	t.Helper()
	body := map[string]any{"token": token}
	if required != nil {
		body["required_scopes"] = required
	}
	resp := e.Do(t, "POST", "/v1/verify", key, body)
	if resp.Status != http.StatusOK {
		t.Fatalf("/v1/verify: %d %s", resp.Status, resp.Body)
	}
	out := resp.JSON(t)
	if (out["code"] == "valid") != (out["valid"] == true) {
		t.Fatalf("valid and code disagree: %s", resp.Body)
	}
	return out["code"].(string)
}

// jwksKeys fetches /.well-known/jwks.json and builds public keys by kid, as
// an independent verifier would.
func jwksKeys(t *testing.T, e *apitest.Env) map[string]any {
	t.Helper()
	resp := e.Do(t, "GET", "/.well-known/jwks.json", "", nil)
	if resp.Status != 200 {
		t.Fatalf("jwks: %d %s", resp.Status, resp.Body)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(resp.Body, &set); err != nil {
		t.Fatal(err)
	}
	keys := map[string]any{}
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Fatalf("the JWKS publishes the private member %q", private)
			}
		}
		b64 := func(s string) []byte {
			b, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		switch k["kty"] {
		case "RSA":
			keys[k["kid"]] = &rsa.PublicKey{N: new(big.Int).SetBytes(b64(k["n"])), E: int(new(big.Int).SetBytes(b64(k["e"])).Int64())}
		case "OKP":
			keys[k["kid"]] = ed25519.PublicKey(b64(k["x"]))
		}
	}
	return keys
}

// verifyWithGolangJWT checks a token with golang-jwt against the JWKS.
func verifyWithGolangJWT(t *testing.T, e *apitest.Env, token string) jwt.MapClaims {
	t.Helper()
	keys := jwksKeys(t, e)
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		return keys[tok.Header["kid"].(string)], nil
	}, jwt.WithValidMethods([]string{"RS256", "EdDSA"}), jwt.WithIssuer(authority.DefaultIssuer),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(e.Clock.Now))
	if err != nil {
		t.Fatalf("golang-jwt rejects the token: %v", err)
	}
	return claims
}

func TestM2MJWTVerifiesOfflineAcrossSigningKeyRotation(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		f := newFleet(t, e)
		old := mint(t, e, f.minterKey, map[string]any{"token_format": "jwt", "claims": map[string]string{"team": "billing"}})["token"].(string)

		claims := verifyWithGolangJWT(t, e, old)
		if claims["sub"] != f.minter || claims["scopes"] != f.target || claims["team"] != "billing" || !strings.HasPrefix(claims["jti"].(string), "mt_") {
			t.Fatalf("claims = %v", claims)
		}
		if aud, _ := claims.GetAudience(); len(aud) != 1 || aud[0] != f.target {
			t.Fatalf("aud = %v, want the scoped machines", aud)
		}
		if exp, _ := claims.GetExpirationTime(); !exp.Equal(e.Clock.Now().Add(time.Hour)) {
			t.Fatalf("exp = %v", exp)
		}

		ctx := context.Background()
		if _, err := e.Auth.RotateSigningKey(ctx, authority.Operator(e.InstanceID), "RS256"); err != nil {
			t.Fatal(err)
		}
		fresh := mint(t, e, f.minterKey, map[string]any{"token_format": "jwt"})["token"].(string)
		oldHeader, freshHeader := jwtHeader(t, old), jwtHeader(t, fresh)
		if oldHeader["kid"] == freshHeader["kid"] {
			t.Fatal("rotation did not change the signing key")
		}
		if oldHeader["typ"] != "JWT" || oldHeader["cat"] != "cl_B7d4PD333AAA" || oldHeader["alg"] != "RS256" {
			t.Fatalf("header = %v", oldHeader)
		}
		for _, tok := range []string{old, fresh} {
			verifyWithGolangJWT(t, e, tok)
			if code := verifyCode(t, e, f.targetKey, tok); code != "valid" {
				t.Fatalf("/v1/verify after rotation: %s", code)
			}
		}

		// EdDSA is selectable per instance.
		if _, err := e.Auth.RotateSigningKey(ctx, authority.Operator(e.InstanceID), "EdDSA"); err != nil {
			t.Fatal(err)
		}
		ed := mint(t, e, f.minterKey, map[string]any{"token_format": "jwt"})["token"].(string)
		if jwtHeader(t, ed)["alg"] != "EdDSA" {
			t.Fatalf("EdDSA rotation signs with %v", jwtHeader(t, ed)["alg"])
		}
		verifyWithGolangJWT(t, e, ed)

		// The first key leaves the JWKS once every token it signed has expired.
		e.Clock.Advance(time.Hour)
		if _, ok := jwksKeys(t, e)[oldHeader["kid"].(string)]; ok {
			t.Fatal("a retired key whose tokens have all expired is still published")
		}
		if code := verifyCode(t, e, f.targetKey, old); code != "expired" {
			t.Fatalf("an expired JWT: %s", code)
		}
	})
}

func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}
