package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// Organizations, sites, sitegroups, workspaces, members and organization
// API tokens, on a running server through the SDK. Each leaf command is
// built by rc.leaf.

func orgTable(cmd *cobra.Command, orgs []client.Organization) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "SLUG", "NAME", "CREATED", "UPDATED")
	for _, o := range orgs {
		t.row(o.ID, o.Slug, o.Name, rfc(o.CreatedAt), rfc(o.UpdatedAt))
	}
	return t
}

func newOrgsCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "orgs",
		Aliases: []string{"organizations", "org"},
		Short:   "Manage organizations on a running server",
		Example: "  keyward orgs create acme Acme\n  keyward orgs list",
	}
	var page client.Page
	var name, slug string
	cmd.AddCommand(
		rc.leaf(leaf{use: "list", short: "List organizations", example: "  keyward orgs list\n  keyward orgs list --limit 50 -o json",
			flags: func(fs *pflag.FlagSet) {
				fs.IntVar(&page.Limit, "limit", 0, "page size")
				fs.IntVar(&page.Offset, "offset", 0, "page offset")
				fs.StringVar(&page.Cursor, "cursor", "", "the next_cursor of the previous page")
			},
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				out, err := c.ListOrganizations(cmd.Context(), page)
				if err != nil || rc.json() {
					return printOr(cmd, out, err)
				}
				return orgTable(cmd, out.Organizations).flush()
			}}),
		rc.leaf(leaf{use: "create SLUG NAME", short: "Create an organization", example: "  keyward orgs create acme \"Acme Corp\"", args: []string{"SLUG", "NAME"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				o, err := c.CreateOrganization(cmd.Context(), client.OrganizationParams{Slug: args[0], Name: args[1]})
				return showOr(rc, cmd, o, err, orgTable)
			}}),
		rc.leaf(leaf{use: "get ORG", short: "Show an organization (by id or slug)", example: "  keyward orgs get acme", args: []string{"ORG"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				o, err := c.GetOrganization(cmd.Context(), args[0])
				return showOr(rc, cmd, o, err, orgTable)
			}}),
		rc.leaf(leaf{use: "update ORG", short: "Rename an organization or change its slug", args: []string{"ORG"},
			example: "  keyward orgs update acme --name \"Acme Inc\"\n  keyward orgs update acme --slug acme-inc",
			flags:   nameSlugFlags(&name, &slug),
			check:   func() error { return somethingToChange(name, slug) },
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				o, err := c.UpdateOrganization(cmd.Context(), args[0], client.OrganizationParams{Slug: slug, Name: name})
				return showOr(rc, cmd, o, err, orgTable)
			}}),
		rc.leaf(leaf{use: "delete ORG", short: "Delete an organization and revoke its tokens", example: "  keyward orgs delete acme", args: []string{"ORG"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				return rc.deleted(cmd, args[0], c.DeleteOrganization(cmd.Context(), args[0]))
			}}),
	)
	return cmd
}

// printOr prints v as JSON unless err.
func printOr(cmd *cobra.Command, v any, err error) error {
	if err != nil {
		return err
	}
	return printJSON(cmd.OutOrStdout(), v)
}

// showOr shows v unless err.
func showOr[T any](rc *remoteConfig, cmd *cobra.Command, v T, err error, table func(*cobra.Command, []T) *table) error {
	if err != nil {
		return err
	}
	return show(rc, cmd, v, table)
}

// showAllOr shows items unless err.
func showAllOr[T any](rc *remoteConfig, cmd *cobra.Command, items []T, err error, table func(*cobra.Command, []T) *table) error {
	if err != nil {
		return err
	}
	return showAll(rc, cmd, items, table)
}

// deleted reports a deletion of id unless err.
func (rc *remoteConfig) deleted(cmd *cobra.Command, id string, err error) error {
	if err != nil {
		return err
	}
	return rc.done(cmd, "deleted "+id, map[string]any{"id": id, "deleted": true})
}

func nameSlugFlags(name, slug *string) func(*pflag.FlagSet) {
	return func(fs *pflag.FlagSet) {
		fs.StringVar(name, "name", "", "the new name")
		fs.StringVar(slug, "slug", "", "the new slug")
	}
}

func somethingToChange(name, slug string) error {
	if name == "" && slug == "" {
		return usageErrorf("nothing to change: pass --name and/or --slug")
	}
	return nil
}

// orgFlag adds the required --org to a command group.
func orgFlag(cmd *cobra.Command, org *string) {
	cmd.PersistentFlags().StringVar(org, "org", "", "the organization, by id or slug (required)")
}

