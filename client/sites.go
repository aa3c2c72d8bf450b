package client

import (
	"context"
	"net/http"
	"time"
)

// Site is a place of an organization.
type Site struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Sitegroup groups some of an organization's sites.
type Sitegroup struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id"`
	Name      string    `json:"name"`
	SiteIDs   []string  `json:"site_ids"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SitegroupParams creates a sitegroup or, on update, changes what is set
// (SiteIDs replaces the sites when not nil).
type SitegroupParams struct {
	Name    string   `json:"name,omitempty"`
	SiteIDs []string `json:"site_ids,omitzero"` // omitzero: an empty, non-nil list is sent (and clears)
}

func sitesPath(org string) string      { return "/v1/organizations/" + seg(org) + "/sites" }
func sitegroupsPath(org string) string { return "/v1/organizations/" + seg(org) + "/sitegroups" }

// CreateSite creates a site of org (id or slug). Needs
// organizations:write.
func (c *Client) CreateSite(ctx context.Context, org, name string) (Site, error) {
	var out Site
	if err := need("org", org); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPost, path: sitesPath(org), body: jsonBody(map[string]string{"name": name})}, &out)
	return out, err
}

// ListSites lists one page of org's sites.
func (c *Client) ListSites(ctx context.Context, org string, p ListParams) (CursorPage[Site], error) {
	if err := need("org", org); err != nil {
		return CursorPage[Site]{}, err
	}
	return listPage[Site](ctx, c, sitesPath(org), nil, p)
}

// GetSite reads a site.
func (c *Client) GetSite(ctx context.Context, org, id string) (Site, error) {
	var out Site
	if err := need2ids(org, "site", id); err != nil {
		return out, err
	}
	err := c.get(ctx, sitesPath(org)+"/"+seg(id), &out)
	return out, err
}

// RenameSite renames a site.
func (c *Client) RenameSite(ctx context.Context, org, id, name string) (Site, error) {
	var out Site
	if err := need2ids(org, "site", id); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPatch, path: sitesPath(org) + "/" + seg(id), body: jsonBody(map[string]string{"name": name})}, &out)
	return out, err
}

// DeleteSite deletes a site; it leaves the sitegroups that held it.
func (c *Client) DeleteSite(ctx context.Context, org, id string) error {
	if err := need2ids(org, "site", id); err != nil {
		return err
	}
	return c.del(ctx, sitesPath(org)+"/"+seg(id))
}

// CreateSitegroup creates a sitegroup of org.
func (c *Client) CreateSitegroup(ctx context.Context, org string, in SitegroupParams) (Sitegroup, error) {
	var out Sitegroup
	if err := need("org", org); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPost, path: sitegroupsPath(org), body: jsonBody(in)}, &out)
	return out, err
}

// ListSitegroups lists one page of org's sitegroups.
func (c *Client) ListSitegroups(ctx context.Context, org string, p ListParams) (CursorPage[Sitegroup], error) {
	if err := need("org", org); err != nil {
		return CursorPage[Sitegroup]{}, err
	}
	return listPage[Sitegroup](ctx, c, sitegroupsPath(org), nil, p)
}

// GetSitegroup reads a sitegroup.
func (c *Client) GetSitegroup(ctx context.Context, org, id string) (Sitegroup, error) {
	var out Sitegroup
	if err := need2ids(org, "sitegroup", id); err != nil {
		return out, err
	}
	err := c.get(ctx, sitegroupsPath(org)+"/"+seg(id), &out)
	return out, err
}

// UpdateSitegroup renames a sitegroup or replaces its sites.
func (c *Client) UpdateSitegroup(ctx context.Context, org, id string, in SitegroupParams) (Sitegroup, error) {
	var out Sitegroup
	if err := need2ids(org, "sitegroup", id); err != nil {
		return out, err
	}
	err := c.do(ctx, request{method: http.MethodPatch, path: sitegroupsPath(org) + "/" + seg(id), body: jsonBody(in)}, &out)
	return out, err
}

// DeleteSitegroup deletes a sitegroup.
func (c *Client) DeleteSitegroup(ctx context.Context, org, id string) error {
	if err := need2ids(org, "sitegroup", id); err != nil {
		return err
	}
	return c.del(ctx, sitegroupsPath(org)+"/"+seg(id))
}

func need2ids(org, param, id string) error {
	if err := need("org", org); err != nil {
		return err
	}
	return need(param, id)
}
