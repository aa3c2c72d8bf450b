package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook is a webhook endpoint. Secret, its signing secret ("whsec_" +
// base64), is set in the create and rotate answers only.
type Webhook struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Description string    `json:"description"`
	Events      []string  `json:"events"` // event types, or "*"
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Secret      string    `json:"secret,omitempty"`
}

// WebhookParams creates an endpoint (URL and Events required) or, on
// update, changes what is set.
type WebhookParams struct {
	URL         string   `json:"url,omitempty"`
	Events      []string `json:"events,omitempty"`
	Description *string  `json:"description,omitempty"`
}

// WebhookDelivery is one event on its way to one endpoint.
type WebhookDelivery struct {
	ID             string     `json:"id"`
	WebhookID      string     `json:"webhook_id"`
	EventID        string     `json:"event_id"` // the webhook-id header
	EventType      string     `json:"event_type"`
	Status         string     `json:"status"` // pending, succeeded or dead
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	LatencyMS      *int64     `json:"latency_ms"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

func webhookPath(id string) string { return "/v1/webhooks/" + seg(id) }

// CreateWebhook adds an endpoint; the result carries its signing secret,
// this once. Needs webhooks:write.
func (c *Client) CreateWebhook(ctx context.Context, in WebhookParams) (Webhook, error) {
	var out Webhook
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/webhooks", body: jsonBody(in)}, &out)
	return out, err
}

// ListWebhooks lists the instance's endpoints. Needs webhooks:read.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var out struct {
		Data []Webhook `json:"data"`
	}
	err := c.get(ctx, "/v1/webhooks", &out)
	return out.Data, err
}

// GetWebhook reads one endpoint. Needs webhooks:read.
func (c *Client) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	var out Webhook
	err := c.get(ctx, webhookPath(id), &out)
	return out, err
}

// UpdateWebhook changes an endpoint's URL, events or description. Needs
// webhooks:write.
func (c *Client) UpdateWebhook(ctx context.Context, id string, in WebhookParams) (Webhook, error) {
	var out Webhook
	err := c.do(ctx, request{method: http.MethodPatch, path: webhookPath(id), body: jsonBody(in)}, &out)
	return out, err
}

// DeleteWebhook deletes an endpoint and its delivery log. Needs
// webhooks:write.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: webhookPath(id), idempotent: true}, nil)
}

// RotateWebhookSecret gives the endpoint a new signing secret, in the
// result this once. Needs webhooks:write.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (Webhook, error) {
	var out Webhook
	err := c.do(ctx, request{method: http.MethodPost, path: webhookPath(id) + "/rotate_secret"}, &out)
	return out, err
}

// TestWebhook queues a webhook.ping event for the endpoint. Needs
// webhooks:write.
func (c *Client) TestWebhook(ctx context.Context, id string) (WebhookDelivery, error) {
	var out WebhookDelivery
	err := c.do(ctx, request{method: http.MethodPost, path: webhookPath(id) + "/test"}, &out)
	return out, err
}

// WebhookDeliveries lists the endpoint's newest deliveries (limit 1 to
// 100; 0 for 100). Needs webhooks:read.
func (c *Client) WebhookDeliveries(ctx context.Context, id string, limit int) ([]WebhookDelivery, error) {
	path := webhookPath(id) + "/deliveries"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out struct {
		Data []WebhookDelivery `json:"data"`
	}
	err := c.get(ctx, path, &out)
	return out.Data, err
}

// ReplayWebhookDelivery queues a delivery's event again. Needs
// webhooks:write.
func (c *Client) ReplayWebhookDelivery(ctx context.Context, webhookID, deliveryID string) (WebhookDelivery, error) {
	var out WebhookDelivery
	err := c.do(ctx, request{method: http.MethodPost, path: webhookPath(webhookID) + "/deliveries/" + seg(deliveryID) + "/replay"}, &out)
	return out, err
}

// Webhook verification errors.
var (
	ErrWebhookSignature = errors.New("keyward: webhook signature does not verify")
	ErrWebhookTimestamp = errors.New("keyward: webhook timestamp outside the tolerance")
	ErrWebhookHeaders   = errors.New("keyward: webhook headers missing or malformed")
)

// DefaultWebhookTolerance is how far a delivery's timestamp may be from
// now (Standard Webhooks suggests five minutes).
const DefaultWebhookTolerance = 5 * time.Minute

// VerifyWebhook checks a delivery as the Standard Webhooks specification
// says: the webhook-signature header holds a "v1,<base64>" signature
// (one of several, space-separated) equal, compared in constant time, to
// HMAC-SHA256 under the secret ("whsec_" + base64 key) of
// "<webhook-id>.<webhook-timestamp>.<body>", and webhook-timestamp (Unix
// seconds) is within tolerance of now (DefaultWebhookTolerance when 0).
// Verify before parsing the body, and deduplicate by webhook-id: a
// delivery may come more than once.
func VerifyWebhook(secret string, headers http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return errors.New("keyward: the webhook secret is not whsec_ + base64")
	}
	id, ts, sigs := headers.Get("webhook-id"), headers.Get("webhook-timestamp"), headers.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrWebhookHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrWebhookHeaders
	}
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
	if at := time.Unix(sec, 0); at.Before(now.Add(-tolerance)) || at.After(now.Add(tolerance)) {
		return ErrWebhookTimestamp
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrWebhookSignature
}
