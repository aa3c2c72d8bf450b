package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
)

// posted POSTs form with the session's CSRF token and wants a redirect
// (the POST-redirect-GET of every form that shows no secret).
func (b *browser) posted(path string, form url.Values) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.csrf())
	p := b.post(path, form)
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("POST %s: %d %s", path, p.status, errorRE.FindString(p.body))
	}
	return p
}

// revealed POSTs a form that answers with a secret page and returns the
// secret.
func (b *browser) revealed(path string, form url.Values) string {
	b.t.Helper()
	form.Set("csrf", b.csrf())
	p := b.post(path, form)
	m := secretRE.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		b.t.Fatalf("POST %s: %d %s", path, p.status, errorRE.FindString(p.body))
	}
	return m[1]
}

// subject1 is a user id of the shape API keys take.
const subject1 = "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"

func TestOrganizationSiteSitegroupAndWorkspaceForms(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	b := e.browser(t)
	b.signIn(e.AdminKey)

	p := b.posted("/console/organizations", url.Values{"name": {"Acme"}, "slug": {"acme"}})
	orgPath := p.header.Get("Location")
	org, err := e.kw.GetOrganization(ctx, "acme")
	if err != nil || orgPath != "/console/organizations/"+org.ID {
		t.Fatalf("created org: %+v %v, redirect %q", org, err, orgPath)
	}
	b.posted(orgPath, url.Values{"name": {"Acme Inc"}, "slug": {"acme-inc"}})
	if o, err := e.kw.GetOrganization(ctx, org.ID); err != nil || o.Name != "Acme Inc" || o.Slug != "acme-inc" {
		t.Fatalf("renamed org: %+v %v", o, err)
	}

	b.posted(orgPath+"/sites", url.Values{"name": {"hq"}})
	b.posted(orgPath+"/sites", url.Values{"name": {"lab"}})
	sites, err := e.kw.ListSites(ctx, org.ID, client.ListParams{Limit: 10})
	if err != nil || len(sites.Data) != 2 {
		t.Fatalf("sites: %+v %v", sites, err)
	}
	hq, lab := sites.Data[0], sites.Data[1]
	if hq.Name != "hq" {
		hq, lab = lab, hq
	}
	b.posted(orgPath+"/sites/"+hq.ID, url.Values{"name": {"headquarters"}})
	if s, err := e.kw.GetSite(ctx, org.ID, hq.ID); err != nil || s.Name != "headquarters" {
		t.Fatalf("renamed site: %+v %v", s, err)
	}

	b.posted(orgPath+"/sitegroups", url.Values{"name": {"all"}, "site_ids": {hq.ID, lab.ID}})
	groups, err := e.kw.ListSitegroups(ctx, org.ID, client.ListParams{Limit: 10})
	if err != nil || len(groups.Data) != 1 || len(groups.Data[0].SiteIDs) != 2 {
		t.Fatalf("sitegroups: %+v %v", groups, err)
	}
	g := groups.Data[0]
	if page := b.get(orgPath); !strings.Contains(page.body, `id="g-`+g.ID+`-site-`+lab.ID+`" name="site_ids" value="`+lab.ID+`" checked`) {
		t.Errorf("the sitegroup's edit form does not tick its sites")
	}
	b.posted(orgPath+"/sitegroups/"+g.ID, url.Values{"name": {"lab only"}, "site_ids": {lab.ID}})
	if got, err := e.kw.GetSitegroup(ctx, org.ID, g.ID); err != nil || got.Name != "lab only" || !slices.Equal(got.SiteIDs, []string{lab.ID}) {
		t.Fatalf("edited sitegroup: %+v %v", got, err)
	}
	b.posted(orgPath+"/sitegroups/"+g.ID, url.Values{"name": {"none"}}) // no box ticked: no sites
	if got, err := e.kw.GetSitegroup(ctx, org.ID, g.ID); err != nil || len(got.SiteIDs) != 0 {
		t.Fatalf("sitegroup with every box unticked: %+v %v", got, err)
	}

	p = b.posted(orgPath+"/workspaces", url.Values{"name": {"Eng"}, "slug": {"eng"}})
	wsPath := p.header.Get("Location")
	b.posted(wsPath, url.Values{"name": {"Engineering"}, "slug": {"engineering"}})
	if ws, err := e.kw.GetWorkspace(ctx, org.ID, "engineering"); err != nil || ws.Name != "Engineering" {
		t.Fatalf("renamed workspace: %+v %v", ws, err)
	}

	b.posted(orgPath+"/sitegroups/"+g.ID+"/delete", nil)
	b.posted(orgPath+"/sites/"+hq.ID+"/delete", nil)
	if groups, _ := e.kw.ListSitegroups(ctx, org.ID, client.ListParams{Limit: 10}); len(groups.Data) != 0 {
		t.Errorf("sitegroups after delete: %+v", groups.Data)
	}
	if sites, _ := e.kw.ListSites(ctx, org.ID, client.ListParams{Limit: 10}); len(sites.Data) != 1 {
		t.Errorf("sites after delete: %+v", sites.Data)
	}
	// A form the API refuses shows its message, and changes nothing.
	if p := b.post(orgPath+"/sites/"+lab.ID, url.Values{"csrf": {b.csrf()}, "name": {""}}); p.status != http.StatusBadRequest {
		t.Errorf("rename to nothing: %d", p.status)
	}
	b.posted(orgPath+"/delete", nil)
	if _, err := e.kw.GetOrganization(ctx, org.ID); err == nil {
		t.Error("the organization survived its delete")
	}
}

