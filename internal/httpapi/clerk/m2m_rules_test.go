package clerk_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func TestM2MExpiryIsExactAndGraceKeysStillMint(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		f := newFleet(t, e)
		opaque := mint(t, e, f.minterKey, map[string]any{"seconds_until_expiration": 60})["token"].(string)
		jwtTok := mint(t, e, f.minterKey, map[string]any{"seconds_until_expiration": 60, "token_format": "jwt"})["token"].(string)

		e.Clock.Advance(59*time.Second + 999*time.Millisecond)
		for _, tok := range []string{opaque, jwtTok} {
			if code := verifyCode(t, e, f.targetKey, tok); code != "valid" {
				t.Fatalf("1 ms before expiry: %s", code)
			}
		}
		e.Clock.Advance(time.Millisecond)
		for _, tok := range []string{opaque, jwtTok} {
			if code := verifyCode(t, e, e.AdminKey, tok); code != "expired" {
				t.Fatalf("at expiry: %s, want expired", code)
			}
		}

		// A machine key inside its rotation grace can still mint; after it, 401.
		resp := e.Do(t, "POST", "/clerk/v1/machines/"+f.minter+"/secret_key/rotate", e.AdminKey, map[string]int{"previous_token_ttl": 30})
		e.Remember(resp.JSON(t)["secret"].(string))
		e.Clock.Advance(29 * time.Second)
		mint(t, e, f.minterKey, map[string]any{})
		e.Clock.Advance(time.Second)
		if resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens", f.minterKey, map[string]any{}); resp.Status != http.StatusUnauthorized {
			t.Fatalf("minting with a key past its grace: %d %s", resp.Status, resp.Body)
		}
	})
}

func TestVerifyReturnsEachCode(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		f := newFleet(t, e)
		live := mint(t, e, f.minterKey, map[string]any{"claims": map[string]int{"n": 1}})
		revoked := mint(t, e, f.minterKey, map[string]any{})
		short := mint(t, e, f.minterKey, map[string]any{"seconds_until_expiration": 1})
		if resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens/"+revoked["id"].(string)+"/revoke", e.AdminKey, map[string]any{}); resp.Status != 200 {
			t.Fatalf("revoke: %d %s", resp.Status, resp.Body)
		}
		e.Clock.Advance(time.Second)

		for _, tc := range []struct {
			name, key, token string
			required         []string
			want             string
		}{
			{"a live token", e.AdminKey, live["token"].(string), nil, "valid"},
			{"a live token, verified by its scoped machine", f.targetKey, live["token"].(string), nil, "valid"},
			{"a live token with a scope it has", e.AdminKey, live["token"].(string), []string{f.target}, "valid"},
			{"a live token missing a required scope", e.AdminKey, live["token"].(string), []string{f.bystander}, "insufficient_scope"},
			{"a revoked token", e.AdminKey, revoked["token"].(string), nil, "revoked"},
			{"an expired token", e.AdminKey, short["token"].(string), nil, "expired"},
			{"a revoked token, to a machine it is not scoped to", f.bystanderKey, revoked["token"].(string), nil, "not_found"},
			{"an unknown well-formed token", e.AdminKey, credential.MustGenerate(credential.KindM2MToken).Reveal(), nil, "not_found"},
			{"garbage", e.AdminKey, "hello", nil, "not_found"},
			{"a machine key presented as a token", e.AdminKey, f.minterKey, nil, "not_found"},
			{"a JWT-shaped forgery", e.AdminKey, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", nil, "not_found"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := verifyCode(t, e, tc.key, tc.token, tc.required...); got != tc.want {
					t.Fatalf("code %s, want %s", got, tc.want)
				}
			})
		}

		// A privilege requirement is never ignored: M2M tokens hold none.
		priv := e.Do(t, "POST", "/v1/verify", e.AdminKey, map[string]any{"token": live["token"], "required_privilege": map[string]string{"scope": "org", "role": "read"}})
		if got := priv.JSON(t)["code"]; got != "insufficient_scope" {
			t.Fatalf("an M2M token asked for a privilege: %v", got)
		}
		resp := e.Do(t, "POST", "/v1/verify", e.AdminKey, map[string]any{"token": live["token"]})
		body := resp.JSON(t)
		if body["kind"] != "m2m_token" || body["id"] != live["id"] || body["subject"] != f.minter || body["expires_at"] == nil {
			t.Fatalf("a valid answer: %s", resp.Body)
		}
		for _, tc := range []struct {
			name, body string
			code       string
		}{
			{"no token", `{}`, "missing"},
			{"a token of the wrong type", `{"token":7}`, "wrong_type"},
			{"an unknown field", `{"token":"x","tokne":"y"}`, "unknown_param"},
			{"malformed JSON", `{"token":`, "malformed"},
		} {
			resp := e.Do(t, "POST", "/v1/verify", e.AdminKey, tc.body)
			if resp.Status != 400 || resp.JSON(t)["error"].(map[string]any)["code"] != tc.code {
				t.Errorf("%s: %d %s, want 400 %s", tc.name, resp.Status, resp.Body, tc.code)
			}
		}
		if resp := e.Do(t, "POST", "/v1/verify", "", map[string]any{"token": live["token"]}); resp.Status != 401 {
			t.Errorf("verify without a caller key: %d", resp.Status)
		}
	})
}

