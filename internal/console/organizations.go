package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keyward/keyward/client"
)

type organizationsData struct {
	Orgs  []client.Organization
	Total int
	Next  string
}

func (c *Console) organizations(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	list, err := kw.ListOrganizations(r.Context(), client.Page{Limit: 50, Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		return err
	}
	d := organizationsData{Orgs: list.Organizations, Total: list.TotalCount}
	if list.NextCursor != "" {
		d.Next = Prefix + "organizations?" + url.Values{"cursor": {list.NextCursor}}.Encode()
	}
	return c.ok(w, r, s, "organizations.html", "Organizations", "organizations", d)
}

func orgURL(org string) string { return Prefix + "organizations/" + url.PathEscape(org) }

func (c *Console) createOrganization(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	in := client.OrganizationParams{Name: strings.TrimSpace(r.PostForm.Get("name")), Slug: strings.TrimSpace(r.PostForm.Get("slug"))}
	if in.Name == "" {
		return formError("An organization needs a name.")
	}
	o, err := kw.CreateOrganization(r.Context(), in)
	if err != nil {
		return err
	}
	return done(w, r, s, orgURL(o.ID), "Organization "+o.Name+" created.")
}

func (c *Console) deleteOrganization(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org := r.PathValue("org")
	if err := kw.DeleteOrganization(r.Context(), org); err != nil {
		return err
	}
	return done(w, r, s, Prefix+"organizations", "Organization "+org+" deleted; its tokens were revoked.")
}

type organizationData struct {
	Org        client.Organization
	Sites      []client.Site
	Sitegroups []client.Sitegroup
	Tokens     []client.OrgToken
	Workspaces []client.Workspace
	WSError    string
}

// organization shows an organization with its sites, sitegroups, tokens
// and workspaces (the first 100 of each).
func (c *Console) organization(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	ctx := r.Context()
	o, err := kw.GetOrganization(ctx, r.PathValue("org"))
	if err != nil {
		return err
	}
	d := organizationData{Org: o}
	sites, err := kw.ListSites(ctx, o.ID, client.ListParams{Limit: 100})
	if err != nil {
		return err
	}
	groups, err := kw.ListSitegroups(ctx, o.ID, client.ListParams{Limit: 100})
	if err != nil {
		return err
	}
	tokens, err := kw.ListOrgTokens(ctx, o.ID, client.OrgTokenQuery{ListParams: client.ListParams{Limit: 100}})
	if err != nil {
		return err
	}
	d.Sites, d.Sitegroups, d.Tokens = sites.Data, groups.Data, tokens.Data
	if s.Can("workspaces:read") {
		ws, err := kw.ListWorkspacesPage(ctx, o.ID, client.ListParams{Limit: 100})
		if err != nil {
			d.WSError = messageOf(err)
		}
		d.Workspaces = ws.Data
	}
	return c.ok(w, r, s, "organization.html", o.Name, "organizations", d)
}

func (c *Console) createSite(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org := r.PathValue("org")
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if name == "" {
		return formError("A site needs a name.")
	}
	if _, err := kw.CreateSite(r.Context(), org, name); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org), "Site "+name+" created.")
}

func (c *Console) deleteSite(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org, id := r.PathValue("org"), r.PathValue("id")
	if err := kw.DeleteSite(r.Context(), org, id); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org), "Site "+id+" deleted.")
}

func (c *Console) createSitegroup(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org := r.PathValue("org")
	in := client.SitegroupParams{Name: strings.TrimSpace(r.PostForm.Get("name")), SiteIDs: r.PostForm["site_ids"]}
	if in.Name == "" {
		return formError("A sitegroup needs a name.")
	}
	if _, err := kw.CreateSitegroup(r.Context(), org, in); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org), "Sitegroup "+in.Name+" created.")
}

func (c *Console) deleteSitegroup(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org, id := r.PathValue("org"), r.PathValue("id")
	if err := kw.DeleteSitegroup(r.Context(), org, id); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org), "Sitegroup "+id+" deleted.")
}

func (c *Console) createOrgToken(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org := r.PathValue("org")
	f := r.PostForm
	p := client.Privilege{Scope: f.Get("scope"), Role: f.Get("role")}
	switch p.Scope {
	case "site":
		p.SiteID = strings.TrimSpace(f.Get("target_id"))
	case "sitegroup":
		p.SitegroupID = strings.TrimSpace(f.Get("target_id"))
	}
	in := client.OrgTokenParams{Name: strings.TrimSpace(f.Get("name")), Privileges: []client.Privilege{p}, SrcIPs: splitList(f.Get("src_ips"))}
	if in.Name == "" {
		return formError("A token needs a name.")
	}
	t, err := kw.CreateOrgToken(r.Context(), org, in)
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret.html", "Org token created", "organizations", secretData{
		Title: "Token " + t.Name + " created", Label: "Key of " + t.ID, Value: t.Key,
		Again: "the organization's pages show its mask only", Back: orgURL(org), BackLabel: "Back to the organization"})
}

