package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// Personal access tokens through the SDK (native API, /v1/users/{user})
// and the client registry over the Freezer surface (its search has no
// native counterpart yet); the admin key acts for the user named by
// --user.

func userFlag(cmd *cobra.Command, user *string) {
	cmd.PersistentFlags().StringVar(user, "user", "", "the user the admin key acts for (X-User-ID; required)")
}

func (rc *remoteConfig) asUser(user string) (map[string]string, error) {
	if strings.TrimSpace(user) == "" {
		return nil, usageErrorf("--user is required: the admin key acts for that user")
	}
	if err := rc.needAdminKey(); err != nil {
		return nil, err
	}
	return map[string]string{"X-User-ID": user}, nil
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
	cmd.AddCommand(
		rc.leaf(leaf{use: "list --user USER", short: "List a user's tokens", example: "  keyward pats list --user user_42", check: hasUser,
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				pats, err := client.All(cmd.Context(), func(ctx context.Context, cursor string) (client.CursorPage[client.PAT], error) {
					return c.ListPATs(ctx, user, client.ListParams{Limit: 100, Cursor: cursor})
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

// clientEntry is Freezer's {"client": {...}, "user_id": ...}.
type clientEntry struct {
	Client struct {
		ClientID    string `json:"client_id"`
		Hostname    string `json:"hostname"`
		Description string `json:"description"`
		UUID        string `json:"uuid"`
	} `json:"client"`
	UserID string `json:"user_id"`
}

func clientTable(cmd *cobra.Command, entries []clientEntry) *table {
	t := newTable(cmd.OutOrStdout(), "CLIENT_ID", "HOSTNAME", "DESCRIPTION", "USER", "UUID")
	for _, e := range entries {
		t.row(e.Client.ClientID, e.Client.Hostname, e.Client.Description, e.UserID, e.Client.UUID)
	}
	return t
}

// matchPairs turns k=v (a string value) or k:=JSON (a JSON value) into
// Freezer's [{k: v}, …].
func matchPairs(flag string, in []string) ([]map[string]json.RawMessage, error) {
	out := make([]map[string]json.RawMessage, 0, len(in))
	for _, s := range in {
		var key string
		var val json.RawMessage
		if k, v, ok := strings.Cut(s, ":="); ok && !strings.Contains(k, "=") {
			if !json.Valid([]byte(v)) {
				return nil, usageErrorf("%s %q: the value after := must be JSON", flag, s)
			}
			key, val = k, json.RawMessage(v)
		} else if k, v, ok := strings.Cut(s, "="); ok {
			b, _ := json.Marshal(v)
			key, val = k, b
		} else {
			return nil, usageErrorf("%s %q: want key=value (or key:=JSON)", flag, s)
		}
		if key == "" {
			return nil, usageErrorf("%s %q: the key is empty", flag, s)
		}
		out = append(out, map[string]json.RawMessage{key: val})
	}
	return out, nil
}

func newClientsCommand(rc *remoteConfig) *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:     "clients",
		Aliases: []string{"client"},
		Short:   "Manage a user's registered clients (Freezer) on a running server",
		Example: "  keyward clients register proj_backup01 --user user_42 --hostname backup01.example.org\n  keyward clients list --user user_42 --search backup",
	}
	userFlag(cmd, &user)
	freezer := func(cmd *cobra.Command, method, path string, body any) ([]byte, error) {
		h, err := rc.asUser(user)
		if err != nil {
			return nil, err
		}
		return rc.do(cmd.Context(), call{method: method, path: "/freezer/v1/clients" + path, scheme: "Bearer", key: rc.adminKey, header: h, body: body}, freezerError)
	}

	var match, matchNot []string
	var search string
	var limit, offset int64
	list := &cobra.Command{
		Use:   "list --user USER",
		Short: "List a user's clients, optionally searching them",
		Example: "  keyward clients list --user user_42\n" +
			"  keyward clients list --user user_42 --search backup --match-not env=test --limit 50",
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := matchPairs("--match", match)
			if err != nil {
				return err
			}
			mn, err := matchPairs("--match-not", matchNot)
			if err != nil {
				return err
			}
			if search != "" {
				b, _ := json.Marshal(search)
				m = append(m, map[string]json.RawMessage{"_all": b})
			}
			var body any
			if len(m) > 0 || len(mn) > 0 {
				s := map[string]any{}
				if len(m) > 0 {
					s["match"] = m
				}
				if len(mn) > 0 {
					s["match_not"] = mn
				}
				body = s
			}
			v := url.Values{}
			if cmd.Flags().Changed("limit") {
				v.Set("limit", strconv.FormatInt(limit, 10))
			}
			if cmd.Flags().Changed("offset") {
				v.Set("offset", strconv.FormatInt(offset, 10))
			}
			path := ""
			if len(v) > 0 {
				path = "?" + v.Encode()
			}
			raw, err := freezer(cmd, "GET", path, body)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var out struct {
				Clients []clientEntry `json:"clients"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			return clientTable(cmd, out.Clients).flush()
		},
	}
	list.Flags().StringArrayVar(&match, "match", nil, "only clients with key=value (or key:=JSON) (repeatable)")
	list.Flags().StringArrayVar(&matchNot, "match-not", nil, "no clients with key=value (or key:=JSON) (repeatable)")
	list.Flags().StringVar(&search, "search", "", "a case-insensitive substring of any text of the client")
	list.Flags().Int64Var(&limit, "limit", 0, "page size (1..1000, default 10)")
	list.Flags().Int64Var(&offset, "offset", 0, "page offset")

	var hostname, description string
	register := &cobra.Command{
		Use:     "register CLIENT_ID --user USER",
		Short:   "Register a client for a user",
		Example: "  keyward clients register proj_backup01 --user user_42 --hostname backup01.example.org --description \"nightly backups\"",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "CLIENT_ID"); err != nil {
				return err
			}
			body := map[string]any{"client_id": args[0]}
			if hostname != "" {
				body["hostname"] = hostname
			}
			if description != "" {
				body["description"] = description
			}
			raw, err := freezer(cmd, "POST", "", body)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var out struct {
				ClientID string `json:"client_id"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			return rc.done(cmd, "registered "+out.ClientID, nil)
		},
	}
	register.Flags().StringVar(&hostname, "hostname", "", "the client's host name")
	register.Flags().StringVar(&description, "description", "", "what the client is")

	get := &cobra.Command{
		Use:     "get CLIENT_ID --user USER",
		Short:   "Show a registered client",
		Example: "  keyward clients get proj_backup01 --user user_42",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "CLIENT_ID"); err != nil {
				return err
			}
			raw, err := freezer(cmd, "GET", "/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var e clientEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			return clientTable(cmd, []clientEntry{e}).flush()
		},
	}
	del := &cobra.Command{
		Use:     "delete CLIENT_ID --user USER",
		Short:   "Delete a registered client",
		Example: "  keyward clients delete proj_backup01 --user user_42",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "CLIENT_ID"); err != nil {
				return err
			}
			if _, err := freezer(cmd, "DELETE", "/"+url.PathEscape(args[0]), nil); err != nil {
				return err
			}
			return rc.done(cmd, "deleted "+args[0], map[string]any{"client_id": args[0], "deleted": true})
		},
	}
	cmd.AddCommand(list, register, get, del)
	return cmd
}
