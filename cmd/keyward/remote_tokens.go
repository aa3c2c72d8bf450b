package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// Personal access tokens through the SDK (native API, /v1/users/{user});
// the admin key acts for the user named by --user.

func userFlag(cmd *cobra.Command, user *string) {
	cmd.PersistentFlags().StringVar(user, "user", "", "the user the admin key acts for (X-User-ID; required)")
}

func patTable(cmd *cobra.Command, pats []client.PAT) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "NAME", "SCOPES", "WORKSPACE", "PREFIX", "CREATED", "EXPIRES", "LAST_USED")
	for _, p := range pats {
		ws := ""
		if p.WorkspaceID != nil {
			ws = *p.WorkspaceID
		}
		prefix := ""
		if p.TokenPrefix != "" {
			prefix = p.TokenPrefix + "…"
		}
		t.row(p.ID, p.Name, joinOr(p.Scopes, ""), ws, prefix, rfc(p.CreatedAt), timePtr(p.ExpiresAt), timePtr(p.LastUsedAt))
	}
	return t
}

func newPATsCommand(rc *remoteConfig) *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:     "pats",
		Aliases: []string{"pat"},
		Short:   "Manage a user's personal access tokens on a running server",
		Example: "  keyward pats create ci --user user_42 --scope read\n  keyward pats list --user user_42",
	}
	userFlag(cmd, &user)
	hasUser := func() error { return required("--user", user) }
	var meta metaFilter
	cmd.AddCommand(
		rc.leaf(leaf{use: "list --user USER", short: "List a user's tokens", example: "  keyward pats list --user user_42\n  keyward pats list --user user_42 --meta plan=pro",
			flags: meta.flags, check: func() error { return firstError(hasUser(), meta.check()) },
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				pats, err := client.All(cmd.Context(), func(ctx context.Context, cursor string) (client.CursorPage[client.PAT], error) {
					return c.ListPATs(ctx, user, client.PATQuery{ListParams: client.ListParams{Limit: 100, Cursor: cursor}, Meta: meta.m})
				})
				return showAllOr(rc, cmd, pats, err, patTable)
			}}),
		rc.patCreate(&user, hasUser),
		rc.leaf(leaf{use: "revoke TOKEN_ID --user USER", short: "Revoke a user's token; it stops working at once",
			example: "  keyward pats revoke pt_… --user user_42", args: []string{"TOKEN_ID"}, check: hasUser,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				if err := c.RevokePAT(cmd.Context(), user, args[0]); err != nil {
					return err
				}
				return rc.done(cmd, "revoked "+args[0], map[string]any{"id": args[0], "revoked": true})
			}}),
	)
	return cmd
}

func (rc *remoteConfig) patCreate(user *string, hasUser func() error) *cobra.Command {
	var in client.PATParams
	var expires string
	return rc.leaf(leaf{use: "create NAME --user USER", short: "Create a personal access token for a user and print it once", args: []string{"NAME"},
		example: "  keyward pats create ci --user user_42 --scope read --scope keyward:tokens\n" +
			"  keyward pats create nightly --user user_42 --workspace-id ws_… --expires 2027-01-01T00:00:00Z",
		flags: func(fs *pflag.FlagSet) {
			fs.StringArrayVar(&in.Scopes, "scope", nil, "a scope from the instance's catalogue (repeatable)")
			fs.StringVar(&in.WorkspaceID, "workspace-id", "", "bind the token to this workspace")
			fs.StringVar(&expires, "expires", "", "expiry, RFC 3339 (default: the instance's maximum lifetime)")
			fs.StringVar(&in.Description, "description", "", "what the token is for")
		},
		check: func() error {
			if expires != "" {
				t, err := time.Parse(time.RFC3339, expires)
				if err != nil {
					return usageErrorf("--expires must be an RFC 3339 time, e.g. 2027-01-01T00:00:00Z")
				}
				in.ExpiresAt = &t
			}
			return hasUser()
		},
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			in.Name = args[0]
			p, err := c.CreatePAT(cmd.Context(), *user, in)
			if err != nil || rc.json() {
				return printOr(cmd, p, err)
			}
			if err := patTable(cmd, []client.PAT{p}).flush(); err != nil {
				return err
			}
			printSecret(cmd.OutOrStdout(), "token", p.Token, "shown once; keyward cannot show it again")
			return nil
		}})
}
