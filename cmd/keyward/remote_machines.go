package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// Machines and M2M tokens on a running server, through the SDK.

func machineTable(cmd *cobra.Command, ms []client.Machine) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "NAME", "DEFAULT_TOKEN_TTL", "SCOPED_MACHINES", "CREATED")
	for _, m := range ms {
		scoped := make([]string, len(m.ScopedMachines))
		for i, s := range m.ScopedMachines {
			scoped[i] = s.ID
		}
		t.row(m.ID, m.Name, strconv.FormatInt(m.DefaultTokenTTL, 10), joinOr(scoped, ""), rfc(m.CreatedAt))
	}
	return t
}

// showMachine prints a machine, and its secret key when the answer holds
// one (a create).
func (rc *remoteConfig) showMachine(cmd *cobra.Command, m client.Machine, err error) error {
	if err != nil || rc.json() {
		return printOr(cmd, m, err)
	}
	if err := machineTable(cmd, []client.Machine{m}).flush(); err != nil {
		return err
	}
	if m.SecretKey != "" {
		printSecret(cmd.OutOrStdout(), "secret key", m.SecretKey, "the machine authenticates with this key; keep it secret")
	}
	return nil
}

// showSecretKey prints a machine's secret key with a note.
func (rc *remoteConfig) showSecretKey(cmd *cobra.Command, k client.MachineSecretKey, err error, note string) error {
	if err != nil || rc.json() {
		return printOr(cmd, k, err)
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "secret key: %s\n(%s)\n", k.SecretKey, note)
	return err
}

// changed reads an int64 flag only when it was given.
func changed(fs *pflag.FlagSet, name string, v int64) *int64 {
	if !fs.Changed(name) {
		return nil
	}
	return &v
}

func newMachinesCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "machines",
		Aliases: []string{"machine"},
		Short:   "Manage machines (service identities) on a running server",
		Example: "  keyward machines list\n  keyward machines create billing-api --ttl 600",
	}
	secret := rc.machineSecretCommands()
	cmd.AddCommand(rc.machineList(), rc.machineCreate(), rc.machineUpdate(), secret[0], secret[1],
		rc.leaf(leaf{use: "get MACHINE_ID", short: "Show a machine and the machines it is scoped to", example: "  keyward machines get mch_…",
			args: []string{"MACHINE_ID"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				m, err := c.GetMachine(cmd.Context(), args[0])
				return rc.showMachine(cmd, m, err)
			}}),
		rc.leaf(leaf{use: "delete MACHINE_ID", short: "Delete a machine; its keys stop working and its opaque tokens are revoked",
			example: "  keyward machines delete mch_…", args: []string{"MACHINE_ID"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				return rc.deleted(cmd, args[0], c.DeleteMachine(cmd.Context(), args[0]))
			}}),
		rc.machineScopeCommand(),
	)
	return cmd
}

func (rc *remoteConfig) machineList() *cobra.Command {
	var q client.MachineQuery
	return rc.leaf(leaf{use: "list", short: "List machines, newest first", example: "  keyward machines list --query worker --order-by name\n  keyward machines list -o json",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&q.Query, "query", "", "search by id or part of a name")
			fs.StringVar(&q.OrderBy, "order-by", "", "order: name, -name, created_at or -created_at")
			fs.IntVar(&q.Limit, "limit", 0, "page size (1..100; default: every page)")
			fs.StringVar(&q.Cursor, "cursor", "", "the next_cursor of the previous page")
		},
		run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
			if q.Limit > 0 || q.Cursor != "" { // one page, as asked
				page, err := c.ListMachines(cmd.Context(), q)
				if err != nil || rc.json() {
					return printOr(cmd, page, err)
				}
				return machineTable(cmd, page.Data).flush()
			}
			all, err := client.All(cmd.Context(), func(ctx context.Context, cursor string) (client.CursorPage[client.Machine], error) {
				q.Limit, q.Cursor = 100, cursor
				return c.ListMachines(ctx, q)
			})
			return showAllOr(rc, cmd, all, err, machineTable)
		}})
}