func (c *Console) deleteOrgToken(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org, id := r.PathValue("org"), r.PathValue("id")
	if err := kw.DeleteOrgToken(r.Context(), org, id); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org), "Token "+id+" deleted; it stopped working.")
}

func (c *Console) createWorkspace(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org := r.PathValue("org")
	in := client.WorkspaceParams{Name: strings.TrimSpace(r.PostForm.Get("name")), Slug: strings.TrimSpace(r.PostForm.Get("slug"))}
	if in.Name == "" {
		return formError("A workspace needs a name.")
	}
	ws, err := kw.CreateWorkspace(r.Context(), org, in)
	if err != nil {
		return err
	}
	return done(w, r, s, orgURL(org)+"/workspaces/"+url.PathEscape(ws.ID), "Workspace "+ws.Name+" created.")
}

type workspaceData struct {
	Org       client.Organization
	Workspace client.Workspace
	Members   []client.Member
}

func (c *Console) workspace(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	ctx := r.Context()
	o, err := kw.GetOrganization(ctx, r.PathValue("org"))
	if err != nil {
		return err
	}
	ws, err := kw.GetWorkspace(ctx, o.ID, r.PathValue("ws"))
	if err != nil {
		return err
	}
	members, err := kw.ListMembersPage(ctx, o.ID, ws.ID, client.ListParams{Limit: 100})
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "workspace.html", ws.Name, "organizations", workspaceData{Org: o, Workspace: ws, Members: members.Data})
}

func (c *Console) putMember(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org, ws := r.PathValue("org"), r.PathValue("ws")
	user := strings.TrimSpace(r.PostForm.Get("user_id"))
	if user == "" {
		return formError("Name the user.")
	}
	if _, err := kw.PutMember(r.Context(), org, ws, user, r.PostForm.Get("role")); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org)+"/workspaces/"+url.PathEscape(ws), "Member "+user+" saved.")
}

func (c *Console) removeMember(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org, ws, user := r.PathValue("org"), r.PathValue("ws"), r.PathValue("user")
	if err := kw.RemoveMember(r.Context(), org, ws, user); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org)+"/workspaces/"+url.PathEscape(ws), "Member "+user+" removed; their tokens bound to the workspace were revoked.")
}

type userData struct {
	User       string
	PATs       []client.PAT
	PATError   string
	Clients    []client.BackupClient
	CliError   string
	Catalogued int
}

// user shows one user's PATs and Freezer clients (the native API lists
// them per user).
func (c *Console) user(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	d := userData{User: strings.TrimSpace(r.URL.Query().Get("user"))}
	if d.User != "" {
		ctx := r.Context()
		if pats, err := kw.ListPATs(ctx, d.User, client.PATQuery{ListParams: client.ListParams{Limit: 100}}); err != nil {
			d.PATError = messageOf(err)
		} else {
			d.PATs = pats.Data
		}
		if cl, err := kw.ListBackupClients(ctx, d.User, client.ListParams{Limit: 100}); err != nil {
			d.CliError = messageOf(err)
		} else {
			d.Clients = cl.Data
		}
	}
	return c.ok(w, r, s, "user.html", "Users", "users", d)
}

func userURL(user string) string { return Prefix + "users?" + url.Values{"user": {user}}.Encode() }

func (c *Console) revokePAT(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	user, id := r.PathValue("user"), r.PathValue("id")
	if err := kw.RevokePAT(r.Context(), user, id); err != nil {
		return err
	}
	return done(w, r, s, userURL(user), "Token "+id+" revoked.")
}

func (c *Console) deleteClient(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	user, id := r.PathValue("user"), r.PathValue("id")
	if err := kw.DeleteBackupClient(r.Context(), user, id); err != nil {
		return err
	}
	return done(w, r, s, userURL(user), "Client "+id+" deleted.")
}

type settingsData struct {
	Instance client.Instance
	Scopes   *client.ScopeCatalogue
	Keys     []client.SigningKey
}

func (c *Console) settings(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	in, err := kw.Instance(r.Context())
	if err != nil {
		return err
	}
	d := settingsData{Instance: in}
	if d.Keys, err = kw.SigningKeys(r.Context()); err != nil {
		return err
	}
	if s.Can("scopes:read") {
		cat, err := kw.Scopes(r.Context())
		if err != nil {
			return err
		}
		d.Scopes = &cat
	}
	return c.ok(w, r, s, "settings.html", "Settings", "settings", d)
}

