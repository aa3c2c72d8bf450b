package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

// protectedAPI is the example API (examples/protected-api) in front of a
// real keyward: GET /hello for any credential, GET /api-only for M2M
// tokens scoped to the machine apiMachine.
func protectedAPI(t *testing.T, e *apitest.Env, apiMachine string) *httptest.Server {
	t.Helper()
	v := client.NewVerifier(client.New(e.URL, e.AdminKey),
		client.WithCacheStaleness(0), client.WithClock(e.Clock.Now), client.WithIssuer("keyward"))
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := client.PrincipalFrom(r.Context())
		json.NewEncoder(w).Encode(map[string]string{"hello": p.Subject, "kind": p.Kind})
	})
	mux := http.NewServeMux()
	mux.Handle("GET /hello", client.Middleware(v, client.WithRealm("example"))(hello))
	mux.Handle("GET /api-only", client.Middleware(v, client.WithRequiredScopes(apiMachine))(hello))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	header http.Header
	body   map[string]string
}

func call(t *testing.T, url, token string) answer {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	json.Unmarshal(b, &a.body)
	return a
}

func must(t *testing.T, resp apitest.Response, status int) map[string]any {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("setup: %d %s", resp.Status, resp.Body)
	}
	return resp.JSON(t)
}

func TestMiddlewareAgainstKeyward(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	api := must(t, e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]any{"name": "api"}), 200)["id"].(string)
	worker := must(t, e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]any{"name": "worker", "scoped_machines": []string{api}}), 200)
	workerID, workerKey := worker["id"].(string), worker["secret_key"].(string)
	other := must(t, e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]any{"name": "other"}), 200)["secret_key"].(string)
	srv := protectedAPI(t, e, api)
	hello := srv.URL + "/hello"
	mint := func(key string, body map[string]any) (token, id string) {
		t.Helper()
		m := must(t, e.Do(t, "POST", "/clerk/v1/m2m_tokens", key, body), 201)
		return m["token"].(string), m["id"].(string)
	}

	opaque, _ := mint(workerKey, map[string]any{})
	jwtTok, _ := mint(workerKey, map[string]any{"token_format": "jwt"})
	if strings.HasPrefix(opaque, "eyJ") || !strings.HasPrefix(jwtTok, "eyJ") {
		t.Fatalf("token shapes: %.8s… %.8s…", opaque, jwtTok)
	}
	pat := must(t, e.DoWith(t, "POST", "/spatio/v1/tokens", map[string]any{"name": "ci"},
		http.Header{"Authorization": {"Bearer " + e.AdminKey}, "X-User-ID": {"user_42"}}), 201)["token"].(string)
	org := must(t, e.Do(t, "POST", "/v1/organizations", e.AdminKey, map[string]string{"slug": "acme", "name": "Acme"}), 201)["id"].(string)
	orgToken := func() string {
		resp := e.Do(t, "POST", "/mist/api/v1/orgs/"+org+"/apitokens", e.AdminKey,
			map[string]any{"name": "x", "privileges": []map[string]string{{"scope": "org", "role": "admin"}}})
		return must(t, resp, 200)["key"].(string)
	}

	t.Run("accepts", func(t *testing.T) {
		for _, tc := range []struct{ name, token, subject, kind string }{
			{"opaque M2M", opaque, workerID, "m2m_token"},
			{"JWT M2M", jwtTok, workerID, "m2m_token"},
			{"PAT", pat, "user_42", "pat"},
			{"org token", orgToken(), org, "org_token"},
		} {
			a := call(t, hello, tc.token)
			if a.status != 200 || a.body["hello"] != tc.subject || a.body["kind"] != tc.kind {
				t.Errorf("%s: %d %v, want 200 hello %s kind %s", tc.name, a.status, a.body, tc.subject, tc.kind)
			}
		}
	})

	t.Run("required scopes", func(t *testing.T) {
		for name, tok := range map[string]string{"opaque": opaque, "JWT": jwtTok} {
			if a := call(t, srv.URL+"/api-only", tok); a.status != 200 {
				t.Errorf("%s M2M token scoped to the API: %d", name, a.status)
			}
		}
		unscoped, _ := mint(other, map[string]any{"token_format": "jwt"})
		for name, tok := range map[string]string{"PAT": pat, "unscoped JWT": unscoped} {
			a := call(t, srv.URL+"/api-only", tok)
			if a.status != 403 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
				t.Errorf("%s: %d %q, want 403 insufficient_scope", name, a.status, a.header.Get("WWW-Authenticate"))
			}
		}
	})

	t.Run("no token, bad token, token in query", func(t *testing.T) {
		a := call(t, hello, "")
		if a.status != 401 || a.header.Get("WWW-Authenticate") != `Bearer realm="example"` {
			t.Errorf("no token: %d %q", a.status, a.header.Get("WWW-Authenticate"))
		}
		for _, tok := range []string{"mt_nonsense", jwtTok[:len(jwtTok)-3] + "abc", "pat_" + strings.Repeat("x", 40)} {
			a := call(t, hello, tok)
			if a.status != 401 || a.header.Get("WWW-Authenticate") != `Bearer realm="example", error="invalid_token"` {
				t.Errorf("bad token: %d %q", a.status, a.header.Get("WWW-Authenticate"))
			}
		}
		if a := call(t, hello+"?access_token="+opaque, ""); a.status != 400 || a.body["error"] != "invalid_request" {
			t.Errorf("query token: %d %v", a.status, a.body)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		tok, id := mint(workerKey, map[string]any{})
		if a := call(t, hello, tok); a.status != 200 {
			t.Fatalf("before revocation: %d", a.status)
		}
		must(t, e.Do(t, "POST", "/clerk/v1/m2m_tokens/"+id+"/revoke", e.AdminKey, map[string]any{}), 200)
		a := call(t, hello, tok)
		if a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("revoked: %d %q", a.status, a.header.Get("WWW-Authenticate"))
		}
	})

	t.Run("rate limited", func(t *testing.T) {
		must(t, e.Do(t, "PATCH", "/v1/instance", e.AdminKey, map[string]int{"org_token_hourly_limit": 2}), 200)
		tok := orgToken()
		for i := range 2 {
			if a := call(t, hello, tok); a.status != 200 {
				t.Fatalf("call %d: %d", i+1, a.status)
			}
		}
		a := call(t, hello, tok)
		now := e.Clock.Now()
		reset := now.Truncate(time.Hour).Add(time.Hour)
		want := strconv.Itoa(int(reset.Sub(now).Seconds()))
		if a.status != 429 || a.header.Get("Retry-After") != want {
			t.Errorf("third call: %d Retry-After %q, want 429 and %s", a.status, a.header.Get("Retry-After"), want)
		}
	})

	t.Run("expired", func(t *testing.T) {
		shortOpaque, _ := mint(workerKey, map[string]any{"seconds_until_expiration": 60})
		shortJWT, _ := mint(workerKey, map[string]any{"token_format": "jwt", "seconds_until_expiration": 60})
		for _, tok := range []string{shortOpaque, shortJWT} {
			if a := call(t, hello, tok); a.status != 200 {
				t.Fatalf("before expiry: %d", a.status)
			}
		}
		e.Clock.Advance(61 * time.Second)
		for name, tok := range map[string]string{"opaque": shortOpaque, "JWT": shortJWT} {
			a := call(t, hello, tok)
			if a.status != 401 || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("expired %s: %d %q", name, a.status, a.header.Get("WWW-Authenticate"))
			}
		}
	})
}

