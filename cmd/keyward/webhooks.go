package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/webhooksend"
)

// webhookConfig is the dispatcher's part of serve's flags.
type webhookConfig struct {
	allowPrivate bool
	interval     time.Duration
	// The notices' thresholds (authority/notices.go).
	expiring   thresholds
	unused     retention
	creditsLow int64
}

// thresholds is a flag value: a comma-separated list of durations (7d,1d;
// see retention), or off.
type thresholds []time.Duration

func (t *thresholds) String() string {
	if len(*t) == 0 {
		return "off"
	}
	parts := make([]string, len(*t))
	for i, d := range *t {
		parts[i] = authority.FormatNoticeDuration(d)
	}
	return strings.Join(parts, ",")
}

func (t *thresholds) Set(s string) error {
	var out thresholds
	for _, part := range strings.Split(s, ",") {
		var r retention
		if err := r.Set(part); err != nil {
			return err
		}
		if r != 0 {
			out = append(out, time.Duration(r))
		}
	}
	*t = out
	return nil
}

func (t *thresholds) Type() string { return "durations" }

// webhookPollInterval is how often the dispatcher looks for due
// deliveries when the last round found few.
const webhookPollInterval = time.Second

func (c *webhookConfig) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&c.allowPrivate, "webhook-allow-private", false, "let webhook deliveries reach loopback, private, link-local and other reserved addresses (refused by default, against SSRF)")
	c.interval = webhookPollInterval
	c.expiring = thresholds{7 * 24 * time.Hour, 24 * time.Hour}
	cmd.Flags().Var(&c.expiring, "notify-expiring", "send credential.expiring this long before a credential expires, once per threshold (comma-separated: 7d,1d; off)")
	c.unused = retention(90 * 24 * time.Hour)
	cmd.Flags().Var(&c.unused, "notify-unused", "send credential.unused when a credential has not been verified for this long (90d; off)")
	cmd.Flags().Int64Var(&c.creditsLow, "notify-credits-low", 0, "send credential.credits_low when credits without a refill fall below this many (with a refill: below 10% of its amount)")
}

// startWebhookDispatcher delivers the webhook outbox in the background;
// every node runs one (on PostgreSQL they share the work by leasing rows).
// Beside it runs the notice scanner (expiring, expired, unused; every
// node, the credential_notices table keeps them from sending one twice).
// stop waits for the rounds in flight.
func (r *serveRun) startWebhookDispatcher(ctx context.Context) (stop func()) {
	sender := webhooksend.New(webhooksend.Options{AllowPrivate: r.cfg.webhooks.allowPrivate, UserAgent: "keyward-webhooks/" + versionString()})
	dCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.n.auth.RunWebhookDispatcher(dCtx, sender, r.cfg.webhooks.interval, func(err error) {
			r.log.Warn("webhook dispatcher", "error", err.Error())
		})
	}()
	r.n.auth.SetNotices(authority.NoticeConfig{Expiring: r.cfg.webhooks.expiring, Unused: time.Duration(r.cfg.webhooks.unused),
		CreditsLow: r.cfg.webhooks.creditsLow})
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		r.n.auth.RunNoticeScanner(dCtx, authority.NoticeScanInterval, func(err error) {
			r.log.Warn("notice scanner", "error", err.Error())
		})
	}()
	return func() { cancel(); <-done; <-scanDone }
}
