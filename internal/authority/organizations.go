package authority

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keyward/keyward/internal/credential"
)

// Organization limits.
const (
	OrgNameMax           = 255
	OrgListLimitDefault  = 20
	OrgListLimitMax      = 200
	MaxSitesPerSitegroup = 1000
)

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// OrganizationInput creates or changes an organization; nil leaves a field
// as it is (on create, Slug and Name are required).
type OrganizationInput struct {
	Slug *string
	Name *string
}

func validateOrganization(in OrganizationInput, create bool) error {
	if create && in.Slug == nil {
		return credential.ParamError(credential.CodeMissing, "slug", "is missing")
	}
	if create && in.Name == nil {
		return credential.ParamError(credential.CodeMissing, "name", "is missing")
	}
	if in.Slug != nil && !slugPattern.MatchString(*in.Slug) {
		return credential.ParamError(credential.CodeInvalid, "slug", "must be 1 to 63 lowercase letters, digits or dashes, starting with a letter or digit")
	}
	// A path segment is read as an id when it parses as a UUID, so a slug
	// that does would name another organization (or none) there.
	if in.Slug != nil {
		if _, err := uuid.Parse(*in.Slug); err == nil {
			return credential.ParamError(credential.CodeInvalid, "slug", "must not be shaped like a UUID (ids and slugs must never be confusable)")
		}
	}
	if in.Name != nil {
		return validateName("name", *in.Name, OrgNameMax)
	}
	return nil
}

func validateName(param, name string, max int) error {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return credential.ParamError(credential.CodeMissing, param, "is missing")
	case n > max:
		return credential.ParamError(credential.CodeTooLong, param, fmt.Sprintf("must be at most %d characters", max))
	}
	return nil
}

// CreateOrganization creates an organization with a UUID id.
func (a *Authority) CreateOrganization(ctx context.Context, c Caller, in OrganizationInput) (credential.Organization, error) {
	g, err := a.enter(ctx, c, "CreateOrganization")
	if err != nil {
		return credential.Organization{}, err
	}
	if err := validateOrganization(in, true); err != nil {
		return credential.Organization{}, err
	}
	now := g.now
	o := credential.Organization{ID: uuid.NewString(), InstanceID: c.InstanceID, Slug: *in.Slug, Name: *in.Name, CreatedAt: now, UpdatedAt: now}
	err = g.mutate(ctx, func(tx *change) error {
		if err := tx.InsertOrganization(ctx, o); err != nil {
			return slugTaken(err)
		}
		return tx.audit("organization.create", "organization", o.ID, map[string]string{"slug": o.Slug})
	})
	return o, err
}

func slugTaken(err error) error {
	if credential.IsCode(err, credential.CodeConflict) {
		return credential.ParamError(credential.CodeConflict, "slug", "is already taken by another organization")
	}
	return err
}

// ListOrganizations returns a page of the instance's organizations.
func (a *Authority) ListOrganizations(ctx context.Context, c Caller, limit, offset *int64) ([]credential.Organization, int, error) {
	if _, err := a.enter(ctx, c, "ListOrganizations"); err != nil {
		return nil, 0, err
	}
	l, o, err := page(limit, offset, OrgListLimitDefault, OrgListLimitMax)
	if err != nil {
		return nil, 0, err
	}
	var (
		out   []credential.Organization
		total int
	)
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		out, total, err = tx.ListOrganizations(ctx, c.InstanceID, l, o)
		return err
	})
	return out, total, err
}

// GetOrganization returns an organization by id or by slug.
func (a *Authority) GetOrganization(ctx context.Context, c Caller, idOrSlug string) (credential.Organization, error) {
	if _, err := a.enter(ctx, c, "GetOrganization"); err != nil {
		return credential.Organization{}, err
	}
	var o credential.Organization
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		o, err = findOrganization(ctx, tx, c.InstanceID, idOrSlug)
		return err
	})
	return o, err
}

