package httpapi_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// machines is a caller machine scoped to a target, and an opaque M2M token
// the caller minted.
type machines struct {
	caller, callerKey, target, token, tokenID string
}

func newMachines(t *testing.T, e *apitest.Env) machines {
	t.Helper()
	var m machines
	m.target, _ = clerkMachine(t, e, map[string]any{"name": "target"})
	m.caller, m.callerKey = clerkMachine(t, e, map[string]any{"name": "caller", "scoped_machines": []string{m.target}})
	resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens", m.callerKey, map[string]any{})
	if resp.Status != http.StatusCreated {
		t.Fatalf("mint: %d %s", resp.Status, resp.Body)
	}
	tok := resp.JSON(t)
	m.token, m.tokenID = tok["token"].(string), tok["id"].(string)
	e.Remember(m.token)
	return m
}

func clerkMachine(t *testing.T, e *apitest.Env, body any) (string, string) {
	t.Helper()
	resp := e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, body)
	if resp.Status != http.StatusOK {
		t.Fatalf("create machine: %d %s", resp.Status, resp.Body)
	}
	m := resp.JSON(t)
	e.Remember(m["secret_key"].(string))
	return m["id"].(string), m["secret_key"].(string)
}

// authz calls the forward-auth endpoint as a gateway would.
func authz(t *testing.T, e *apitest.Env, method, path string, header http.Header) apitest.Response {
	t.Helper()
	return e.DoWith(t, method, path, nil, header)
}

func bearerHeader(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func TestAuthzPassesAValidCredentialWithItsIdentity(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		m := newMachines(t, e)
		// Every method, and any path below (Envoy appends the original one).
		for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"} {
			for _, path := range []string{"/v1/authz", "/v1/authz/api/orders/7"} {
				resp := authz(t, e, method, path, bearerHeader(m.token))
				if resp.Status != http.StatusOK {
					t.Fatalf("%s %s: %d %s", method, path, resp.Status, resp.Body)
				}
				want := map[string]string{"X-Keyward-Subject": m.caller, "X-Keyward-Kind": "m2m_token", "X-Keyward-Scopes": m.target, "X-Keyward-Credential-Id": m.tokenID}
				for h, v := range want {
					if got := resp.Header.Get(h); got != v {
						t.Errorf("%s %s: %s = %q, want %q", method, path, h, got, v)
					}
				}
				if len(resp.Body) != 0 {
					t.Errorf("%s: a 200 has an empty body, got %q", method, resp.Body)
				}
				if resp.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("%s: a decision must not be cached by the gateway's HTTP cache", method)
				}
			}
		}
		// A JWT M2M token passes too, with the same identity.
		resp := e.Do(t, "POST", "/clerk/v1/m2m_tokens", m.callerKey, map[string]any{"token_format": "jwt"})
		jwt := resp.JSON(t)["token"].(string)
		if r := authz(t, e, "GET", "/v1/authz?scope="+m.target, bearerHeader(jwt)); r.Status != 200 || r.Header.Get("X-Keyward-Subject") != m.caller {
			t.Fatalf("JWT: %d %v", r.Status, r.Header)
		}
	})
}