func TestOrgTokenFormsShowTheKeyOnceAndTheTokensLife(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	org, err := e.kw.CreateOrganization(ctx, client.OrganizationParams{Name: "Acme", Slug: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.signIn(e.AdminKey)
	orgPath := "/console/organizations/" + org.ID
	key := b.revealed(orgPath+"/tokens", url.Values{"name": {"ci"}, "scope": {"org"}, "role": {"read"}, "src_ips": {"10.0.0.0/8"}})
	e.Remember(key)
	tokens, err := e.kw.ListOrgTokens(ctx, org.ID, client.OrgTokenQuery{ListParams: client.ListParams{Limit: 10}})
	if err != nil || len(tokens.Data) != 1 {
		t.Fatalf("tokens: %+v %v", tokens, err)
	}
	tok := tokens.Data[0]
	detail := b.get(orgPath + "/tokens/" + tok.ID)
	for _, want := range []string{"Created by", tok.CreatedBy, "Last used", "never", "an org token lives until it is deleted", tok.Mask, "10.0.0.0/8"} {
		if !strings.Contains(detail.body, want) {
			t.Errorf("token page lacks %q", want)
		}
	}
	b.posted(orgPath+"/tokens/"+tok.ID, url.Values{"name": {"ci-renamed"}})
	got, err := e.kw.GetOrgToken(ctx, org.ID, tok.ID)
	if err != nil || got.Name != "ci-renamed" || !slices.Equal(got.SrcIPs, []string{"10.0.0.0/8"}) {
		t.Fatalf("updated token: %+v %v", got, err)
	}
	b.get(orgPath)
	b.posted(orgPath+"/tokens/"+tok.ID+"/delete", nil)
	if _, err := e.kw.GetOrgToken(ctx, org.ID, tok.ID); err == nil {
		t.Error("the token survived its delete")
	}
	assertSecretsOnlyOnTheirPage(t, e, b, 1)
}

// assertSecretsOnlyOnTheirPage checks that every secret the test made
// appears only in a reveal page (and want of them in all), never in a
// URL, a Location, another page or a log line.
func assertSecretsOnlyOnTheirPage(t *testing.T, e *env, b *browser, want int) {
	t.Helper()
	e.Remember(e.AdminKey)
	reveals := 0
	for _, s := range b.seen {
		for _, sec := range e.Secrets() {
			if strings.Contains(s, sec) {
				reveals++
				if !strings.Contains(s, `<output id="secret"`) {
					t.Errorf("a secret is outside a reveal page: %.200s", s)
				}
			}
		}
	}
	if reveals != want {
		t.Errorf("%d pages showed a secret, want %d", reveals, want)
	}
	for _, sec := range e.Secrets() {
		if strings.Contains(e.logs.String(), sec) || strings.Contains(e.Logs.String(), sec) {
			t.Error("a secret is in a log line")
		}
	}
}

func TestAPATIsShownOnceAndItsPageShowsItsLife(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	b := e.browser(t)
	b.signIn(e.AdminKey)
	token := b.revealed("/console/users/user_alice/pats", url.Values{"name": {"laptop"}, "description": {"cli"}, "expires_at": {"2026-06-01T00:00"}})
	e.Remember(token)
	pats, err := e.kw.ListPATs(ctx, "user_alice", client.PATQuery{ListParams: client.ListParams{Limit: 10}})
	if err != nil || len(pats.Data) != 1 {
		t.Fatalf("PATs: %+v %v", pats, err)
	}
	pat := pats.Data[0]
	if !strings.HasPrefix(token, pat.TokenPrefix) {
		t.Errorf("the shown token %q… is not the PAT's (prefix %q)", token[:4], pat.TokenPrefix)
	}
	b.get("/console/users?user=user_alice")
	detail := b.get("/console/users/user_alice/pats/" + pat.ID)
	caller, _ := e.kw.Caller(ctx)
	for _, want := range []string{"laptop", "cli", "admin_key " + caller.CredentialID, "2026-06-01 00:00:00 UTC", "live"} {
		if !strings.Contains(detail.body, want) {
			t.Errorf("PAT page lacks %q: %.2000s", want, detail.body)
		}
	}
	b.posted("/console/users/user_alice/pats/"+pat.ID, url.Values{"name": {"desktop"}, "description": {""}})
	if pats, _ := e.kw.ListPATs(ctx, "user_alice", client.PATQuery{ListParams: client.ListParams{Limit: 10}}); pats.Data[0].Name != "desktop" {
		t.Errorf("renamed PAT: %+v", pats.Data[0])
	}
	if p := b.get("/console/users/user_alice/pats/pat_missing"); p.status != http.StatusNotFound {
		t.Errorf("a missing PAT: %d", p.status)
	}
	b.posted("/console/users/user_alice/pats/"+pat.ID+"/revoke", nil)
	// A Freezer client, registered from the form's fields.
	b.posted("/console/users/user_alice/clients", url.Values{"client_id": {"proj_host.example.com"}, "hostname": {"host"}, "description": {"backup box"}})
	cl, err := e.kw.GetBackupClient(ctx, "user_alice", "proj_host.example.com")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if json.Unmarshal(cl.Client, &doc); doc["hostname"] != "host" || doc["description"] != "backup box" {
		t.Errorf("client document: %s", cl.Client)
	}
	if p := b.post("/console/users/user_alice/clients", url.Values{"csrf": {b.csrf()}}); p.status != http.StatusBadRequest {
		t.Errorf("a client without id: %d", p.status)
	}
	assertSecretsOnlyOnTheirPage(t, e, b, 1)
}

func TestAnActorTokenIsShownOnceAndRevoked(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	b := e.browser(t)
	b.signIn(e.AdminKey)
	csrf := b.csrf()
	p := b.post("/console/actor_tokens", url.Values{"csrf": {csrf}, "user_id": {"user_bob"}, "actor_sub": {"user_support"}, "expires_in_seconds": {"600"}})
	m := secretRE.FindStringSubmatch(p.body)
	if p.status != 200 || m == nil {
		t.Fatalf("create: %d %.500s", p.status, p.body)
	}
	e.Remember(m[1])
	list, err := e.kw.ListActorTokens(ctx, client.ActorTokenQuery{UserID: "user_bob"})
	if err != nil || len(list.Data) != 1 || list.Data[0].Status != "pending" {
		t.Fatalf("actor tokens: %+v %v", list, err)
	}
	at := list.Data[0]
	if page := b.get("/console/actor_tokens?user_id=user_bob"); !strings.Contains(page.body, at.ID) || !strings.Contains(page.body, "user_support") {
		t.Errorf("list lacks the token: %.500s", page.body)
	}
	b.posted("/console/actor_tokens/"+at.ID+"/revoke", nil)
	if got, _ := e.kw.GetActorToken(ctx, at.ID); got.Status != "revoked" {
		t.Errorf("after revoke: %+v", got)
	}
	b.get("/console/actor_tokens?status=revoked")
	if p := b.post("/console/impersonation_sessions/revoke", url.Values{"csrf": {csrf}, "session_id": {"sess_unknown"}}); p.status != http.StatusNotFound {
		t.Errorf("ending an unknown session: %d %.300s", p.status, p.body)
	}
	assertSecretsOnlyOnTheirPage(t, e, b, 1)
}

func TestAnAPIKeyPageShowsItsLifeAndEditsIt(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	b := e.browser(t)
	b.signIn(e.AdminKey)
	secret := b.revealed("/console/api_keys", url.Values{"name": {"svc"}, "subject": {subject1}, "scopes": {"read"}, "seconds_until_expiration": {"3600"}})
	e.Remember(secret)
	keys, err := e.kw.ListAPIKeys(ctx, client.APIKeyQuery{Subject: subject1})
	if err != nil || len(keys.Data) != 1 {
		t.Fatalf("keys: %+v %v", keys, err)
	}
	k := keys.Data[0]
	caller, _ := e.kw.Caller(ctx)
	detail := b.get("/console/api_keys/" + k.ID)
	for _, want := range []string{"svc", caller.CredentialID, "Last used", "live", when(k.ExpiresAt)} {
		if !strings.Contains(detail.body, want) {
			t.Errorf("key page lacks %q", want)
		}
	}
	b.posted("/console/api_keys/"+k.ID, url.Values{"description": {"the billing job"}, "scopes": {"read, write"}, "claims": {`{"tier":"gold"}`}})
	got, err := e.kw.GetAPIKey(ctx, k.ID)
	if err != nil || got.Description == nil || *got.Description != "the billing job" || !slices.Equal(got.Scopes, []string{"read", "write"}) || !strings.Contains(string(got.Claims), "gold") {
		t.Fatalf("updated key: %+v %v", got, err)
	}
	if p := b.post("/console/api_keys/"+k.ID, url.Values{"csrf": {b.csrf()}, "claims": {"[1]"}}); p.status != http.StatusBadRequest {
		t.Errorf("claims not an object: %d", p.status)
	}
	p := b.posted("/console/api_keys/"+k.ID+"/revoke", url.Values{"back": {"detail"}, "reason": {"rotated"}})
	if p.header.Get("Location") != "/console/api_keys/"+k.ID {
		t.Errorf("revoke from the detail goes to %q", p.header.Get("Location"))
	}
	if page := b.get("/console/api_keys/" + k.ID); !strings.Contains(page.body, "revoked") || strings.Contains(page.body, `action="/console/api_keys/`+k.ID+`"`) {
		t.Errorf("a revoked key's page: %.300s", page.body)
	}
	assertSecretsOnlyOnTheirPage(t, e, b, 1)
}

func TestMachineAndAdminKeyPagesShowTheirLife(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	b := e.browser(t)
	b.signIn(e.AdminKey)
	caller, _ := e.kw.Caller(ctx)
	e.Remember(b.revealed("/console/machines", url.Values{"name": {"worker"}}))
	ms, _ := e.kw.ListMachines(ctx, client.MachineQuery{})
	page := b.get("/console/machines/" + ms.Data[0].ID)
	for _, want := range []string{"Its secret key's life", "admin_key " + caller.CredentialID, "keeps no last use of a machine key", "until it is rotated"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("machine page lacks %q", want)
		}
	}
	k := b.revealed("/console/admin_keys", url.Values{"name": {"reader"}, "family_machines": {"read"}, "expires_at": {"2099-06-01T00:00"}})
	e.Remember(k)
	keys, _ := e.kw.ListAdminKeys(ctx)
	var id string
	for _, ak := range keys {
		if ak.Name == "reader" {
			id = ak.ID
		}
	}
	page = b.get("/console/admin_keys/" + id)
	for _, want := range []string{"machines:read", "admin_key " + caller.CredentialID, "2099-06-01 00:00:00 UTC", "live", "Revoke admin key"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("admin key page lacks %q", want)
		}
	}
	// A key without audit:read sees why the creator is missing.
	rb := e.browser(t)
	rb.signIn(k)
	if page := rb.get("/console/machines/" + ms.Data[0].ID); !strings.Contains(page.body, "needs audit:read") {
		t.Errorf("a key without audit:read: %.300s", page.body)
	}
	assertSecretsOnlyOnTheirPage(t, e, b, 2)
}