// findOrganization resolves an id (a UUID) or a slug within the instance.
func findOrganization(ctx context.Context, tx OrganizationTx, instanceID, idOrSlug string) (credential.Organization, error) {
	var (
		o   credential.Organization
		err error
	)
	if _, perr := uuid.Parse(idOrSlug); perr == nil {
		o, err = tx.GetOrganization(ctx, instanceID, idOrSlug)
	} else {
		o, err = tx.GetOrganizationBySlug(ctx, instanceID, idOrSlug)
	}
	if credential.IsCode(err, credential.CodeNotFound) {
		return o, credential.Errorf(credential.CodeNotFound, "no such organization")
	}
	return o, err
}

// UpdateOrganization changes an organization's slug or name.
func (a *Authority) UpdateOrganization(ctx context.Context, c Caller, idOrSlug string, in OrganizationInput) (credential.Organization, error) {
	g, err := a.enter(ctx, c, "UpdateOrganization")
	if err != nil {
		return credential.Organization{}, err
	}
	if err := validateOrganization(in, false); err != nil {
		return credential.Organization{}, err
	}
	var o credential.Organization
	err = g.mutate(ctx, func(tx *change) error {
		var err error
		if o, err = findOrganization(ctx, tx, c.InstanceID, idOrSlug); err != nil {
			return err
		}
		if in.Slug != nil {
			o.Slug = *in.Slug
		}
		if in.Name != nil {
			o.Name = *in.Name
		}
		o.UpdatedAt = tx.now
		if err := tx.UpdateOrganization(ctx, o); err != nil {
			return slugTaken(err)
		}
		return tx.audit("organization.update", "organization", o.ID, map[string]string{"slug": o.Slug, "name": o.Name})
	})
	return o, err
}

// DeleteOrganization deletes an organization, its sites and sitegroups,
// and revokes every token bound to it.
func (a *Authority) DeleteOrganization(ctx context.Context, c Caller, idOrSlug string) error {
	return a.mutate(ctx, c, "DeleteOrganization", func(tx *change) error {
		o, err := findOrganization(ctx, tx, c.InstanceID, idOrSlug)
		if err != nil {
			return err
		}
		now := tx.now
		revoked, err := tx.RevokeCredentialsOf(ctx, c.InstanceID, credential.KindOrgToken, o.ID, now, "organization deleted")
		if err != nil {
			return err
		}
		// PATs bound to the organization's workspaces die with it too.
		workspaces, err := tx.ListWorkspaces(ctx, c.InstanceID, o.ID)
		if err != nil {
			return err
		}
		pats := 0
		for _, w := range workspaces {
			n, err := tx.RevokeMatching(ctx, CredentialQuery{InstanceID: c.InstanceID, Kind: credential.KindPAT, ParentID: w.ID}, now, "organization deleted")
			if err != nil {
				return err
			}
			pats += n
		}
		if err := tx.DeleteOrganization(ctx, c.InstanceID, o.ID); err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("organization.delete", "organization", o.ID, map[string]int{"org_tokens_revoked": revoked, "pats_revoked": pats})
	})
}

// readInOrg runs a read within one organization (given by id or slug) of
// the admin caller's instance.
func readInOrg[T any](ctx context.Context, a *Authority, c Caller, uc useCase, org string, read func(tx Tx, orgID string) (T, error)) (T, error) {
	var out T
	if _, err := a.enter(ctx, c, uc); err != nil {
		return out, err
	}
	err := a.store.View(ctx, func(tx Tx) error {
		o, err := findOrganization(ctx, tx, c.InstanceID, org)
		if err != nil {
			return err
		}
		out, err = read(tx, o.ID)
		return err
	})
	return out, err
}

// SiteInput creates or renames a site.
type SiteInput struct{ Name *string }