func TestAuthzRefusesWithRFC6750Challenges(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		m := newMachines(t, e)
		_, otherAdmin := e.NewInstance(t, "other")
		otherTarget := e.Do(t, "POST", "/clerk/v1/machines", otherAdmin, map[string]any{"name": "t"}).JSON(t)["id"].(string)
		otherCallerResp := e.Do(t, "POST", "/clerk/v1/machines", otherAdmin, map[string]any{"name": "c", "scoped_machines": []string{otherTarget}}).JSON(t)
		otherToken := e.Do(t, "POST", "/clerk/v1/m2m_tokens", otherCallerResp["secret_key"].(string), map[string]any{}).JSON(t)["token"].(string)
		e.Remember(otherCallerResp["secret_key"].(string), otherToken)

		for _, tc := range []struct {
			name      string
			path      string
			header    http.Header
			status    int
			challenge string
			reason    string
		}{
			{"no credential", "/v1/authz", nil, 401, `Bearer realm="keyward"`, "unauthenticated"},
			{"another scheme", "/v1/authz", http.Header{"Authorization": {"Basic " + m.token}}, 401, `Bearer realm="keyward"`, "unauthenticated"},
			{"two Authorization headers", "/v1/authz", http.Header{"Authorization": {"Bearer " + m.token, "Bearer " + m.token}}, 401, `Bearer realm="keyward"`, "unauthenticated"},
			{"garbage", "/v1/authz", bearerHeader("mt_nope"), 401, `Bearer realm="keyward", error="invalid_token"`, "not_found"},
			{"a machine secret key is no bearer credential here", "/v1/authz", bearerHeader(m.callerKey), 401, `Bearer realm="keyward", error="invalid_token"`, "not_found"},
			{"the admin key is no bearer credential here", "/v1/authz", bearerHeader(e.AdminKey), 401, `Bearer realm="keyward", error="invalid_token"`, "not_found"},
			{"another instance's token", "/v1/authz", bearerHeader(otherToken), 401, `Bearer realm="keyward", error="invalid_token"`, "not_found"},
			{"a scope it lacks (query)", "/v1/authz?scope=" + m.target + "&scope=mch_else", bearerHeader(m.token), 403, `Bearer realm="keyward", error="insufficient_scope", scope="` + m.target + ` mch_else"`, "insufficient_scope"},
			{"a scope it lacks (header)", "/v1/authz", http.Header{"Authorization": {"Bearer " + m.token}, "X-Keyward-Required-Scopes": {"mch_else"}}, 403, `Bearer realm="keyward", error="insufficient_scope", scope="mch_else"`, "insufficient_scope"},
			{"query and header add up", "/v1/authz?scope=" + m.target, http.Header{"Authorization": {"Bearer " + m.token}, "X-Keyward-Required-Scopes": {"mch_else"}}, 403, `Bearer realm="keyward", error="insufficient_scope", scope="` + m.target + ` mch_else"`, "insufficient_scope"},
			{"a privilege an M2M token cannot hold", `/v1/authz?privilege={"scope":"org","role":"read"}`, bearerHeader(m.token), 403, `Bearer realm="keyward", error="insufficient_scope"`, "insufficient_scope"},
		} {
			resp := authz(t, e, "GET", tc.path, tc.header)
			if resp.Status != tc.status || resp.Header.Get("WWW-Authenticate") != tc.challenge || resp.Header.Get("X-Keyward-Reason") != tc.reason {
				t.Errorf("%s: %d %q %q, want %d %q %q", tc.name, resp.Status, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("X-Keyward-Reason"), tc.status, tc.challenge, tc.reason)
			}
			if resp.Header.Get("X-Keyward-Subject") != "" {
				t.Errorf("%s: a refusal names no subject", tc.name)
			}
		}
		if r := authz(t, e, "GET", "/v1/authz?scope="+m.target, bearerHeader(m.token)); r.Status != 200 {
			t.Fatalf("a scope it holds: %d %s", r.Status, r.Body)
		}
		if r := authz(t, e, "GET", "/v1/authz?privilege=nope", bearerHeader(m.token)); r.Status != 400 {
			t.Fatalf("a malformed privilege is the gateway's mistake: %d %s", r.Status, r.Body)
		}

		// Revoked: refused on the very next call on this node.
		if r := e.Do(t, "POST", "/clerk/v1/m2m_tokens/"+m.tokenID+"/revoke", e.AdminKey, map[string]any{}); r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if r := authz(t, e, "GET", "/v1/authz", bearerHeader(m.token)); r.Status != 401 || r.Header.Get("X-Keyward-Reason") != "revoked" {
			t.Fatalf("revoked: %d %v", r.Status, r.Header)
		}
		// Expired.
		fresh := e.Do(t, "POST", "/clerk/v1/m2m_tokens", m.callerKey, map[string]any{"seconds_until_expiration": 60}).JSON(t)["token"].(string)
		e.Remember(fresh)
		e.Clock.Advance(61 * time.Second)
		if r := authz(t, e, "GET", "/v1/authz", bearerHeader(fresh)); r.Status != 401 || r.Header.Get("X-Keyward-Reason") != "expired" {
			t.Fatalf("expired: %d %v", r.Status, r.Header)
		}
		for _, s := range e.Secrets() {
			if strings.Contains(e.Logs.String(), s) {
				t.Fatal("a secret reached the log")
			}
		}
	})
}

func TestAuthzNeverReadsTheBody(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.Start(t, store)
		m := newMachines(t, e)
		// Twice the server's body limit: reading it would fail the request.
		big := strings.Repeat("x", 2<<20)
		resp := e.DoWith(t, "POST", "/v1/authz", big, bearerHeader(m.token))
		if resp.Status != http.StatusOK || resp.Header.Get("X-Keyward-Subject") != m.caller {
			t.Fatalf("%d %s", resp.Status, resp.Body)
		}
	})
}

func TestAuthzReadsTheConfiguredHeaderOnly(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.StartWith(t, store, apitest.Options{AuthzHeader: "x-api-key"})
		m := newMachines(t, e)
		for _, tc := range []struct {
			name   string
			header http.Header
			status int
		}{
			{"the raw key", http.Header{"X-Api-Key": {m.token}}, 200},
			{"with a Bearer prefix", http.Header{"X-Api-Key": {"Bearer " + m.token}}, 200},
			{"in Authorization instead", bearerHeader(m.token), 401},
			{"two lines", http.Header{"X-Api-Key": {m.token, m.token}}, 401},
		} {
			if r := authz(t, e, "GET", "/v1/authz", tc.header); r.Status != tc.status {
				t.Errorf("%s: %d, want %d", tc.name, r.Status, tc.status)
			}
		}
	})
}