func (c *Console) updateSettings(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	f := r.PostForm
	var in client.InstanceSettings
	if v := strings.TrimSpace(f.Get("org_token_hourly_limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return formError("The hourly limit is a whole number.")
		}
		in.OrgTokenHourlyLimit = &n
	}
	if _, ok := f["impersonation_redirect_url"]; ok {
		v := strings.TrimSpace(f.Get("impersonation_redirect_url"))
		in.ImpersonationRedirectURL = &v
	}
	if _, err := kw.UpdateInstance(r.Context(), in); err != nil {
		return err
	}
	return done(w, r, s, Prefix+"settings", "Settings saved.")
}

func (c *Console) updateScopes(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	if _, err := kw.SetScopes(r.Context(), splitList(r.PostForm.Get("scopes"))); err != nil {
		return err
	}
	return done(w, r, s, Prefix+"settings", "Scope catalogue saved.")
}

func (c *Console) createPAT(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	user, f := r.PathValue("user"), r.PostForm
	in := client.PATParams{Name: strings.TrimSpace(f.Get("name")), Description: strings.TrimSpace(f.Get("description")),
		Scopes: splitList(f.Get("scopes")), WorkspaceID: strings.TrimSpace(f.Get("workspace_id"))}
	if in.Name == "" {
		return formError("A token needs a name.")
	}
	if exp := strings.TrimSpace(f.Get("expires_at")); exp != "" {
		t, err := parseLocalTime(exp)
		if err != nil {
			return err
		}
		in.ExpiresAt = &t
	}
	p, err := kw.CreatePAT(r.Context(), user, in)
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret.html", "Personal access token created", "users", secretData{
		Title: "Token " + p.Name + " of " + user + " created", Label: "Token " + p.ID + " (" + p.TokenPrefix + "…)", Value: p.Token,
		Again: "keyward keeps only its digest", Back: userURL(user), BackLabel: "Back to " + user})
}

// createClient registers a Freezer client for the user from the form's
// fields (client_id required), as the native API takes its client-info
// object.
func (c *Console) createClient(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	user, f := r.PathValue("user"), r.PostForm
	doc := map[string]string{}
	for _, field := range []string{"client_id", "hostname", "description"} {
		if v := strings.TrimSpace(f.Get(field)); v != "" {
			doc[field] = v
		}
	}
	if doc["client_id"] == "" {
		return formError("A client needs a client id (its host's name, optionally prefixed: project_host.example.com).")
	}
	body, _ := json.Marshal(doc)
	cl, err := kw.CreateBackupClient(r.Context(), user, body)
	if err != nil {
		return err
	}
	return done(w, r, s, userURL(user), "Client "+cl.ClientID+" registered.")
}

// updateOrganization renames an organization or changes its slug (an
// empty field is left as it is).
func (c *Console) updateOrganization(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	in := client.OrganizationParams{Name: strings.TrimSpace(r.PostForm.Get("name")), Slug: strings.TrimSpace(r.PostForm.Get("slug"))}
	if in.Name == "" && in.Slug == "" {
		return formError("Give a new name or slug.")
	}
	o, err := kw.UpdateOrganization(r.Context(), r.PathValue("org"), in)
	if err != nil {
		return err
	}
	return done(w, r, s, orgURL(o.ID), "Organization saved.")
}

func (c *Console) renameSite(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org, id := r.PathValue("org"), r.PathValue("id")
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if name == "" {
		return formError("A site needs a name.")
	}
	if _, err := kw.RenameSite(r.Context(), org, id, name); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org), "Site renamed to "+name+".")
}

// updateSitegroup renames a sitegroup and sets its sites to those ticked.
func (c *Console) updateSitegroup(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org, id := r.PathValue("org"), r.PathValue("id")
	in := client.SitegroupParams{Name: strings.TrimSpace(r.PostForm.Get("name")), SiteIDs: r.PostForm["site_ids"]}
	if in.Name == "" {
		return formError("A sitegroup needs a name.")
	}
	if in.SiteIDs == nil {
		in.SiteIDs = []string{}
	}
	if _, err := kw.UpdateSitegroup(r.Context(), org, id, in); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org), "Sitegroup "+in.Name+" saved.")
}

func (c *Console) updateWorkspace(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	org, ws := r.PathValue("org"), r.PathValue("ws")
	in := client.WorkspaceParams{Name: strings.TrimSpace(r.PostForm.Get("name")), Slug: strings.TrimSpace(r.PostForm.Get("slug"))}
	if in.Name == "" && in.Slug == "" {
		return formError("Give a new name or slug.")
	}
	if _, err := kw.UpdateWorkspace(r.Context(), org, ws, in); err != nil {
		return err
	}
	return done(w, r, s, orgURL(org)+"/workspaces/"+url.PathEscape(ws), "Workspace saved.")
}

func (c *Console) rotateSigningKey(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	k, err := kw.RotateSigningKey(r.Context(), r.PostForm.Get("algorithm"))
	if err != nil {
		return err
	}
	return done(w, r, s, Prefix+"settings#signing", "Signing key "+k.ID+" ("+k.Algorithm+") now signs new tokens; the older keys stay published until their tokens expire.")
}
