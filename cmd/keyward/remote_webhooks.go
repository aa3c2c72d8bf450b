package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyward/keyward/client"
)

// Webhook endpoints and their deliveries, through the SDK.

func webhookTable(cmd *cobra.Command, ws []client.Webhook) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "URL", "EVENTS", "DESCRIPTION", "CREATED")
	for _, w := range ws {
		t.row(w.ID, w.URL, strings.Join(w.Events, ","), w.Description, rfc(w.CreatedAt))
	}
	return t
}

func deliveryTable(cmd *cobra.Command, ds []client.WebhookDelivery) *table {
	t := newTable(cmd.OutOrStdout(), "ID", "EVENT", "EVENT_ID", "STATUS", "ATTEMPTS", "LAST_CODE", "LATENCY_MS", "NEXT_RETRY", "CREATED")
	for _, d := range ds {
		code, latency, next := "", "", ""
		if d.LastStatusCode != nil {
			code = strconv.Itoa(*d.LastStatusCode)
		} else if d.LastError != nil {
			code = *d.LastError
		}
		if d.LatencyMS != nil {
			latency = strconv.FormatInt(*d.LatencyMS, 10)
		}
		if d.NextAttemptAt != nil {
			next = rfc(*d.NextAttemptAt)
		}
		t.row(d.ID, d.EventType, d.EventID, d.Status, strconv.Itoa(d.Attempts), code, latency, next, rfc(d.CreatedAt))
	}
	return t
}

// showWebhook prints an endpoint, and its signing secret when the answer
// holds one (create, rotate).
func (rc *remoteConfig) showWebhook(cmd *cobra.Command, w client.Webhook, err error) error {
	if err != nil || rc.json() {
		return printOr(cmd, w, err)
	}
	if err := webhookTable(cmd, []client.Webhook{w}).flush(); err != nil {
		return err
	}
	if w.Secret != "" {
		printSecret(cmd.OutOrStdout(), "signing secret", w.Secret, "verify each delivery's webhook-signature with it (client.VerifyWebhook, or any Standard Webhooks library); it is not shown again")
	}
	return nil
}

func newWebhooksCommand(rc *remoteConfig) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "webhooks",
		Aliases: []string{"webhook"},
		Short:   "Manage webhook endpoints and their deliveries on a running server",
		Example: "  keyward webhooks create https://hooks.example.com/keyward --event m2m_token.created --event api_key.revoked\n  keyward webhooks deliveries wh_…",
	}
	cmd.AddCommand(
		rc.leaf(leaf{use: "list", short: "List webhook endpoints", example: "  keyward webhooks list -o json",
			run: func(cmd *cobra.Command, c *client.Client, _ []string) error {
				ws, err := c.ListWebhooks(cmd.Context())
				return showAllOr(rc, cmd, ws, err, webhookTable)
			}}),
		webhookCreateLeaf(rc),
		rc.leaf(leaf{use: "get WEBHOOK_ID", short: "Show a webhook endpoint", example: "  keyward webhooks get wh_…", args: []string{"WEBHOOK_ID"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				w, err := c.GetWebhook(cmd.Context(), args[0])
				return rc.showWebhook(cmd, w, err)
			}}),
		webhookUpdateLeaf(rc),
		rc.leaf(leaf{use: "delete WEBHOOK_ID", short: "Delete a webhook endpoint and its delivery log", example: "  keyward webhooks delete wh_…", args: []string{"WEBHOOK_ID"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				return rc.deleted(cmd, args[0], c.DeleteWebhook(cmd.Context(), args[0]))
			}}),
		rc.leaf(leaf{use: "rotate-secret WEBHOOK_ID", short: "Give a webhook endpoint a new signing secret and print it", example: "  keyward webhooks rotate-secret wh_…", args: []string{"WEBHOOK_ID"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				w, err := c.RotateWebhookSecret(cmd.Context(), args[0])
				return rc.showWebhook(cmd, w, err)
			}}),
	)
	cmd.AddCommand(webhookDeliveryLeaves(rc)...)
	return cmd
}

