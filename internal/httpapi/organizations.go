package httpapi

import (
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Native organizations, sites and sitegroups (admin key). {org} is an id
// or a slug.

type organizationJSON struct {
	ID        string `json:"id"`
	Slug      string `json:"slug"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

type siteJSON struct {
	ID        string `json:"id"`
	OrgID     string `json:"org_id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

type sitegroupJSON struct {
	ID        string   `json:"id"`
	OrgID     string   `json:"org_id"`
	Name      string   `json:"name"`
	SiteIDs   []string `json:"site_ids"`
	CreatedAt string   `json:"created_at"`
	UpdatedAt string   `json:"updated_at"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func toOrganization(o credential.Organization) organizationJSON {
	return organizationJSON{ID: o.ID, Slug: o.Slug, Name: o.Name, CreatedAt: rfc3339(o.CreatedAt), UpdatedAt: rfc3339(o.UpdatedAt)}
}

func toSite(s credential.Site) siteJSON {
	return siteJSON{ID: s.ID, OrgID: s.OrgID, Name: s.Name, CreatedAt: rfc3339(s.CreatedAt), UpdatedAt: rfc3339(s.UpdatedAt)}
}

func toSitegroup(g credential.Sitegroup) sitegroupJSON {
	ids := g.SiteIDs
	if ids == nil {
		ids = []string{}
	}
	return sitegroupJSON{ID: g.ID, OrgID: g.OrgID, Name: g.Name, SiteIDs: ids, CreatedAt: rfc3339(g.CreatedAt), UpdatedAt: rfc3339(g.UpdatedAt)}
}

func (n *native) registerOrganizations(mux wire.Router) {
	const org = "/v1/organizations/{org}"
	routes := map[string]wire.Handler{
		"POST /v1/organizations":                    n.createOrganization,
		"GET /v1/organizations":                     n.listOrganizations,
		"GET " + org:                                n.getOrganization,
		"PATCH " + org:                              n.updateOrganization,
		"DELETE " + org:                             n.deleteOrganization,
		"POST " + org + "/sites":                    n.createSite,
		"GET " + org + "/sites":                     n.listSites,
		"GET " + org + "/sites/{site}":              n.getSite,
		"PATCH " + org + "/sites/{site}":            n.updateSite,
		"DELETE " + org + "/sites/{site}":           n.deleteSite,
		"POST " + org + "/sitegroups":               n.createSitegroup,
		"GET " + org + "/sitegroups":                n.listSitegroups,
		"GET " + org + "/sitegroups/{sitegroup}":    n.getSitegroup,
		"PATCH " + org + "/sitegroups/{sitegroup}":  n.updateSitegroup,
		"DELETE " + org + "/sitegroups/{sitegroup}": n.deleteSitegroup,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, n.Authenticated(h))
	}
}

// respond writes v with status (nil: 204 No Content), or returns err for
// the surface to render.
func respond(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return err
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	wire.WriteJSON(w, status, v)
	return nil
}

func orgInput(r *http.Request) (in authority.OrganizationInput, err error) {
	f, err := wire.ReadForm(r, "slug", "name")
	if err == nil {
		in.Slug, err = f.String("slug")
	}
	if err == nil {
		in.Name, err = f.String("name")
	}
	return in, err
}

func (n *native) createOrganization(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := orgInput(r)
	var o credential.Organization
	if err == nil {
		o, err = n.auth.CreateOrganization(r.Context(), c, in)
	}
	return respond(w, http.StatusCreated, toOrganization(o), err)
}

func (n *native) listOrganizations(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	limit, offset, err := offsetPage(r)
	if err != nil {
		return err
	}
	orgs, total, err := n.auth.ListOrganizations(r.Context(), c, limit, offset)
	data := make([]organizationJSON, len(orgs))
	for i, o := range orgs {
		data[i] = toOrganization(o)
	}
	return respond(w, http.StatusOK, map[string]any{"data": data, "total_count": total, "next_cursor": nextAfter(offset, len(data), total)}, err)
}

func (n *native) getOrganization(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	o, err := n.auth.GetOrganization(r.Context(), c, r.PathValue("org"))
	return respond(w, http.StatusOK, toOrganization(o), err)
}

func (n *native) updateOrganization(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := orgInput(r)
	var o credential.Organization
	if err == nil {
		o, err = n.auth.UpdateOrganization(r.Context(), c, r.PathValue("org"), in)
	}
	return respond(w, http.StatusOK, toOrganization(o), err)
}

func (n *native) deleteOrganization(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.DeleteOrganization(r.Context(), c, r.PathValue("org")))
}

func siteInput(r *http.Request) (in authority.SiteInput, err error) {
	f, err := wire.ReadForm(r, "name")
	if err == nil {
		in.Name, err = f.String("name")
	}
	return in, err
}

func (n *native) createSite(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := siteInput(r)
	var s credential.Site
	if err == nil {
		s, err = n.auth.CreateSite(r.Context(), c, r.PathValue("org"), in)
	}
	return respond(w, http.StatusCreated, toSite(s), err)
}

func (n *native) listSites(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	var sites []credential.Site
	if err == nil {
		sites, err = n.auth.ListSites(r.Context(), c, r.PathValue("org"))
	}
	items, next := pageOf(sites, p)
	return respond(w, http.StatusOK, mapPage(items, next, toSite), err)
}

func (n *native) getSite(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	s, err := n.auth.GetSite(r.Context(), c, r.PathValue("org"), r.PathValue("site"))
	return respond(w, http.StatusOK, toSite(s), err)
}

func (n *native) updateSite(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := siteInput(r)
	var s credential.Site
	if err == nil {
		s, err = n.auth.UpdateSite(r.Context(), c, r.PathValue("org"), r.PathValue("site"), in)
	}
	return respond(w, http.StatusOK, toSite(s), err)
}

func (n *native) deleteSite(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.DeleteSite(r.Context(), c, r.PathValue("org"), r.PathValue("site")))
}

func sitegroupInput(r *http.Request) (in authority.SitegroupInput, err error) {
	f, err := wire.ReadForm(r, "name", "site_ids")
	if err == nil {
		in.Name, err = f.String("name")
	}
	if err == nil {
		in.SiteIDs, err = f.Strings("site_ids")
	}
	return in, err
}

func (n *native) createSitegroup(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := sitegroupInput(r)
	var g credential.Sitegroup
	if err == nil {
		g, err = n.auth.CreateSitegroup(r.Context(), c, r.PathValue("org"), in)
	}
	return respond(w, http.StatusCreated, toSitegroup(g), err)
}

func (n *native) listSitegroups(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	p, err := readCursorPage(r)
	var groups []credential.Sitegroup
	if err == nil {
		groups, err = n.auth.ListSitegroups(r.Context(), c, r.PathValue("org"))
	}
	items, next := pageOf(groups, p)
	return respond(w, http.StatusOK, mapPage(items, next, toSitegroup), err)
}

func (n *native) getSitegroup(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	g, err := n.auth.GetSitegroup(r.Context(), c, r.PathValue("org"), r.PathValue("sitegroup"))
	return respond(w, http.StatusOK, toSitegroup(g), err)
}

func (n *native) updateSitegroup(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	in, err := sitegroupInput(r)
	var g credential.Sitegroup
	if err == nil {
		g, err = n.auth.UpdateSitegroup(r.Context(), c, r.PathValue("org"), r.PathValue("sitegroup"), in)
	}
	return respond(w, http.StatusOK, toSitegroup(g), err)
}

func (n *native) deleteSitegroup(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.DeleteSitegroup(r.Context(), c, r.PathValue("org"), r.PathValue("sitegroup")))
}