func (rc *remoteConfig) machineCreate() *cobra.Command {
	var in client.MachineParams
	var ttl int64
	var fs *pflag.FlagSet
	return rc.leaf(leaf{use: "create NAME", short: "Create a machine and print its secret key", args: []string{"NAME"},
		example: "  keyward machines create billing-api\n  keyward machines create invoice-worker --ttl 600 --scope mch_API",
		flags: func(f *pflag.FlagSet) {
			fs = f
			f.StringArrayVar(&in.ScopedMachines, "scope", nil, "a machine id this machine may call (repeatable)")
			f.Int64Var(&ttl, "ttl", 0, "default M2M token lifetime in seconds")
		},
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			in.Name, in.DefaultTokenTTL = args[0], changed(fs, "ttl", ttl)
			m, err := c.CreateMachine(cmd.Context(), in)
			return rc.showMachine(cmd, m, err)
		}})
}

func (rc *remoteConfig) machineUpdate() *cobra.Command {
	var name string
	var ttl int64
	var fs *pflag.FlagSet
	return rc.leaf(leaf{use: "update MACHINE_ID", short: "Rename a machine or change its default token lifetime", args: []string{"MACHINE_ID"},
		example: "  keyward machines update mch_… --name invoices\n  keyward machines update mch_… --ttl 900",
		flags: func(f *pflag.FlagSet) {
			fs = f
			f.StringVar(&name, "name", "", "the new name")
			f.Int64Var(&ttl, "ttl", 0, "the new default M2M token lifetime in seconds")
		},
		check: func() error {
			if !fs.Changed("name") && !fs.Changed("ttl") {
				return usageErrorf("nothing to change: pass --name and/or --ttl")
			}
			return nil
		},
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			m, err := c.UpdateMachine(cmd.Context(), args[0], client.MachineParams{Name: name, DefaultTokenTTL: changed(fs, "ttl", ttl)})
			return rc.showMachine(cmd, m, err)
		}})
}

// machineSecretCommands are secret (read the key) and rotate.
func (rc *remoteConfig) machineSecretCommands() [2]*cobra.Command {
	var previousTTL int64
	var fs *pflag.FlagSet
	secret := rc.leaf(leaf{use: "secret MACHINE_ID", short: "Print a machine's current secret key", args: []string{"MACHINE_ID"},
		example: "  keyward machines secret mch_…\n  export KEYWARD_MACHINE_KEY=$(keyward machines secret mch_… -o json | jq -r .secret_key)",
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			k, err := c.MachineSecretKey(cmd.Context(), args[0])
			return rc.showSecretKey(cmd, k, err, "keep it secret")
		}})
	rotate := rc.leaf(leaf{use: "rotate MACHINE_ID --previous-ttl SECONDS", short: "Give a machine a new secret key; the old one works for --previous-ttl seconds",
		example: "  keyward machines rotate mch_… --previous-ttl 300\n  keyward machines rotate mch_… --previous-ttl 0 -o json", args: []string{"MACHINE_ID"},
		flags: func(f *pflag.FlagSet) {
			fs = f
			f.Int64Var(&previousTTL, "previous-ttl", 0, "seconds the previous key keeps authenticating (required)")
		},
		check: func() error {
			if !fs.Changed("previous-ttl") {
				return usageErrorf("--previous-ttl is required (seconds the old key keeps working; 0 ends it at once)")
			}
			return nil
		},
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			k, err := c.RotateMachineSecretKey(cmd.Context(), args[0], previousTTL)
			return rc.showSecretKey(cmd, k, err, fmt.Sprintf("the new key; the previous one stops working in %d s", previousTTL))
		}})
	rotate.Long = "Give a machine a new secret key and print it. The key that was current keeps\n" +
		"authenticating for --previous-ttl seconds (0..28800; 0 ends it at once)."
	return [2]*cobra.Command{secret, rotate}
}

