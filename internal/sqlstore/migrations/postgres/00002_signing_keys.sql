-- +goose Up
-- An instance's JWT signing keys. Times are Unix milliseconds; NULL means
-- "not set". The columns match the SQLite migration of the same number;
-- only the blob type differs.
CREATE TABLE signing_keys (
    id               TEXT NOT NULL PRIMARY KEY, -- the JWT kid
    instance_id      TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    algorithm        TEXT NOT NULL,
    public_key       BYTEA NOT NULL,
    sealed           BYTEA NOT NULL,
    created_at       BIGINT NOT NULL,
    retired_at       BIGINT NULL,
    tokens_expire_at BIGINT NULL
);
CREATE INDEX signing_keys_instance_created ON signing_keys (instance_id, created_at);

-- +goose Down
DROP TABLE signing_keys;