// countingStore counts every transaction, to prove what causes none.
type countingStore struct {
	authority.Store
	n atomic.Int64
}

func (s *countingStore) View(ctx context.Context, fn func(authority.Tx) error) error {
	s.n.Add(1)
	return s.Store.View(ctx, fn)
}

func (s *countingStore) Update(ctx context.Context, fn func(authority.Tx) error) error {
	s.n.Add(1)
	return s.Store.Update(ctx, fn)
}

func TestMalformedTokensCauseNoStoreRead(t *testing.T) {
	store := &countingStore{Store: testkit.OpenSQLite(t)}
	e := start(t, store)
	valid := credential.MustGenerate(credential.KindM2MToken).Reveal()
	verifyCode(t, e, e.AdminKey, valid) // warms the caller's key into the cache
	before := store.n.Load()

	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 0x01
		return string(b)
	}
	bad := []string{"x", "mt_", "mt_" + strings.Repeat("A", 49), flip(valid, 10), flip(valid, len(valid)-1), valid + "0",
		"sk_live_" + valid[3:], "eyJ" + strings.Repeat(".", 10000), "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("A", 9000) + ".x"}
	for i := 0; i < 200; i++ {
		bad = append(bad, flip(credential.MustGenerate(credential.KindM2MToken).Reveal(), 3+i%49))
	}
	for _, tok := range bad {
		if code := verifyCode(t, e, e.AdminKey, tok); code != "not_found" {
			t.Fatalf("%q: %s", tok, code)
		}
	}
	if n := store.n.Load() - before; n != 0 {
		t.Fatalf("%d malformed tokens caused %d store transactions, want 0", len(bad), n)
	}
}

func TestIntrospectionSaysOnlyInactiveForAnythingNotValid(t *testing.T) {
	e := start(t, testkit.OpenSQLite(t))
	f := newFleet(t, e)
	live := mint(t, e, f.minterKey, map[string]any{})
	revoked := mint(t, e, f.minterKey, map[string]any{})
	e.Do(t, "POST", "/clerk/v1/m2m_tokens/"+revoked["id"].(string)+"/revoke", e.AdminKey, map[string]any{})

	introspect := func(key, token string) apitest.Response {
		req, _ := http.NewRequest("POST", e.URL+"/oauth/introspect", strings.NewReader("token="+token))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return apitest.Response{Status: resp.StatusCode, Body: b}
	}
	active := introspect(e.AdminKey, live["token"].(string))
	body := active.JSON(t)
	if active.Status != 200 || body["active"] != true || body["sub"] != f.minter || body["client_id"] != f.minter ||
		body["scope"] != f.target || body["jti"] != live["id"] || body["exp"] == nil {
		t.Fatalf("active introspection: %d %s", active.Status, active.Body)
	}
	for name, tok := range map[string]string{"revoked": revoked["token"].(string), "garbage": "zzz", "unknown": credential.MustGenerate(credential.KindM2MToken).Reveal()} {
		resp := introspect(e.AdminKey, tok)
		if resp.Status != 200 || strings.TrimSpace(string(resp.Body)) != `{"active":false}` {
			t.Errorf("%s: %d %s, want exactly {\"active\":false}", name, resp.Status, resp.Body)
		}
	}
	if resp := introspect("", live["token"].(string)); resp.Status != 401 {
		t.Errorf("introspection without authentication: %d", resp.Status)
	}
}

