package main

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// Controls at verify time on a running server, through the SDK: a
// credential's controls and credits, roles and identities.

func newControlsCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "controls",
		Short:   "Read or change a credential's controls at verify time (meta, permissions, roles, rate limits, credits, identity)",
		Example: "  keyward controls get ak_…\n  keyward controls set ak_… --permission dns.read --role dns-admin --meta '{\"plan\":\"pro\"}'",
	}
	cmd.AddCommand(rc.leaf(leaf{use: "get CREDENTIAL_ID", short: "A credential's controls (needs credentials:read)", example: "  keyward controls get ak_… -o json",
		args: []string{"CREDENTIAL_ID"},
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			v, err := c.CredentialControls(cmd.Context(), args[0])
			return showOr(rc, cmd, v, err, controlsTable)
		}}), rc.controlsSet())
	return cmd
}

func (rc *remoteConfig) controlsSet() *cobra.Command {
	var meta, limits, identity string
	var perms, roles []string
	var credits int64
	var noCredits bool
	var u client.ControlsUpdate
	return rc.leaf(leaf{use: "set CREDENTIAL_ID", short: "Change a credential's controls; what is not given stays (needs credentials:write)",
		example: "  keyward controls set ak_… --permission dns.read --permission dns.write\n" +
			"  keyward controls set mt_… --ratelimits '[{\"name\":\"burst\",\"limit\":10,\"duration\":1000,\"algorithm\":\"fixed\",\"auto_apply\":true}]'\n" +
			"  keyward controls set ak_… --credits 1000 --identity idt_…",
		args: []string{"CREDENTIAL_ID"},
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&meta, "meta", "", "the meta, a JSON object ('null' clears it)")
			fs.StringArrayVar(&perms, "permission", nil, "a permission the credential holds (repeatable; replaces the list)")
			fs.StringArrayVar(&roles, "role", nil, "a role the credential holds (repeatable; replaces the list)")
			fs.StringVar(&limits, "ratelimits", "", "the named rate limits, a JSON array of {name, limit, duration (ms), algorithm, auto_apply} ('[]' clears)")
			fs.Int64Var(&credits, "credits", -1, "set the credits to this many remaining (no refill)")
			fs.BoolVar(&noCredits, "no-credits", false, "remove the credits")
			fs.StringVar(&identity, "identity", "", "link to this identity (idt_…; 'none' unlinks)")
		},
		check: func() error {
			u = client.ControlsUpdate{}
			if meta != "" {
				if !json.Valid([]byte(meta)) {
					return usageErrorf("--meta must be JSON")
				}
				u.Meta = json.RawMessage(meta)
			}
			if perms != nil {
				u.Permissions = &perms
			}
			if roles != nil {
				u.Roles = &roles
			}
			if limits != "" {
				var ls []client.NamedLimit
				if err := json.Unmarshal([]byte(limits), &ls); err != nil {
					return usageErrorf("--ratelimits must be a JSON array of limits: %v", err)
				}
				u.RateLimits = &ls
			}
			if credits >= 0 {
				u.Credits = &client.Credits{Remaining: credits}
			}
			u.ClearCredits = noCredits
			if identity != "" {
				id := identity
				if id == "none" {
					id = ""
				}
				u.IdentityID = &id
			}
			return nil
		},
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			v, err := c.SetCredentialControls(cmd.Context(), args[0], u)
			return showOr(rc, cmd, v, err, controlsTable)
		}})
}

func controlsTable(cmd *cobra.Command, vs []client.Controls) *table {
	t := newTable(cmd.OutOrStdout(), "CREDENTIAL", "PERMISSIONS", "ROLES", "RATELIMITS", "CREDITS", "IDENTITY", "META")
	for _, v := range vs {
		names := make([]string, len(v.RateLimits))
		for i, l := range v.RateLimits {
			names[i] = l.Name
		}
		credits, identity := "", ""
		if v.Credits != nil {
			credits = strconv.FormatInt(v.Credits.Remaining, 10)
		}
		if v.IdentityID != nil {
			identity = *v.IdentityID
		}
		t.row(v.CredentialID, joinOr(v.Permissions, ""), joinOr(v.Roles, ""), strings.Join(names, ","), credits, identity, string(v.Meta))
	}
	return t
}

func newCreditsCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "credits",
		Short:   "Set, increment or decrement a credential's remaining credits",
		Example: "  keyward credits increment ak_… 500",
	}
	for _, op := range []string{"set", "increment", "decrement"} {
		cmd.AddCommand(rc.leaf(leaf{use: op + " CREDENTIAL_ID AMOUNT", short: op + " the credits (needs credentials:write)",
			example: "  keyward credits " + op + " ak_… 100", args: []string{"CREDENTIAL_ID", "AMOUNT"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				n, err := strconv.ParseInt(args[1], 10, 64)
				if err != nil {
					return usageErrorf("AMOUNT must be a whole number")
				}
				cr, err := c.ChangeCredits(cmd.Context(), args[0], op, n)
				if err != nil || rc.json() {
					return printOr(cmd, cr, err)
				}
				t := newTable(cmd.OutOrStdout(), "REMAINING")
				t.row(strconv.FormatInt(cr.Remaining, 10))
				return t.flush()
			}}))
	}
	return cmd
}

func newRolesCommand(rc *remoteConfig) *cobra.Command {
	var perms []string
	permFlag := func(fs *pflag.FlagSet) {
		fs.StringArrayVar(&perms, "permission", nil, "a permission of the role (repeatable)")
	}
	cmd := &cobra.Command{
		Use:     "roles",
		Short:   "Manage roles: named sets of permissions credentials hold at verify time",
		Example: "  keyward roles create dns-admin --permission dns.read --permission dns.write",
	}
	cmd.AddCommand(
		rc.leaf(leaf{use: "create NAME", short: "Create a role (needs credentials:write)", example: "  keyward roles create reader --permission docs.read",
			args: []string{"NAME"}, flags: permFlag,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				r, err := c.CreateRole(cmd.Context(), args[0], perms)
				return showOr(rc, cmd, r, err, rolesTable)
			}}),
		rc.leaf(leaf{use: "list", short: "List the roles (needs credentials:read)", example: "  keyward roles list -o json",
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				rs, err := c.ListRoles(cmd.Context())
				if err != nil {
					return err
				}
				return showAll(rc, cmd, rs, rolesTable)
			}}),
		rc.leaf(leaf{use: "get NAME", short: "One role (needs credentials:read)", example: "  keyward roles get reader", args: []string{"NAME"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				r, err := c.GetRole(cmd.Context(), args[0])
				return showOr(rc, cmd, r, err, rolesTable)
			}}),
		rc.leaf(leaf{use: "update NAME", short: "Replace a role's permissions (needs credentials:write)", example: "  keyward roles update reader --permission docs.read --permission docs.list",
			args: []string{"NAME"}, flags: permFlag,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				r, err := c.UpdateRole(cmd.Context(), args[0], perms)
				return showOr(rc, cmd, r, err, rolesTable)
			}}),
		rc.leaf(leaf{use: "delete NAME", short: "Delete a role (needs credentials:write)", example: "  keyward roles delete reader", args: []string{"NAME"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				return c.DeleteRole(cmd.Context(), args[0])
			}}),
	)
	return cmd
}

func rolesTable(cmd *cobra.Command, rs []client.Role) *table {
	t := newTable(cmd.OutOrStdout(), "NAME", "PERMISSIONS", "UPDATED")
	for _, r := range rs {
		t.row(r.Name, joinOr(r.Permissions, ""), rfc(r.UpdatedAt))
	}
	return t
}

// identityInput is the flags identities create and update take.
type identityInput struct {
	p            client.IdentityParams
	meta, limits string
	credits      int64
}

func (in *identityInput) flags(fs *pflag.FlagSet) {
	fs.StringVar(&in.meta, "meta", "", "the meta, a JSON object")
	fs.StringVar(&in.limits, "ratelimits", "", "the named rate limits shared by its credentials, a JSON array")
	fs.Int64Var(&in.credits, "credits", -1, "set the shared credits to this many remaining")
}

