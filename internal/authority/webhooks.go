package authority

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// Webhooks: an instance's endpoints, the outbox of lifecycle events every
// change writes in its own transaction (change.audit calls emit), and the
// dispatcher that delivers them, signed as Standard Webhooks says.

// WebhookTx reads and writes webhook endpoints, the event outbox and the
// deliveries.
type WebhookTx interface {
	InsertWebhook(ctx context.Context, w credential.Webhook) error
	GetWebhook(ctx context.Context, instanceID, id string) (credential.Webhook, error)
	// ListWebhooks returns the instance's endpoints, oldest first.
	ListWebhooks(ctx context.Context, instanceID string) ([]credential.Webhook, error)
	// UpdateWebhook writes URL, Description, Events, Sealed and UpdatedAt.
	UpdateWebhook(ctx context.Context, w credential.Webhook) error
	// DeleteWebhook deletes the endpoint and its deliveries.
	DeleteWebhook(ctx context.Context, instanceID, id string) error
	// InsertWebhookEvent writes an event to the outbox and its deliveries
	// (one per subscribed endpoint, state pending; Seq is assigned).
	InsertWebhookEvent(ctx context.Context, e credential.WebhookEvent, deliveries []credential.WebhookDelivery) error
	// InsertWebhookDelivery adds a delivery of an event already in the
	// outbox (a replay).
	InsertWebhookDelivery(ctx context.Context, d credential.WebhookDelivery) error
	GetWebhookDelivery(ctx context.Context, instanceID, id string) (credential.WebhookDelivery, error)
	// ListWebhookDeliveries returns an endpoint's newest deliveries first.
	ListWebhookDeliveries(ctx context.Context, instanceID, webhookID string, limit int) ([]credential.WebhookDelivery, error)
	// ClaimWebhookDeliveries leases up to limit pending deliveries of any
	// instance that are due at now and not leased, until leaseUntil: per
	// endpoint and order key only the earliest pending one, so one
	// credential's events go out in order. On PostgreSQL concurrent
	// claimers skip each other's rows (FOR UPDATE SKIP LOCKED).
	ClaimWebhookDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]ClaimedDelivery, error)
	// PruneWebhookLog deletes up to limit finished (succeeded or dead)
	// deliveries created before before, then the events left without a
	// delivery that occurred before it; it returns how many deliveries went.
	PruneWebhookLog(ctx context.Context, before time.Time, limit int) (int, error)
	// WebhookDeliveriesDue reports whether a pending, unleased delivery is
	// due at now (a read, so an idle dispatcher opens no write).
	WebhookDeliveriesDue(ctx context.Context, now time.Time) (bool, error)
	// FinishWebhookDelivery records an attempt's outcome (State, Attempts,
	// NextAttemptAt, Last*, DeliveredAt) and releases the lease.
	FinishWebhookDelivery(ctx context.Context, d credential.WebhookDelivery) error
}

// ClaimedDelivery is a leased delivery with what sending it needs.
type ClaimedDelivery struct {
	credential.WebhookDelivery
	URL     string
	Sealed  []byte // the endpoint's sealed signing secret
	Payload []byte
}

// WebhookSender posts one signed delivery (the adapter refuses private
// targets and follows no redirect). status is the answer's HTTP status,
// or 0 with err when none came.
type WebhookSender interface {
	Send(ctx context.Context, url string, headers map[string]string, body []byte) (status int, err error)
}

// Webhook limits and timing.
const (
	MaxWebhooks           = 20
	MaxWebhookURL         = 2048
	MaxWebhookDescription = 256
	MaxWebhookEvents      = 64
	WebhookDeliveryLimit  = 100 // deliveries listed at most
	// WebhookLease is how long a claim keeps a delivery from other
	// dispatchers; a sender must give up well before it (its timeout).
	WebhookLease = 30 * time.Second
	// WebhookRetryWindow is how long a failing delivery is retried before
	// it is dead-lettered.
	WebhookRetryWindow = 24 * time.Hour
	webhookBatch       = 64
	webhookParallel    = 8
)

// webhookBackoff is the delay before each retry (the last one repeats),
// each stretched by up to 20% of jitter.
var webhookBackoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour}

