-- +goose Up
-- Actor tokens (one-time impersonation tickets) and the impersonation
-- sessions redeeming one starts. Times are Unix milliseconds; NULL means
-- "not set". The columns match the PostgreSQL migration of the same number;
-- only the blob type and the collation of actor_tokens.id differ (SQLite
-- compares bytes already).

CREATE TABLE actor_tokens (
    id                   TEXT NOT NULL PRIMARY KEY,
    instance_id          TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    user_id              TEXT NOT NULL,
    actor                TEXT NOT NULL, -- the actor object, JSON as given
    status               TEXT NOT NULL,
    digest               BLOB NOT NULL UNIQUE,
    expires_at           BIGINT NOT NULL,
    session_max_duration BIGINT NOT NULL, -- seconds
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX actor_tokens_instance_user_created ON actor_tokens (instance_id, user_id, created_at);
CREATE INDEX actor_tokens_instance_status ON actor_tokens (instance_id, status);

CREATE TABLE impersonation_sessions (
    id             TEXT NOT NULL PRIMARY KEY,
    instance_id    TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    actor_token_id TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    actor          TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT NULL
);

-- +goose Down
DROP TABLE impersonation_sessions;
DROP TABLE actor_tokens;
