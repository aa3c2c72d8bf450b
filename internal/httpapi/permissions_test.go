package httpapi_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// What a route needs besides a permission.
const (
	public      = "(public)"         // no credential: health, discovery, tickets, catch-alls
	anyKey      = "(any credential)" // any authenticated caller, no admin permission
	machineOnly = "(machine key)"    // only a machine secret key; no admin key at all
)

// routePermissions is what every registered route requires of an admin
// key. A route missing here fails TestEveryRouteHasAPermission, so a new
// route cannot ship without a decision.
var routePermissions = map[string]string{
	"GET /healthz":               public,
	"GET /readyz":                public,
	"GET /openapi.json":          public,
	"GET /.well-known/jwks.json": public,
	"POST /oauth/token":          public,
	// OAuth discovery, and forward auth: a gateway presents no key; the
	// endpoint answers only about the credential it is given.
	"GET /.well-known/openid-configuration":       public,
	"GET /.well-known/oauth-authorization-server": public,
	"GET /v1/authz":     public,
	"POST /v1/authz":    public,
	"PUT /v1/authz":     public,
	"PATCH /v1/authz":   public,
	"DELETE /v1/authz":  public,
	"OPTIONS /v1/authz": public,
	"/v1/authz":         public,
	"/v1/authz/":        public,
	// RFC 7009: a machine revokes its own tokens; an admin key needs what
	// revoking by id needs.
	"POST /oauth/revoke": "m2m_tokens:write",
	// A leak report holds no credential: GitHub's ECDSA signature over the
	// body is its authentication (leaks_test.go checks every refusal).
	"POST /v1/leaks":          public,
	"GET /v1/tickets/accept":  public,
	"POST /v1/tickets/accept": public,
	"GET /metrics":            public,
	"/v1/":                    public,
	"/":                       public, // the JSON 404 (or 405) for a path no route takes
	"/clerk/v1/":              public,
	"/clerk/":                 public,
	"/mist/":                  public,
	"/spatio/v1/":             public,
	"/freezer/v1/":            public,
	// Keystone's discovery and token exchange for python-freezerclient:
	// a PAT identifies itself there; no admin key is accepted.
	"GET /freezer/identity/v3":              public,
	"GET /freezer/identity/v3/{$}":          public,
	"POST /freezer/identity/v3/auth/tokens": public,
	"/freezer/identity/v3/":                 public,
	"GET /v1/caller":                        anyKey,
	"GET /clerk/v1/jwks":                    anyKey,
	"POST /clerk/v1/m2m_tokens":             machineOnly,
	"POST /clerk/m2m_tokens":                machineOnly,

	"POST /v1/verify":                  "verify",
	"POST /oauth/introspect":           "verify",
	"POST /clerk/v1/m2m_tokens/verify": "verify",
	"POST /clerk/m2m_tokens/verify":    "verify",
	"POST /clerk/v1/api_keys/verify":   "verify",
	"POST /clerk/api_keys/verify":      "verify",

	"GET /v1/audit_events":                           "audit:read",
	"GET /v1/analytics/verifications":                "analytics:read",
	"GET /v1/credentials/{credential_id}/controls":   "credentials:read",
	"PATCH /v1/credentials/{credential_id}/controls": "credentials:write",
	"POST /v1/credentials/{credential_id}/credits":   "credentials:write",
	"POST /v1/roles":                                 "credentials:write",
	"GET /v1/roles":                                  "credentials:read",
	"GET /v1/roles/{name}":                           "credentials:read",
	"PATCH /v1/roles/{name}":                         "credentials:write",
	"DELETE /v1/roles/{name}":                        "credentials:write",
	"POST /v1/identities":                            "credentials:write",
	"GET /v1/identities":                             "credentials:read",
	"GET /v1/identities/{identity_id}":               "credentials:read",
	"PATCH /v1/identities/{identity_id}":             "credentials:write",
	"DELETE /v1/identities/{identity_id}":            "credentials:write",
	"GET /v1/identities/{identity_id}/credentials":   "credentials:read",
	"GET /v1/instance":                               "instance:read",
	"PATCH /v1/instance":                             "instance:write",

	"POST /v1/organizations":                                           "organizations:write",
	"GET /v1/organizations":                                            "organizations:read",
	"GET /v1/organizations/{org}":                                      "organizations:read",
	"PATCH /v1/organizations/{org}":                                    "organizations:write",
	"DELETE /v1/organizations/{org}":                                   "organizations:write",
	"POST /v1/organizations/{org}/sites":                               "organizations:write",
	"GET /v1/organizations/{org}/sites":                                "organizations:read",
	"GET /v1/organizations/{org}/sites/{site}":                         "organizations:read",
	"PATCH /v1/organizations/{org}/sites/{site}":                       "organizations:write",
	"DELETE /v1/organizations/{org}/sites/{site}":                      "organizations:write",
	"POST /v1/organizations/{org}/sitegroups":                          "organizations:write",
	"GET /v1/organizations/{org}/sitegroups":                           "organizations:read",
	"GET /v1/organizations/{org}/sitegroups/{sitegroup}":               "organizations:read",
	"PATCH /v1/organizations/{org}/sitegroups/{sitegroup}":             "organizations:write",
	"DELETE /v1/organizations/{org}/sitegroups/{sitegroup}":            "organizations:write",
	"GET /mist/api/v1/orgs/{org_id}/apitokens":                         "organizations:read",
	"POST /mist/api/v1/orgs/{org_id}/apitokens":                        "organizations:write",
	"GET /mist/api/v1/orgs/{org_id}/apitokens/{apitoken_id}":           "organizations:read",
	"PUT /mist/api/v1/orgs/{org_id}/apitokens/{apitoken_id}":           "organizations:write",
	"DELETE /mist/api/v1/orgs/{org_id}/apitokens/{apitoken_id}":        "organizations:write",
	"POST /v1/organizations/{org}/workspaces":                          "workspaces:write",
	"GET /v1/organizations/{org}/workspaces":                           "workspaces:read",
	"GET /v1/organizations/{org}/workspaces/{ws}":                      "workspaces:read",
	"PATCH /v1/organizations/{org}/workspaces/{ws}":                    "workspaces:write",
	"DELETE /v1/organizations/{org}/workspaces/{ws}":                   "workspaces:write",
	"GET /v1/organizations/{org}/workspaces/{ws}/members":              "workspaces:read",
	"GET /v1/organizations/{org}/workspaces/{ws}/members/{user_id}":    "workspaces:read",
	"PUT /v1/organizations/{org}/workspaces/{ws}/members/{user_id}":    "workspaces:write",
	"DELETE /v1/organizations/{org}/workspaces/{ws}/members/{user_id}": "workspaces:write",

	"GET /v1/scopes": "scopes:read",
	"PUT /v1/scopes": "scopes:write",

	"POST /v1/impersonation_sessions/{id}/revoke":         "actor_tokens:write",
	"POST /clerk/v1/actor_tokens":                         "actor_tokens:write",
	"GET /clerk/v1/actor_tokens":                          "actor_tokens:read",
	"GET /clerk/v1/actor_tokens/{actor_token_id}":         "actor_tokens:read",
	"POST /clerk/v1/actor_tokens/{actor_token_id}/revoke": "actor_tokens:write",

	"GET /clerk/v1/machines":                                           "machines:read",
	"POST /clerk/v1/machines":                                          "machines:write",
	"GET /clerk/v1/machines/{machine_id}":                              "machines:read",
	"PATCH /clerk/v1/machines/{machine_id}":                            "machines:write",
	"DELETE /clerk/v1/machines/{machine_id}":                           "machines:write",
	"GET /clerk/v1/machines/{machine_id}/secret_key":                   "machines:write",
	"POST /clerk/v1/machines/{machine_id}/secret_key/rotate":           "machines:write",
	"POST /clerk/v1/machines/{machine_id}/scopes":                      "machines:write",
	"DELETE /clerk/v1/machines/{machine_id}/scopes/{other_machine_id}": "machines:write",
	"GET /clerk/v1/m2m_tokens":                                         "m2m_tokens:read",
	"POST /clerk/v1/m2m_tokens/{m2m_token_id}/revoke":                  "m2m_tokens:write",
	"GET /clerk/m2m_tokens":                                            "m2m_tokens:read",
	"POST /clerk/m2m_tokens/{m2m_token_id}/revoke":                     "m2m_tokens:write",

	// API keys, at /clerk/v1 and unversioned. Reading a secret is a write.
	"POST /clerk/v1/api_keys":                     "api_keys:write",
	"GET /clerk/v1/api_keys":                      "api_keys:read",
	"GET /clerk/v1/api_keys/{api_key_id}":         "api_keys:read",
	"PATCH /clerk/v1/api_keys/{api_key_id}":       "api_keys:write",
	"DELETE /clerk/v1/api_keys/{api_key_id}":      "api_keys:write",
	"GET /clerk/v1/api_keys/{api_key_id}/secret":  "api_keys:write",
	"POST /clerk/v1/api_keys/{api_key_id}/revoke": "api_keys:write",
	"POST /clerk/api_keys":                        "api_keys:write",
	"GET /clerk/api_keys":                         "api_keys:read",
	"GET /clerk/api_keys/{api_key_id}":            "api_keys:read",
	"PATCH /clerk/api_keys/{api_key_id}":          "api_keys:write",
	"DELETE /clerk/api_keys/{api_key_id}":         "api_keys:write",
	"GET /clerk/api_keys/{api_key_id}/secret":     "api_keys:write",
	"POST /clerk/api_keys/{api_key_id}/revoke":    "api_keys:write",

	"POST /spatio/v1/tokens":        "pats:write",
	"GET /spatio/v1/tokens":         "pats:read",
	"PATCH /spatio/v1/tokens/{id}":  "pats:write",
	"DELETE /spatio/v1/tokens/{id}": "pats:write",
	"POST /spatio/v1/organizations/{org}/workspaces/{workspace}/tokens":        "pats:write",
	"GET /spatio/v1/organizations/{org}/workspaces/{workspace}/tokens":         "pats:read",
	"PATCH /spatio/v1/organizations/{org}/workspaces/{workspace}/tokens/{id}":  "pats:write",
	"DELETE /spatio/v1/organizations/{org}/workspaces/{workspace}/tokens/{id}": "pats:write",
	"GET /spatio/v1/tokens/scopes":                                             "pats:read",

	"GET /freezer/v1/clients":                "clients:read",
	"POST /freezer/v1/clients":               "clients:write",
	"GET /freezer/v1/clients/{$}":            "clients:read",
	"POST /freezer/v1/clients/{$}":           "clients:write",
	"GET /freezer/v1/clients/{client_id}":    "clients:read",
	"DELETE /freezer/v1/clients/{client_id}": "clients:write",

	"POST /v1/admin_keys":             "admin_keys:write",
	"GET /v1/admin_keys":              "admin_keys:read",
	"GET /v1/admin_keys/{id}":         "admin_keys:read",
	"POST /v1/admin_keys/{id}/revoke": "admin_keys:write",

	// The native families (native_*.go).
	"POST /v1/machines":                                          "machines:write",
	"GET /v1/machines":                                           "machines:read",
	"GET /v1/machines/{machine_id}":                              "machines:read",
	"PATCH /v1/machines/{machine_id}":                            "machines:write",
	"DELETE /v1/machines/{machine_id}":                           "machines:write",
	"GET /v1/machines/{machine_id}/secret_key":                   "machines:write",
	"POST /v1/machines/{machine_id}/secret_key/rotate":           "machines:write",
	"POST /v1/machines/{machine_id}/scopes":                      "machines:write",
	"DELETE /v1/machines/{machine_id}/scopes/{other_machine_id}": "machines:write",
	"GET /v1/machines/{machine_id}/m2m_tokens":                   "m2m_tokens:read",
	"POST /v1/m2m_tokens":                                        machineOnly,
	"POST /v1/m2m_tokens/{m2m_token_id}/revoke":                  "m2m_tokens:write",
	"POST /v1/api_keys":                                          "api_keys:write",
	"GET /v1/api_keys":                                           "api_keys:read",
	"GET /v1/api_keys/{api_key_id}":                              "api_keys:read",
	"PATCH /v1/api_keys/{api_key_id}":                            "api_keys:write",
	"POST /v1/api_keys/{api_key_id}/revoke":                      "api_keys:write",
	"GET /v1/api_keys/{api_key_id}/secret":                       "api_keys:write",
	"POST /v1/actor_tokens":                                      "actor_tokens:write",
	"GET /v1/actor_tokens":                                       "actor_tokens:read",
	"GET /v1/actor_tokens/{actor_token_id}":                      "actor_tokens:read",
	"POST /v1/actor_tokens/{actor_token_id}/revoke":              "actor_tokens:write",
	"POST /v1/organizations/{org}/tokens":                        "organizations:write",
	"GET /v1/organizations/{org}/tokens":                         "organizations:read",
	"GET /v1/organizations/{org}/tokens/{org_token_id}":          "organizations:read",
	"PATCH /v1/organizations/{org}/tokens/{org_token_id}":        "organizations:write",
	"DELETE /v1/organizations/{org}/tokens/{org_token_id}":       "organizations:write",
	"GET /v1/signing_keys":                                       "instance:read",
	"POST /v1/signing_keys/rotate":                               "instance:write",
	"POST /v1/users/{user_id}/pats":                              "pats:write",
	"GET /v1/users/{user_id}/pats":                               "pats:read",
	"PATCH /v1/users/{user_id}/pats/{pat_id}":                    "pats:write",
	"POST /v1/users/{user_id}/pats/{pat_id}/revoke":              "pats:write",
	"POST /v1/users/{user_id}/clients":                           "clients:write",
	"GET /v1/users/{user_id}/clients":                            "clients:read",
	"GET /v1/users/{user_id}/clients/{client_id}":                "clients:read",
	"DELETE /v1/users/{user_id}/clients/{client_id}":             "clients:write",

	"POST /v1/webhooks":                                              "webhooks:write",
	"GET /v1/webhooks":                                               "webhooks:read",
	"GET /v1/webhooks/{webhook_id}":                                  "webhooks:read",
	"PATCH /v1/webhooks/{webhook_id}":                                "webhooks:write",
	"DELETE /v1/webhooks/{webhook_id}":                               "webhooks:write",
	"POST /v1/webhooks/{webhook_id}/rotate_secret":                   "webhooks:write",
	"POST /v1/webhooks/{webhook_id}/test":                            "webhooks:write",
	"GET /v1/webhooks/{webhook_id}/deliveries":                       "webhooks:read",
	"POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay": "webhooks:write",
}