// WebhookRetryDelay is the delay before retry n (1 is the first), before
// jitter.
func WebhookRetryDelay(n int) time.Duration {
	return webhookBackoff[min(max(n, 1), len(webhookBackoff))-1]
}

// CreateWebhookInput is a new endpoint. Description is optional.
type CreateWebhookInput struct {
	URL         string
	Events      []string
	Description *string
}

// UpdateWebhookInput changes what is not nil.
type UpdateWebhookInput struct {
	URL         *string
	Events      []string // nil: unchanged
	Description *string
}

func checkWebhookURL(raw string) error {
	if raw == "" {
		return credential.ParamError(credential.CodeMissing, "url", "is required")
	}
	if len(raw) > MaxWebhookURL {
		return credential.ParamError(credential.CodeTooLong, "url", fmt.Sprintf("must be at most %d characters", MaxWebhookURL))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.Opaque != "" {
		return credential.ParamError(credential.CodeInvalid, "url", "must be an absolute http or https URL")
	}
	if u.User != nil {
		return credential.ParamError(credential.CodeInvalid, "url", "must not carry credentials (a user or password)")
	}
	if u.Fragment != "" {
		return credential.ParamError(credential.CodeInvalid, "url", "must not have a fragment")
	}
	return nil
}

func checkWebhookEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, credential.ParamError(credential.CodeMissing, "events", `must name at least one event type, or "*"`)
	}
	if len(events) > MaxWebhookEvents {
		return nil, credential.ParamError(credential.CodeTooMany, "events", fmt.Sprintf("must name at most %d event types", MaxWebhookEvents))
	}
	var out []string
	for i, e := range events {
		if !credential.KnownEventType(e) {
			return nil, credential.ParamError(credential.CodeInvalid, "events", fmt.Sprintf("events[%d]: unknown event type %.64q", i, e))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func checkWebhookDescription(d *string) error {
	if d != nil && len(*d) > MaxWebhookDescription {
		return credential.ParamError(credential.CodeTooLong, "description", fmt.Sprintf("must be at most %d characters", MaxWebhookDescription))
	}
	return nil
}

// sealWebhookSecret makes a new signing secret sealed under the endpoint id.
func (a *Authority) sealWebhookSecret(id string) (credential.Secret, []byte, error) {
	secret, err := credential.NewWebhookSecret()
	if err != nil {
		return credential.Secret{}, nil, err
	}
	sealed, err := a.keyring.Seal([]byte(secret.Reveal()), []byte(id))
	if err != nil {
		return credential.Secret{}, nil, credential.Wrap(credential.CodeInternal, err, "seal webhook secret")
	}
	return secret, sealed, nil
}

// webhookAudit is what an endpoint's audit event records: never its secret.
func webhookAudit(w credential.Webhook) map[string]any {
	return map[string]any{"url": w.URL, "events": w.Events}
}

// CreateWebhook adds an endpoint and returns its signing secret, once.
func (a *Authority) CreateWebhook(ctx context.Context, c Caller, in CreateWebhookInput) (credential.Webhook, credential.Secret, error) {
	g, err := a.enter(ctx, c, "CreateWebhook")
	if err != nil {
		return credential.Webhook{}, credential.Secret{}, err
	}
	if err := checkWebhookURL(in.URL); err != nil {
		return credential.Webhook{}, credential.Secret{}, err
	}
	events, err := checkWebhookEvents(in.Events)
	if err != nil {
		return credential.Webhook{}, credential.Secret{}, err
	}
	if err := checkWebhookDescription(in.Description); err != nil {
		return credential.Webhook{}, credential.Secret{}, err
	}
	w := credential.Webhook{ID: credential.NewID(credential.PrefixWebhook, g.now), InstanceID: c.InstanceID, URL: in.URL, Events: events,
		CreatedAt: g.now, UpdatedAt: g.now}
	if in.Description != nil {
		w.Description = *in.Description
	}
	secret, sealed, err := a.sealWebhookSecret(w.ID)
	if err != nil {
		return credential.Webhook{}, credential.Secret{}, err
	}
	w.Sealed = sealed
	err = g.mutate(ctx, func(tx *change) error {
		all, err := tx.ListWebhooks(ctx, c.InstanceID)
		if err != nil {
			return err
		}
		if len(all) >= MaxWebhooks {
			return credential.Errorf(credential.CodeConstraint, "an instance has at most %d webhook endpoints", MaxWebhooks)
		}
		if err := tx.InsertWebhook(ctx, w); err != nil {
			return err
		}
		tx.webhooksChanged()
		return tx.audit("webhook.create", "webhook", w.ID, webhookAudit(w))
	})
	// Forgotten whatever the outcome: a fill during the change may have
	// seen its uncommitted rows.
	a.forgetSubscriptions(c.InstanceID)
	if err != nil {
		return credential.Webhook{}, credential.Secret{}, err
	}
	return w, secret, nil
}

// ListWebhooks returns the instance's endpoints (without secrets).
func (a *Authority) ListWebhooks(ctx context.Context, c Caller) ([]credential.Webhook, error) {
	if _, err := a.enter(ctx, c, "ListWebhooks"); err != nil {
		return nil, err
	}
	var out []credential.Webhook
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.ListWebhooks(ctx, c.InstanceID)
		return err
	})
	return out, err
}

