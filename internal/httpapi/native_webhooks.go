package httpapi

import (
	"net/http"
	"strconv"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/wire"
)

// Native webhook endpoints and their deliveries. The signing secret is in
// the create and rotate answers only.

type webhookJSON struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Description string   `json:"description"`
	Events      []string `json:"events"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
}

func toWebhook(w credential.Webhook) webhookJSON {
	out := webhookJSON{ID: w.ID, URL: w.URL, Description: w.Description, Events: w.Events, CreatedAt: rfc3339(w.CreatedAt), UpdatedAt: rfc3339(w.UpdatedAt)}
	if out.Events == nil {
		out.Events = []string{}
	}
	return out
}

type webhookSecretJSON struct {
	webhookJSON
	Secret string `json:"secret"`
}

type webhookDeliveryJSON struct {
	ID            string  `json:"id"`
	WebhookID     string  `json:"webhook_id"`
	EventID       string  `json:"event_id"` // the webhook-id header
	EventType     string  `json:"event_type"`
	Status        string  `json:"status"` // pending, succeeded or dead
	Attempts      int     `json:"attempts"`
	LastStatus    *int    `json:"last_status_code"`
	LastError     *string `json:"last_error"`
	LatencyMS     *int64  `json:"latency_ms"`
	NextAttemptAt *string `json:"next_attempt_at"`
	LastAttemptAt *string `json:"last_attempt_at"`
	DeliveredAt   *string `json:"delivered_at"`
	CreatedAt     string  `json:"created_at"`
}

func toWebhookDelivery(d credential.WebhookDelivery) webhookDeliveryJSON {
	out := webhookDeliveryJSON{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType, Status: d.State, Attempts: d.Attempts,
		NextAttemptAt: optionalTime(d.NextAttemptAt), LastAttemptAt: optionalTime(d.LastAttemptAt), DeliveredAt: optionalTime(d.DeliveredAt),
		CreatedAt: rfc3339(d.CreatedAt)}
	if d.State != credential.DeliveryPending {
		out.NextAttemptAt = nil
	}
	if d.Attempts > 0 {
		ms := d.LastLatency.Milliseconds()
		out.LatencyMS = &ms
		if d.LastStatus != 0 {
			out.LastStatus = &d.LastStatus
		}
		if d.LastError != "" {
			out.LastError = &d.LastError
		}
	}
	return out
}

func (n *native) registerWebhooks(mux wire.Router) {
	const w = "/v1/webhooks/{webhook_id}"
	routes := map[string]wire.Handler{
		"POST /v1/webhooks":            n.createWebhook,
		"GET /v1/webhooks":             n.listWebhooks,
		"GET " + w:                     n.getWebhook,
		"PATCH " + w:                   n.updateWebhook,
		"DELETE " + w:                  n.deleteWebhook,
		"POST " + w + "/rotate_secret": n.rotateWebhookSecret,
		"POST " + w + "/test":          n.testWebhook,
		"GET " + w + "/deliveries":     n.listWebhookDeliveries,
		"POST " + w + "/deliveries/{delivery_id}/replay": n.replayWebhookDelivery,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, n.Authenticated(h))
	}
}

// createWebhook: {"url", "events": [...], "description"?}.
func (n *native) createWebhook(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "url", "events", "description")
	var in authority.CreateWebhookInput
	var url *string
	if err == nil {
		url, err = f.String("url")
	}
	if err == nil {
		in.Events, err = f.Strings("events")
	}
	if err == nil {
		in.Description, err = f.String("description")
	}
	if err != nil {
		return err
	}
	if url != nil {
		in.URL = *url
	}
	hook, secret, err := n.auth.CreateWebhook(r.Context(), c, in)
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusCreated, webhookSecretJSON{toWebhook(hook), secret.Reveal()})
	return nil
}

func (n *native) listWebhooks(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	list, err := n.auth.ListWebhooks(r.Context(), c)
	data := make([]webhookJSON, 0, len(list))
	for _, h := range list {
		data = append(data, toWebhook(h))
	}
	return respond(w, http.StatusOK, map[string]any{"data": data, "total_count": len(data)}, err)
}

func (n *native) getWebhook(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	h, err := n.auth.GetWebhook(r.Context(), c, r.PathValue("webhook_id"))
	return respond(w, http.StatusOK, toWebhook(h), err)
}

// updateWebhook: any of {"url", "events", "description"}.
func (n *native) updateWebhook(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	f, err := wire.ReadForm(r, "url", "events", "description")
	var in authority.UpdateWebhookInput
	if err == nil {
		in.URL, err = f.String("url")
	}
	if err == nil && f.Sent("events") {
		if in.Events, err = f.Strings("events"); err == nil && in.Events == nil {
			in.Events = []string{}
		}
	}
	if err == nil {
		in.Description, err = f.String("description")
	}
	var h credential.Webhook
	if err == nil {
		h, err = n.auth.UpdateWebhook(r.Context(), c, r.PathValue("webhook_id"), in)
	}
	return respond(w, http.StatusOK, toWebhook(h), err)
}

func (n *native) deleteWebhook(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	return respond(w, 0, nil, n.auth.DeleteWebhook(r.Context(), c, r.PathValue("webhook_id")))
}

func (n *native) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	if _, err := wire.ReadForm(r); err != nil {
		return err
	}
	hook, secret, err := n.auth.RotateWebhookSecret(r.Context(), c, r.PathValue("webhook_id"))
	if err != nil {
		return err
	}
	wire.WriteSecretJSON(w, http.StatusOK, webhookSecretJSON{toWebhook(hook), secret.Reveal()})
	return nil
}

func (n *native) testWebhook(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	if _, err := wire.ReadForm(r); err != nil {
		return err
	}
	d, err := n.auth.TestWebhook(r.Context(), c, r.PathValue("webhook_id"))
	return respond(w, http.StatusAccepted, toWebhookDelivery(d), err)
}

// listWebhookDeliveries: ?limit= (1..100, default 100), newest first.
func (n *native) listWebhookDeliveries(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return credential.ParamError(credential.CodeInvalid, "limit", "must be an integer between 1 and "+strconv.Itoa(authority.WebhookDeliveryLimit))
		}
		limit = v
	}
	list, err := n.auth.ListWebhookDeliveries(r.Context(), c, r.PathValue("webhook_id"), limit)
	data := make([]webhookDeliveryJSON, 0, len(list))
	for _, d := range list {
		data = append(data, toWebhookDelivery(d))
	}
	return respond(w, http.StatusOK, map[string]any{"data": data, "total_count": len(data)}, err)
}

func (n *native) replayWebhookDelivery(w http.ResponseWriter, r *http.Request, c authority.Caller) error {
	if _, err := wire.ReadForm(r); err != nil {
		return err
	}
	d, err := n.auth.ReplayWebhookDelivery(r.Context(), c, r.PathValue("webhook_id"), r.PathValue("delivery_id"))
	return respond(w, http.StatusAccepted, toWebhookDelivery(d), err)
}