// CreateSite adds a site to an organization.
func (a *Authority) CreateSite(ctx context.Context, c Caller, org string, in SiteInput) (credential.Site, error) {
	g, err := a.enter(ctx, c, "CreateSite")
	if err != nil {
		return credential.Site{}, err
	}
	if in.Name == nil {
		return credential.Site{}, credential.ParamError(credential.CodeMissing, "name", "is missing")
	}
	if err := validateName("name", *in.Name, OrgNameMax); err != nil {
		return credential.Site{}, err
	}
	var s credential.Site
	err = g.mutate(ctx, func(tx *change) error {
		o, err := findOrganization(ctx, tx, c.InstanceID, org)
		if err != nil {
			return err
		}
		now := tx.now
		s = credential.Site{ID: uuid.NewString(), InstanceID: c.InstanceID, OrgID: o.ID, Name: *in.Name, CreatedAt: now, UpdatedAt: now}
		if err := tx.InsertSite(ctx, s); err != nil {
			return err
		}
		return tx.audit("site.create", "site", s.ID, map[string]string{"org_id": o.ID})
	})
	return s, err
}

// ListSites lists an organization's sites.
func (a *Authority) ListSites(ctx context.Context, c Caller, org string) ([]credential.Site, error) {
	return readInOrg(ctx, a, c, "ListSites", org, func(tx Tx, orgID string) ([]credential.Site, error) {
		return tx.ListSites(ctx, c.InstanceID, orgID)
	})
}

// GetSite returns one site of an organization.
func (a *Authority) GetSite(ctx context.Context, c Caller, org, id string) (credential.Site, error) {
	return readInOrg(ctx, a, c, "GetSite", org, func(tx Tx, orgID string) (credential.Site, error) {
		return tx.GetSite(ctx, c.InstanceID, orgID, id)
	})
}

// UpdateSite renames a site.
func (a *Authority) UpdateSite(ctx context.Context, c Caller, org, id string, in SiteInput) (credential.Site, error) {
	g, err := a.enter(ctx, c, "UpdateSite")
	if err != nil {
		return credential.Site{}, err
	}
	if in.Name != nil {
		if err := validateName("name", *in.Name, OrgNameMax); err != nil {
			return credential.Site{}, err
		}
	}
	var s credential.Site
	err = g.mutate(ctx, func(tx *change) error {
		o, err := findOrganization(ctx, tx, c.InstanceID, org)
		if err != nil {
			return err
		}
		if s, err = tx.GetSite(ctx, c.InstanceID, o.ID, id); err != nil {
			return err
		}
		if in.Name != nil {
			s.Name = *in.Name
		}
		s.UpdatedAt = tx.now
		if err := tx.UpdateSite(ctx, s); err != nil {
			return err
		}
		return tx.audit("site.update", "site", s.ID, nil)
	})
	return s, err
}

// DeleteSite deletes a site; it leaves its sitegroups. Privileges naming
// it grant nothing from then on.
func (a *Authority) DeleteSite(ctx context.Context, c Caller, org, id string) error {
	return a.mutate(ctx, c, "DeleteSite", func(tx *change) error {
		o, err := findOrganization(ctx, tx, c.InstanceID, org)
		if err != nil {
			return err
		}
		if err := tx.DeleteSite(ctx, c.InstanceID, o.ID, id); err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("site.delete", "site", id, nil)
	})
}

// SitegroupInput creates or changes a sitegroup; nil leaves a field as is.
type SitegroupInput struct {
	Name    *string
	SiteIDs []string // nil: unchanged (on create: none)
}

func (a *Authority) checkSitegroupInput(in SitegroupInput, create bool) error {
	if create && in.Name == nil {
		return credential.ParamError(credential.CodeMissing, "name", "is missing")
	}
	if in.Name != nil {
		if err := validateName("name", *in.Name, OrgNameMax); err != nil {
			return err
		}
	}
	if len(in.SiteIDs) > MaxSitesPerSitegroup {
		return credential.ParamError(credential.CodeTooMany, "site_ids", fmt.Sprintf("must hold at most %d sites", MaxSitesPerSitegroup))
	}
	return nil
}