func needOrg(org string) error {
	if strings.TrimSpace(org) == "" {
		return usageErrorf("--org is required")
	}
	return nil
}

func siteTable(cmd *cobra.Command, sites []client.Site) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "NAME", "CREATED", "UPDATED")
	for _, s := range sites {
		t.row(s.ID, s.Name, rfc(s.CreatedAt), rfc(s.UpdatedAt))
	}
	return t
}

func newSitesCommand(rc *remoteConfig) *cobra.Command {
	var org, name string
	cmd := &cobra.Command{
		Use:     "sites",
		Aliases: []string{"site"},
		Short:   "Manage an organization's sites on a running server",
		Example: "  keyward sites create HQ --org acme\n  keyward sites list --org acme",
	}
	orgFlag(cmd, &org)
	hasOrg := func() error { return needOrg(org) }
	cmd.AddCommand(
		rc.leaf(leaf{use: "list --org ORG", short: "List an organization's sites", example: "  keyward sites list --org acme", check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				sites, err := client.All(cmd.Context(), func(ctx context.Context, cursor string) (client.CursorPage[client.Site], error) {
					return c.ListSites(ctx, org, client.ListParams{Limit: 100, Cursor: cursor})
				})
				return showAllOr(rc, cmd, sites, err, siteTable)
			}}),
		rc.leaf(leaf{use: "create NAME --org ORG", short: "Create a site", example: "  keyward sites create HQ --org acme", args: []string{"NAME"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				s, err := c.CreateSite(cmd.Context(), org, args[0])
				return showOr(rc, cmd, s, err, siteTable)
			}}),
		rc.leaf(leaf{use: "get SITE_ID --org ORG", short: "Show a site", example: "  keyward sites get 5f0c… --org acme", args: []string{"SITE_ID"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				s, err := c.GetSite(cmd.Context(), org, args[0])
				return showOr(rc, cmd, s, err, siteTable)
			}}),
		rc.leaf(leaf{use: "update SITE_ID --org ORG --name NAME", short: "Rename a site", example: "  keyward sites update 5f0c… --org acme --name \"HQ West\"",
			args:  []string{"SITE_ID"},
			flags: func(fs *pflag.FlagSet) { fs.StringVar(&name, "name", "", "the new name (required)") },
			check: func() error { return firstError(hasOrg(), required("--name", name)) },
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				s, err := c.RenameSite(cmd.Context(), org, args[0], name)
				return showOr(rc, cmd, s, err, siteTable)
			}}),
		rc.leaf(leaf{use: "delete SITE_ID --org ORG", short: "Delete a site (it leaves its sitegroups)", example: "  keyward sites delete 5f0c… --org acme",
			args: []string{"SITE_ID"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				return rc.deleted(cmd, args[0], c.DeleteSite(cmd.Context(), org, args[0]))
			}}),
	)
	return cmd
}

func sitegroupTable(cmd *cobra.Command, groups []client.Sitegroup) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "NAME", "SITES", "CREATED", "UPDATED")
	for _, g := range groups {
		t.row(g.ID, g.Name, joinOr(g.SiteIDs, "none"), rfc(g.CreatedAt), rfc(g.UpdatedAt))
	}
	return t
}

