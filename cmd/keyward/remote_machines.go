package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// Machines and M2M tokens, over the Clerk surface (/clerk/v1).

const clerkPrefix = "/clerk/v1"

type machineOut struct {
	ID              string       `json:"id"`
	Name            string       `json:"name"`
	CreatedAt       int64        `json:"created_at"`
	DefaultTokenTTL int64        `json:"default_token_ttl"`
	ScopedMachines  []machineOut `json:"scoped_machines"`
	SecretKey       string       `json:"secret_key"`
}

func machineTable(cmd *cobra.Command, ms []machineOut) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "NAME", "DEFAULT_TOKEN_TTL", "SCOPED_MACHINES", "CREATED")
	for _, m := range ms {
		scoped := make([]string, len(m.ScopedMachines))
		for i, s := range m.ScopedMachines {
			scoped[i] = s.ID
		}
		t.row(m.ID, m.Name, strconv.FormatInt(m.DefaultTokenTTL, 10), joinOr(scoped, ""), millisTime(m.CreatedAt))
	}
	return t
}

func (rc *remoteConfig) clerk(cmd *cobra.Command, method, path string, body any) ([]byte, error) {
	if err := rc.needAdminKey(); err != nil {
		return nil, err
	}
	return rc.do(cmd.Context(), call{method: method, path: clerkPrefix + path, scheme: "Bearer", key: rc.adminKey, body: body}, clerkError)
}

// printMachine prints one machine object (or the raw JSON).
func (rc *remoteConfig) printMachine(cmd *cobra.Command, raw []byte) error {
	if rc.json() {
		return printJSON(cmd.OutOrStdout(), raw)
	}
	var m machineOut
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	if err := machineTable(cmd, []machineOut{m}).flush(); err != nil {
		return err
	}
	if m.SecretKey != "" {
		printSecret(cmd.OutOrStdout(), "secret key", m.SecretKey, "the machine authenticates with this key; keep it secret")
	}
	return nil
}

func newMachinesCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "machines",
		Aliases: []string{"machine"},
		Short:   "Manage machines (service identities) on a running server",
		Example: "  keyward machines list\n  keyward machines create billing-api --ttl 600",
	}

	var query, orderBy string
	var limit, offset int64
	list := &cobra.Command{
		Use:     "list",
		Short:   "List machines, newest first",
		Example: "  keyward machines list --query worker --order-by name\n  keyward machines list -o json",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := url.Values{}
			if query != "" {
				v.Set("query", query)
			}
			if orderBy != "" {
				v.Set("order_by", orderBy)
			}
			if cmd.Flags().Changed("limit") {
				v.Set("limit", strconv.FormatInt(limit, 10))
			}
			if cmd.Flags().Changed("offset") {
				v.Set("offset", strconv.FormatInt(offset, 10))
			}
			path := "/machines"
			if len(v) > 0 {
				path += "?" + v.Encode()
			}
			raw, err := rc.clerk(cmd, "GET", path, nil)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var out struct {
				Data       []machineOut `json:"data"`
				TotalCount int          `json:"total_count"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			return machineTable(cmd, out.Data).flush()
		},
	}
	list.Flags().StringVar(&query, "query", "", "search by id or part of a name")
	list.Flags().StringVar(&orderBy, "order-by", "", "order: name, -name, created_at or -created_at")
	list.Flags().Int64Var(&limit, "limit", 0, "page size")
	list.Flags().Int64Var(&offset, "offset", 0, "page offset")

	var scopes []string
	var ttl int64
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a machine and print its secret key",
		Example: "  keyward machines create billing-api\n" +
			"  keyward machines create invoice-worker --ttl 600 --scope mch_API",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "NAME"); err != nil {
				return err
			}
			body := map[string]any{"name": args[0]}
			if len(scopes) > 0 {
				body["scoped_machines"] = scopes
			}
			if cmd.Flags().Changed("ttl") {
				body["default_token_ttl"] = ttl
			}
			raw, err := rc.clerk(cmd, "POST", "/machines", body)
			if err != nil {
				return err
			}
			return rc.printMachine(cmd, raw)
		},
	}
	create.Flags().StringArrayVar(&scopes, "scope", nil, "a machine id this machine may call (repeatable)")
	create.Flags().Int64Var(&ttl, "ttl", 0, "default M2M token lifetime in seconds")

	get := &cobra.Command{
		Use:     "get MACHINE_ID",
		Short:   "Show a machine and the machines it is scoped to",
		Example: "  keyward machines get mch_…",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "MACHINE_ID"); err != nil {
				return err
			}
			raw, err := rc.clerk(cmd, "GET", "/machines/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			return rc.printMachine(cmd, raw)
		},
	}

	var newName string
	var newTTL int64
	update := &cobra.Command{
		Use:     "update MACHINE_ID",
		Short:   "Rename a machine or change its default token lifetime",
		Example: "  keyward machines update mch_… --name invoices\n  keyward machines update mch_… --ttl 900",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "MACHINE_ID"); err != nil {
				return err
			}
			body := map[string]any{}
			if cmd.Flags().Changed("name") {
				body["name"] = newName
			}
			if cmd.Flags().Changed("ttl") {
				body["default_token_ttl"] = newTTL
			}
			if len(body) == 0 {
				return usageErrorf("nothing to change: pass --name and/or --ttl")
			}
			raw, err := rc.clerk(cmd, "PATCH", "/machines/"+url.PathEscape(args[0]), body)
			if err != nil {
				return err
			}
			return rc.printMachine(cmd, raw)
		},
	}
	update.Flags().StringVar(&newName, "name", "", "the new name")
	update.Flags().Int64Var(&newTTL, "ttl", 0, "the new default M2M token lifetime in seconds")

	del := &cobra.Command{
		Use:     "delete MACHINE_ID",
		Short:   "Delete a machine; its keys stop working and its opaque tokens are revoked",
		Example: "  keyward machines delete mch_…",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "MACHINE_ID"); err != nil {
				return err
			}
			raw, err := rc.clerk(cmd, "DELETE", "/machines/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return err
		},
	}

	printKey := func(cmd *cobra.Command, raw []byte, note string) error {
		if rc.json() {
			return printJSON(cmd.OutOrStdout(), raw)
		}
		var out struct {
			Secret string `json:"secret"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "secret key: %s\n(%s)\n", out.Secret, note)
		return err
	}
	secret := &cobra.Command{
		Use:     "secret MACHINE_ID",
		Short:   "Print a machine's current secret key",
		Example: "  keyward machines secret mch_…\n  export KEYWARD_MACHINE_KEY=$(keyward machines secret mch_… -o json | jq -r .secret)",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "MACHINE_ID"); err != nil {
				return err
			}
			raw, err := rc.clerk(cmd, "GET", "/machines/"+url.PathEscape(args[0])+"/secret_key", nil)
			if err != nil {
				return err
			}
			return printKey(cmd, raw, "keep it secret")
		},
	}

	var previousTTL int64
	rotate := &cobra.Command{
		Use:   "rotate MACHINE_ID --previous-ttl SECONDS",
		Short: "Give a machine a new secret key; the old one works for --previous-ttl seconds",
		Long: "Give a machine a new secret key and print it. The key that was current keeps\n" +
			"authenticating for --previous-ttl seconds (0..28800; 0 ends it at once).",
		Example: "  keyward machines rotate mch_… --previous-ttl 300\n  keyward machines rotate mch_… --previous-ttl 0 -o json",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "MACHINE_ID"); err != nil {
				return err
			}
			if !cmd.Flags().Changed("previous-ttl") {
				return usageErrorf("--previous-ttl is required (seconds the old key keeps working; 0 ends it at once)")
			}
			raw, err := rc.clerk(cmd, "POST", "/machines/"+url.PathEscape(args[0])+"/secret_key/rotate",
				map[string]any{"previous_token_ttl": previousTTL})
			if err != nil {
				return err
			}
			return printKey(cmd, raw, fmt.Sprintf("the new key; the previous one stops working in %d s", previousTTL))
		},
	}
	rotate.Flags().Int64Var(&previousTTL, "previous-ttl", 0, "seconds the previous key keeps authenticating (required)")

	scope := &cobra.Command{
		Use:     "scope",
		Short:   "Let one machine call another, or stop it",
		Example: "  keyward machines scope add mch_WORKER mch_API\n  keyward machines scope remove mch_WORKER mch_API",
	}
	scope.AddCommand(&cobra.Command{
		Use:     "add FROM_MACHINE_ID TO_MACHINE_ID",
		Short:   "Let FROM call TO (its M2M tokens will carry TO)",
		Example: "  keyward machines scope add mch_WORKER mch_API",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "FROM_MACHINE_ID", "TO_MACHINE_ID"); err != nil {
				return err
			}
			raw, err := rc.clerk(cmd, "POST", "/machines/"+url.PathEscape(args[0])+"/scopes", map[string]any{"to_machine_id": args[1]})
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s may now call %s\n", args[0], args[1])
			return err
		},
	}, &cobra.Command{
		Use:     "remove FROM_MACHINE_ID TO_MACHINE_ID",
		Short:   "Stop FROM calling TO",
		Example: "  keyward machines scope remove mch_WORKER mch_API",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "FROM_MACHINE_ID", "TO_MACHINE_ID"); err != nil {
				return err
			}
			raw, err := rc.clerk(cmd, "DELETE", "/machines/"+url.PathEscape(args[0])+"/scopes/"+url.PathEscape(args[1]), nil)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s may no longer call %s\n", args[0], args[1])
			return err
		},
	})

	cmd.AddCommand(list, create, get, update, del, secret, rotate, scope)
	return cmd
}