func TestAuthzVerifiesForTheConfiguredInstanceOnly(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		// A second server over the same store, bound to another instance:
		// the default instance's tokens are refused there.
		e := apitest.Start(t, store)
		m := newMachines(t, e)
		otherID, _ := e.NewInstance(t, "gateway")
		bound := apitest.StartWith(t, store, apitest.Options{AuthzInstance: otherID})
		if r := authz(t, bound, "GET", "/v1/authz", bearerHeader(m.token)); r.Status != 401 {
			t.Fatalf("a token of the default instance, at an endpoint bound to another: %d", r.Status)
		}
		if r := authz(t, e, "GET", "/v1/authz", bearerHeader(m.token)); r.Status != 200 {
			t.Fatalf("the default instance: %d %s", r.Status, r.Body)
		}
	})
}

func TestAuthzAppliesAllowlistsAndRateLimits(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		e := apitest.StartWith(t, store, apitest.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		e.Clock.Set(time.Date(2026, 3, 4, 5, 40, 0, 0, time.UTC))
		if r := e.Do(t, "PATCH", "/v1/instance", e.AdminKey, map[string]any{"org_token_hourly_limit": 2}); r.Status != 200 {
			t.Fatalf("limit: %d %s", r.Status, r.Body)
		}
		org := e.Do(t, "POST", "/v1/organizations", e.AdminKey, map[string]string{"slug": "acme", "name": "acme"}).JSON(t)["id"].(string)
		resp := e.DoWith(t, "POST", "/mist/api/v1/orgs/"+org+"/apitokens", map[string]any{
			"name": "gw", "privileges": []map[string]string{{"scope": "org", "role": "read"}}, "src_ips": []string{"192.0.2.0/24"},
		}, http.Header{"Authorization": {"Token " + e.AdminKey}})
		if resp.Status != 200 {
			t.Fatalf("org token: %d %s", resp.Status, resp.Body)
		}
		key := resp.JSON(t)["key"].(string)
		e.Remember(key)
		from := func(ip string) http.Header {
			return http.Header{"Authorization": {"Bearer " + key}, "X-Forwarded-For": {ip}}
		}
		if r := authz(t, e, "GET", "/v1/authz", from("198.51.100.1")); r.Status != 403 || r.Header.Get("X-Keyward-Reason") != "ip_not_allowed" {
			t.Fatalf("from outside the allowlist: %d %v", r.Status, r.Header)
		}
		priv := `/v1/authz?privilege={"scope":"org","role":"read"}`
		for i := range 2 {
			r := authz(t, e, "GET", priv, from("192.0.2.7"))
			if r.Status != 200 || r.Header.Get("X-Keyward-Kind") != "org_token" || r.Header.Get("X-Keyward-Subject") != org {
				t.Fatalf("call %d inside the allowlist: %d %v", i, r.Status, r.Header)
			}
		}
		if r := authz(t, e, "GET", `/v1/authz?privilege={"scope":"org","role":"admin"}`, from("192.0.2.7")); r.Status != 403 {
			t.Fatalf("a privilege above the token's: %d", r.Status)
		}
		r := authz(t, e, "GET", priv, from("192.0.2.7"))
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "1200" {
			t.Fatalf("over the hourly limit: %d Retry-After %q, want 429 1200 (20 minutes to the hour)", r.Status, r.Header.Get("Retry-After"))
		}
	})
}

// Whatever a client puts in the headers and query a gateway forwards, the
// endpoint never lets it pass without a valid credential, and never fails.
func FuzzAuthzRefusesWhatItCannotVerify(f *testing.F) {
	e := apitest.Start(f, testkit.OpenSQLite(f))
	for _, seed := range [][3]string{
		{"Bearer mt_x", "a b", "scope=a"},
		{"bearer  eyJhbGciOiJub25lIn0.e30.", "", `privilege={"scope":"org","role":"admin"}`},
		{"Bearer " + e.AdminKey, "\"\\", "scope=%22&privilege=null"},
		{"Basic Zm9vOmJhcg==", ",,", "scope=&scope=+"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, authorization, scopes, query string) {
		req, err := http.NewRequest("GET", e.URL+"/v1/authz?"+query, nil)
		if err != nil {
			t.Skip()
		}
		req.Header.Set("Authorization", authorization)
		req.Header.Set("X-Keyward-Required-Scopes", scopes)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Skip() // a header net/http refuses to send
		}
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Fatalf("%q %q %q: %d", authorization, scopes, query, resp.StatusCode)
		}
		if resp.StatusCode == 403 && strings.Count(resp.Header.Get("WWW-Authenticate"), `"`)%2 != 0 {
			t.Fatalf("a challenge with unbalanced quotes: %q", resp.Header.Get("WWW-Authenticate"))
		}
	})
}