func newSitegroupsCommand(rc *remoteConfig) *cobra.Command {
	var org, name string
	var sites []string
	cmd := &cobra.Command{
		Use:     "sitegroups",
		Aliases: []string{"sitegroup"},
		Short:   "Manage an organization's sitegroups on a running server",
		Example: "  keyward sitegroups create west --site 5f0c… --org acme\n  keyward sitegroups list --org acme",
	}
	orgFlag(cmd, &org)
	hasOrg := func() error { return needOrg(org) }
	siteFlag := func(fs *pflag.FlagSet) { fs.StringArrayVar(&sites, "site", nil, "a site of the group (repeatable)") }
	cmd.AddCommand(
		rc.leaf(leaf{use: "list --org ORG", short: "List an organization's sitegroups", example: "  keyward sitegroups list --org acme", check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				groups, err := client.All(cmd.Context(), func(ctx context.Context, cursor string) (client.CursorPage[client.Sitegroup], error) {
					return c.ListSitegroups(ctx, org, client.ListParams{Limit: 100, Cursor: cursor})
				})
				return showAllOr(rc, cmd, groups, err, sitegroupTable)
			}}),
		rc.leaf(leaf{use: "create NAME --org ORG [--site SITE_ID …]", short: "Create a sitegroup", example: "  keyward sitegroups create west --site 5f0c… --org acme",
			args: []string{"NAME"}, flags: siteFlag, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				g, err := c.CreateSitegroup(cmd.Context(), org, client.SitegroupParams{Name: args[0], SiteIDs: sites})
				return showOr(rc, cmd, g, err, sitegroupTable)
			}}),
		rc.leaf(leaf{use: "get SITEGROUP_ID --org ORG", short: "Show a sitegroup", example: "  keyward sitegroups get 7a1b… --org acme",
			args: []string{"SITEGROUP_ID"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				g, err := c.GetSitegroup(cmd.Context(), org, args[0])
				return showOr(rc, cmd, g, err, sitegroupTable)
			}}),
		rc.leaf(leaf{use: "update SITEGROUP_ID --org ORG [--name NAME] [--site SITE_ID …]", short: "Rename a sitegroup or replace its sites",
			example: "  keyward sitegroups update 7a1b… --org acme --site 5f0c… --site 9d2e…", args: []string{"SITEGROUP_ID"},
			flags: func(fs *pflag.FlagSet) { siteFlag(fs); fs.StringVar(&name, "name", "", "the new name") },
			check: func() error {
				if name == "" && sites == nil {
					return usageErrorf("nothing to change: pass --name and/or --site")
				}
				return hasOrg()
			},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				g, err := c.UpdateSitegroup(cmd.Context(), org, args[0], client.SitegroupParams{Name: name, SiteIDs: sites})
				return showOr(rc, cmd, g, err, sitegroupTable)
			}}),
		rc.leaf(leaf{use: "delete SITEGROUP_ID --org ORG", short: "Delete a sitegroup", example: "  keyward sitegroups delete 7a1b… --org acme",
			args: []string{"SITEGROUP_ID"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				return rc.deleted(cmd, args[0], c.DeleteSitegroup(cmd.Context(), org, args[0]))
			}}),
	)
	return cmd
}

func required(flag, value string) error {
	if strings.TrimSpace(value) == "" {
		return usageErrorf("%s is required", flag)
	}
	return nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func workspaceTable(cmd *cobra.Command, wss []client.Workspace) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "SLUG", "NAME", "ORG_ID", "CREATED")
	for _, w := range wss {
		t.row(w.ID, w.Slug, w.Name, w.OrgID, rfc(w.CreatedAt))
	}
	return t
}

func newWorkspacesCommand(rc *remoteConfig) *cobra.Command {
	var org, name, slug string
	cmd := &cobra.Command{
		Use:     "workspaces",
		Aliases: []string{"workspace", "ws"},
		Short:   "Manage an organization's workspaces on a running server",
		Example: "  keyward workspaces create data Data --org acme\n  keyward workspaces list --org acme",
	}
	orgFlag(cmd, &org)
	hasOrg := func() error { return needOrg(org) }
	cmd.AddCommand(
		rc.leaf(leaf{use: "list --org ORG", short: "List an organization's workspaces", example: "  keyward workspaces list --org acme", check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				wss, err := c.ListWorkspaces(cmd.Context(), org)
				return showAllOr(rc, cmd, wss, err, workspaceTable)
			}}),
		rc.leaf(leaf{use: "create SLUG NAME --org ORG", short: "Create a workspace", example: "  keyward workspaces create data \"Data team\" --org acme",
			args: []string{"SLUG", "NAME"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				w, err := c.CreateWorkspace(cmd.Context(), org, client.WorkspaceParams{Slug: args[0], Name: args[1]})
				return showOr(rc, cmd, w, err, workspaceTable)
			}}),
		rc.leaf(leaf{use: "get WORKSPACE --org ORG", short: "Show a workspace (by id or slug)", example: "  keyward workspaces get data --org acme",
			args: []string{"WORKSPACE"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				w, err := c.GetWorkspace(cmd.Context(), org, args[0])
				return showOr(rc, cmd, w, err, workspaceTable)
			}}),
		rc.leaf(leaf{use: "update WORKSPACE --org ORG", short: "Rename a workspace or change its slug",
			example: "  keyward workspaces update data --org acme --name \"Data platform\"", args: []string{"WORKSPACE"},
			flags: nameSlugFlags(&name, &slug),
			check: func() error { return firstError(hasOrg(), somethingToChange(name, slug)) },
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				w, err := c.UpdateWorkspace(cmd.Context(), org, args[0], client.WorkspaceParams{Slug: slug, Name: name})
				return showOr(rc, cmd, w, err, workspaceTable)
			}}),
		rc.leaf(leaf{use: "delete WORKSPACE --org ORG", short: "Delete a workspace and revoke the tokens bound to it",
			example: "  keyward workspaces delete data --org acme", args: []string{"WORKSPACE"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				return rc.deleted(cmd, args[0], c.DeleteWorkspace(cmd.Context(), org, args[0]))
			}}),
	)
	return cmd
}