type m2mOut struct {
	ID               string          `json:"id"`
	Subject          string          `json:"subject"`
	Claims           json.RawMessage `json:"claims"`
	Scopes           []string        `json:"scopes"`
	Token            string          `json:"token"`
	Revoked          bool            `json:"revoked"`
	RevocationReason *string         `json:"revocation_reason"`
	Expired          bool            `json:"expired"`
	Expiration       *int64          `json:"expiration"`
	LastUsedAt       *int64          `json:"last_used_at"`
	CreatedAt        int64           `json:"created_at"`
}

func m2mTable(cmd *cobra.Command, toks []m2mOut) *table {
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
		t.row(tok.ID, tok.Subject, joinOr(tok.Scopes, ""), status, millisPtr(tok.Expiration), millisPtr(tok.LastUsedAt), millisTime(tok.CreatedAt))
	}
	return t
}

func newM2MCommand(rc *remoteConfig) *cobra.Command {
	var machineKey string
	cmd := &cobra.Command{
		Use:   "m2m",
		Short: "Mint, list and revoke machine-to-machine tokens on a running server",
		Example: "  KEYWARD_MACHINE_KEY=ak_… keyward m2m create --ttl 300\n" +
			"  keyward m2m list --subject mch_…\n  keyward m2m revoke mt_… --reason leaked",
	}
	cmd.PersistentFlags().StringVar(&machineKey, "machine-key", "", "a machine's secret key (env KEYWARD_MACHINE_KEY, or a file named by KEYWARD_MACHINE_KEY_FILE)")

	// key returns the machine key, from the flag or the environment.
	key := func(cmd *cobra.Command) (string, error) {
		if cmd.Flags().Changed("machine-key") {
			return strings.TrimSpace(machineKey), nil
		}
		v, err := envSecretValue("KEYWARD_MACHINE_KEY")
		if err != nil {
			return "", &cliError{code: exitUsage, err: err}
		}
		return v, nil
	}
	// listKey is the admin key, or else the machine key (which sees only
	// its own tokens).
	listKey := func(cmd *cobra.Command) (string, error) {
		if rc.adminKey != "" && !cmd.Flags().Changed("machine-key") {
			return rc.adminKey, nil
		}
		k, err := key(cmd)
		if err == nil && k == "" {
			err = usageErrorf("an admin key (--admin-key, KEYWARD_ADMIN_KEY) or a machine key (--machine-key, KEYWARD_MACHINE_KEY) is required")
		}
		return k, err
	}

	var jwt bool
	var ttl float64
	var claims string
	create := &cobra.Command{
		Use:   "create",
		Short: "Mint an M2M token with a machine's secret key and print it once",
		Example: "  keyward m2m create --machine-key ak_… --ttl 300\n" +
			"  KEYWARD_MACHINE_KEY=ak_… keyward m2m create --jwt --claims '{\"job\":\"nightly\"}'",
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := key(cmd)
			if err != nil {
				return err
			}
			if k == "" {
				return usageErrorf("a machine key is required: pass --machine-key or set KEYWARD_MACHINE_KEY (or KEYWARD_MACHINE_KEY_FILE)")
			}
			body := map[string]any{}
			if jwt {
				body["token_format"] = "jwt"
			}
			if cmd.Flags().Changed("ttl") {
				body["seconds_until_expiration"] = ttl
			}
			if claims != "" {
				var obj map[string]any
				if err := json.Unmarshal([]byte(claims), &obj); err != nil || obj == nil {
					return usageErrorf("--claims must be a JSON object")
				}
				body["claims"] = json.RawMessage(claims)
			}
			raw, err := rc.do(cmd.Context(), call{method: "POST", path: clerkPrefix + "/m2m_tokens", scheme: "Bearer", key: k, body: body}, clerkError)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var tok m2mOut
			if err := json.Unmarshal(raw, &tok); err != nil {
				return err
			}
			if err := m2mTable(cmd, []m2mOut{tok}).flush(); err != nil {
				return err
			}
			printSecret(cmd.OutOrStdout(), "token", tok.Token, "shown once; keyward cannot show it again")
			return nil
		},
	}
	create.Flags().BoolVar(&jwt, "jwt", false, "mint a JWT instead of an opaque token")
	create.Flags().Float64Var(&ttl, "ttl", 0, "seconds until expiration (default: the machine's default_token_ttl)")
	create.Flags().StringVar(&claims, "claims", "", "custom claims, a JSON object")

	var subject string
	var revoked, expired bool
	var limit, offset int64
	list := &cobra.Command{
		Use:     "list --subject MACHINE_ID",
		Short:   "List a machine's tokens (live ones unless --revoked or --expired)",
		Example: "  keyward m2m list --subject mch_…\n  keyward m2m list --subject mch_… --revoked -o json",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if subject == "" {
				return usageErrorf("--subject is required")
			}
			k, err := listKey(cmd)
			if err != nil {
				return err
			}
			v := url.Values{"subject": {subject}}
			if cmd.Flags().Changed("revoked") {
				v.Set("revoked", strconv.FormatBool(revoked))
			}
			if cmd.Flags().Changed("expired") {
				v.Set("expired", strconv.FormatBool(expired))
			}
			if cmd.Flags().Changed("limit") {
				v.Set("limit", strconv.FormatInt(limit, 10))
			}
			if cmd.Flags().Changed("offset") {
				v.Set("offset", strconv.FormatInt(offset, 10))
			}
			raw, err := rc.do(cmd.Context(), call{method: "GET", path: clerkPrefix + "/m2m_tokens?" + v.Encode(), scheme: "Bearer", key: k}, clerkError)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var out struct {
				Tokens []m2mOut `json:"m2m_tokens"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			return m2mTable(cmd, out.Tokens).flush()
		},
	}
	list.Flags().StringVar(&subject, "subject", "", "the machine whose tokens to list (required)")
	list.Flags().BoolVar(&revoked, "revoked", false, "list revoked tokens")
	list.Flags().BoolVar(&expired, "expired", false, "list expired tokens")
	list.Flags().Int64Var(&limit, "limit", 0, "page size")
	list.Flags().Int64Var(&offset, "offset", 0, "page offset")

	var reason string
	revoke := &cobra.Command{
		Use:     "revoke TOKEN_ID",
		Short:   "Revoke an M2M token",
		Example: "  keyward m2m revoke mt_… --reason leaked",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "TOKEN_ID"); err != nil {
				return err
			}
			k, err := listKey(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if reason != "" {
				body["revocation_reason"] = reason
			}
			raw, err := rc.do(cmd.Context(), call{method: "POST", path: clerkPrefix + "/m2m_tokens/" + url.PathEscape(args[0]) + "/revoke", scheme: "Bearer", key: k, body: body}, clerkError)
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var tok m2mOut
			if err := json.Unmarshal(raw, &tok); err != nil {
				return err
			}
			return m2mTable(cmd, []m2mOut{tok}).flush()
		},
	}
	revoke.Flags().StringVar(&reason, "reason", "", "why (kept with the token)")

	cmd.AddCommand(create, list, revoke)
	return cmd
}
