package sqlstore

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

const webhookColumns = `id, instance_id, url, description, events, sealed, created_at, updated_at`

func scanWebhook(s scanner) (credential.Webhook, error) {
	var (
		w      credential.Webhook
		events string
	)
	err := s.Scan(&w.ID, &w.InstanceID, &w.URL, &w.Description, &events, &w.Sealed, scanTime(&w.CreatedAt), scanTime(&w.UpdatedAt))
	if err == nil {
		err = json.Unmarshal([]byte(events), &w.Events)
	}
	return w, err
}

func encodeEvents(events []string) (string, error) {
	if events == nil {
		events = []string{}
	}
	b, err := json.Marshal(events)
	return string(b), err
}

func (t *tx) InsertWebhook(ctx context.Context, w credential.Webhook) error {
	t.webhooksWritten(w.InstanceID)
	events, err := encodeEvents(w.Events)
	if err != nil {
		return translate(err, "webhook")
	}
	_, err = t.exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.InstanceID, w.URL, w.Description, events, w.Sealed, millis(w.CreatedAt), millis(w.UpdatedAt))
	return translate(err, "webhook")
}

func (t *tx) GetWebhook(ctx context.Context, instanceID, id string) (credential.Webhook, error) {
	w, err := scanWebhook(t.queryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE instance_id = ? AND id = ?`, instanceID, id))
	return w, translate(err, "webhook")
}

// listWebhooks is prepared on the writer (hotWrites): every change reads
// its instance's subscriptions with it.
const listWebhooks = `SELECT ` + webhookColumns + ` FROM webhooks
		WHERE instance_id = ? ORDER BY created_at, id`

// ListWebhooks reads the instance's endpoints once per group commit
// batch: every audited change reads them for its lifecycle event, and on
// PostgreSQL each read was a round trip. The batch reuses a read only
// while it holds the instance's audit chain head, which every webhook
// change also locks (it is audited), so no endpoint can commit between
// the read and the batch's COMMIT: each change sees what it would have
// read itself. A batch that writes the instance's endpoints reads them
// afresh from then on.
//
// Later batches reuse the read too, while the head's webhook generation
// is the one it was read under: every write to the endpoints changes the
// generation, in its own transaction and under the head's lock, so an
// unchanged generation means that no endpoint changed since, on any node.
func (t *tx) ListWebhooks(ctx context.Context, instanceID string) ([]credential.Webhook, error) {
	c := t.chains
	reuse := c != nil && c.holds(instanceID) && !c.written[instanceID]
	if reuse {
		if hooks, ok := c.hooks[instanceID]; ok {
			return cloneWebhooks(hooks), nil
		}
		if r, ok := c.endpoints[instanceID]; ok && r.gen == c.gens[instanceID] {
			c.keepHooks(instanceID, r.hooks)
			return cloneWebhooks(r.hooks), nil
		}
	}
	hooks, err := queryAll(ctx, t, "webhook", scanWebhook, listWebhooks, instanceID)
	if err == nil && reuse {
		c.keepHooks(instanceID, hooks)
		c.endpoints.keep(instanceID, endpointRead{gen: c.gens[instanceID], hooks: cloneWebhooks(hooks)})
	}
	return hooks, err
}

func (b *batchChains) keepHooks(instanceID string, hooks []credential.Webhook) {
	if b.hooks == nil {
		b.hooks = map[string][]credential.Webhook{}
	}
	b.hooks[instanceID] = cloneWebhooks(hooks)
}

// cloneWebhooks copies hooks deeply, so a reader of a kept read cannot
// change it for the next.
func cloneWebhooks(hooks []credential.Webhook) []credential.Webhook {
	out := slices.Clone(hooks)
	for i := range out {
		out[i].Events, out[i].Sealed = slices.Clone(out[i].Events), slices.Clone(out[i].Sealed)
	}
	return out
}

// endpointReads are a group committer's reads of instances' webhook
// endpoints, each with the webhook generation it was read under (see
// ListWebhooks). Only the committer's goroutine uses them.
type endpointReads map[string]endpointRead

type endpointRead struct {
	gen   int64
	hooks []credential.Webhook
}

// maxEndpointReads bounds the instances whose reads a committer keeps; past
// it, it starts over.
const maxEndpointReads = 1024

func (e endpointReads) keep(instanceID string, r endpointRead) {
	if e == nil {
		return
	}
	if len(e) >= maxEndpointReads {
		clear(e)
	}
	e[instanceID] = r
}

// webhooksWritten precedes every write to an instance's endpoints: the
// batch stops reusing its read of them. (The write itself changes the
// instance's webhook generation, by trigger, so no batch reuses an older
// read; migration 00018.)
func (t *tx) webhooksWritten(instanceID string) {
	if c := t.chains; c != nil {
		delete(c.hooks, instanceID)
		if c.written == nil {
			c.written = map[string]bool{}
		}
		c.written[instanceID] = true
	}
}

func (t *tx) UpdateWebhook(ctx context.Context, w credential.Webhook) error {
	t.webhooksWritten(w.InstanceID)
	events, err := encodeEvents(w.Events)
	if err != nil {
		return translate(err, "webhook")
	}
	return t.execOne(ctx, "webhook", `UPDATE webhooks SET url = ?, description = ?, events = ?, sealed = ?, updated_at = ?
		WHERE instance_id = ? AND id = ?`, w.URL, w.Description, events, w.Sealed, millis(w.UpdatedAt), w.InstanceID, w.ID)
}

// DeleteWebhook deletes the deliveries first (their foreign key cascades
// too, but SQLite enforces it only with foreign_keys on).
func (t *tx) DeleteWebhook(ctx context.Context, instanceID, id string) error {
	t.webhooksWritten(instanceID)
	if _, err := t.exec(ctx, `DELETE FROM webhook_deliveries WHERE instance_id = ? AND webhook_id = ?`, instanceID, id); err != nil {
		return translate(err, "webhook")
	}
	return t.execOne(ctx, "webhook", `DELETE FROM webhooks WHERE instance_id = ? AND id = ?`, instanceID, id)
}

func (t *tx) InsertWebhookEvent(ctx context.Context, e credential.WebhookEvent, deliveries []credential.WebhookDelivery) error {
	if _, err := t.exec(ctx, `INSERT INTO webhook_events (id, instance_id, type, order_key, payload, occurred_at) VALUES (?, ?, ?, ?, ?, ?)`,
		e.ID, e.InstanceID, e.Type, e.OrderKey, string(e.Payload), millis(e.OccurredAt)); err != nil {
		return translate(err, "webhook event")
	}
	for _, d := range deliveries {
		if err := t.insertDelivery(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// insertDelivery skips an endpoint that is gone (a node's subscription
// cache may name one deleted elsewhere a moment ago): the change that
// emits the event must not fail for it.
func (t *tx) insertDelivery(ctx context.Context, d credential.WebhookDelivery) error {
	_, err := t.exec(ctx, `INSERT INTO webhook_deliveries (id, instance_id, webhook_id, event_id, event_type, order_key, state, attempts, next_attempt_at, created_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, 0, ?, ? WHERE EXISTS (SELECT 1 FROM webhooks WHERE instance_id = ? AND id = ?)`,
		d.ID, d.InstanceID, d.WebhookID, d.EventID, d.EventType, d.OrderKey, d.State, millis(d.NextAttemptAt), millis(d.CreatedAt),
		d.InstanceID, d.WebhookID)
	return translate(err, "webhook delivery")
}

func (t *tx) InsertWebhookDelivery(ctx context.Context, d credential.WebhookDelivery) error {
	return t.insertDelivery(ctx, d)
}

const deliveryColumns = `seq, id, instance_id, webhook_id, event_id, event_type, order_key, state, attempts, next_attempt_at, leased_until,
	last_status, last_error, last_latency_ms, created_at, last_attempt_at, delivered_at`

func scanDelivery(s scanner, extra ...any) (credential.WebhookDelivery, error) {
	var (
		d       credential.WebhookDelivery
		latency int64
	)
	dest := append([]any{&d.Seq, &d.ID, &d.InstanceID, &d.WebhookID, &d.EventID, &d.EventType, &d.OrderKey, &d.State, &d.Attempts,
		scanTime(&d.NextAttemptAt), scanTime(&d.LeasedUntil), &d.LastStatus, &d.LastError, &latency,
		scanTime(&d.CreatedAt), scanTime(&d.LastAttemptAt), scanTime(&d.DeliveredAt)}, extra...)
	err := s.Scan(dest...)
	d.LastLatency = time.Duration(latency) * time.Millisecond
	return d, err
}

func scanDeliveryOnly(s scanner) (credential.WebhookDelivery, error) { return scanDelivery(s) }

func (t *tx) GetWebhookDelivery(ctx context.Context, instanceID, id string) (credential.WebhookDelivery, error) {
	d, err := scanDelivery(t.queryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE instance_id = ? AND id = ?`, instanceID, id))
	return d, translate(err, "webhook delivery")
}

