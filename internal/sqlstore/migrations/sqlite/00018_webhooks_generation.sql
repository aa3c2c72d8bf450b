-- +goose Up
-- webhooks_gen changes (to a random value) with every write to the
-- instance's webhook endpoints, in the writing transaction: a group
-- commit that reads the head and finds the generation it read the
-- endpoints under in an earlier batch knows no endpoint changed since, and
-- reuses that read instead of making it again (on PostgreSQL, a round trip
-- per batch). Triggers set it, so every writer does: an older binary, an
-- import, a hand-written statement. Matches the other dialect's migration
-- of the same number.
ALTER TABLE audit_chain_heads ADD COLUMN webhooks_gen BIGINT NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE TRIGGER webhooks_gen_insert AFTER INSERT ON webhooks BEGIN
    UPDATE audit_chain_heads SET webhooks_gen = (random() & 9223372036854775807) | 1 WHERE instance_id = NEW.instance_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER webhooks_gen_update AFTER UPDATE ON webhooks BEGIN
    UPDATE audit_chain_heads SET webhooks_gen = (random() & 9223372036854775807) | 1 WHERE instance_id IN (OLD.instance_id, NEW.instance_id);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER webhooks_gen_delete AFTER DELETE ON webhooks BEGIN
    UPDATE audit_chain_heads SET webhooks_gen = (random() & 9223372036854775807) | 1 WHERE instance_id = OLD.instance_id;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER webhooks_gen_delete;
DROP TRIGGER webhooks_gen_update;
DROP TRIGGER webhooks_gen_insert;
ALTER TABLE audit_chain_heads DROP COLUMN webhooks_gen;
