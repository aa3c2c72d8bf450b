package sqlstore

import (
	"context"
	"slices"

	"github.com/keyward/keyward/internal/credential"
)

// Organizations, sites and sitegroups. Sites and sitegroups carry their
// instance and organization, and every query matches both, so a row of
// another organization or instance is not found. Deleting an organization
// leaves its sites, sitegroups and memberships to ON DELETE CASCADE;
// deleting a site leaves its memberships to it too.

const organizationColumns = `id, instance_id, slug, name, created_at, updated_at`

func scanOrganization(s scanner) (credential.Organization, error) {
	var o credential.Organization
	err := s.Scan(&o.ID, &o.InstanceID, &o.Slug, &o.Name, scanTime(&o.CreatedAt), scanTime(&o.UpdatedAt))
	return o, err
}

// InsertOrganization reports CodeConflict for a slug (or id) already used
// in the instance, and CodeNotFound for a missing instance.
func (t *tx) InsertOrganization(ctx context.Context, o credential.Organization) error {
	_, err := t.exec(ctx, `INSERT INTO organizations (`+organizationColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		o.ID, o.InstanceID, o.Slug, o.Name, millis(o.CreatedAt), millis(o.UpdatedAt))
	return translate(err, "organization")
}

func (t *tx) GetOrganization(ctx context.Context, instanceID, id string) (credential.Organization, error) {
	o, err := scanOrganization(t.queryRow(ctx,
		`SELECT `+organizationColumns+` FROM organizations WHERE instance_id = ? AND id = ?`, instanceID, id))
	return o, translate(err, "organization")
}

// GetOrganizationBySlug matches the slug exactly (byte for byte).
func (t *tx) GetOrganizationBySlug(ctx context.Context, instanceID, slug string) (credential.Organization, error) {
	o, err := scanOrganization(t.queryRow(ctx,
		`SELECT `+organizationColumns+` FROM organizations WHERE instance_id = ? AND slug = ?`, instanceID, slug))
	return o, translate(err, "organization")
}

// ListOrganizations reads the page and the total in one transaction, so on
// either engine they come from one snapshot. A limit ≤ 0 means no limit.
func (t *tx) ListOrganizations(ctx context.Context, instanceID string, limit, offset int) ([]credential.Organization, int, error) {
	total, err := t.count(ctx, "organization", `SELECT COUNT(*) FROM organizations WHERE instance_id = ?`, instanceID)
	if err != nil {
		return nil, 0, err
	}
	page, err := queryAll(ctx, t, "organization", scanOrganization, `SELECT `+organizationColumns+` FROM organizations
		WHERE instance_id = ? ORDER BY created_at, id LIMIT ? OFFSET ?`,
		instanceID, pageLimit(limit), max(offset, 0))
	return page, total, err
}

// UpdateOrganization reports CodeConflict for a slug another organization
// of the instance has.
func (t *tx) UpdateOrganization(ctx context.Context, o credential.Organization) error {
	return t.execOne(ctx, "organization", `UPDATE organizations SET slug = ?, name = ?, updated_at = ?
		WHERE instance_id = ? AND id = ?`,
		o.Slug, o.Name, millis(o.UpdatedAt), o.InstanceID, o.ID)
}

func (t *tx) DeleteOrganization(ctx context.Context, instanceID, id string) error {
	return t.execOne(ctx, "organization", `DELETE FROM organizations WHERE instance_id = ? AND id = ?`, instanceID, id)
}

const siteColumns = `id, instance_id, org_id, name, created_at, updated_at`

func scanSite(s scanner) (credential.Site, error) {
	var site credential.Site
	err := s.Scan(&site.ID, &site.InstanceID, &site.OrgID, &site.Name, scanTime(&site.CreatedAt), scanTime(&site.UpdatedAt))
	return site, err
}

// InsertSite inserts the site only if its organization belongs to its
// instance (the foreign key alone would accept another instance's
// organization); CodeNotFound otherwise.
func (t *tx) InsertSite(ctx context.Context, s credential.Site) error {
	return t.execOne(ctx, "site", `INSERT INTO sites (`+siteColumns+`)
		SELECT ?, ?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM organizations WHERE instance_id = ? AND id = ?)`,
		s.ID, s.InstanceID, s.OrgID, s.Name, millis(s.CreatedAt), millis(s.UpdatedAt),
		s.InstanceID, s.OrgID)
}

