-- +goose Up
-- A complete, tamper-evident audit trail. Every event gains where it came
-- from (client_ip), the credential that acted (credential_id), how many
-- occurrences it stands for (count: refusals are aggregated per minute), and
-- its place in its instance's hash chain: seq numbers the instance's events
-- from 1, hash = SHA-256(prev_hash, canonical fields). Events written before
-- this migration keep seq 0 and stand outside the chain.
-- audit_chain_heads holds each instance's last seq and hash; appending an
-- event locks the instance's row, so concurrent writers never fork the
-- chain. credentials.search_digest is HMAC(search key, SHA-256(secret)), so
-- a leaked secret's SHA-256 finds its credential without keyward storing a
-- plain SHA-256. The columns match the other dialect's migration of the
-- same number.
ALTER TABLE audit_events ADD COLUMN client_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_events ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_instance_seq ON audit_events (instance_id, seq);
CREATE INDEX audit_events_instance_credential ON audit_events (instance_id, credential_id);
CREATE INDEX audit_events_instance_target ON audit_events (instance_id, target_id);

CREATE TABLE audit_chain_heads (
    instance_id TEXT NOT NULL PRIMARY KEY,
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL
);

ALTER TABLE credentials ADD COLUMN search_digest BYTEA NULL;
CREATE INDEX credentials_search_digest ON credentials (search_digest);

-- +goose Down
DROP INDEX credentials_search_digest;
ALTER TABLE credentials DROP COLUMN search_digest;
DROP TABLE audit_chain_heads;
DROP INDEX audit_events_instance_target;
DROP INDEX audit_events_instance_credential;
DROP INDEX audit_events_instance_seq;
ALTER TABLE audit_events DROP COLUMN hash;
ALTER TABLE audit_events DROP COLUMN prev_hash;
ALTER TABLE audit_events DROP COLUMN seq;
ALTER TABLE audit_events DROP COLUMN count;
ALTER TABLE audit_events DROP COLUMN credential_id;
ALTER TABLE audit_events DROP COLUMN client_ip;