// GetWebhook returns one endpoint of the caller's instance.
func (a *Authority) GetWebhook(ctx context.Context, c Caller, id string) (credential.Webhook, error) {
	if _, err := a.enter(ctx, c, "GetWebhook"); err != nil {
		return credential.Webhook{}, err
	}
	var w credential.Webhook
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		w, err = tx.GetWebhook(ctx, c.InstanceID, id)
		return err
	})
	return w, err
}

// UpdateWebhook changes an endpoint's URL, events or description.
func (a *Authority) UpdateWebhook(ctx context.Context, c Caller, id string, in UpdateWebhookInput) (credential.Webhook, error) {
	g, err := a.enter(ctx, c, "UpdateWebhook")
	if err != nil {
		return credential.Webhook{}, err
	}
	if in.URL != nil {
		if err := checkWebhookURL(*in.URL); err != nil {
			return credential.Webhook{}, err
		}
	}
	var events []string
	if in.Events != nil {
		if events, err = checkWebhookEvents(in.Events); err != nil {
			return credential.Webhook{}, err
		}
	}
	if err := checkWebhookDescription(in.Description); err != nil {
		return credential.Webhook{}, err
	}
	var w credential.Webhook
	err = g.mutate(ctx, func(tx *change) error {
		var err error
		if w, err = tx.GetWebhook(ctx, c.InstanceID, id); err != nil {
			return err
		}
		if in.URL != nil {
			w.URL = *in.URL
		}
		if events != nil {
			w.Events = events
		}
		if in.Description != nil {
			w.Description = *in.Description
		}
		w.UpdatedAt = g.now
		if err := tx.UpdateWebhook(ctx, w); err != nil {
			return err
		}
		tx.webhooksChanged()
		return tx.audit("webhook.update", "webhook", w.ID, webhookAudit(w))
	})
	a.forgetSubscriptions(c.InstanceID)
	if err != nil {
		return credential.Webhook{}, err
	}
	return w, nil
}

// DeleteWebhook deletes an endpoint and its delivery log.
func (a *Authority) DeleteWebhook(ctx context.Context, c Caller, id string) error {
	err := a.mutate(ctx, c, "DeleteWebhook", func(tx *change) error {
		if err := tx.DeleteWebhook(ctx, c.InstanceID, id); err != nil {
			return err
		}
		tx.webhooksChanged()
		return tx.audit("webhook.delete", "webhook", id, nil)
	})
	a.forgetSubscriptions(c.InstanceID)
	return err
}