func (t *tx) GetSite(ctx context.Context, instanceID, orgID, id string) (credential.Site, error) {
	s, err := scanSite(t.queryRow(ctx, `SELECT `+siteColumns+` FROM sites
		WHERE instance_id = ? AND org_id = ? AND id = ?`, instanceID, orgID, id))
	return s, translate(err, "site")
}

// ListSites orders by created_at, id. An unknown organization has no
// sites.
func (t *tx) ListSites(ctx context.Context, instanceID, orgID string) ([]credential.Site, error) {
	return queryAll(ctx, t, "site", scanSite, `SELECT `+siteColumns+` FROM sites
		WHERE instance_id = ? AND org_id = ? ORDER BY created_at, id`, instanceID, orgID)
}

func (t *tx) UpdateSite(ctx context.Context, s credential.Site) error {
	return t.execOne(ctx, "site", `UPDATE sites SET name = ?, updated_at = ?
		WHERE instance_id = ? AND org_id = ? AND id = ?`,
		s.Name, millis(s.UpdatedAt), s.InstanceID, s.OrgID, s.ID)
}

// DeleteSite leaves the sitegroups it was in, without it; their updated_at
// stays as it was.
func (t *tx) DeleteSite(ctx context.Context, instanceID, orgID, id string) error {
	return t.execOne(ctx, "site", `DELETE FROM sites WHERE instance_id = ? AND org_id = ? AND id = ?`,
		instanceID, orgID, id)
}

const sitegroupColumns = `id, instance_id, org_id, name, created_at, updated_at`

func scanSitegroup(s scanner) (credential.Sitegroup, error) {
	var g credential.Sitegroup
	err := s.Scan(&g.ID, &g.InstanceID, &g.OrgID, &g.Name, scanTime(&g.CreatedAt), scanTime(&g.UpdatedAt))
	return g, err
}

// InsertSitegroup checks the organization and every site before it writes
// anything, so a CodeNotFound leaves the transaction as it was. Duplicate
// site ids are stored once.
func (t *tx) InsertSitegroup(ctx context.Context, g credential.Sitegroup) error {
	siteIDs, err := t.checkSites(ctx, g)
	if err != nil {
		return err
	}
	err = t.execOne(ctx, "sitegroup", `INSERT INTO sitegroups (`+sitegroupColumns+`)
		SELECT ?, ?, ?, ?, CAST(? AS BIGINT), CAST(? AS BIGINT)
		WHERE EXISTS (SELECT 1 FROM organizations WHERE instance_id = ? AND id = ?)`,
		g.ID, g.InstanceID, g.OrgID, g.Name, millis(g.CreatedAt), millis(g.UpdatedAt),
		g.InstanceID, g.OrgID)
	if err != nil {
		return err
	}
	return t.insertMembers(ctx, g, siteIDs)
}

func (t *tx) GetSitegroup(ctx context.Context, instanceID, orgID, id string) (credential.Sitegroup, error) {
	g, err := scanSitegroup(t.queryRow(ctx, `SELECT `+sitegroupColumns+` FROM sitegroups
		WHERE instance_id = ? AND org_id = ? AND id = ?`, instanceID, orgID, id))
	if err != nil {
		return g, translate(err, "sitegroup")
	}
	members, err := t.members(ctx, `g.instance_id = ? AND g.org_id = ? AND g.id = ?`, instanceID, orgID, id)
	g.SiteIDs = siteIDsOf(members, id)
	return g, err
}

// ListSitegroups orders by created_at, id, and reads every membership of
// the organization in one query. An unknown organization has no
// sitegroups.
func (t *tx) ListSitegroups(ctx context.Context, instanceID, orgID string) ([]credential.Sitegroup, error) {
	groups, err := queryAll(ctx, t, "sitegroup", scanSitegroup, `SELECT `+sitegroupColumns+` FROM sitegroups
		WHERE instance_id = ? AND org_id = ? ORDER BY created_at, id`, instanceID, orgID)
	if err != nil || len(groups) == 0 {
		return groups, err
	}
	members, err := t.members(ctx, `g.instance_id = ? AND g.org_id = ?`, instanceID, orgID)
	if err != nil {
		return nil, err
	}
	for i := range groups {
		groups[i].SiteIDs = siteIDsOf(members, groups[i].ID)
	}
	return groups, nil
}

