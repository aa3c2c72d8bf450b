-- +goose Up
-- webhooks_gen changes (to a random value) in the transaction of every
-- write to the instance's webhook endpoints, made under the chain head's
-- lock: a group commit that reads the head and finds the generation it
-- read the endpoints under in an earlier batch knows no endpoint changed
-- since, and reuses that read instead of making it again (on PostgreSQL,
-- a round trip per batch). Matches the other dialect's migration of the
-- same number.
ALTER TABLE audit_chain_heads ADD COLUMN webhooks_gen BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE audit_chain_heads DROP COLUMN webhooks_gen;
