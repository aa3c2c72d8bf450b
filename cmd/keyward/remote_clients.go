package main

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/freezer"
)

// The client registry through the SDK (native API,
// /v1/users/{user}/clients); the admin key acts for the user named by
// --user. The native list has no search, so --search, --match and
// --match-not filter the whole listing here, with Freezer's rules, and
// --limit/--offset page the result.

// The page bounds of Freezer's client list, which the flags keep.
const (
	clientPageDefault = 10
	clientPageMax     = 1000
)

func newClientsCommand(rc *remoteConfig) *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:     "clients",
		Aliases: []string{"client"},
		Short:   "Manage a user's registered clients (Freezer) on a running server",
		Example: "  keyward clients register proj_backup01 --user user_42 --hostname backup01.example.org\n  keyward clients list --user user_42 --search backup",
	}
	userFlag(cmd, &user)
	hasUser := func() error {
		if strings.TrimSpace(user) == "" {
			return usageErrorf("--user is required: the admin key acts for that user")
		}
		return nil
	}
	cmd.AddCommand(rc.clientList(&user, hasUser), rc.clientRegister(&user, hasUser), rc.clientGet(&user, hasUser), rc.clientDelete(&user, hasUser))
	return cmd
}

// clientListFlags are the list's search and paging flags.
type clientListFlags struct {
	match, matchNot []string
	search          string
	limit, offset   int64
}

func (f *clientListFlags) add(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.match, "match", nil, "only clients with key=value (or key:=JSON) (repeatable)")
	fs.StringArrayVar(&f.matchNot, "match-not", nil, "no clients with key=value (or key:=JSON) (repeatable)")
	fs.StringVar(&f.search, "search", "", "a case-insensitive substring of any text of the client")
	fs.Int64Var(&f.limit, "limit", clientPageDefault, "page size (1..1000)")
	fs.Int64Var(&f.offset, "offset", 0, "page offset")
}

// filter is the search the flags describe.
func (f *clientListFlags) filter() (clientFilter, error) {
	if f.limit < 1 || f.limit > clientPageMax {
		return clientFilter{}, usageErrorf("--limit must be between 1 and %d", clientPageMax)
	}
	if f.offset < 0 {
		return clientFilter{}, usageErrorf("--offset must be greater than or equal to 0")
	}
	m, err := matchPairs("--match", f.match)
	if err != nil {
		return clientFilter{}, err
	}
	mn, err := matchPairs("--match-not", f.matchNot)
	if err != nil {
		return clientFilter{}, err
	}
	if f.search != "" {
		m = append(m, matchPair{key: "_all", want: f.search})
	}
	return clientFilter{match: m, matchNot: mn}, nil
}

func (rc *remoteConfig) clientList(user *string, hasUser func() error) *cobra.Command {
	var f clientListFlags
	var search clientFilter
	return rc.leaf(leaf{use: "list --user USER", short: "List a user's clients, optionally searching them",
		example: "  keyward clients list --user user_42\n" +
			"  keyward clients list --user user_42 --search backup --match-not env=test --limit 50",
		flags: f.add,
		check: func() (err error) {
			if err = hasUser(); err == nil {
				search, err = f.filter()
			}
			return err
		},
		run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
			all, err := client.All(cmd.Context(), func(ctx context.Context, cursor string) (client.CursorPage[client.BackupClient], error) {
				return c.ListBackupClients(ctx, *user, client.ListParams{Limit: 100, Cursor: cursor})
			})
			if err != nil {
				return err
			}
			kept, err := search.apply(all)
			if err != nil {
				return err
			}
			return showAll(rc, cmd, pageOf(kept, f.offset, f.limit), clientTable)
		}})
}

// pageOf is items[offset:offset+limit], within bounds.
func pageOf[T any](items []T, offset, limit int64) []T {
	if offset >= int64(len(items)) {
		return nil
	}
	items = items[offset:]
	if limit < int64(len(items)) {
		items = items[:limit]
	}
	return items
}

func (rc *remoteConfig) clientRegister(user *string, hasUser func() error) *cobra.Command {
	var hostname, description string
	return rc.leaf(leaf{use: "register CLIENT_ID --user USER", short: "Register a client for a user", args: []string{"CLIENT_ID"},
		example: "  keyward clients register proj_backup01 --user user_42 --hostname backup01.example.org --description \"nightly backups\"",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&hostname, "hostname", "", "the client's host name")
			fs.StringVar(&description, "description", "", "what the client is")
		},
		check: hasUser,
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			info := map[string]any{"client_id": args[0]}
			if hostname != "" {
				info["hostname"] = hostname
			}
			if description != "" {
				info["description"] = description
			}
			body, err := json.Marshal(info)
			if err != nil {
				return err
			}
			bc, err := c.CreateBackupClient(cmd.Context(), *user, body)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), bc)
			}
			return rc.done(cmd, "registered "+bc.ClientID, nil)
		}})
}