// UpdateSitegroup checks the sites and the sitegroup before it writes
// anything, so a CodeNotFound leaves the transaction as it was.
func (t *tx) UpdateSitegroup(ctx context.Context, g credential.Sitegroup) error {
	siteIDs, err := t.checkSites(ctx, g)
	if err != nil {
		return err
	}
	// The first write: it touches no row when the sitegroup is missing.
	err = t.execOne(ctx, "sitegroup", `UPDATE sitegroups SET name = ?, updated_at = ?
		WHERE instance_id = ? AND org_id = ? AND id = ?`,
		g.Name, millis(g.UpdatedAt), g.InstanceID, g.OrgID, g.ID)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `DELETE FROM sitegroup_sites WHERE sitegroup_id IN
		(SELECT id FROM sitegroups WHERE instance_id = ? AND org_id = ? AND id = ?)`,
		g.InstanceID, g.OrgID, g.ID)
	if err != nil {
		return translate(err, "sitegroup")
	}
	return t.insertMembers(ctx, g, siteIDs)
}

// DeleteSitegroup leaves its memberships to ON DELETE CASCADE; the sites
// stay.
func (t *tx) DeleteSitegroup(ctx context.Context, instanceID, orgID, id string) error {
	return t.execOne(ctx, "sitegroup", `DELETE FROM sitegroups WHERE instance_id = ? AND org_id = ? AND id = ?`,
		instanceID, orgID, id)
}

// checkSites returns g's site ids sorted and without duplicates, or
// CodeNotFound unless each is a site of g's organization and instance.
func (t *tx) checkSites(ctx context.Context, g credential.Sitegroup) ([]string, error) {
	siteIDs := slices.Compact(slices.Sorted(slices.Values(g.SiteIDs)))
	if len(siteIDs) == 0 {
		return nil, nil
	}
	n, err := t.count(ctx, "site", `SELECT COUNT(*) FROM sites
		WHERE instance_id = ? AND org_id = ? AND id IN (`+placeholders(len(siteIDs))+`)`,
		append([]any{g.InstanceID, g.OrgID}, stringArgs(siteIDs)...)...)
	if err != nil {
		return nil, err
	}
	if n != len(siteIDs) {
		return nil, credential.Errorf(credential.CodeNotFound, "sitegroup refers to a site not in its organization")
	}
	return siteIDs, nil
}

// insertMembers adds siteIDs, already checked by checkSites, to the
// sitegroup g. It selects both sides by instance and organization again,
// and reports CodeNotFound should a site have gone in between.
func (t *tx) insertMembers(ctx context.Context, g credential.Sitegroup, siteIDs []string) error {
	if len(siteIDs) == 0 {
		return nil
	}
	res, err := t.exec(ctx, `INSERT INTO sitegroup_sites (sitegroup_id, site_id)
		SELECT g.id, s.id FROM sitegroups g JOIN sites s ON s.org_id = g.org_id
		WHERE g.instance_id = ? AND g.org_id = ? AND g.id = ?
		  AND s.instance_id = ? AND s.org_id = ? AND s.id IN (`+placeholders(len(siteIDs))+`)`,
		append([]any{g.InstanceID, g.OrgID, g.ID, g.InstanceID, g.OrgID}, stringArgs(siteIDs)...)...)
	if err != nil {
		return translate(err, "sitegroup site")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return translate(err, "sitegroup site")
	}
	if int(n) != len(siteIDs) {
		return credential.Errorf(credential.CodeNotFound, "sitegroup refers to a site not in its organization")
	}
	return nil
}

// members reads the site ids of the sitegroups matching where, a condition
// on sitegroups g, keyed by sitegroup id. Each list is sorted in byte order
// here rather than by the database, whose collation of ids may differ.
func (t *tx) members(ctx context.Context, where string, args ...any) (map[string][]string, error) {
	type membership struct{ sitegroupID, siteID string }
	rows, err := queryAll(ctx, t, "sitegroup site", func(s scanner) (membership, error) {
		var m membership
		err := s.Scan(&m.sitegroupID, &m.siteID)
		return m, err
	}, `SELECT gs.sitegroup_id, gs.site_id FROM sitegroup_sites gs JOIN sitegroups g ON g.id = gs.sitegroup_id
		WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	members := make(map[string][]string)
	for _, m := range rows {
		members[m.sitegroupID] = append(members[m.sitegroupID], m.siteID)
	}
	for _, siteIDs := range members {
		slices.Sort(siteIDs)
	}
	return members, nil
}

// siteIDsOf returns the site ids of sitegroup id; never nil.
func siteIDsOf(members map[string][]string, id string) []string {
	if siteIDs := members[id]; siteIDs != nil {
		return siteIDs
	}
	return []string{}
}