func memberTable(cmd *cobra.Command, ms []client.Member) *table {
	t := newTable(cmd.OutOrStdout(), "USER", "ROLE", "WORKSPACE_ID", "CREATED", "UPDATED")
	for _, m := range ms {
		t.row(m.UserID, m.Role, m.WorkspaceID, rfc(m.CreatedAt), rfc(m.UpdatedAt))
	}
	return t
}

func newMembersCommand(rc *remoteConfig) *cobra.Command {
	var org, ws, role string
	cmd := &cobra.Command{
		Use:     "members",
		Aliases: []string{"member"},
		Short:   "Manage a workspace's members on a running server",
		Example: "  keyward members put user_42 --role member --org acme --workspace data\n  keyward members list --org acme --workspace data",
	}
	orgFlag(cmd, &org)
	cmd.PersistentFlags().StringVar(&ws, "workspace", "", "the workspace, by id or slug (required)")
	hasWorkspace := func() error { return firstError(needOrg(org), required("--workspace", ws)) }
	cmd.AddCommand(
		rc.leaf(leaf{use: "put USER_ID --role ROLE --org ORG --workspace WORKSPACE", short: "Add a user to a workspace or change their role (owner, admin or member)",
			example: "  keyward members put user_42 --role admin --org acme --workspace data", args: []string{"USER_ID"},
			flags: func(fs *pflag.FlagSet) { fs.StringVar(&role, "role", "", "owner, admin or member (required)") },
			check: func() error {
				if role == "" {
					return usageErrorf("--role is required (owner, admin or member)")
				}
				return hasWorkspace()
			},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				m, err := c.PutMember(cmd.Context(), org, ws, args[0], role)
				return showOr(rc, cmd, m, err, memberTable)
			}}),
		rc.leaf(leaf{use: "list --org ORG --workspace WORKSPACE", short: "List a workspace's members", example: "  keyward members list --org acme --workspace data",
			check: hasWorkspace,
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				ms, err := c.ListMembers(cmd.Context(), org, ws)
				return showAllOr(rc, cmd, ms, err, memberTable)
			}}),
		rc.leaf(leaf{use: "get USER_ID --org ORG --workspace WORKSPACE", short: "Show one member", example: "  keyward members get user_42 --org acme --workspace data",
			args: []string{"USER_ID"}, check: hasWorkspace,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				m, err := c.GetMember(cmd.Context(), org, ws, args[0])
				return showOr(rc, cmd, m, err, memberTable)
			}}),
		rc.leaf(leaf{use: "remove USER_ID --org ORG --workspace WORKSPACE", short: "Remove a user from a workspace, revoking their tokens bound to it",
			example: "  keyward members remove user_42 --org acme --workspace data", args: []string{"USER_ID"}, check: hasWorkspace,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				if err := c.RemoveMember(cmd.Context(), org, ws, args[0]); err != nil {
					return err
				}
				return rc.done(cmd, "removed "+args[0], map[string]any{"user_id": args[0], "removed": true})
			}}),
	)
	return cmd
}

func privilegeString(p client.Privilege) string {
	s := p.Scope + ":" + p.Role
	switch {
	case p.SiteID != "":
		s += "@" + p.SiteID
	case p.SitegroupID != "":
		s += "@" + p.SitegroupID
	}
	return s
}

// parsePrivilege reads scope=org,role=admin[,site_id=…][,sitegroup_id=…][,views=…].
func parsePrivilege(s string) (client.Privilege, error) {
	var p client.Privilege
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return p, usageErrorf("--privilege %q: want key=value pairs separated by commas, e.g. scope=org,role=admin", s)
		}
		switch strings.TrimSpace(k) {
		case "scope":
			p.Scope = v
		case "role":
			p.Role = v
		case "site_id", "site":
			p.SiteID = v
		case "sitegroup_id", "sitegroup":
			p.SitegroupID = v
		case "views", "view":
			p.Views = append(p.Views, v)
		default:
			return p, usageErrorf("--privilege %q: unknown key %q (scope, role, site_id, sitegroup_id, views)", s, k)
		}
	}
	if p.Scope == "" || p.Role == "" {
		return p, usageErrorf("--privilege %q: scope and role are required", s)
	}
	return p, nil
}