func (rc *remoteConfig) clientGet(user *string, hasUser func() error) *cobra.Command {
	return rc.leaf(leaf{use: "get CLIENT_ID --user USER", short: "Show a registered client", args: []string{"CLIENT_ID"},
		example: "  keyward clients get proj_backup01 --user user_42", check: hasUser,
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			bc, err := c.GetBackupClient(cmd.Context(), *user, args[0])
			if err != nil {
				return err
			}
			return show(rc, cmd, bc, clientTable)
		}})
}

func (rc *remoteConfig) clientDelete(user *string, hasUser func() error) *cobra.Command {
	return rc.leaf(leaf{use: "delete CLIENT_ID --user USER", short: "Delete a registered client", args: []string{"CLIENT_ID"},
		example: "  keyward clients delete proj_backup01 --user user_42", check: hasUser,
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			if err := c.DeleteBackupClient(cmd.Context(), *user, args[0]); err != nil {
				return err
			}
			return rc.done(cmd, "deleted "+args[0], map[string]any{"client_id": args[0], "deleted": true})
		}})
}

func clientTable(cmd *cobra.Command, clients []client.BackupClient) *table {
	t := newTable(cmd.OutOrStdout(), "CLIENT_ID", "HOSTNAME", "DESCRIPTION", "USER", "UUID")
	for _, bc := range clients {
		var info struct {
			Hostname    string `json:"hostname"`
			Description string `json:"description"`
			UUID        string `json:"uuid"`
		}
		_ = json.Unmarshal(bc.Client, &info) // a client-info the server stored; missing fields print as "-"
		t.row(bc.ClientID, info.Hostname, info.Description, bc.UserID, info.UUID)
	}
	return t
}

// matchPair is one key=value of --match or --match-not.
type matchPair struct {
	key  string
	want any // a decoded JSON value
}

// matchPairs turns k=v (a string value) or k:=JSON (a JSON value) into
// pairs.
func matchPairs(flag string, in []string) ([]matchPair, error) {
	out := make([]matchPair, 0, len(in))
	for _, s := range in {
		var p matchPair
		if k, v, ok := strings.Cut(s, ":="); ok && !strings.Contains(k, "=") {
			if json.Unmarshal([]byte(v), &p.want) != nil {
				return nil, usageErrorf("%s %q: the value after := must be JSON", flag, s)
			}
			p.key = k
		} else if k, v, ok := strings.Cut(s, "="); ok {
			p.key, p.want = k, v
		} else {
			return nil, usageErrorf("%s %q: want key=value (or key:=JSON)", flag, s)
		}
		if p.key == "" {
			return nil, usageErrorf("%s %q: the key is empty", flag, s)
		}
		out = append(out, p)
	}
	return out, nil
}

// clientFilter is Freezer's client search: a client matches every pair in
// match and no pair in matchNot. A key compares for equality wherever it
// occurs in the entry {"client": {…}, "user_id": …} (nested objects
// included; an array matches when one of its items is equal); the key
// "_all" matches a case-insensitive substring of any text value.
type clientFilter struct {
	match, matchNot []matchPair
}

// apply keeps the clients that match, in order.
func (f clientFilter) apply(clients []client.BackupClient) ([]client.BackupClient, error) {
	if len(f.match) == 0 && len(f.matchNot) == 0 {
		return clients, nil
	}
	var kept []client.BackupClient
	for _, bc := range clients {
		entry, err := searchEntry(bc)
		if err != nil {
			return nil, err
		}
		if f.matches(entry) {
			kept = append(kept, bc)
		}
	}
	return kept, nil
}

// searchEntry is bc as Freezer's ClientEntry, decoded: what the search
// looks into.
func searchEntry(bc client.BackupClient) (any, error) {
	raw, err := json.Marshal(struct {
		Client json.RawMessage `json:"client"`
		UserID string          `json:"user_id"`
	}{bc.Client, bc.UserID})
	if err != nil {
		return nil, err
	}
	var entry any
	err = json.Unmarshal(raw, &entry)
	return entry, err
}

func (f clientFilter) matches(entry any) bool {
	for _, p := range f.match {
		if !p.matches(entry) {
			return false
		}
	}
	for _, p := range f.matchNot {
		if p.matches(entry) {
			return false
		}
	}
	return true
}

func (p matchPair) matches(entry any) bool {
	return freezer.PairMatches(entry, p.key, p.want)
}
