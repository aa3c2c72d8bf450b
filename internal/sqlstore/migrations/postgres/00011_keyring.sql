-- +goose Up
-- The keyring: one row holding the data keys (the digest pepper and the
-- sealing key) wrapped under a key derived from the master key, and that
-- master key's key-check value, so a wrong master key is refused at start
-- and a rotation re-wraps the data keys without touching any digest.
-- origin says whether the data keys were derived from the store's first
-- master key (a store made before envelope keys) or generated at random.
-- Times are Unix milliseconds. Matches the SQLite migration of the same
-- number.

CREATE TABLE keyring (
    id           SMALLINT PRIMARY KEY CHECK (id = 1),
    key_check    BYTEA NOT NULL,
    wrapped_keys BYTEA NOT NULL,
    origin       TEXT NOT NULL CHECK (origin IN ('derived', 'random')),
    created_at   BIGINT NOT NULL,
    rotated_at   BIGINT
);

-- +goose Down
DROP TABLE keyring;