func TestMinRemainingTTLReusesALiveTokenWithTheSameClaims(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		f := newFleet(t, e)
		body := map[string]any{"seconds_until_expiration": 600, "min_remaining_ttl_seconds": 300, "claims": map[string]string{"a": "b"}}
		first := mint(t, e, f.minterKey, body)
		e.Clock.Advance(200 * time.Second)
		second := mint(t, e, f.minterKey, body)
		if second["id"] != first["id"] || second["token"] != first["token"] {
			t.Fatalf("a live token with 400 s left was not reused for min_remaining_ttl_seconds=300")
		}
		other := mint(t, e, f.minterKey, map[string]any{"seconds_until_expiration": 600, "min_remaining_ttl_seconds": 300, "claims": map[string]string{"a": "c"}})
		if other["id"] == first["id"] {
			t.Fatal("different claims reused a token")
		}
		e.Clock.Advance(101 * time.Second) // 299 s left: too little
		third := mint(t, e, f.minterKey, body)
		if third["id"] == first["id"] {
			t.Fatal("a token with less than min_remaining_ttl_seconds left was reused")
		}
		plain := mint(t, e, f.minterKey, map[string]any{"seconds_until_expiration": 600, "claims": map[string]string{"a": "b"}})
		if plain["id"] == third["id"] {
			t.Fatal("a request without min_remaining_ttl_seconds reused a token")
		}
		if resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens", f.minterKey, map[string]any{"seconds_until_expiration": 300, "min_remaining_ttl_seconds": 300}); resp.Status != 400 {
			t.Fatalf("min_remaining_ttl_seconds >= lifetime: %d %s, want 400", resp.Status, resp.Body)
		}
	})
}