func (rc *remoteConfig) machineScopeCommand() *cobra.Command {
	scope := &cobra.Command{
		Use:     "scope",
		Short:   "Let one machine call another, or stop it",
		Example: "  keyward machines scope add mch_WORKER mch_API\n  keyward machines scope remove mch_WORKER mch_API",
	}
	ids := []string{"FROM_MACHINE_ID", "TO_MACHINE_ID"}
	scope.AddCommand(
		rc.leaf(leaf{use: "add FROM_MACHINE_ID TO_MACHINE_ID", short: "Let FROM call TO (its M2M tokens will carry TO)",
			example: "  keyward machines scope add mch_WORKER mch_API", args: ids,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				s, err := c.AddMachineScope(cmd.Context(), args[0], args[1])
				if err != nil || rc.json() {
					return printOr(cmd, s, err)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s may now call %s\n", args[0], args[1])
				return err
			}}),
		rc.leaf(leaf{use: "remove FROM_MACHINE_ID TO_MACHINE_ID", short: "Stop FROM calling TO",
			example: "  keyward machines scope remove mch_WORKER mch_API", args: ids,
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				if err := c.RemoveMachineScope(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				return rc.done(cmd, fmt.Sprintf("%s may no longer call %s", args[0], args[1]),
					map[string]any{"from_machine_id": args[0], "to_machine_id": args[1], "deleted": true})
			}}),
	)
	return scope
}

func m2mTable(cmd *cobra.Command, toks []client.M2MToken) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "SUBJECT", "SCOPES", "STATUS", "EXPIRES", "LAST_USED", "CREATED")
	for _, tok := range toks {
		status := "active"
		switch {
		case tok.Revoked:
			status = "revoked"
			if tok.RevocationReason != nil && *tok.RevocationReason != "" {
				status += " (" + *tok.RevocationReason + ")"
			}
		case tok.Expired:
			status = "expired"
		}
		t.row(tok.ID, tok.MachineID, joinOr(tok.Scopes, ""), status, timePtr(tok.ExpiresAt), timePtr(tok.LastUsedAt), rfc(tok.CreatedAt))
	}
	return t
}

// m2mKeys picks the credentials of the m2m commands: the machine key
// (flag or environment) to mint; the admin key, or else the machine key
// (which sees only its own tokens), to list and revoke.
type m2mKeys struct {
	rc   *remoteConfig
	flag string
}

func (k *m2mKeys) machine(cmd *cobra.Command) (string, error) {
	if cmd.Flags().Changed("machine-key") {
		return strings.TrimSpace(k.flag), nil
	}
	v, err := envSecretValue("KEYWARD_MACHINE_KEY")
	if err != nil {
		return "", &cliError{code: exitUsage, err: err}
	}
	return v, nil
}

func (k *m2mKeys) minter(cmd *cobra.Command) (string, error) {
	v, err := k.machine(cmd)
	if err == nil && v == "" {
		err = usageErrorf("a machine key is required: pass --machine-key or set KEYWARD_MACHINE_KEY (or KEYWARD_MACHINE_KEY_FILE)")
	}
	return v, err
}

func (k *m2mKeys) lister(cmd *cobra.Command) (string, error) {
	if k.rc.adminKey != "" && !cmd.Flags().Changed("machine-key") {
		return k.rc.adminKey, nil
	}
	v, err := k.machine(cmd)
	if err == nil && v == "" {
		err = usageErrorf("an admin key (--admin-key, KEYWARD_ADMIN_KEY) or a machine key (--machine-key, KEYWARD_MACHINE_KEY) is required")
	}
	return v, err
}

func newM2MCommand(rc *remoteConfig) *cobra.Command {
	keys := &m2mKeys{rc: rc}
	cmd := &cobra.Command{
		Use:   "m2m",
		Short: "Mint, list and revoke machine-to-machine tokens on a running server",
		Example: "  KEYWARD_MACHINE_KEY=ak_… keyward m2m create --ttl 300\n" +
			"  keyward m2m list --subject mch_…\n  keyward m2m revoke mt_… --reason leaked",
	}
	cmd.PersistentFlags().StringVar(&keys.flag, "machine-key", "", "a machine's secret key (env KEYWARD_MACHINE_KEY, or a file named by KEYWARD_MACHINE_KEY_FILE)")
	var reason string
	cmd.AddCommand(rc.m2mCreate(keys), rc.m2mList(keys),
		rc.leaf(leaf{use: "revoke TOKEN_ID", short: "Revoke an M2M token", example: "  keyward m2m revoke mt_… --reason leaked",
			args: []string{"TOKEN_ID"}, key: keys.lister,
			flags: func(fs *pflag.FlagSet) { fs.StringVar(&reason, "reason", "", "why (kept with the token)") },
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				tok, err := c.RevokeM2MToken(cmd.Context(), args[0], reason)
				return showOr(rc, cmd, tok, err, m2mTable)
			}}))
	return cmd
}