func TestEveryRouteHasAPermission(t *testing.T) {
	routes := httpapi.Routes()
	for _, r := range routes {
		if _, ok := routePermissions[r]; !ok {
			t.Errorf("route %q is not in routePermissions: decide what it requires", r)
		}
	}
	for r, p := range routePermissions {
		if !slices.Contains(routes, r) {
			t.Errorf("routePermissions lists %q, which is not a route", r)
		}
		if !strings.HasPrefix(p, "(") && !credential.Permission(p).Known() {
			t.Errorf("route %q requires %q, which is not a permission", r, p)
		}
	}
}

// fixtures are one of each resource, for the routes' path parameters.
type fixtures struct {
	params   map[string]string // path parameter → value
	user     string
	m2mToken string
	apiKey   string
}

const (
	permUser          = "user_alice"
	permAPIKeySubject = "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"
)

func newFixtures(t *testing.T, e *apitest.Env) fixtures {
	t.Helper()
	ctx := context.Background()
	op := authority.Operator(e.InstanceID)
	ptr := func(s string) *string { return &s }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	o, err := e.Auth.CreateOrganization(ctx, op, authority.OrganizationInput{Slug: ptr("acme"), Name: ptr("Acme")})
	must(err)
	site, err := e.Auth.CreateSite(ctx, op, o.ID, authority.SiteInput{Name: ptr("hq")})
	must(err)
	group, err := e.Auth.CreateSitegroup(ctx, op, o.ID, authority.SitegroupInput{Name: ptr("all"), SiteIDs: []string{site.ID}})
	must(err)
	w, err := e.Auth.CreateWorkspace(ctx, op, o.ID, authority.WorkspaceInput{Slug: ptr("eng"), Name: ptr("Eng")})
	must(err)
	_, err = e.Auth.PutMember(ctx, op, o.ID, w.ID, permUser, credential.MemberOwner)
	must(err)
	other, _, err := e.Auth.CreateMachine(ctx, op, authority.CreateMachineInput{Name: ptr("worker")})
	must(err)
	third, _, err := e.Auth.CreateMachine(ctx, op, authority.CreateMachineInput{Name: ptr("cron")})
	must(err)
	m, secret, err := e.Auth.CreateMachine(ctx, op, authority.CreateMachineInput{Name: ptr("api"), ScopedMachines: []string{other.ID}})
	must(err)
	e.Remember(secret.Reveal())
	mc, err := e.Auth.Authenticate(ctx, secret.Reveal())
	must(err)
	tok, err := e.Auth.CreateM2MToken(ctx, mc, authority.CreateM2MTokenInput{})
	must(err)
	e.Remember(tok.Token)
	actor, err := e.Auth.CreateActorToken(ctx, op, authority.CreateActorTokenInput{UserID: ptr(permUser), Actor: json.RawMessage(`{"sub":"admin_1"}`)}, "")
	must(err)
	e.Remember(actor.Token)
	redeemed, err := e.Auth.CreateActorToken(ctx, op, authority.CreateActorTokenInput{UserID: ptr(permUser), Actor: json.RawMessage(`{"sub":"admin_1"}`)}, "")
	must(err)
	e.Remember(redeemed.Token)
	session, err := e.Auth.RedeemTicket(ctx, redeemed.Token)
	must(err)
	e.Remember(session.AccessToken)
	ot, err := e.Auth.CreateOrgToken(ctx, op, o.ID, authority.OrgTokenInput{Name: ptr("ci"), Privileges: []credential.Privilege{{Scope: credential.ScopeOrg, Role: credential.RoleRead}}})
	must(err)
	e.Remember(ot.Key)
	user := op.ActingFor(permUser)
	p, err := e.Auth.CreatePAT(ctx, user, nil, authority.CreatePATInput{Name: ptr("laptop")})
	must(err)
	e.Remember(p.Token)
	wp, err := e.Auth.CreatePAT(ctx, user, &authority.WorkspaceRef{Org: o.ID, Workspace: w.ID}, authority.CreatePATInput{Name: ptr("ws")})
	must(err)
	e.Remember(wp.Token)
	clientID := "752d8cd43d654e7a840bbfd277ce41af_host01"
	_, err = e.Auth.CreateClient(ctx, user, func() (authority.NewClient, error) {
		return authority.NewClient{ClientID: clientID, Doc: []byte(`{"client_id":"` + clientID + `","hostname":"host01.example.org","uuid":"0123456789abcdef0123456789abcdef"}`)}, nil
	})
	must(err)
	ak, err := e.Auth.CreateAPIKey(ctx, op, authority.CreateAPIKeyInput{Name: ptr("reports"), Subject: ptr(permAPIKeySubject)})
	must(err)
	e.Remember(ak.Secret)
	_, err = e.Auth.CreateRole(ctx, op, "viewer", []string{"reports.read"})
	must(err)
	ident, err := e.Auth.CreateIdentity(ctx, op, authority.IdentityInput{ExternalID: ptr("customer-1")})
	must(err)
	_, err = e.Auth.SetCredentialControls(ctx, op, ak.ID, authority.ControlsInput{SetCredits: true, Credits: &authority.CreditsInput{Remaining: 10}})
	must(err)
	// A key a holder of admin_keys:write alone may revoke.
	target, targetSecret, err := e.Auth.CreateAdminKey(ctx, op, authority.CreateAdminKeyInput{Name: ptr("target"), Permissions: []string{"admin_keys:read"}})
	must(err)
	e.Remember(targetSecret.Reveal())
	hook, hookSecret, err := e.Auth.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/keyward", Events: []string{"*"}})
	must(err)
	e.Remember(hookSecret.Reveal())
	delivery, err := e.Auth.TestWebhook(ctx, op, hook.ID)
	must(err)
	return fixtures{
		params: map[string]string{
			"org": o.ID, "site": site.ID, "sitegroup": group.ID, "ws": w.ID, "workspace": w.Slug, "user_id": permUser,
			"machine_id": m.ID, "other_machine_id": other.ID, "m2m_token_id": tok.ID, "actor_token_id": actor.ID,
			"org_id": o.ID, "apitoken_id": ot.ID, "client_id": clientID, "id": "", "$": "",
			"api_key_id": ak.ID,
			"id:admin":   target.ID, "id:pat": p.ID, "id:wspat": wp.ID, "id:session": session.Session.ID, "third": third.ID,
			"org_token_id": ot.ID, "pat_id": p.ID,
			"webhook_id": hook.ID, "delivery_id": delivery.ID,
			"credential_id": ak.ID, "name": "viewer", "identity_id": ident.ID,
		},
		user:     permUser,
		m2mToken: tok.Token,
		apiKey:   ak.Secret,
	}
}

