-- +goose Up
-- Clients (OpenStack Freezer's): hosts or agents a user registered, each
-- under a client_id of the user's choosing, unique per user of an instance.
-- The document is the JSON text as given. Times are Unix milliseconds. The
-- columns match the PostgreSQL migration of the same number; only the
-- collation of user_id and client_id differs (SQLite compares bytes
-- already).

CREATE TABLE clients (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    doc         TEXT NOT NULL, -- the client-info object, JSON as given
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (instance_id, user_id, client_id)
);

-- +goose Down
DROP TABLE clients;