// webhookCreateLeaf is `keyward webhooks create URL`.
func webhookCreateLeaf(rc *remoteConfig) *cobra.Command {
	var create client.WebhookParams
	var createDesc string
	var createFS *pflag.FlagSet
	return rc.leaf(leaf{use: "create URL", short: "Create a webhook endpoint and print its signing secret", args: []string{"URL"},
		example: "  keyward webhooks create https://hooks.example.com/keyward --event '*'\n  keyward webhooks create https://hooks.example.com/k --event machine.secret_key.rotated --description ops",
		flags: func(f *pflag.FlagSet) {
			createFS = f
			f.StringArrayVar(&create.Events, "event", nil, "an event type to subscribe to, or * for all (repeatable, required)")
			f.StringVar(&createDesc, "description", "", "what the endpoint is for")
		},
		check: func() error {
			if len(create.Events) == 0 {
				return usageErrorf("pass at least one --event (an event type, or '*')")
			}
			return nil
		},
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			create.URL = args[0]
			if createFS.Changed("description") {
				create.Description = &createDesc
			}
			w, err := c.CreateWebhook(cmd.Context(), create)
			return rc.showWebhook(cmd, w, err)
		}})
}

// webhookUpdateLeaf is `keyward webhooks update WEBHOOK_ID`.
func webhookUpdateLeaf(rc *remoteConfig) *cobra.Command {
	var update client.WebhookParams
	var url, desc string
	var updateFS *pflag.FlagSet
	return rc.leaf(leaf{use: "update WEBHOOK_ID", short: "Change a webhook endpoint's URL, events or description", args: []string{"WEBHOOK_ID"},
		example: "  keyward webhooks update wh_… --event api_key.revoked --event m2m_token.revoked\n  keyward webhooks update wh_… --url https://new.example.com/hook",
		flags: func(f *pflag.FlagSet) {
			updateFS = f
			f.StringVar(&url, "url", "", "the new URL")
			f.StringArrayVar(&update.Events, "event", nil, "the event types to subscribe to, replacing the old ones (repeatable)")
			f.StringVar(&desc, "description", "", "the new description")
		},
		check: func() error {
			if !updateFS.Changed("url") && !updateFS.Changed("event") && !updateFS.Changed("description") {
				return usageErrorf("nothing to change: pass --url, --event and/or --description")
			}
			return nil
		},
		run: func(cmd *cobra.Command, c *client.Client, args []string) error {
			update.URL = url
			if updateFS.Changed("description") {
				update.Description = &desc
			}
			w, err := c.UpdateWebhook(cmd.Context(), args[0], update)
			return rc.showWebhook(cmd, w, err)
		}})
}

// webhookDeliveryLeaves test an endpoint and read and replay its deliveries.
func webhookDeliveryLeaves(rc *remoteConfig) []*cobra.Command {
	var limit int
	return []*cobra.Command{
		rc.leaf(leaf{use: "test WEBHOOK_ID", short: "Queue a webhook.ping event for an endpoint", example: "  keyward webhooks test wh_…", args: []string{"WEBHOOK_ID"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				d, err := c.TestWebhook(cmd.Context(), args[0])
				return showOr(rc, cmd, d, err, deliveryTable)
			}}),
		rc.leaf(leaf{use: "deliveries WEBHOOK_ID", short: "List an endpoint's deliveries, newest first", example: "  keyward webhooks deliveries wh_… --limit 20", args: []string{"WEBHOOK_ID"},
			flags: func(f *pflag.FlagSet) { f.IntVar(&limit, "limit", 0, "how many (1..100; default 100)") },
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				ds, err := c.WebhookDeliveries(cmd.Context(), args[0], limit)
				return showAllOr(rc, cmd, ds, err, deliveryTable)
			}}),
		rc.leaf(leaf{use: "replay WEBHOOK_ID DELIVERY_ID", short: "Send a delivery's event again", example: "  keyward webhooks replay wh_… whd_…", args: []string{"WEBHOOK_ID", "DELIVERY_ID"},
			run: func(cmd *cobra.Command, c *client.Client, args []string) error {
				d, err := c.ReplayWebhookDelivery(cmd.Context(), args[0], args[1])
				return showOr(rc, cmd, d, err, deliveryTable)
			}}),
	}
}