func (t *tx) ListWebhookDeliveries(ctx context.Context, instanceID, webhookID string, limit int) ([]credential.WebhookDelivery, error) {
	return queryAll(ctx, t, "webhook delivery", scanDeliveryOnly, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE instance_id = ? AND webhook_id = ? ORDER BY seq DESC LIMIT ?`, instanceID, webhookID, pageLimit(limit))
}

// claimable selects the due, unleased deliveries that are the earliest
// pending one of their endpoint and order key.
const claimable = `SELECT d.seq FROM webhook_deliveries d
	WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND (d.leased_until IS NULL OR d.leased_until <= ?)
	AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
		WHERE p.webhook_id = d.webhook_id AND p.order_key = d.order_key AND p.state = 'pending' AND p.seq < d.seq)
	ORDER BY d.seq LIMIT ?`

// ClaimWebhookDeliveries leases in one statement. On PostgreSQL the
// candidates are locked FOR UPDATE SKIP LOCKED, so a concurrent claimer
// passes over them instead of waiting and leasing them twice; SQLite has
// one writer.
func (t *tx) ClaimWebhookDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]authority.ClaimedDelivery, error) {
	sel := claimable
	if t.d.name == "postgres" {
		sel += ` FOR UPDATE OF d SKIP LOCKED`
	}
	rows, err := t.query(ctx, `UPDATE webhook_deliveries SET leased_until = ? WHERE seq IN (`+sel+`) RETURNING seq`,
		millis(leaseUntil), millis(now), millis(now), limit)
	if err != nil {
		return nil, translate(err, "webhook delivery")
	}
	var seqs []any
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return nil, translate(err, "webhook delivery")
		}
		seqs = append(seqs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, translate(err, "webhook delivery")
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	return queryAll(ctx, t, "webhook delivery", func(s scanner) (authority.ClaimedDelivery, error) {
		var (
			c       authority.ClaimedDelivery
			payload string
		)
		d, err := scanDelivery(s, &c.URL, &c.Sealed, &payload)
		c.WebhookDelivery, c.Payload = d, []byte(payload)
		return c, err
	}, `SELECT `+prefixed(deliveryColumns, "d.")+`, w.url, w.sealed, e.payload FROM webhook_deliveries d
		JOIN webhooks w ON w.id = d.webhook_id JOIN webhook_events e ON e.id = d.event_id
		WHERE d.seq IN (`+placeholders(len(seqs))+`) ORDER BY d.seq`, seqs...)
}

// prefixed qualifies each column of a column list.
func prefixed(columns, prefix string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

func (t *tx) PruneWebhookLog(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := t.exec(ctx, `DELETE FROM webhook_deliveries WHERE seq IN (SELECT seq FROM webhook_deliveries
		WHERE state <> 'pending' AND created_at < ? ORDER BY seq LIMIT ?)`, millis(before), limit)
	if err != nil {
		return 0, translate(err, "webhook delivery")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, translate(err, "webhook delivery")
	}
	if _, err := t.exec(ctx, `DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e
		WHERE e.occurred_at < ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id) LIMIT ?)`, millis(before), limit); err != nil {
		return 0, translate(err, "webhook event")
	}
	return int(n), nil
}

func (t *tx) WebhookDeliveriesDue(ctx context.Context, now time.Time) (bool, error) {
	var n int
	err := t.queryRow(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM webhook_deliveries
		WHERE state = 'pending' AND next_attempt_at <= ? AND (leased_until IS NULL OR leased_until <= ?) LIMIT 1) AS due`, millis(now), millis(now)).Scan(&n)
	return n > 0, translate(err, "webhook delivery")
}

func (t *tx) FinishWebhookDelivery(ctx context.Context, d credential.WebhookDelivery) error {
	return t.execOne(ctx, "webhook delivery", `UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, leased_until = NULL,
		last_status = ?, last_error = ?, last_latency_ms = ?, last_attempt_at = ?, delivered_at = ? WHERE id = ?`,
		d.State, d.Attempts, millis(d.NextAttemptAt), d.LastStatus, d.LastError, d.LastLatency.Milliseconds(),
		millis(d.LastAttemptAt), millis(d.DeliveredAt), d.ID)
}

// OutboxCounts returns how many events and deliveries the webhook outbox
// holds, over every instance (diagnostics and tests).
func (s *Store) OutboxCounts(ctx context.Context) (events, deliveries int, err error) {
	if err := s.reader.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM webhook_events), (SELECT COUNT(*) FROM webhook_deliveries)`).Scan(&events, &deliveries); err != nil {
		return 0, 0, translate(err, "webhook outbox")
	}
	return events, deliveries, nil
}