func (rc *remoteConfig) m2mCreate(keys *m2mKeys) *cobra.Command {
	var jwt bool
	var ttl float64
	var claims string
	var fs *pflag.FlagSet
	return rc.leaf(leaf{use: "create", short: "Mint an M2M token with a machine's secret key and print it once", key: keys.minter,
		example: "  keyward m2m create --machine-key ak_… --ttl 300\n" +
			"  KEYWARD_MACHINE_KEY=ak_… keyward m2m create --jwt --claims '{\"job\":\"nightly\"}'",
		flags: func(f *pflag.FlagSet) {
			fs = f
			f.BoolVar(&jwt, "jwt", false, "mint a JWT instead of an opaque token")
			f.Float64Var(&ttl, "ttl", 0, "seconds until expiration (default: the machine's default_token_ttl)")
			f.StringVar(&claims, "claims", "", "custom claims, a JSON object")
		},
		check: func() error {
			var obj map[string]any
			if claims != "" && (json.Unmarshal([]byte(claims), &obj) != nil || obj == nil) {
				return usageErrorf("--claims must be a JSON object")
			}
			return nil
		},
		run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
			in := client.M2MTokenParams{}
			if jwt {
				in.Format = "jwt"
			}
			if fs.Changed("ttl") {
				in.SecondsUntilExpiration = &ttl
			}
			if claims != "" {
				in.Claims = json.RawMessage(claims)
			}
			tok, err := c.CreateM2MToken(cmd.Context(), in)
			if err != nil || rc.json() {
				return printOr(cmd, tok, err)
			}
			if err := m2mTable(cmd, []client.M2MToken{tok}).flush(); err != nil {
				return err
			}
			printSecret(cmd.OutOrStdout(), "token", tok.Token, "shown once; keyward cannot show it again")
			return nil
		}})
}

func (rc *remoteConfig) m2mList(keys *m2mKeys) *cobra.Command {
	var subject string
	var revoked, expired bool
	var q client.M2MTokenQuery
	var fs *pflag.FlagSet
	var meta metaFilter
	return rc.leaf(leaf{use: "list --subject MACHINE_ID", short: "List a machine's tokens (live ones unless --revoked or --expired)", key: keys.lister,
		example: "  keyward m2m list --subject mch_…\n  keyward m2m list --subject mch_… --revoked -o json\n  keyward m2m list --subject mch_… --meta plan=pro",
		flags: func(f *pflag.FlagSet) {
			fs = f
			meta.flags(f)
			f.StringVar(&subject, "subject", "", "the machine whose tokens to list (required)")
			f.BoolVar(&revoked, "revoked", false, "list revoked tokens")
			f.BoolVar(&expired, "expired", false, "list expired tokens")
			f.IntVar(&q.Limit, "limit", 0, "page size (1..100; default: every page)")
			f.StringVar(&q.Cursor, "cursor", "", "the next_cursor of the previous page")
		},
		check: func() error { return firstError(required("--subject", subject), meta.check()) },
		run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
			q.Meta = meta.m
			if fs.Changed("revoked") {
				q.Revoked = &revoked
			}
			if fs.Changed("expired") {
				q.Expired = &expired
			}
			if q.Limit > 0 || q.Cursor != "" {
				page, err := c.ListM2MTokens(cmd.Context(), subject, q)
				if err != nil || rc.json() {
					return printOr(cmd, page, err)
				}
				return m2mTable(cmd, page.Data).flush()
			}
			all, err := client.All(cmd.Context(), func(ctx context.Context, cursor string) (client.CursorPage[client.M2MToken], error) {
				q.Limit, q.Cursor = 100, cursor
				return c.ListM2MTokens(ctx, subject, q)
			})
			return showAllOr(rc, cmd, all, err, m2mTable)
		}})
}