// RotateWebhookSecret replaces an endpoint's signing secret and returns
// the new one, once; deliveries are signed with it from now on.
func (a *Authority) RotateWebhookSecret(ctx context.Context, c Caller, id string) (credential.Webhook, credential.Secret, error) {
	g, err := a.enter(ctx, c, "RotateWebhookSecret")
	if err != nil {
		return credential.Webhook{}, credential.Secret{}, err
	}
	secret, sealed, err := a.sealWebhookSecret(id)
	if err != nil {
		return credential.Webhook{}, credential.Secret{}, err
	}
	var w credential.Webhook
	err = g.mutate(ctx, func(tx *change) error {
		var err error
		if w, err = tx.GetWebhook(ctx, c.InstanceID, id); err != nil {
			return err
		}
		w.Sealed, w.UpdatedAt = sealed, g.now
		if err := tx.UpdateWebhook(ctx, w); err != nil {
			return err
		}
		return tx.audit("webhook.secret.rotate", "webhook", w.ID, nil)
	})
	if err != nil {
		return credential.Webhook{}, credential.Secret{}, err
	}
	return w, secret, nil
}

// TestWebhook queues a ping event (type webhook.ping) for one endpoint,
// whatever it subscribes to, and returns its delivery.
func (a *Authority) TestWebhook(ctx context.Context, c Caller, id string) (credential.WebhookDelivery, error) {
	var d credential.WebhookDelivery
	err := a.mutate(ctx, c, "TestWebhook", func(tx *change) error {
		w, err := tx.GetWebhook(ctx, c.InstanceID, id)
		if err != nil {
			return err
		}
		if err := tx.audit("webhook.test", "webhook", w.ID, nil); err != nil {
			return err
		}
		ds, err := tx.writeEvent(credential.EventPing, "webhook", w.ID, map[string]string{"webhook_id": w.ID}, []credential.Webhook{w})
		if err != nil {
			return err
		}
		d = ds[0]
		return nil
	})
	return d, err
}

// ListWebhookDeliveries returns an endpoint's newest deliveries (at most
// limit, WebhookDeliveryLimit when 0).
func (a *Authority) ListWebhookDeliveries(ctx context.Context, c Caller, id string, limit int) ([]credential.WebhookDelivery, error) {
	if _, err := a.enter(ctx, c, "ListWebhookDeliveries"); err != nil {
		return nil, err
	}
	if limit < 0 || limit > WebhookDeliveryLimit {
		return nil, credential.ParamError(credential.CodeInvalid, "limit", fmt.Sprintf("must be between 1 and %d", WebhookDeliveryLimit))
	}
	if limit == 0 {
		limit = WebhookDeliveryLimit
	}
	var out []credential.WebhookDelivery
	err := a.store.View(ctx, func(tx Tx) error {
		if _, err := tx.GetWebhook(ctx, c.InstanceID, id); err != nil {
			return err
		}
		var err error
		out, err = tx.ListWebhookDeliveries(ctx, c.InstanceID, id, limit)
		return err
	})
	return out, err
}

// ReplayWebhookDelivery queues the delivery's event again for its
// endpoint, as a new delivery due now (same webhook-id, so a receiver
// that deduplicates sees it is the same event).
func (a *Authority) ReplayWebhookDelivery(ctx context.Context, c Caller, webhookID, deliveryID string) (credential.WebhookDelivery, error) {
	var d credential.WebhookDelivery
	err := a.mutate(ctx, c, "ReplayWebhookDelivery", func(tx *change) error {
		old, err := tx.GetWebhookDelivery(ctx, c.InstanceID, deliveryID)
		if err != nil {
			return err
		}
		if old.WebhookID != webhookID {
			return credential.Errorf(credential.CodeNotFound, "no such webhook delivery")
		}
		d = credential.WebhookDelivery{ID: credential.NewID(credential.PrefixWebhookDelivery, tx.now), InstanceID: c.InstanceID,
			WebhookID: webhookID, EventID: old.EventID, EventType: old.EventType, OrderKey: old.OrderKey,
			State: credential.DeliveryPending, NextAttemptAt: tx.now, CreatedAt: tx.now}
		if err := tx.InsertWebhookDelivery(ctx, d); err != nil {
			return err
		}
		return tx.audit("webhook.delivery.replay", "webhook_delivery", d.ID, map[string]string{"replayed": old.ID, "event_id": old.EventID})
	})
	return d, err
}

// The outbox.