// A key that may read everything sees no write form on the new pages.
func TestAReadOnlyKeySeesNoWriteFormsOnTheDetailPages(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	org, _ := e.kw.CreateOrganization(ctx, client.OrganizationParams{Name: "Acme", Slug: "acme"})
	tok, err := e.kw.CreateOrgToken(ctx, org.ID, client.OrgTokenParams{Name: "t", Privileges: []client.Privilege{{Scope: "org", Role: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := e.kw.CreateWorkspace(ctx, org.ID, client.WorkspaceParams{Name: "Eng", Slug: "eng"})
	ak, err := e.kw.CreateAPIKey(ctx, client.APIKeyParams{Name: "key", Subject: subject1})
	if err != nil {
		t.Fatal(err)
	}
	pat, err := e.kw.CreatePAT(ctx, subject1, client.PATParams{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.kw.CreateActorToken(ctx, client.ActorTokenParams{UserID: subject1, Actor: json.RawMessage(`{"sub":"user_2"}`)}); err != nil {
		t.Fatal(err)
	}
	var perms []string
	for _, f := range families {
		perms = append(perms, f+":read")
	}
	rk, err := e.kw.CreateAdminKey(ctx, client.AdminKeyParams{Name: "reader", Permissions: perms})
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range []string{tok.Key, ak.Secret, pat.Token, rk.Secret} {
		if sec == "" {
			t.Fatal("a create answer without its secret")
		}
		e.Remember(sec)
	}
	b := e.browser(t)
	b.signIn(rk.Secret)
	postForm := regexp.MustCompile(`<form[^>]*method="post"[^>]*action="([^"]+)"`)
	for _, path := range []string{"/console/actor_tokens", "/console/api_keys/" + ak.ID, "/console/admin_keys/" + rk.ID,
		"/console/organizations/" + org.ID, "/console/organizations/" + org.ID + "/tokens/" + tok.ID,
		"/console/organizations/" + org.ID + "/workspaces/" + ws.ID, "/console/users?user=user_2xhFjEI5X2qWRvtV13BzSj8H6Dk", "/console/users/user_2xhFjEI5X2qWRvtV13BzSj8H6Dk/pats/" + pat.ID,
		"/console/settings"} {
		p := b.get(path)
		if p.status != 200 {
			t.Errorf("%s: %d %.300s", path, p.status, p.body)
		}
		for _, m := range postForm.FindAllStringSubmatch(p.body, -1) {
			if m[1] != "/console/logout" {
				t.Errorf("%s offers a write form to %s", path, m[1])
			}
		}
	}
	assertSecretsOnlyOnTheirPage(t, e, b, 0)
}

func TestSigningKeysAreListedAndRotatedUnderSettings(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	b := e.browser(t)
	b.signIn(e.AdminKey)
	p := b.posted("/console/settings/signing_keys/rotate", url.Values{"algorithm": {"EdDSA"}})
	if p.header.Get("Location") != "/console/settings#signing" {
		t.Errorf("rotate goes to %q", p.header.Get("Location"))
	}
	keys, err := e.kw.SigningKeys(ctx)
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %+v %v", keys, err)
	}
	page := b.get("/console/settings")
	for _, k := range keys {
		if !strings.Contains(page.body, k.ID) {
			t.Errorf("settings lack key %s", k.ID)
		}
	}
	if !strings.Contains(page.body, "EdDSA</td><td>signing") {
		t.Errorf("the new EdDSA key is not shown signing: %.3000s", page.body)
	}
	if ev, _ := e.kw.AuditEvents(ctx, client.AuditQuery{Action: "signing_key.rotate"}); len(ev.Events) != 1 {
		t.Errorf("rotation events: %+v", ev.Events)
	}
}