// request builds a request for route that passes every handler's parsing,
// so that the authority decides.
func (f fixtures) request(route string) (method, path string, body any, header http.Header) {
	method, pattern, _ := strings.Cut(route, " ")
	header = http.Header{}
	idKind := "id:admin"
	switch {
	case strings.HasPrefix(pattern, "/spatio/v1/organizations/"):
		idKind = "id:wspat"
	case strings.HasPrefix(pattern, "/spatio/"):
		idKind = "id:pat"
	case strings.HasPrefix(pattern, "/v1/impersonation_sessions/"):
		idKind = "id:session"
	}
	path = pattern
	for name, v := range f.params {
		if name == "id" {
			v = f.params[idKind]
		}
		path = strings.ReplaceAll(path, "{"+name+"}", v)
	}
	if strings.HasPrefix(pattern, "/spatio/") || strings.HasPrefix(pattern, "/freezer/") {
		header.Set("X-User-ID", f.user)
	}
	// The unversioned Clerk routes take what their /clerk/v1 twins take.
	if rest, ok := strings.CutPrefix(pattern, "/clerk/"); ok && !strings.HasPrefix(rest, "v1/") {
		route = method + " /clerk/v1/" + rest
	}
	switch route {
	case "POST /clerk/v1/api_keys":
		body = map[string]any{"name": "new key", "subject": permAPIKeySubject}
	case "GET /clerk/v1/api_keys":
		path += "?subject=" + permAPIKeySubject
	case "PATCH /clerk/v1/api_keys/{api_key_id}":
		body = map[string]any{"scopes": []string{"read"}}
	case "POST /clerk/v1/api_keys/{api_key_id}/revoke":
		body = map[string]any{}
	case "POST /clerk/v1/api_keys/verify":
		body = map[string]any{"secret": f.apiKey}
	case "POST /v1/verify", "POST /clerk/v1/m2m_tokens/verify":
		body = map[string]any{"token": f.m2mToken}
	case "POST /oauth/introspect", "POST /oauth/revoke":
		body = "token=" + f.m2mToken
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	case "PATCH /v1/instance":
		body = map[string]any{"org_token_hourly_limit": 100}
	case "POST /v1/organizations":
		body = map[string]any{"slug": "globex", "name": "Globex"}
	case "PATCH /v1/organizations/{org}", "PATCH /v1/organizations/{org}/workspaces/{ws}":
		body = map[string]any{"name": "Renamed"}
	case "POST /v1/organizations/{org}/sites", "PATCH /v1/organizations/{org}/sites/{site}",
		"POST /v1/organizations/{org}/sitegroups", "PATCH /v1/organizations/{org}/sitegroups/{sitegroup}":
		body = map[string]any{"name": "branch"}
	case "POST /v1/organizations/{org}/workspaces":
		body = map[string]any{"slug": "ops", "name": "Ops"}
	case "PUT /v1/organizations/{org}/workspaces/{ws}/members/{user_id}":
		body = map[string]any{"role": "owner"}
	case "PUT /v1/scopes":
		body = map[string]any{"scopes": []string{"read", "write"}}
	case "POST /mist/api/v1/orgs/{org_id}/apitokens":
		body = map[string]any{"name": "new", "privileges": []map[string]string{{"scope": "org", "role": "read"}}}
	case "PUT /mist/api/v1/orgs/{org_id}/apitokens/{apitoken_id}":
		body = map[string]any{"name": "renamed"}
	case "POST /clerk/v1/actor_tokens":
		body = map[string]any{"user_id": f.user, "actor": map[string]string{"sub": "admin_2"}}
	case "POST /clerk/v1/machines":
		body = map[string]any{"name": "new"}
	case "PATCH /clerk/v1/machines/{machine_id}":
		body = map[string]any{"name": "renamed"}
	case "POST /clerk/v1/machines/{machine_id}/scopes":
		body = map[string]any{"to_machine_id": f.params["third"]}
	case "POST /clerk/v1/machines/{machine_id}/secret_key/rotate":
		body = map[string]any{"previous_token_ttl": 0}
	case "GET /clerk/v1/m2m_tokens":
		path += "?subject=" + f.params["machine_id"]
	case "POST /clerk/v1/m2m_tokens/{m2m_token_id}/revoke",
		"POST /clerk/v1/actor_tokens/{actor_token_id}/revoke", "POST /clerk/v1/m2m_tokens":
		body = map[string]any{}
	case "POST /spatio/v1/tokens", "POST /spatio/v1/organizations/{org}/workspaces/{workspace}/tokens":
		body = map[string]any{"name": "new", "scopes": []string{}}
	case "PATCH /spatio/v1/tokens/{id}", "PATCH /spatio/v1/organizations/{org}/workspaces/{workspace}/tokens/{id}":
		body = map[string]any{"name": "renamed"}
	case "POST /freezer/v1/clients", "POST /freezer/v1/clients/{$}":
		body = map[string]any{"client_id": "752d8cd43d654e7a840bbfd277ce41af_host02", "hostname": "host02.example.org"}
	case "POST /v1/admin_keys":
		body = map[string]any{"name": "made", "permissions": []string{"admin_keys:read"}}
	case "POST /v1/machines":
		body = map[string]any{"name": "new"}
	case "POST /v1/webhooks":
		body = map[string]any{"url": "https://hooks.example.com/other", "events": []string{"machine.created"}}
	case "PATCH /v1/webhooks/{webhook_id}":
		body = map[string]any{"description": "renamed"}
	case "PATCH /v1/machines/{machine_id}", "PATCH /v1/organizations/{org}/tokens/{org_token_id}", "PATCH /v1/users/{user_id}/pats/{pat_id}":
		body = map[string]any{"name": "renamed"}
	case "POST /v1/machines/{machine_id}/secret_key/rotate":
		body = map[string]any{"previous_token_ttl": 0}
	case "POST /v1/machines/{machine_id}/scopes":
		body = map[string]any{"to_machine_id": f.params["third"]}
	case "POST /v1/api_keys":
		body = map[string]any{"name": "new key", "subject": permAPIKeySubject}
	case "GET /v1/api_keys":
		path += "?subject=" + permAPIKeySubject
	case "PATCH /v1/api_keys/{api_key_id}":
		body = map[string]any{"scopes": []string{"read"}}
	case "POST /v1/actor_tokens":
		body = map[string]any{"user_id": f.user, "actor": map[string]string{"sub": "admin_2"}}
	case "POST /v1/organizations/{org}/tokens":
		body = map[string]any{"name": "new", "privileges": []map[string]string{{"scope": "org", "role": "read"}}}
	case "POST /v1/users/{user_id}/pats":
		body = map[string]any{"name": "new"}
	case "PATCH /v1/credentials/{credential_id}/controls":
		body = map[string]any{"meta": map[string]string{"plan": "pro"}}
	case "POST /v1/credentials/{credential_id}/credits":
		body = map[string]any{"op": "increment", "amount": 1}
	case "POST /v1/roles":
		body = map[string]any{"name": "editor", "permissions": []string{"reports.write"}}
	case "POST /v1/identities":
		body = map[string]any{"external_id": "customer-2"}
	case "PATCH /v1/identities/{identity_id}":
		body = map[string]any{"meta": map[string]string{"tier": "gold"}}
	case "PATCH /v1/roles/{name}":
		body = map[string]any{"permissions": []string{"reports.read", "reports.list"}}
	case "POST /v1/users/{user_id}/clients":
		body = map[string]any{"client_id": "752d8cd43d654e7a840bbfd277ce41af_host02", "hostname": "host02.example.org"}
	}
	if strings.HasPrefix(pattern, "/spatio/v1/organizations/") {
		path = strings.Replace(path, f.params["org"], "acme", 1) // Spatio names them by slug
	}
	return method, path, body, header
}