// webhooksChanged makes every node reload its subscription cache once the
// change commits: the cache is keyed by the credential cache's epoch,
// which every invalidation (here and, over the bus, on the other nodes)
// moves on. Webhook changes are rare; dropping the credential caches with
// them is the price of not missing an event on another node.
func (ch *change) webhooksChanged() { ch.invalidateAll() }

// subscriptions caches each instance's endpoints (without their secrets)
// for the notices that verify and the scanners send, so a refusal in an
// instance without webhooks costs a map lookup, not a query. It may lag
// another node's new endpoint by the bus latency, at most until the next
// invalidation or settingsTTL (5 s while invalidations may go unheard):
// a notice is sent again in its next window. Lifecycle events of changes
// never read it (change.subscribers).
type subscriptions struct {
	mu    sync.Mutex
	gen   uint64
	byIns map[string]cachedSubscriptions
}

type cachedSubscriptions struct {
	hooks   []credential.Webhook
	epoch   uint64
	expires time.Time
}

func (a *Authority) forgetSubscriptions(instanceID string) {
	a.subs.mu.Lock()
	a.subs.gen++
	delete(a.subs.byIns, instanceID)
	a.subs.mu.Unlock()
}

// subscribers returns the instance's endpoints subscribed to type t, read
// in the change's own transaction (once per change), never from the cache:
// an endpoint created through another node a moment ago must receive the
// event of every change that commits after it, and that node's
// invalidation may not have arrived yet. On SQLite the read runs in the
// writer's transaction; on PostgreSQL each statement sees every commit
// that preceded it. It costs one indexed read per change, beside the
// change's own writes and fsync.
func (ch *change) subscribers(t string) ([]credential.Webhook, error) {
	if !ch.hooksRead {
		hooks, err := ch.ListWebhooks(ch.ctx, ch.g.caller.InstanceID)
		if err != nil {
			return nil, err
		}
		for i := range hooks {
			hooks[i].Sealed = nil
		}
		ch.hooks, ch.hooksRead = hooks, true
	}
	return subscribed(ch.hooks, t), nil
}

// cachedSubscribers returns the instance's endpoints subscribed to type t
// when the cache holds the instance (ok), without reading the store.
func (a *Authority) cachedSubscribers(ins, t string) ([]credential.Webhook, bool) {
	now, epoch := a.clock.Now(), a.cache.currentEpoch()
	a.subs.mu.Lock()
	cs, ok := a.subs.byIns[ins]
	a.subs.mu.Unlock()
	if !ok || cs.epoch != epoch || !now.Before(cs.expires) {
		return nil, false
	}
	return subscribed(cs.hooks, t), true
}

func subscribed(hooks []credential.Webhook, t string) []credential.Webhook {
	var out []credential.Webhook
	for _, w := range hooks {
		if w.Subscribes(t) {
			out = append(out, w)
		}
	}
	return out
}

// subscribersOf is cachedSubscribers, read through tx on a cache miss.
func (a *Authority) subscribersOf(ctx context.Context, tx Tx, ins, t string) ([]credential.Webhook, error) {
	now, epoch := a.clock.Now(), a.cache.currentEpoch()
	a.subs.mu.Lock()
	cs, ok := a.subs.byIns[ins]
	gen := a.subs.gen
	a.subs.mu.Unlock()
	if !ok || cs.epoch != epoch || !now.Before(cs.expires) {
		hooks, err := tx.ListWebhooks(ctx, ins)
		if err != nil {
			return nil, err
		}
		for i := range hooks {
			hooks[i].Sealed = nil
		}
		cs = cachedSubscriptions{hooks: hooks, epoch: epoch, expires: now.Add(min(settingsTTL, a.cache.positiveLifetime()))}
		a.subs.mu.Lock()
		if a.subs.gen == gen {
			if a.subs.byIns == nil {
				a.subs.byIns = map[string]cachedSubscriptions{}
			}
			a.subs.byIns[ins] = cs
		}
		a.subs.mu.Unlock()
	}
	return subscribed(cs.hooks, t), nil
}

