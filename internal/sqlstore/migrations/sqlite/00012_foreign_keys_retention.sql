-- +goose Up
-- Foreign keys imported by their hash, and retention.
--
-- foreign_key_hashes holds, for an API key another system issued, the hash
-- that system kept, until the key's first successful verify re-keys its
-- credential to keyward's own digest and deletes the row. The credential
-- row meanwhile carries a random placeholder digest no secret maps to.
-- lookup is the SHA-256 of the key, or its HMAC-SHA256 under the foreign
-- HMAC key hmac_key_id (32 bytes, indexed: one equality per verify); a
-- bcrypt hash cannot be looked up, so bcrypt rows are found by start, the
-- non-secret start of the key the import carried (Unkey's "start").
-- foreign_hmac_keys keeps the foreign HMAC keys sealed under the keyring,
-- fingerprint = HMAC(derived key, key) so the same key is stored once.
--
-- The janitor deletes expired and revoked credentials past retention
-- (found through the two partial indexes) and prunes the oldest audit
-- events; audit_chain_heads.checkpoint_* record the seq and hash of the
-- last pruned event of each chain, MACed with a key derived from the
-- keyring, so verification starts from there. Times are Unix
-- milliseconds. Matches the other dialect's migration of the same number.
CREATE TABLE foreign_hmac_keys (
    id          TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    fingerprint BLOB NOT NULL,
    sealed      BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (instance_id, fingerprint)
);

-- foreign_key_prefixes lists the foreign prefixes an instance imported
-- keys under, and outlives their re-keying: a presented key that is not
-- keyward-shaped is looked up only when it starts with one of them.
CREATE TABLE foreign_key_prefixes (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    prefix      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (instance_id, prefix)
);

CREATE TABLE foreign_key_hashes (
    credential_id TEXT NOT NULL PRIMARY KEY REFERENCES credentials (id) ON DELETE CASCADE,
    instance_id   TEXT NOT NULL,
    format        TEXT NOT NULL CHECK (format IN ('sha256', 'hmac-sha256', 'bcrypt')),
    prefix        TEXT NOT NULL,
    lookup        BLOB NULL,
    hmac_key_id   TEXT NOT NULL DEFAULT '',
    start         TEXT NOT NULL DEFAULT '',
    bcrypt_hash   TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX foreign_key_hashes_lookup ON foreign_key_hashes (instance_id, lookup);
CREATE INDEX foreign_key_hashes_start ON foreign_key_hashes (instance_id, start) WHERE format = 'bcrypt';
CREATE INDEX foreign_key_hashes_hmac_key ON foreign_key_hashes (hmac_key_id) WHERE hmac_key_id <> '';

CREATE INDEX credentials_expires_at ON credentials (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX credentials_revoked_at ON credentials (revoked_at) WHERE revoked_at IS NOT NULL;

ALTER TABLE audit_chain_heads ADD COLUMN checkpoint_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_chain_heads ADD COLUMN checkpoint_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_chain_heads ADD COLUMN checkpoint_mac TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_chain_heads DROP COLUMN checkpoint_mac;
ALTER TABLE audit_chain_heads DROP COLUMN checkpoint_hash;
ALTER TABLE audit_chain_heads DROP COLUMN checkpoint_seq;
DROP INDEX credentials_revoked_at;
DROP INDEX credentials_expires_at;
DROP TABLE foreign_key_hashes;
DROP TABLE foreign_key_prefixes;
DROP TABLE foreign_hmac_keys;
