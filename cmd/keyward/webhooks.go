package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/webhooksend"
)

// webhookConfig is the dispatcher's part of serve's flags.
type webhookConfig struct {
	allowPrivate bool
	interval     time.Duration
}

// webhookPollInterval is how often the dispatcher looks for due
// deliveries when the last round found few.
const webhookPollInterval = time.Second

func (c *webhookConfig) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&c.allowPrivate, "webhook-allow-private", false, "let webhook deliveries reach loopback, private, link-local and other reserved addresses (refused by default, against SSRF)")
	c.interval = webhookPollInterval
}

// startWebhookDispatcher delivers the webhook outbox in the background;
// every node runs one (on PostgreSQL they share the work by leasing rows).
// stop waits for the round in flight.
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
	return func() { cancel(); <-done }
}
