-- +goose Up
-- webhooks_gen changes (to a random value) with every write to the
-- instance's webhook endpoints, in the writing transaction: a group
-- commit that reads the head and finds the generation it read the
-- endpoints under in an earlier batch knows no endpoint changed since, and
-- reuses that read instead of making it again (a round trip per batch).
-- A trigger sets it, so every writer does: an older node during a rolling
-- upgrade, an import, a hand-written statement. Matches the other
-- dialect's migration of the same number.
ALTER TABLE audit_chain_heads ADD COLUMN webhooks_gen BIGINT NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION keyward_webhooks_gen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE audit_chain_heads SET webhooks_gen = floor(random() * 9e18)::bigint + 1 WHERE instance_id = OLD.instance_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE audit_chain_heads SET webhooks_gen = floor(random() * 9e18)::bigint + 1 WHERE instance_id = NEW.instance_id;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER webhooks_gen AFTER INSERT OR UPDATE OR DELETE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION keyward_webhooks_gen();

-- +goose Down
DROP TRIGGER webhooks_gen ON webhooks;
DROP FUNCTION keyward_webhooks_gen();
ALTER TABLE audit_chain_heads DROP COLUMN webhooks_gen;