func TestSDKAgainstKeyward(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	ctx := context.Background()
	kw := client.New(e.URL, e.AdminKey)

	who, err := kw.Caller(ctx)
	if err != nil || who.Kind != "admin_key" || who.InstanceID != e.InstanceID {
		t.Fatalf("caller: %+v %v", who, err)
	}
	if _, err := client.New(e.URL, "sk_live_wrong").Caller(ctx); !errors.Is(err, client.ErrUnauthorized) || strings.Contains(err.Error(), "sk_live_wrong") {
		t.Errorf("wrong key: %v", err)
	}

	o, err := kw.CreateOrganization(ctx, client.OrganizationParams{Slug: "acme", Name: "Acme"})
	if err != nil || o.ID == "" || o.Slug != "acme" || o.CreatedAt.IsZero() {
		t.Fatalf("create org: %+v %v", o, err)
	}
	if _, err := kw.CreateOrganization(ctx, client.OrganizationParams{Slug: "acme", Name: "Again"}); !errors.Is(err, client.ErrConflict) {
		t.Errorf("duplicate slug: %v", err)
	}
	if _, err := kw.CreateOrganization(ctx, client.OrganizationParams{Name: "No slug", Slug: "NOT A SLUG"}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("bad slug: %v", err)
	}
	if o, err = kw.UpdateOrganization(ctx, "acme", client.OrganizationParams{Name: "Acme Inc"}); err != nil || o.Name != "Acme Inc" {
		t.Errorf("update org: %+v %v", o, err)
	}
	if got, err := kw.GetOrganization(ctx, o.ID); err != nil || got.Name != "Acme Inc" {
		t.Errorf("get org: %+v %v", got, err)
	}
	if list, err := kw.ListOrganizations(ctx, client.Page{Limit: 10}); err != nil || list.TotalCount != 1 || len(list.Organizations) != 1 {
		t.Errorf("list orgs: %+v %v", list, err)
	}

	if cat, err := kw.SetScopes(ctx, []string{"read", "write"}); err != nil || len(cat.Scopes) != 2 || len(cat.Builtin) == 0 {
		t.Errorf("set scopes: %+v %v", cat, err)
	}
	if cat, err := kw.Scopes(ctx); err != nil || strings.Join(cat.Scopes, ",") != "read,write" {
		t.Errorf("scopes: %+v %v", cat, err)
	}

	ws, err := kw.CreateWorkspace(ctx, "acme", client.WorkspaceParams{Slug: "data", Name: "Data"})
	if err != nil || ws.OrgID != o.ID {
		t.Fatalf("create workspace: %+v %v", ws, err)
	}
	if ws, err = kw.UpdateWorkspace(ctx, "acme", "data", client.WorkspaceParams{Name: "Data team"}); err != nil || ws.Name != "Data team" {
		t.Errorf("update workspace: %+v %v", ws, err)
	}
	if got, err := kw.GetWorkspace(ctx, o.ID, ws.ID); err != nil || got.Slug != "data" {
		t.Errorf("get workspace: %+v %v", got, err)
	}
	if list, err := kw.ListWorkspaces(ctx, "acme"); err != nil || len(list) != 1 {
		t.Errorf("list workspaces: %+v %v", list, err)
	}
	if m, err := kw.PutMember(ctx, "acme", "data", "user_42", "admin"); err != nil || m.Role != "admin" || m.WorkspaceID != ws.ID {
		t.Errorf("put member: %+v %v", m, err)
	}
	if m, err := kw.GetMember(ctx, "acme", "data", "user_42"); err != nil || m.UserID != "user_42" {
		t.Errorf("get member: %+v %v", m, err)
	}
	if list, err := kw.ListMembers(ctx, "acme", "data"); err != nil || len(list) != 1 {
		t.Errorf("list members: %+v %v", list, err)
	}
	if err := kw.RemoveMember(ctx, "acme", "data", "user_42"); err != nil {
		t.Errorf("remove member: %v", err)
	}
	if _, err := kw.GetMember(ctx, "acme", "data", "user_42"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("removed member: %v", err)
	}
	if err := kw.DeleteWorkspace(ctx, "acme", "data"); err != nil {
		t.Errorf("delete workspace: %v", err)
	}

	limit := 3
	if in, err := kw.UpdateInstance(ctx, client.InstanceSettings{OrgTokenHourlyLimit: &limit}); err != nil || in.OrgTokenHourlyLimit != 3 {
		t.Errorf("update instance: %+v %v", in, err)
	}
	if in, err := kw.Instance(ctx); err != nil || in.ID != e.InstanceID {
		t.Errorf("instance: %+v %v", in, err)
	}

	// Verify and introspect: a decision is never an error.
	machine := must(t, e.Do(t, "POST", "/clerk/v1/machines", e.AdminKey, map[string]any{"name": "m"}), 200)["secret_key"].(string)
	m2m := must(t, e.Do(t, "POST", "/clerk/v1/m2m_tokens", machine, map[string]any{"token_format": "jwt"}), 201)["token"].(string)
	if res, err := kw.Verify(ctx, client.VerifyRequest{Token: m2m}); err != nil || !res.Valid || res.Kind != "m2m_token" || res.ExpiresAt == nil {
		t.Errorf("verify: %+v %v", res, err)
	}
	if res, err := kw.Verify(ctx, client.VerifyRequest{Token: "mt_nothing"}); err != nil || res.Valid || res.Code != client.CodeNotFound {
		t.Errorf("verify garbage: %+v %v", res, err)
	}
	if in, err := kw.Introspect(ctx, m2m); err != nil || !in.Active || in.ExpiresAt == 0 {
		t.Errorf("introspect: %+v %v", in, err)
	}
	if in, err := kw.Introspect(ctx, "mt_nothing"); err != nil || in.Active {
		t.Errorf("introspect garbage: %+v %v", in, err)
	}
	if set, err := kw.JWKS(ctx); err != nil || len(set.Keys) != 1 || set.Keys[0].Algorithm != "RS256" {
		t.Errorf("jwks: %+v %v", set, err)
	}

	if err := kw.DeleteOrganization(ctx, "acme"); err != nil {
		t.Errorf("delete org: %v", err)
	}
	if _, err := kw.GetOrganization(ctx, "acme"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("deleted org: %v", err)
	}
	ev, err := kw.AuditEvents(ctx, client.AuditQuery{TargetID: o.ID, Limit: 50})
	if err != nil || ev.TotalCount < 3 || len(ev.Events) == 0 || ev.Events[0].Action == "" || ev.Events[0].At.IsZero() {
		t.Errorf("audit: %+v %v", ev, err)
	}
	// Each event carries its link in the hash chain, newest first: seq
	// counts down by one and every hash is 64 hex digits.
	for i, a := range ev.Events {
		if a.Seq <= 0 || len(a.Hash) != 64 || a.Count < 1 || a.CredentialID == "" {
			t.Errorf("audit event %d: seq %d hash %q count %d credential %q", i, a.Seq, a.Hash, a.Count, a.CredentialID)
		}
	}

	for _, s := range e.Secrets() {
		if strings.Contains(e.Logs.String(), s) {
			t.Error("a secret is in keyward's logs")
		}
	}
}