func TestM2MCreateRejectsBadInputAndWrongCallers(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		f := newFleet(t, e)
		before := snapshot(t, e)
		for _, tc := range []struct {
			name, key, body string
			status          int
			code, param     string
		}{
			{"the admin key", e.AdminKey, `{}`, 403, "authorization_invalid", ""},
			{"no key", "", `{}`, 401, "authentication_invalid", ""},
			{"a reserved claim in a JWT", f.minterKey, `{"token_format":"jwt","claims":{"sub":"mch_x"}}`, 400, "machine_token_reserved_claim", "claims"},
			{"an unknown format", f.minterKey, `{"token_format":"paseto"}`, 422, "form_param_value_invalid", "token_format"},
			{"zero seconds", f.minterKey, `{"seconds_until_expiration":0}`, 422, "form_param_value_invalid", "seconds_until_expiration"},
			{"negative seconds", f.minterKey, `{"seconds_until_expiration":-5}`, 422, "form_param_value_invalid", "seconds_until_expiration"},
			{"seconds as a string", f.minterKey, `{"seconds_until_expiration":"60"}`, 422, "form_param_type_invalid", "seconds_until_expiration"},
			{"claims not an object", f.minterKey, `{"claims":[1,2]}`, 422, "form_param_type_invalid", "claims"},
			{"claims too large", f.minterKey, `{"claims":{"x":"` + strings.Repeat("y", 5000) + `"}}`, 422, "form_param_max_length_exceeded", "claims"},
			{"a negative min_remaining_ttl_seconds", f.minterKey, `{"min_remaining_ttl_seconds":-1}`, 422, "form_param_value_invalid", "min_remaining_ttl_seconds"},
			{"a min_remaining_ttl_seconds that would overflow", f.minterKey, `{"min_remaining_ttl_seconds":9223372037}`, 422, "form_param_value_invalid", "min_remaining_ttl_seconds"},
			{"min_remaining_ttl_seconds with a JWT", f.minterKey, `{"token_format":"jwt","min_remaining_ttl_seconds":60}`, 400, "form_param_value_invalid", "min_remaining_ttl_seconds"},
			{"min_remaining_ttl_seconds 0 with a JWT", f.minterKey, `{"token_format":"jwt","seconds_until_expiration":600,"min_remaining_ttl_seconds":0}`, 400, "form_param_value_invalid", "min_remaining_ttl_seconds"},
			{"an unknown field", f.minterKey, `{"scopes":["x"]}`, 422, "form_param_unknown", "scopes"},
			{"malformed JSON", f.minterKey, `{`, 400, "request_body_invalid", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens", tc.key, tc.body)
				if resp.Status != tc.status || clerkCode(t, resp) != tc.code {
					t.Fatalf("%d %s, want %d %s", resp.Status, resp.Body, tc.status, tc.code)
				}
				if tc.param != "" && !strings.Contains(string(resp.Body), `"param_name":"`+tc.param+`"`) {
					t.Fatalf("no param_name %s: %s", tc.param, resp.Body)
				}
			})
		}
		for _, tc := range []struct {
			name, query, key string
			status           int
		}{
			{"no subject", "", e.AdminKey, 422},
			{"a malformed subject", "?subject=nope", e.AdminKey, 422},
			{"an unknown machine", "?subject=" + credential.NewID(credential.PrefixMachine, time.Now()), e.AdminKey, 404},
			{"limit 101", "?subject=" + f.minter + "&limit=101", e.AdminKey, 422},
			{"a non-boolean revoked", "?subject=" + f.minter + "&revoked=maybe", e.AdminKey, 422},
		} {
			if resp := e.Do(t, "GET", "/clerk/v1/m2m_tokens"+tc.query, tc.key, nil); resp.Status != tc.status {
				t.Errorf("list with %s: %d %s, want %d", tc.name, resp.Status, resp.Body, tc.status)
			}
		}
		unknownID := credential.NewHexID("mt_")
		if resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens/"+unknownID+"/revoke", e.AdminKey, `{}`); resp.Status != 404 {
			t.Errorf("revoking an unknown token: %d", resp.Status)
		}
		tok := mint(t, e, f.minterKey, map[string]any{})
		if resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens/"+tok["id"].(string)+"/revoke", f.targetKey, `{}`); resp.Status != 404 {
			t.Errorf("a machine revoking another machine's token: %d, want 404", resp.Status)
		}
		if after := snapshot(t, e); len(after.Credentials) != len(before.Credentials)+1 {
			t.Fatalf("refused creates wrote credentials: %d before, %d after one good mint", len(before.Credentials), len(after.Credentials))
		}
	})
}

func TestDeletingAMachineEndsItsTokensAndUsageIsRecorded(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := start(t, store)
		f := newFleet(t, e)
		opaque := mint(t, e, f.minterKey, map[string]any{})
		jwtTok := mint(t, e, f.minterKey, map[string]any{"token_format": "jwt"})

		e.Clock.Advance(5 * time.Second)
		verifyCode(t, e, f.targetKey, opaque["token"].(string))
		if err := e.Auth.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
		list := e.Do(t, "GET", "/clerk/v1/m2m_tokens?subject="+f.minter, e.AdminKey, nil).JSON(t)
		got := list["m2m_tokens"].([]any)[0].(map[string]any)["last_used_at"]
		if got != float64(e.Clock.Now().UnixMilli()) {
			t.Fatalf("last_used_at = %v, want the verification time %d", got, e.Clock.Now().UnixMilli())
		}

		if resp := e.Do(t, "DELETE", "/clerk/v1/machines/"+f.minter, e.AdminKey, nil); resp.Status != 200 {
			t.Fatalf("delete: %d", resp.Status)
		}
		for name, tok := range map[string]string{"opaque": opaque["token"].(string), "jwt": jwtTok["token"].(string)} {
			if code := verifyCode(t, e, e.AdminKey, tok); code != "revoked" {
				t.Errorf("%s token of a deleted machine: %s, want revoked", name, code)
			}
		}
	})
}