// emit writes the lifecycle event of an audited action to the outbox, in
// the change's transaction, when an endpoint of the instance subscribes
// to it; actions that map to no event type (secret reads) emit nothing.
func (ch *change) emit(action, targetKind, targetID string, detail any) error {
	if ch.g.caller.InstanceID == "" {
		return nil
	}
	t, ok := credential.EventTypeFor(action, targetKind)
	if !ok {
		return nil
	}
	hooks, err := ch.subscribers(t)
	if err != nil || len(hooks) == 0 {
		return err
	}
	_, err = ch.writeEvent(t, targetKind, targetID, detail, hooks)
	return err
}

type eventRef struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// eventPayload is the body of every delivery. Detail is the audit event's
// detail, which never holds a secret.
type eventPayload struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	InstanceID string          `json:"instance_id"`
	OccurredAt string          `json:"occurred_at"`
	Actor      eventRef        `json:"actor"`
	Target     eventRef        `json:"target"`
	Detail     json.RawMessage `json:"detail"`
}

func (ch *change) writeEvent(t, targetKind, targetID string, detail any, hooks []credential.Webhook) ([]credential.WebhookDelivery, error) {
	raw := json.RawMessage("{}")
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return nil, credential.Wrap(credential.CodeInternal, err, "encode event detail")
		}
		raw = b
	}
	c := ch.g.caller
	e := credential.WebhookEvent{ID: credential.NewID(credential.PrefixWebhookEvent, ch.now), InstanceID: c.InstanceID, Type: t,
		OrderKey: targetKind + "/" + targetID, OccurredAt: ch.now}
	if t == credential.EventPing {
		e.OrderKey = "ping/" + e.ID // a test waits behind no failing delivery
	}
	body, err := json.Marshal(eventPayload{ID: e.ID, Type: t, InstanceID: c.InstanceID, OccurredAt: ch.now.UTC().Format(time.RFC3339Nano),
		Actor: eventRef{Kind: c.actorKind(), ID: c.actorID()}, Target: eventRef{Kind: targetKind, ID: targetID}, Detail: raw})
	if err != nil {
		return nil, credential.Wrap(credential.CodeInternal, err, "encode event")
	}
	e.Payload = body
	ds := make([]credential.WebhookDelivery, len(hooks))
	for i, w := range hooks {
		ds[i] = credential.WebhookDelivery{ID: credential.NewID(credential.PrefixWebhookDelivery, ch.now), InstanceID: c.InstanceID,
			WebhookID: w.ID, EventID: e.ID, EventType: t, OrderKey: e.OrderKey, State: credential.DeliveryPending,
			NextAttemptAt: ch.now, CreatedAt: ch.now}
	}
	if err := ch.InsertWebhookEvent(ch.ctx, e, ds); err != nil {
		return nil, err
	}
	ch.emitted = true
	return ds, nil
}

// The dispatcher.

// DeliverWebhooks runs one round of the dispatcher: it claims the due
// deliveries (a lease of WebhookLease), posts each, signed, through s, and
// records the outcomes: a 2xx answer is delivered; anything else is
// retried after WebhookRetryDelay(attempts) plus jitter, until the next
// try would fall past WebhookRetryWindow from the event, when it is
// dead-lettered. It returns how many deliveries it attempted.
func (a *Authority) DeliverWebhooks(ctx context.Context, s WebhookSender) (int, error) {
	now := a.clock.Now()
	due := false
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		due, err = tx.WebhookDeliveriesDue(ctx, now)
		return err
	})
	if err != nil || !due {
		return 0, err
	}
	var claimed []ClaimedDelivery
	err = a.store.Update(ctx, func(tx Tx) error {
		var err error
		claimed, err = tx.ClaimWebhookDeliveries(ctx, now, now.Add(WebhookLease), webhookBatch)
		return err
	})
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	// The claim holds at most one delivery per endpoint and order key, so
	// these may go out together.
	results := make([]credential.WebhookDelivery, len(claimed))
	sem := make(chan struct{}, webhookParallel)
	var wg sync.WaitGroup
	for i := range claimed {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = a.attempt(ctx, s, claimed[i])
		}()
	}
	wg.Wait()
	// Recorded even when ctx ended meanwhile (a shutdown): what was sent
	// is not sent again.
	ctx = context.WithoutCancel(ctx)
	err = a.store.Update(ctx, func(tx Tx) error {
		for _, d := range results {
			if err := tx.FinishWebhookDelivery(ctx, d); err != nil && !credential.IsCode(err, credential.CodeNotFound) {
				return err
			}
		}
		return nil
	})
	return len(claimed), err
}

