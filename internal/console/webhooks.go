package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward/client"
)

// Webhook endpoints and their delivery logs. The signing secret appears
// only on the page answering the create or the rotate POST.

// noticeEvents are the event types keyward sends on its own, offered as a
// hint beside the events field (any type the API knows may be typed).
var noticeEvents = []string{"credential.expiring", "credential.expired", "credential.unused",
	"credential.rate_limit_exhausted", "credential.credits_low", "credential.usage_exceeded", "audit.chain_broken"}

type webhooksData struct {
	Webhooks []client.Webhook
	Notices  []string
}

func (c *Console) webhooks(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	hooks, err := kw.ListWebhooks(r.Context())
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "webhooks.html", "Webhooks", "webhooks", webhooksData{Webhooks: hooks, Notices: noticeEvents})
}

// eventList reads the events field: types separated by commas, spaces or
// new lines.
func eventList(f url.Values) []string {
	return strings.FieldsFunc(f.Get("events"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

func webhookURL(id string) string { return Prefix + "webhooks/" + url.PathEscape(id) }

func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	f := r.PostForm
	in := client.WebhookParams{URL: strings.TrimSpace(f.Get("url")), Events: eventList(f)}
	if in.URL == "" || len(in.Events) == 0 {
		return formError("An endpoint needs a URL and at least one event type (or *).")
	}
	if d := strings.TrimSpace(f.Get("description")); d != "" {
		in.Description = &d
	}
	h, err := kw.CreateWebhook(r.Context(), in)
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret.html", "Webhook created", "webhooks", secretData{
		Title: "Endpoint " + h.URL + " created", Label: "Signing secret of " + h.ID, Value: h.Secret,
		Again: "keyward keeps it sealed and shows it again only by rotating it", Back: webhookURL(h.ID), BackLabel: "Go to the endpoint"})
}

type webhookData struct {
	Webhook    client.Webhook
	Events     string // the events field's value
	Deliveries []client.WebhookDelivery
	DelErr     string
	Notices    []string
}

func (c *Console) webhook(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	h, err := kw.GetWebhook(r.Context(), id)
	if err != nil {
		return err
	}
	d := webhookData{Webhook: h, Events: strings.Join(h.Events, ", "), Notices: noticeEvents}
	if d.Deliveries, err = kw.WebhookDeliveries(r.Context(), id, 50); err != nil {
		d.DelErr = messageOf(err)
	}
	return c.ok(w, r, s, "webhook.html", h.URL, "webhooks", d)
}

func (c *Console) updateWebhook(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id, f := r.PathValue("id"), r.PostForm
	in := client.WebhookParams{URL: strings.TrimSpace(f.Get("url")), Events: eventList(f)}
	if len(in.Events) == 0 {
		return formError("An endpoint needs at least one event type (or *).")
	}
	desc := strings.TrimSpace(f.Get("description"))
	in.Description = &desc
	if _, err := kw.UpdateWebhook(r.Context(), id, in); err != nil {
		return err
	}
	return done(w, r, s, webhookURL(id), "Endpoint saved.")
}

func (c *Console) deleteWebhook(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	if err := kw.DeleteWebhook(r.Context(), id); err != nil {
		return err
	}
	return done(w, r, s, Prefix+"webhooks", "Endpoint "+id+" deleted, with its delivery log.")
}

func (c *Console) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	h, err := kw.RotateWebhookSecret(r.Context(), id)
	if err != nil {
		return err
	}
	return c.ok(w, r, s, "secret.html", "Signing secret rotated", "webhooks", secretData{
		Title: "New signing secret of " + h.ID, Label: "Signing secret of " + h.ID, Value: h.Secret,
		Again: "deliveries are signed with it from now on; the previous one no longer verifies", Back: webhookURL(h.ID), BackLabel: "Back to the endpoint"})
}

func (c *Console) testWebhook(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id := r.PathValue("id")
	d, err := kw.TestWebhook(r.Context(), id)
	if err != nil {
		return err
	}
	return done(w, r, s, webhookURL(id), "Test event queued: delivery "+d.ID+".")
}

func (c *Console) replayWebhookDelivery(w http.ResponseWriter, r *http.Request, s *session, kw *client.Client) error {
	id, delivery := r.PathValue("id"), r.PathValue("delivery")
	d, err := kw.ReplayWebhookDelivery(r.Context(), id, delivery)
	if err != nil {
		return err
	}
	return done(w, r, s, webhookURL(id), "Delivery "+delivery+" replayed as "+d.ID+".")
}
