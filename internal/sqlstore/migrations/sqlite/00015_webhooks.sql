-- +goose Up
-- Webhooks: an instance's endpoints, the outbox of lifecycle events, and
-- one delivery row per event and endpoint.
--
-- webhooks.sealed is the endpoint's signing secret sealed under the
-- keyring (never stored in plain); events is the JSON array of the event
-- types it subscribes to ("*": all). A change that records an audit event
-- writes its webhook_events row, and a webhook_deliveries row per
-- subscribed endpoint, in its own transaction: a rolled-back change emits
-- nothing. seq is the outbox order: the dispatcher sends the deliveries of
-- one endpoint and order_key (the target credential) one after another, in
-- seq order. leased_until is the claim of a dispatcher (PostgreSQL nodes
-- share the work; an expired lease is claimable again). Times are Unix
-- milliseconds. The columns match the PostgreSQL migration of the same number.
CREATE TABLE webhooks (
    id          TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    events      TEXT NOT NULL, -- JSON array of event types
    sealed      BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX webhooks_instance ON webhooks (instance_id, created_at);

CREATE TABLE webhook_events (
    id          TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    order_key   TEXT NOT NULL,
    payload     TEXT NOT NULL, -- the JSON body, as delivered
    occurred_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    instance_id     TEXT NOT NULL,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    order_key       TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NULL,
    leased_until    BIGINT NULL,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    last_latency_ms BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    last_attempt_at BIGINT NULL,
    delivered_at    BIGINT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, order_key, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, seq);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhooks;