func (in *identityInput) check() error {
	in.p.Meta, in.p.RateLimits, in.p.Credits = nil, nil, nil
	if in.meta != "" {
		if !json.Valid([]byte(in.meta)) {
			return usageErrorf("--meta must be JSON")
		}
		in.p.Meta = json.RawMessage(in.meta)
	}
	if in.limits != "" {
		var ls []client.NamedLimit
		if err := json.Unmarshal([]byte(in.limits), &ls); err != nil {
			return usageErrorf("--ratelimits must be a JSON array of limits: %v", err)
		}
		in.p.RateLimits = &ls
	}
	if in.credits >= 0 {
		in.p.Credits = &client.Credits{Remaining: in.credits}
	}
	return nil
}

func newIdentitiesCommand(rc *remoteConfig) *cobra.Command {
	in := &identityInput{}
	var credMeta metaFilter
	cmd := &cobra.Command{
		Use:     "identities",
		Short:   "Manage identities: groups of credentials (your customers) sharing rate limits and credits",
		Example: "  keyward identities create acme --credits 10000\n  keyward controls set ak_… --identity idt_…",
	}
	cmd.AddCommand(
		rc.leaf(leaf{use: "create EXTERNAL_ID", short: "Create an identity (needs credentials:write)", example: "  keyward identities create acme --meta '{\"tier\":\"gold\"}'",
			args: []string{"EXTERNAL_ID"}, flags: in.flags, check: in.check,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				in.p.ExternalID = args[0]
				i, err := c.CreateIdentity(cmd.Context(), in.p)
				return showOr(rc, cmd, i, err, identitiesTable)
			}}),
		rc.leaf(leaf{use: "list", short: "List the identities (needs credentials:read)", example: "  keyward identities list -o json",
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				page, err := c.ListIdentities(cmd.Context(), "", client.ListParams{Limit: 100})
				if err != nil {
					return err
				}
				return showAll(rc, cmd, page.Data, identitiesTable)
			}}),
		rc.leaf(leaf{use: "get IDENTITY_ID", short: "One identity (needs credentials:read)", example: "  keyward identities get idt_…", args: []string{"IDENTITY_ID"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				i, err := c.GetIdentity(cmd.Context(), args[0])
				return showOr(rc, cmd, i, err, identitiesTable)
			}}),
		rc.leaf(leaf{use: "update IDENTITY_ID", short: "Change an identity; what is not given stays (needs credentials:write)", example: "  keyward identities update idt_… --credits 500",
			args: []string{"IDENTITY_ID"}, flags: in.flags, check: in.check,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				i, err := c.UpdateIdentity(cmd.Context(), args[0], in.p)
				return showOr(rc, cmd, i, err, identitiesTable)
			}}),
		rc.leaf(leaf{use: "delete IDENTITY_ID", short: "Delete an identity and revoke its credentials (needs credentials:write)", example: "  keyward identities delete idt_…",
			args: []string{"IDENTITY_ID"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				n, err := c.DeleteIdentity(cmd.Context(), args[0])
				return printOr(cmd, map[string]any{"id": args[0], "deleted": true, "revoked_credentials": n}, err)
			}}),
		rc.leaf(leaf{use: "credentials IDENTITY_ID", short: "The credentials linked to an identity (needs credentials:read)",
			example: "  keyward identities credentials idt_…\n  keyward identities credentials idt_… --meta plan=pro",
			args:    []string{"IDENTITY_ID"}, flags: credMeta.flags, check: credMeta.check,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				list, err := c.IdentityCredentials(cmd.Context(), args[0], client.IdentityCredentialQuery{Meta: credMeta.m})
				if err != nil {
					return err
				}
				return showAll(rc, cmd, list, identityCredentialsTable)
			}}),
	)
	return cmd
}

func identityCredentialsTable(cmd *cobra.Command, ls []client.IdentityCredential) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "KIND", "REVOKED")
	for _, l := range ls {
		t.row(l.ID, l.Kind, strconv.FormatBool(l.Revoked))
	}
	return t
}

func identitiesTable(cmd *cobra.Command, is []client.Identity) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "EXTERNAL_ID", "RATELIMITS", "CREDITS", "META")
	for _, i := range is {
		credits := ""
		if i.Credits != nil {
			credits = strconv.FormatInt(i.Credits.Remaining, 10)
		}
		t.row(i.ID, i.ExternalID, strconv.Itoa(len(i.RateLimits)), credits, string(i.Meta))
	}
	return t
}
