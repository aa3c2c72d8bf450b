package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/keyward/keyward/client"
)

// Organizations, sites, workspaces and members (native API, mostly through
// the SDK), and organization API tokens over the Mist surface.

func orgTable(cmd *cobra.Command, orgs []client.Organization) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "SLUG", "NAME", "CREATED", "UPDATED")
	for _, o := range orgs {
		t.row(o.ID, o.Slug, o.Name, rfc(o.CreatedAt), rfc(o.UpdatedAt))
	}
	return t
}

func (rc *remoteConfig) printOrg(cmd *cobra.Command, o client.Organization) error {
	if rc.json() {
		return printJSON(cmd.OutOrStdout(), o)
	}
	return orgTable(cmd, []client.Organization{o}).flush()
}

func newOrgsCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "orgs",
		Aliases: []string{"organizations", "org"},
		Short:   "Manage organizations on a running server",
		Example: "  keyward orgs create acme Acme\n  keyward orgs list",
	}
	var limit, offset int
	list := &cobra.Command{
		Use:     "list",
		Short:   "List organizations",
		Example: "  keyward orgs list\n  keyward orgs list --limit 50 -o json",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			out, err := c.ListOrganizations(cmd.Context(), client.Page{Limit: limit, Offset: offset})
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), out)
			}
			return orgTable(cmd, out.Organizations).flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 0, "page size")
	list.Flags().IntVar(&offset, "offset", 0, "page offset")

	create := &cobra.Command{
		Use:     "create SLUG NAME",
		Short:   "Create an organization",
		Example: "  keyward orgs create acme \"Acme Corp\"",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "SLUG", "NAME"); err != nil {
				return err
			}
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			o, err := c.CreateOrganization(cmd.Context(), client.OrganizationParams{Slug: args[0], Name: args[1]})
			if err != nil {
				return err
			}
			return rc.printOrg(cmd, o)
		},
	}
	get := &cobra.Command{
		Use:     "get ORG",
		Short:   "Show an organization (by id or slug)",
		Example: "  keyward orgs get acme",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "ORG"); err != nil {
				return err
			}
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			o, err := c.GetOrganization(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return rc.printOrg(cmd, o)
		},
	}
	var name, slug string
	update := &cobra.Command{
		Use:     "update ORG",
		Short:   "Rename an organization or change its slug",
		Example: "  keyward orgs update acme --name \"Acme Inc\"\n  keyward orgs update acme --slug acme-inc",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "ORG"); err != nil {
				return err
			}
			if name == "" && slug == "" {
				return usageErrorf("nothing to change: pass --name and/or --slug")
			}
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			o, err := c.UpdateOrganization(cmd.Context(), args[0], client.OrganizationParams{Slug: slug, Name: name})
			if err != nil {
				return err
			}
			return rc.printOrg(cmd, o)
		},
	}
	update.Flags().StringVar(&name, "name", "", "the new name")
	update.Flags().StringVar(&slug, "slug", "", "the new slug")
	del := &cobra.Command{
		Use:     "delete ORG",
		Short:   "Delete an organization and revoke its tokens",
		Example: "  keyward orgs delete acme",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "ORG"); err != nil {
				return err
			}
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			if err := c.DeleteOrganization(cmd.Context(), args[0]); err != nil {
				return err
			}
			return rc.done(cmd, "deleted "+args[0], map[string]any{"id": args[0], "deleted": true})
		},
	}
	cmd.AddCommand(list, create, get, update, del)
	return cmd
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

type siteOut struct {
	ID        string  `json:"id"`
	OrgID     string  `json:"org_id"`
	Name      string  `json:"name"`
	CreatedAt *string `json:"created_at"`
	UpdatedAt *string `json:"updated_at"`
}