// attempt sends one delivery and returns it with the outcome recorded.
func (a *Authority) attempt(ctx context.Context, s WebhookSender, c ClaimedDelivery) credential.WebhookDelivery {
	d := c.WebhookDelivery
	start := a.clock.Now()
	status, err := a.send(ctx, s, c, start)
	end := a.clock.Now()
	d.Attempts++
	d.LastAttemptAt, d.LastLatency, d.LastStatus, d.LastError = end, end.Sub(start), status, ""
	if err == nil && status >= 200 && status < 300 {
		d.State, d.DeliveredAt, d.NextAttemptAt = credential.DeliverySucceeded, end, time.Time{}
		return d
	}
	switch {
	case err != nil:
		d.LastError = err.Error()
	default:
		d.LastError = "HTTP " + strconv.Itoa(status)
	}
	if len(d.LastError) > 512 {
		d.LastError = d.LastError[:512]
	}
	delay := WebhookRetryDelay(d.Attempts)
	delay += time.Duration(rand.Int64N(int64(delay)/5 + 1))
	next := end.Add(delay)
	if next.After(d.CreatedAt.Add(WebhookRetryWindow)) {
		d.State, d.NextAttemptAt = credential.DeliveryDead, time.Time{}
		return d
	}
	d.NextAttemptAt = next
	return d
}

func (a *Authority) send(ctx context.Context, s WebhookSender, c ClaimedDelivery, at time.Time) (int, error) {
	plain, err := a.keyring.Open(c.Sealed, []byte(c.WebhookID))
	if err != nil {
		return 0, fmt.Errorf("open the endpoint's signing secret: %w", err)
	}
	key, err := credential.WebhookKey(credential.WebhookSecret(string(plain)))
	if err != nil {
		return 0, err
	}
	headers := map[string]string{
		"webhook-id":        c.EventID,
		"webhook-timestamp": strconv.FormatInt(at.Unix(), 10),
		"webhook-signature": credential.SignWebhook(key, c.EventID, at, c.Payload),
		"Content-Type":      "application/json",
	}
	return s.Send(ctx, c.URL, headers, c.Payload)
}

// WebhookLogRetention is how long finished deliveries (and their events)
// stay in the delivery log.
const WebhookLogRetention = 30 * 24 * time.Hour

// webhookPruneEvery is how often the dispatcher prunes the delivery log.
const webhookPruneEvery = time.Hour

// PruneWebhookLog deletes the deliveries finished longer than
// WebhookLogRetention ago, and their events, in batches of one short
// transaction each; it returns how many deliveries went.
func (a *Authority) PruneWebhookLog(ctx context.Context) (int, error) {
	cutoff, total := a.clock.Now().Add(-WebhookLogRetention), 0
	for {
		var n int
		err := a.store.Update(ctx, func(tx Tx) error {
			var err error
			n, err = tx.PruneWebhookLog(ctx, cutoff, DefaultJanitorBatch)
			return err
		})
		total += n
		if err != nil || n < DefaultJanitorBatch {
			return total, err
		}
	}
}

// RunWebhookDispatcher runs DeliverWebhooks every interval until ctx ends,
// at once again after a full round or a local change that queued
// deliveries, and prunes the delivery log hourly;
// onError hears a failed round.
func (a *Authority) RunWebhookDispatcher(ctx context.Context, s WebhookSender, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var pruned time.Time
	for {
		if now := a.clock.Now(); now.Sub(pruned) >= webhookPruneEvery {
			pruned = now
			if _, err := a.PruneWebhookLog(ctx); err != nil && ctx.Err() == nil && onError != nil {
				onError(err)
			}
		}
		n, err := a.DeliverWebhooks(ctx, s)
		if err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		if n >= webhookBatch && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.wake:
		}
	}
}

// wakeDispatcher starts this node's next dispatcher round now rather than
// at its next tick (other nodes find the deliveries at theirs).
func (a *Authority) wakeDispatcher() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}