// allBut is every permission except need (and except what implies it:
// PermAll, and the family's write when need is its read).
func allBut(need credential.Permission) []string {
	var out []string
	for _, p := range credential.AllPermissions() {
		if p == credential.PermAll || p == need || credential.Holds([]credential.Permission{p}, need) {
			continue
		}
		out = append(out, string(p))
	}
	return out
}

func newKey(t *testing.T, e *apitest.Env, perms []string) string {
	t.Helper()
	name := "probe"
	_, secret, err := e.Auth.CreateAdminKey(context.Background(), authority.Operator(e.InstanceID), authority.CreateAdminKeyInput{Name: &name, Permissions: perms})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(secret.Reveal())
	return secret.Reveal()
}

func digests(t *testing.T, s *sqlstore.Store) map[string]string {
	t.Helper()
	d, err := s.TableDigests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// assertForbiddenEnvelope checks a 403 is in the envelope of the route's
// surface.
func assertForbiddenEnvelope(t *testing.T, route string, resp apitest.Response) {
	t.Helper()
	body := resp.JSON(t)
	_, pattern, _ := strings.Cut(route, " ")
	var ok bool
	switch {
	case strings.HasPrefix(pattern, "/clerk/"):
		errs, _ := body["errors"].([]any)
		ok = len(errs) == 1 && errs[0].(map[string]any)["code"] == "authorization_invalid"
	case strings.HasPrefix(pattern, "/mist/"):
		_, ok = body["detail"].(string)
	case strings.HasPrefix(pattern, "/spatio/"):
		_, ok = body["error"].(string)
	case strings.HasPrefix(pattern, "/freezer/"):
		_, ok = body["title"].(string)
	case pattern == "/oauth/revoke": // RFC 6749 §5.2's shape
		ok = body["error"] == "unauthorized_client"
	default:
		e, _ := body["error"].(map[string]any)
		ok = e["code"] == string(credential.CodeForbidden)
	}
	if !ok {
		t.Errorf("%s: the 403 is not in the surface's envelope: %s", route, resp.Body)
	}
}

// TestEveryRouteRefusesAKeyWithoutItsPermission enumerates every
// registered route: a key holding every permission but the one the route
// needs is refused with 403 and writes nothing; a key holding only that
// permission is let through.
func TestEveryRouteRefusesAKeyWithoutItsPermission(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		routes := slices.Sorted(maps.Keys(routePermissions))
		checked := 0
		for _, route := range routes {
			need := routePermissions[route]
			if need == public {
				continue
			}
			checked++
			// A fresh instance per route, so that no route's success (a
			// delete, a revoke) takes another's fixtures away.
			e := apitest.Start(t, s)
			f := newFixtures(t, e)
			method, path, body, header := f.request(route)
			send := func(key string) apitest.Response {
				h := header.Clone()
				h.Set("Authorization", "Bearer "+key)
				return e.DoWith(t, method, path, body, h)
			}
			switch need {
			case anyKey:
				if resp := send(newKey(t, e, []string{"verify"})); resp.Status >= 300 {
					t.Errorf("%s with any admin key: %d %s", route, resp.Status, resp.Body)
				}
				continue
			case machineOnly:
				key := newKey(t, e, []string{"*"})
				before := digests(t, s)
				resp := send(key)
				if resp.Status != http.StatusForbidden {
					t.Errorf("%s with an admin key holding *: %d %s, want 403", route, resp.Status, resp.Body)
				} else {
					assertForbiddenEnvelope(t, route, resp)
				}
				if after := digests(t, s); !maps.Equal(before, after) {
					t.Errorf("%s: the refused request changed the database", route)
				}
				continue
			}
			lacking, holding := newKey(t, e, allBut(credential.Permission(need))), newKey(t, e, []string{need})
			before := digests(t, s)
			resp := send(lacking)
			if resp.Status != http.StatusForbidden {
				t.Errorf("%s with every permission but %s: %d %s, want 403", route, need, resp.Status, resp.Body)
			} else {
				assertForbiddenEnvelope(t, route, resp)
			}
			if after := digests(t, s); !maps.Equal(before, after) {
				for table := range before {
					if before[table] != after[table] {
						t.Errorf("%s: the refused request changed table %s", route, table)
					}
				}
			}
			if resp := send(holding); resp.Status >= 300 {
				t.Errorf("%s with only %s: %d %s, want it done", route, need, resp.Status, resp.Body)
			}
		}
		publics := 0
		for _, p := range routePermissions {
			if p == public {
				publics++
			}
		}
		if want := len(routePermissions) - publics; checked != want || checked < 70 {
			t.Errorf("checked %d routes, want %d (every route but the %d public ones)", checked, want, publics)
		}
		t.Logf("checked %d routes (of %d; %d public)", checked, len(routePermissions), publics)
	})
}

// The documents list the vocabulary as it is: openapi.json's Permission
// enum and the README's permission table name every permission.
func TestDocumentsNameEveryPermission(t *testing.T) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range credential.AllPermissions() {
		want = append(want, string(p))
	}
	if got := doc.Components.Schemas["Permission"].Enum; !slices.Equal(got, want) {
		t.Errorf("openapi.json's Permission enum is %v, want %v", got, want)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(readme), "### Permissions")
	table, _, _ = strings.Cut(table, "\n### ")
	for _, f := range credential.Families() {
		if row := "| `" + string(f.Read()) + "` / `" + string(f.Write()) + "` |"; !strings.Contains(table, row) {
			t.Errorf("the README's permission table has no row %q", row)
		}
	}
	for _, p := range []credential.Permission{credential.PermAll, credential.PermVerify} {
		if !strings.Contains(table, "| `"+string(p)+"` |") {
			t.Errorf("the README's permission table has no row for %s", p)
		}
	}
}
