package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// Admin keys on a running server, through the SDK: the remote
// counterpart of the operator's admin-key command.

func timePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return rfc(*t)
}

func adminKeyTable(cmd *cobra.Command, keys []client.AdminKey) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "NAME", "PREFIX", "PERMISSIONS", "CREATED", "EXPIRES", "LAST USED", "STATUS")
	for _, k := range keys {
		status := "active"
		if k.Revoked {
			status = "revoked " + timePtr(k.RevokedAt)
		}
		expires := timePtr(k.ExpiresAt)
		if expires == "" {
			expires = "never"
		}
		t.row(k.ID, k.Name, k.Prefix+"…", strings.Join(k.Permissions, ","), rfc(k.CreatedAt), expires, timePtr(k.LastUsedAt), status)
	}
	return t
}

func (rc *remoteConfig) printAdminKey(cmd *cobra.Command, k client.AdminKey) error {
	if rc.json() {
		return printJSON(cmd.OutOrStdout(), k)
	}
	return adminKeyTable(cmd, []client.AdminKey{k}).flush()
}

func newAdminKeysCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin-keys",
		Short: "Manage permission-scoped admin keys on a running server",
		Example: "  keyward admin-keys create --name protected-api --permission verify\n" +
			"  keyward admin-keys list",
	}
	list := rc.leaf(leaf{use: "list", short: "List admin keys (never their secrets)", example: "  keyward admin-keys list\n  keyward admin-keys list -o json",
		run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
			keys, err := c.ListAdminKeys(cmd.Context())
			if err != nil || rc.json() {
				return printOr(cmd, keys, err)
			}
			return adminKeyTable(cmd, keys).flush()
		}})
	get := rc.adminKeyByID("get", "Show an admin key", (*client.Client).GetAdminKey)
	revoke := rc.adminKeyByID("revoke", "Revoke an admin key; it stops authenticating at once", (*client.Client).RevokeAdminKey)
	cmd.AddCommand(rc.adminKeyCreate(), list, get, revoke)
	return cmd
}

func (rc *remoteConfig) adminKeyCreate() *cobra.Command {
	var in client.AdminKeyParams
	var expiresAt string
	create := rc.leaf(leaf{use: "create", short: "Create an admin key holding some of your key's permissions; prints its secret once",
		example: "  keyward admin-keys create --name protected-api --permission verify\n" +
			"  keyward admin-keys create --name ci --permission machines:write --permission m2m_tokens:read --expires-at 2027-01-01T00:00:00Z",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&in.Name, "name", "", "what the key is for (required)")
			fs.StringArrayVar(&in.Permissions, "permission", nil, "a permission the key holds (repeatable)")
			fs.StringVar(&expiresAt, "expires-at", "", "when the key stops working (RFC 3339); never by default")
		},
		check: func() error {
			if strings.TrimSpace(in.Name) == "" {
				return usageErrorf("--name is required")
			}
			if len(in.Permissions) == 0 {
				return usageErrorf("pass at least one --permission (e.g. --permission verify)")
			}
			if expiresAt != "" {
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return usageErrorf("--expires-at must be an RFC 3339 time, e.g. 2027-01-01T00:00:00Z")
				}
				in.ExpiresAt = &t
			}
			return nil
		},
		run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
			k, err := c.CreateAdminKey(cmd.Context(), in)
			if err != nil || rc.json() {
				return printOr(cmd, k, err)
			}
			if err := adminKeyTable(cmd, []client.AdminKey{k}).flush(); err != nil {
				return err
			}
			printSecret(cmd.OutOrStdout(), "admin key", k.Secret, "shown once; keyward cannot show it again")
			return nil
		}})
	create.Long = "Create an admin key. It may hold only permissions your own key holds, and may not\n" +
		"outlive it (write implies read). Permissions: " + strings.Join(permissionNames(), ", ") + "."
	return create
}

// adminKeyByID builds a leaf command that calls one SDK method on a key id
// and prints the key it answers.
func (rc *remoteConfig) adminKeyByID(verb, short string, call func(*client.Client, context.Context, string) (client.AdminKey, error)) *cobra.Command {
	return &cobra.Command{
		Use:     verb + " KEY_ID",
		Short:   short,
		Example: "  keyward admin-keys " + verb + " key_…",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "KEY_ID"); err != nil {
				return err
			}
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			k, err := call(c, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return rc.printAdminKey(cmd, k)
		},
	}
}
