-- +goose Up
-- Notices keyward sends on its own (authority/notices.go): expiring,
-- expired and unused from the scanner, rate_limit_exhausted, credits_low
-- and usage_exceeded from the verify path. A row records that a notice of
-- one credential and threshold was sent; it is inserted (insert if absent)
-- in the same transaction as the event's outbox row, so of several nodes
-- and restarts exactly one sends it. threshold names the occasion: "7d@"
-- and the expiry for expiring, the limit and its window for
-- rate_limit_exhausted, the credits pool and its refill period for the
-- usage notices. prune_after, when set, is when the row may go (the
-- window it stands for has ended). Times are Unix milliseconds. Matches
-- the other dialect's migration of the same number.
CREATE TABLE credential_notices (
    instance_id   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL,
    notice        TEXT NOT NULL,
    threshold     TEXT NOT NULL,
    sent_at       BIGINT NOT NULL,
    prune_after   BIGINT NULL,
    PRIMARY KEY (instance_id, credential_id, notice, threshold)
);
CREATE INDEX credential_notices_prune ON credential_notices (prune_after) WHERE prune_after IS NOT NULL;

-- +goose Down
DROP TABLE credential_notices;
