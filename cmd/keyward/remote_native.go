package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/client"
)

// The scope catalogue, verification, the audit log and whoami, through the
// SDK.

func newScopesCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "scopes",
		Aliases: []string{"scope"},
		Short:   "Read or replace the PAT scope catalogue on a running server",
		Example: "  keyward scopes get\n  keyward scopes set read write billing:read",
	}
	show := func(cmd *cobra.Command, cat client.ScopeCatalogue) error {
		if rc.json() {
			return printJSON(cmd.OutOrStdout(), cat)
		}
		t := newTable(cmd.OutOrStdout(), "SCOPE", "BUILTIN")
		for _, s := range cat.Scopes {
			t.row(s, "no")
		}
		for _, s := range cat.Builtin {
			t.row(s, "yes")
		}
		return t.flush()
	}
	get := &cobra.Command{
		Use:     "get",
		Short:   "Show the scope catalogue",
		Example: "  keyward scopes get\n  keyward scopes get -o json",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			cat, err := c.Scopes(cmd.Context())
			if err != nil {
				return err
			}
			return show(cmd, cat)
		},
	}
	set := &cobra.Command{
		Use:     "set SCOPE...",
		Short:   "Replace the scope catalogue (the builtin scopes always remain)",
		Example: "  keyward scopes set read write billing:read",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nonEmpty(args, "SCOPE"); err != nil {
				return err
			}
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			cat, err := c.SetScopes(cmd.Context(), args)
			if err != nil {
				return err
			}
			return show(cmd, cat)
		},
	}
	cmd.AddCommand(get, set)
	return cmd
}