func newSitesCommand(rc *remoteConfig) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "sites",
		Aliases: []string{"site"},
		Short:   "Manage an organization's sites on a running server",
		Example: "  keyward sites create HQ --org acme\n  keyward sites list --org acme",
	}
	orgFlag(cmd, &org)
	native := func(cmd *cobra.Command, method, path string, body any) ([]byte, error) {
		if err := needOrg(org); err != nil {
			return nil, err
		}
		if err := rc.needAdminKey(); err != nil {
			return nil, err
		}
		return rc.do(cmd.Context(), call{method: method, path: "/v1/organizations/" + url.PathEscape(org) + "/sites" + path,
			scheme: "Bearer", key: rc.adminKey, body: body}, nativeError)
	}
	show := func(cmd *cobra.Command, raw []byte, many bool) error {
		if rc.json() {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		var sites []siteOut
		if many {
			var out struct {
				Data []siteOut `json:"data"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			sites = out.Data
		} else {
			var s siteOut
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			sites = []siteOut{s}
		}
		t := newTable(cmd.OutOrStdout(), "ID", "NAME", "CREATED", "UPDATED")
		for _, s := range sites {
			t.row(s.ID, s.Name, rfcString(s.CreatedAt), rfcString(s.UpdatedAt))
		}
		return t.flush()
	}
	list := &cobra.Command{
		Use:     "list --org ORG",
		Short:   "List an organization's sites",
		Example: "  keyward sites list --org acme",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := native(cmd, "GET", "", nil)
			if err != nil {
				return err
			}
			return show(cmd, raw, true)
		},
	}
	create := &cobra.Command{
		Use:     "create NAME --org ORG",
		Short:   "Create a site",
		Example: "  keyward sites create HQ --org acme",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "NAME"); err != nil {
				return err
			}
			raw, err := native(cmd, "POST", "", map[string]string{"name": args[0]})
			if err != nil {
				return err
			}
			return show(cmd, raw, false)
		},
	}
	get := &cobra.Command{
		Use:     "get SITE_ID --org ORG",
		Short:   "Show a site",
		Example: "  keyward sites get 5f0c… --org acme",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "SITE_ID"); err != nil {
				return err
			}
			raw, err := native(cmd, "GET", "/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			return show(cmd, raw, false)
		},
	}
	var name string
	update := &cobra.Command{
		Use:     "update SITE_ID --org ORG --name NAME",
		Short:   "Rename a site",
		Example: "  keyward sites update 5f0c… --org acme --name \"HQ West\"",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "SITE_ID"); err != nil {
				return err
			}
			if name == "" {
				return usageErrorf("--name is required")
			}
			raw, err := native(cmd, "PATCH", "/"+url.PathEscape(args[0]), map[string]string{"name": name})
			if err != nil {
				return err
			}
			return show(cmd, raw, false)
		},
	}
	update.Flags().StringVar(&name, "name", "", "the new name (required)")
	del := &cobra.Command{
		Use:     "delete SITE_ID --org ORG",
		Short:   "Delete a site (it leaves its sitegroups)",
		Example: "  keyward sites delete 5f0c… --org acme",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "SITE_ID"); err != nil {
				return err
			}
			if _, err := native(cmd, "DELETE", "/"+url.PathEscape(args[0]), nil); err != nil {
				return err
			}
			return rc.done(cmd, "deleted "+args[0], map[string]any{"id": args[0], "deleted": true})
		},
	}
	cmd.AddCommand(list, create, get, update, del)
	return cmd
}

func workspaceTable(cmd *cobra.Command, wss []client.Workspace) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "SLUG", "NAME", "ORG_ID", "CREATED")
	for _, w := range wss {
		t.row(w.ID, w.Slug, w.Name, w.OrgID, rfc(w.CreatedAt))
	}
	return t
}

func newWorkspacesCommand(rc *remoteConfig) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "workspaces",
		Aliases: []string{"workspace", "ws"},
		Short:   "Manage an organization's workspaces on a running server",
		Example: "  keyward workspaces create data Data --org acme\n  keyward workspaces list --org acme",
	}
	orgFlag(cmd, &org)
	sdk := func() (*client.Client, error) {
		if err := needOrg(org); err != nil {
			return nil, err
		}
		return rc.sdk()
	}
	show := func(cmd *cobra.Command, w client.Workspace) error {
		if rc.json() {
			return printJSON(cmd.OutOrStdout(), w)
		}
		return workspaceTable(cmd, []client.Workspace{w}).flush()
	}
	list := &cobra.Command{
		Use:     "list --org ORG",
		Short:   "List an organization's workspaces",
		Example: "  keyward workspaces list --org acme",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sdk()
			if err != nil {
				return err
			}
			wss, err := c.ListWorkspaces(cmd.Context(), org)
			if err != nil {
				return err
			}
			if rc.json() {
				return printData(cmd, wss)
			}
			return workspaceTable(cmd, wss).flush()
		},
	}
	create := &cobra.Command{
		Use:     "create SLUG NAME --org ORG",
		Short:   "Create a workspace",
		Example: "  keyward workspaces create data \"Data team\" --org acme",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "SLUG", "NAME"); err != nil {
				return err
			}
			c, err := sdk()
			if err != nil {
				return err
			}
			w, err := c.CreateWorkspace(cmd.Context(), org, client.WorkspaceParams{Slug: args[0], Name: args[1]})
			if err != nil {
				return err
			}
			return show(cmd, w)
		},
	}
	get := &cobra.Command{
		Use:     "get WORKSPACE --org ORG",
		Short:   "Show a workspace (by id or slug)",
		Example: "  keyward workspaces get data --org acme",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "WORKSPACE"); err != nil {
				return err
			}
			c, err := sdk()
			if err != nil {
				return err
			}
			w, err := c.GetWorkspace(cmd.Context(), org, args[0])
			if err != nil {
				return err
			}
			return show(cmd, w)
		},
	}
	var name, slug string
	update := &cobra.Command{
		Use:     "update WORKSPACE --org ORG",
		Short:   "Rename a workspace or change its slug",
		Example: "  keyward workspaces update data --org acme --name \"Data platform\"",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "WORKSPACE"); err != nil {
				return err
			}
			if name == "" && slug == "" {
				return usageErrorf("nothing to change: pass --name and/or --slug")
			}
			c, err := sdk()
			if err != nil {
				return err
			}
			w, err := c.UpdateWorkspace(cmd.Context(), org, args[0], client.WorkspaceParams{Slug: slug, Name: name})
			if err != nil {
				return err
			}
			return show(cmd, w)
		},
	}
	update.Flags().StringVar(&name, "name", "", "the new name")
	update.Flags().StringVar(&slug, "slug", "", "the new slug")
	del := &cobra.Command{
		Use:     "delete WORKSPACE --org ORG",
		Short:   "Delete a workspace and revoke the tokens bound to it",
		Example: "  keyward workspaces delete data --org acme",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "WORKSPACE"); err != nil {
				return err
			}
			c, err := sdk()
			if err != nil {
				return err
			}
			if err := c.DeleteWorkspace(cmd.Context(), org, args[0]); err != nil {
				return err
			}
			return rc.done(cmd, "deleted "+args[0], map[string]any{"id": args[0], "deleted": true})
		},
	}
	cmd.AddCommand(list, create, get, update, del)
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
	var org, ws string
	cmd := &cobra.Command{
		Use:     "members",
		Aliases: []string{"member"},
		Short:   "Manage a workspace's members on a running server",
		Example: "  keyward members put user_42 --role member --org acme --workspace data\n  keyward members list --org acme --workspace data",
	}
	orgFlag(cmd, &org)
	cmd.PersistentFlags().StringVar(&ws, "workspace", "", "the workspace, by id or slug (required)")
	sdk := func() (*client.Client, error) {
		if err := needOrg(org); err != nil {
			return nil, err
		}
		if strings.TrimSpace(ws) == "" {
			return nil, usageErrorf("--workspace is required")
		}
		return rc.sdk()
	}
	var role string
	put := &cobra.Command{
		Use:     "put USER_ID --role ROLE --org ORG --workspace WORKSPACE",
		Short:   "Add a user to a workspace or change their role (owner, admin or member)",
		Example: "  keyward members put user_42 --role admin --org acme --workspace data",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "USER_ID"); err != nil {
				return err
			}
			if role == "" {
				return usageErrorf("--role is required (owner, admin or member)")
			}
			c, err := sdk()
			if err != nil {
				return err
			}
			m, err := c.PutMember(cmd.Context(), org, ws, args[0], role)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), m)
			}
			return memberTable(cmd, []client.Member{m}).flush()
		},
	}
	put.Flags().StringVar(&role, "role", "", "owner, admin or member (required)")
	list := &cobra.Command{
		Use:     "list --org ORG --workspace WORKSPACE",
		Short:   "List a workspace's members",
		Example: "  keyward members list --org acme --workspace data",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sdk()
			if err != nil {
				return err
			}
			ms, err := c.ListMembers(cmd.Context(), org, ws)
			if err != nil {
				return err
			}
			if rc.json() {
				return printData(cmd, ms)
			}
			return memberTable(cmd, ms).flush()
		},
	}
	get := &cobra.Command{
		Use:     "get USER_ID --org ORG --workspace WORKSPACE",
		Short:   "Show one member",
		Example: "  keyward members get user_42 --org acme --workspace data",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "USER_ID"); err != nil {
				return err
			}
			c, err := sdk()
			if err != nil {
				return err
			}
			m, err := c.GetMember(cmd.Context(), org, ws, args[0])
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), m)
			}
			return memberTable(cmd, []client.Member{m}).flush()
		},
	}
	remove := &cobra.Command{
		Use:     "remove USER_ID --org ORG --workspace WORKSPACE",
		Short:   "Remove a user from a workspace, revoking their tokens bound to it",
		Example: "  keyward members remove user_42 --org acme --workspace data",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "USER_ID"); err != nil {
				return err
			}
			c, err := sdk()
			if err != nil {
				return err
			}
			if err := c.RemoveMember(cmd.Context(), org, ws, args[0]); err != nil {
				return err
			}
			return rc.done(cmd, "removed "+args[0], map[string]any{"user_id": args[0], "removed": true})
		},
	}
	cmd.AddCommand(put, list, get, remove)
	return cmd
}

type orgTokenOut struct {
	ID         string             `json:"id"`
	OrgID      string             `json:"org_id"`
	Name       string             `json:"name"`
	Key        string             `json:"key"`
	Privileges []client.Privilege `json:"privileges"`
	SrcIPs     []string           `json:"src_ips"`
	CreatedBy  string             `json:"created_by"`
	Created    *int64             `json:"created_time"`
	LastUsed   *int64             `json:"last_used"`
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

func newOrgTokensCommand(rc *remoteConfig) *cobra.Command {
	var org string
	cmd := &cobra.Command{
		Use:     "org-tokens",
		Aliases: []string{"org-token", "apitokens"},
		Short:   "Manage an organization's API tokens (Mist) on a running server",
		Example: "  keyward org-tokens create automation --org acme --privilege scope=org,role=read\n  keyward org-tokens list --org acme",
	}
	orgFlag(cmd, &org)
	// mist calls the Mist surface; it takes the organization's UUID, so a
	// slug is resolved through the native API first.
	mist := func(cmd *cobra.Command, method, path string, body any) ([]byte, error) {
		if err := needOrg(org); err != nil {
			return nil, err
		}
		if err := rc.needAdminKey(); err != nil {
			return nil, err
		}
		id := org
		if _, err := uuid.Parse(org); err != nil {
			c, err := rc.sdk()
			if err != nil {
				return nil, err
			}
			o, err := c.GetOrganization(cmd.Context(), org)
			if err != nil {
				return nil, err
			}
			id = o.ID
		}
		return rc.do(cmd.Context(), call{method: method, path: "/mist/api/v1/orgs/" + url.PathEscape(id) + "/apitokens" + path,
			scheme: "Token", key: rc.adminKey, body: body}, mistError)
	}
	tokenTable := func(cmd *cobra.Command, toks []orgTokenOut) *table {
		t := newTable(cmd.OutOrStdout(), "ID", "NAME", "PRIVILEGES", "SRC_IPS", "CREATED", "LAST_USED")
		for _, tok := range toks {
			privs := make([]string, len(tok.Privileges))
			for i, p := range tok.Privileges {
				privs[i] = privilegeString(p)
			}
			t.row(tok.ID, tok.Name, joinOr(privs, ""), joinOr(tok.SrcIPs, "any"), secondsPtr(tok.Created), secondsPtr(tok.LastUsed))
		}
		return t
	}
	printOne := func(cmd *cobra.Command, raw []byte, showKey bool) error {
		if rc.json() {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		var tok orgTokenOut
		if err := json.Unmarshal(raw, &tok); err != nil {
			return err
		}
		if err := tokenTable(cmd, []orgTokenOut{tok}).flush(); err != nil {
			return err
		}
		if showKey {
			printSecret(cmd.OutOrStdout(), "key", tok.Key, "shown once; send it as Authorization: Token <key>")
		}
		return nil
	}

	list := &cobra.Command{
		Use:     "list --org ORG",
		Short:   "List an organization's API tokens (keys masked)",
		Example: "  keyward org-tokens list --org acme",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := mist(cmd, "GET", "", nil)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var toks []orgTokenOut
			if err := json.Unmarshal(raw, &toks); err != nil {
				return err
			}
			return tokenTable(cmd, toks).flush()
		},
	}
	var privileges, srcIPs []string
	create := &cobra.Command{
		Use:   "create NAME --org ORG --privilege scope=…,role=… [--privilege …]",
		Short: "Create an organization API token and print its key once",
		Example: "  keyward org-tokens create automation --org acme --privilege scope=org,role=admin\n" +
			"  keyward org-tokens create hq-ro --org acme --privilege scope=site,role=read,site_id=5f0c… --src-ip 203.0.113.0/24",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "NAME"); err != nil {
				return err
			}
			if len(privileges) == 0 {
				return usageErrorf("at least one --privilege is required, e.g. --privilege scope=org,role=read")
			}
			privs := make([]client.Privilege, 0, len(privileges))
			for _, s := range privileges {
				p, err := parsePrivilege(s)
				if err != nil {
					return err
				}
				privs = append(privs, p)
			}
			body := map[string]any{"name": args[0], "privileges": privs}
			if len(srcIPs) > 0 {
				body["src_ips"] = srcIPs
			}
			raw, err := mist(cmd, "POST", "", body)
			if err != nil {
				return err
			}
			return printOne(cmd, raw, true)
		},
	}
	create.Flags().StringArrayVar(&privileges, "privilege", nil, "scope=org|site|sitegroup,role=admin|write|read|helpdesk|installer[,site_id=…|sitegroup_id=…][,views=…] (repeatable)")
	create.Flags().StringArrayVar(&srcIPs, "src-ip", nil, "an address or CIDR the token may be used from (repeatable; default any)")
	get := &cobra.Command{
		Use:     "get TOKEN_ID --org ORG",
		Short:   "Show an organization API token (key masked)",
		Example: "  keyward org-tokens get 2a9e… --org acme",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "TOKEN_ID"); err != nil {
				return err
			}
			raw, err := mist(cmd, "GET", "/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			return printOne(cmd, raw, false)
		},
	}
	del := &cobra.Command{
		Use:     "delete TOKEN_ID --org ORG",
		Short:   "Delete an organization API token; it stops working at once",
		Example: "  keyward org-tokens delete 2a9e… --org acme",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "TOKEN_ID"); err != nil {
				return err
			}
			if _, err := mist(cmd, "DELETE", "/"+url.PathEscape(args[0]), nil); err != nil {
				return err
			}
			return rc.done(cmd, fmt.Sprintf("deleted %s", args[0]), map[string]any{"id": args[0], "deleted": true})
		},
	}
	cmd.AddCommand(list, create, get, del)
	return cmd
}

// printData prints a list as {"data": [...]}, never null.
func printData[T any](cmd *cobra.Command, items []T) error {
	if items == nil {
		items = []T{}
	}
	return printJSON(cmd.OutOrStdout(), map[string]any{"data": items})
}
