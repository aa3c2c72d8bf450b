package main

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// Usage analytics on a running server, through the SDK.

func newAnalyticsCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "analytics",
		Short:   "Read usage analytics (verifications per credential, outcome and time) from a running server",
		Example: "  keyward analytics verifications --credential ak_… --granularity hour",
	}
	cmd.AddCommand(rc.analyticsVerifications())
	return cmd
}

func (rc *remoteConfig) analyticsVerifications() *cobra.Command {
	var q client.VerificationQuery
	var from, to string
	return rc.leaf(leaf{use: "verifications", short: "Verifications per time bucket and outcome (needs analytics:read)",
		example: "  keyward analytics verifications\n" +
			"  keyward analytics verifications --credential mt_… --outcome revoked --granularity day --from 2026-01-01T00:00:00Z -o json\n" +
			"  keyward analytics verifications --identity idt_…",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&q.CredentialID, "credential", "", "only this credential's verifications (any kind)")
			fs.StringVar(&q.IdentityID, "identity", "", "only the verifications of this identity's credentials, summed (not with --credential)")
			fs.StringVar(&q.Outcome, "outcome", "", "only this outcome (valid, not_found, expired, revoked, ip_not_allowed, insufficient_scope, rate_limited, insufficient_permissions, usage_exceeded)")
			fs.StringVar(&from, "from", "", "start of the range (RFC 3339); default 24 h before --to")
			fs.StringVar(&to, "to", "", "end of the range (RFC 3339, exclusive); default now")
			fs.StringVar(&q.Granularity, "granularity", "hour", "bucket width: minute, hour or day")
		},
		check: func() error {
			for _, f := range []struct {
				name, val string
				dst       *time.Time
			}{{"from", from, &q.From}, {"to", to, &q.To}} {
				if f.val == "" {
					continue
				}
				t, err := time.Parse(time.RFC3339, f.val)
				if err != nil {
					return usageErrorf("--%s must be an RFC 3339 time, e.g. 2026-01-02T03:00:00Z", f.name)
				}
				*f.dst = t
			}
			return nil
		},
		run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
			s, err := c.Verifications(cmd.Context(), q)
			if err != nil || rc.json() {
				return printOr(cmd, s, err)
			}
			t := newTable(cmd.OutOrStdout(), "START", "OUTCOME", "COUNT")
			for _, b := range s.Buckets {
				t.row(rfc(b.Start), b.Outcome, strconv.FormatInt(b.Count, 10))
			}
			return t.flush()
		}})
}