func newVerifyCommand(rc *remoteConfig) *cobra.Command {
	var clientIP, permissions string
	var scopes, limits []string
	var credits int64
	cmd := &cobra.Command{
		Use:   "verify TOKEN",
		Short: "Ask the server for its decision on a credential (exit 0 when valid, 6 when not)",
		Long: "Ask the server for its decision on any credential (POST /v1/verify) and print the\n" +
			"decision code: valid, not_found, expired, revoked, ip_not_allowed, insufficient_scope,\n" +
			"insufficient_permissions, rate_limited or usage_exceeded. The exit status is 0 for valid and 6 for every other decision.\n" +
			"Pass - as TOKEN to read it from standard input, keeping it out of the process list.",
		Example: "  keyward verify pat_… --scope read\n" +
			"  keyward verify mt_… --scope mch_API -o json\n" +
			"  printf %s \"$TOKEN\" | keyward verify - --client-ip 203.0.113.7",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := readToken(cmd, args[0])
			if err != nil {
				return err
			}
			req := client.VerifyRequest{Token: token, ClientIP: clientIP, RequiredScopes: scopes, Permissions: permissions}
			for _, l := range limits {
				name, cost, found := strings.Cut(l, ":")
				lc := client.LimitCost{Name: name, Cost: 1}
				if found {
					n, err := strconv.ParseInt(cost, 10, 64)
					if err != nil || name == "" {
						return usageErrorf("--ratelimit must be NAME or NAME:COST, got %q", l)
					}
					lc.Cost = n
				}
				req.RateLimits = append(req.RateLimits, lc)
			}
			if credits >= 0 {
				req.Credits = &client.CreditsCost{Cost: credits}
			}
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			res, err := c.Verify(cmd.Context(), req)
			if err != nil {
				return err
			}
			if err := rc.printDecision(cmd, res); err != nil {
				return err
			}
			if !res.Valid {
				return &cliError{code: exitNotValid, err: fmt.Errorf("the credential is not valid: %s", res.Code)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&clientIP, "client-ip", "", "the address the credential was presented from (checked against org tokens' allowlists)")
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "a scope the credential must hold (repeatable)")
	cmd.Flags().StringVar(&permissions, "permissions", "", "a permission query the credential must satisfy, e.g. 'dns.read AND (dns.write OR admin)'")
	cmd.Flags().StringArrayVar(&limits, "ratelimit", nil, "a named limit to apply, NAME or NAME:COST (repeatable; default: the auto_apply ones)")
	cmd.Flags().Int64Var(&credits, "credits", -1, "the credits the call takes (default 1 when the credential has credits; 0 reads them)")
	return cmd
}

// readToken is the TOKEN argument, or a line of standard input for "-".
func readToken(cmd *cobra.Command, arg string) (string, error) {
	token := arg
	if token == "-" {
		sc := bufio.NewScanner(cmd.InOrStdin())
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		if sc.Scan() {
			token = sc.Text()
		}
		if err := sc.Err(); err != nil {
			return "", usageErrorf("read the token from standard input: %v", err)
		}
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", usageErrorf("TOKEN must not be empty")
	}
	return token, nil
}

func (rc *remoteConfig) printDecision(cmd *cobra.Command, res client.VerifyResult) error {
	if rc.json() {
		return printJSON(cmd.OutOrStdout(), res)
	}
	expires := ""
	if res.ExpiresAt != nil {
		expires = rfc(*res.ExpiresAt)
	}
	t := newTable(cmd.OutOrStdout(), "CODE", "KIND", "ID", "SUBJECT", "SCOPES", "WORKSPACE", "EXPIRES")
	t.row(res.Code, res.Kind, res.ID, res.Subject, joinOr(res.Scopes, ""), res.WorkspaceID, expires)
	return t.flush()
}

func newAuditCommand(rc *remoteConfig) *cobra.Command {
	var q client.AuditQuery
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the instance's audit log, newest first",
		Example: "  keyward audit --limit 50\n" +
			"  keyward audit --action machine.secret_key.rotate --target mch_…\n" +
			"  keyward audit -o json | jq '.data[].action'",
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			out, err := c.AuditEvents(cmd.Context(), q)
			if err != nil {
				return err
			}
			if rc.json() {
				if out.Events == nil {
					out.Events = []client.AuditEvent{}
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			t := newTable(cmd.OutOrStdout(), "AT", "ACTION", "TARGET", "ACTOR", "OUTCOME", "REQUEST_ID")
			for _, e := range out.Events {
				t.row(rfc(e.At), e.Action, ref(e.Target), ref(e.Actor), e.Outcome, e.RequestID)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if n := len(out.Events); out.TotalCount > n+q.Offset {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d events; use --limit and --offset for more\n", n, out.TotalCount)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&q.Action, "action", "", "only events of this action, e.g. machine.create")
	cmd.Flags().StringVar(&q.TargetID, "target", "", "only events about this id")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "page size (default 20, at most 200)")
	cmd.Flags().IntVar(&q.Offset, "offset", 0, "page offset")
	return cmd
}

func ref(r client.AuditRef) string {
	switch {
	case r.Kind == "" && r.ID == "":
		return ""
	case r.ID == "":
		return r.Kind
	}
	return r.Kind + ":" + r.ID
}

func newWhoamiCommand(rc *remoteConfig) *cobra.Command {
	return &cobra.Command{
		Use:     "whoami",
		Short:   "Show who the admin key authenticates as",
		Example: "  keyward whoami --server https://keyward.internal\n  KEYWARD_ADMIN_KEY_FILE=/run/secrets/keyward keyward whoami -o json",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rc.sdk()
			if err != nil {
				return err
			}
			who, err := c.Caller(cmd.Context())
			if err != nil {
				return err
			}
			if rc.json() {
				return printJSON(cmd.OutOrStdout(), who)
			}
			t := newTable(cmd.OutOrStdout(), "KIND", "INSTANCE", "CREDENTIAL", "MACHINE", "SERVER")
			t.row(who.Kind, who.InstanceID, who.CredentialID, who.MachineID, rc.serverForDisplay())
			return t.flush()
		},
	}
}