// sitesOf checks that every id is a site of the organization.
func sitesOf(ctx context.Context, tx OrganizationTx, instanceID, orgID string, ids []string) ([]string, error) {
	ids = dedupe(ids)
	for _, id := range ids {
		if _, err := tx.GetSite(ctx, instanceID, orgID, id); err != nil {
			if credential.IsCode(err, credential.CodeNotFound) {
				return nil, credential.ParamError(credential.CodeInvalid, "site_ids", "every site must be a site of this organization")
			}
			return nil, err
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// CreateSitegroup creates a sitegroup of sites of the same organization.
func (a *Authority) CreateSitegroup(ctx context.Context, c Caller, org string, in SitegroupInput) (credential.Sitegroup, error) {
	g, err := a.enter(ctx, c, "CreateSitegroup")
	if err != nil {
		return credential.Sitegroup{}, err
	}
	if err := a.checkSitegroupInput(in, true); err != nil {
		return credential.Sitegroup{}, err
	}
	var sg credential.Sitegroup
	err = g.mutate(ctx, func(tx *change) error {
		o, err := findOrganization(ctx, tx, c.InstanceID, org)
		if err != nil {
			return err
		}
		ids, err := sitesOf(ctx, tx, c.InstanceID, o.ID, in.SiteIDs)
		if err != nil {
			return err
		}
		now := tx.now
		sg = credential.Sitegroup{ID: uuid.NewString(), InstanceID: c.InstanceID, OrgID: o.ID, Name: *in.Name, SiteIDs: ids, CreatedAt: now, UpdatedAt: now}
		if err := tx.InsertSitegroup(ctx, sg); err != nil {
			return err
		}
		tx.invalidateAll() // the org's cached topology gains a group
		return tx.audit("sitegroup.create", "sitegroup", sg.ID, map[string]any{"org_id": o.ID, "site_ids": ids})
	})
	return sg, err
}

// ListSitegroups lists an organization's sitegroups.
func (a *Authority) ListSitegroups(ctx context.Context, c Caller, org string) ([]credential.Sitegroup, error) {
	return readInOrg(ctx, a, c, "ListSitegroups", org, func(tx Tx, orgID string) ([]credential.Sitegroup, error) {
		return tx.ListSitegroups(ctx, c.InstanceID, orgID)
	})
}

// GetSitegroup returns one sitegroup of an organization.
func (a *Authority) GetSitegroup(ctx context.Context, c Caller, org, id string) (credential.Sitegroup, error) {
	return readInOrg(ctx, a, c, "GetSitegroup", org, func(tx Tx, orgID string) (credential.Sitegroup, error) {
		return tx.GetSitegroup(ctx, c.InstanceID, orgID, id)
	})
}

// UpdateSitegroup renames a sitegroup or replaces its sites.
func (a *Authority) UpdateSitegroup(ctx context.Context, c Caller, org, id string, in SitegroupInput) (credential.Sitegroup, error) {
	g, err := a.enter(ctx, c, "UpdateSitegroup")
	if err != nil {
		return credential.Sitegroup{}, err
	}
	if err := a.checkSitegroupInput(in, false); err != nil {
		return credential.Sitegroup{}, err
	}
	var sg credential.Sitegroup
	err = g.mutate(ctx, func(tx *change) error {
		o, err := findOrganization(ctx, tx, c.InstanceID, org)
		if err != nil {
			return err
		}
		if sg, err = tx.GetSitegroup(ctx, c.InstanceID, o.ID, id); err != nil {
			return err
		}
		if in.Name != nil {
			sg.Name = *in.Name
		}
		if in.SiteIDs != nil {
			if sg.SiteIDs, err = sitesOf(ctx, tx, c.InstanceID, o.ID, in.SiteIDs); err != nil {
				return err
			}
		}
		sg.UpdatedAt = tx.now
		if err := tx.UpdateSitegroup(ctx, sg); err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("sitegroup.update", "sitegroup", sg.ID, map[string]any{"site_ids": sg.SiteIDs})
	})
	return sg, err
}

// DeleteSitegroup deletes a sitegroup (not its sites).
func (a *Authority) DeleteSitegroup(ctx context.Context, c Caller, org, id string) error {
	return a.mutate(ctx, c, "DeleteSitegroup", func(tx *change) error {
		o, err := findOrganization(ctx, tx, c.InstanceID, org)
		if err != nil {
			return err
		}
		if err := tx.DeleteSitegroup(ctx, c.InstanceID, o.ID, id); err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("sitegroup.delete", "sitegroup", id, nil)
	})
}