func parsePrivileges(flags []string) ([]client.Privilege, error) {
	if len(flags) == 0 {
		return nil, usageErrorf("at least one --privilege is required, e.g. --privilege scope=org,role=read")
	}
	privs := make([]client.Privilege, 0, len(flags))
	for _, s := range flags {
		p, err := parsePrivilege(s)
		if err != nil {
			return nil, err
		}
		privs = append(privs, p)
	}
	return privs, nil
}

func orgTokenTable(cmd *cobra.Command, toks []client.OrgToken) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "NAME", "PRIVILEGES", "SRC_IPS", "CREATED", "LAST_USED")
	for _, tok := range toks {
		privs := make([]string, len(tok.Privileges))
		for i, p := range tok.Privileges {
			privs[i] = privilegeString(p)
		}
		t.row(tok.ID, tok.Name, joinOr(privs, ""), joinOr(tok.SrcIPs, "any"), rfc(tok.CreatedAt), timePtr(tok.LastUsedAt))
	}
	return t
}

func newOrgTokensCommand(rc *remoteConfig) *cobra.Command {
	var org string
	var privileges, srcIPs []string
	cmd := &cobra.Command{
		Use:     "org-tokens",
		Aliases: []string{"org-token", "apitokens"},
		Short:   "Manage an organization's API tokens on a running server",
		Example: "  keyward org-tokens create automation --org acme --privilege scope=org,role=read\n  keyward org-tokens list --org acme",
	}
	orgFlag(cmd, &org)
	hasOrg := func() error { return needOrg(org) }
	var meta metaFilter
	cmd.AddCommand(
		rc.leaf(leaf{use: "list --org ORG", short: "List an organization's API tokens (keys masked)", example: "  keyward org-tokens list --org acme\n  keyward org-tokens list --org acme --meta team=infra",
			flags: meta.flags, check: func() error { return firstError(hasOrg(), meta.check()) },
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				toks, err := client.All(cmd.Context(), func(ctx context.Context, cursor string) (client.CursorPage[client.OrgToken], error) {
					return c.ListOrgTokens(ctx, org, client.OrgTokenQuery{ListParams: client.ListParams{Limit: 100, Cursor: cursor}, Meta: meta.m})
				})
				return showAllOr(rc, cmd, toks, err, orgTokenTable)
			}}),
		rc.leaf(leaf{use: "create NAME --org ORG --privilege scope=…,role=… [--privilege …]", short: "Create an organization API token and print its key once",
			example: "  keyward org-tokens create automation --org acme --privilege scope=org,role=admin\n" +
				"  keyward org-tokens create hq-ro --org acme --privilege scope=site,role=read,site_id=5f0c… --src-ip 203.0.113.0/24",
			args: []string{"NAME"}, check: hasOrg,
			flags: func(fs *pflag.FlagSet) {
				fs.StringArrayVar(&privileges, "privilege", nil, "scope=org|site|sitegroup,role=admin|write|read|helpdesk|installer[,site_id=…|sitegroup_id=…][,views=…] (repeatable)")
				fs.StringArrayVar(&srcIPs, "src-ip", nil, "an address or CIDR the token may be used from (repeatable; default any)")
			},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				privs, err := parsePrivileges(privileges)
				if err != nil {
					return err
				}
				tok, err := c.CreateOrgToken(cmd.Context(), org, client.OrgTokenParams{Name: args[0], Privileges: privs, SrcIPs: srcIPs})
				if err != nil || rc.json() {
					return printOr(cmd, tok, err)
				}
				if err := orgTokenTable(cmd, []client.OrgToken{tok}).flush(); err != nil {
					return err
				}
				printSecret(cmd.OutOrStdout(), "key", tok.Key, "shown once; send it as Authorization: Token <key>")
				return nil
			}}),
		rc.leaf(leaf{use: "get TOKEN_ID --org ORG", short: "Show an organization API token (key masked)", example: "  keyward org-tokens get 2a9e… --org acme",
			args: []string{"TOKEN_ID"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				tok, err := c.GetOrgToken(cmd.Context(), org, args[0])
				return showOr(rc, cmd, tok, err, orgTokenTable)
			}}),
		rc.leaf(leaf{use: "delete TOKEN_ID --org ORG", short: "Delete an organization API token; it stops working at once",
			example: "  keyward org-tokens delete 2a9e… --org acme", args: []string{"TOKEN_ID"}, check: hasOrg,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				return rc.deleted(cmd, args[0], c.DeleteOrgToken(cmd.Context(), org, args[0]))
			}}),
	)
	return cmd
}
