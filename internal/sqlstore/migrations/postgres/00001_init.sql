-- +goose Up
-- Times are Unix milliseconds; NULL means "not set". The columns match the
-- SQLite migration of the same number; only the blob type and the
-- collation of machines.name differ.
CREATE TABLE instances (
    id         TEXT NOT NULL PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE credentials (
    id                TEXT NOT NULL PRIMARY KEY,
    instance_id       TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    kind              TEXT NOT NULL,
    digest            BYTEA NOT NULL UNIQUE,
    display_prefix    TEXT NOT NULL,
    subject           TEXT NOT NULL DEFAULT '',
    expires_at        BIGINT NULL,
    revoked_at        BIGINT NULL,
    revocation_reason TEXT NOT NULL DEFAULT '',
    last_used_at      BIGINT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    sealed            BYTEA NULL,
    attrs             TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX credentials_instance_kind_subject ON credentials (instance_id, kind, subject);

CREATE TABLE machines (
    id                TEXT NOT NULL PRIMARY KEY,
    instance_id       TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    -- Byte order and ASCII-only LOWER(), as on SQLite, whatever the
    -- database's locale: listing by name sorts and matches the same on both.
    name              TEXT COLLATE "C" NOT NULL,
    default_token_ttl BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX machines_instance_created ON machines (instance_id, created_at);
CREATE INDEX machines_instance_name ON machines (instance_id, name);

CREATE TABLE machine_scopes (
    instance_id     TEXT NOT NULL,
    from_machine_id TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    to_machine_id   TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (from_machine_id, to_machine_id)
);
CREATE INDEX machine_scopes_to ON machine_scopes (to_machine_id);

-- No foreign key: the audit trail outlives what it describes.
CREATE TABLE audit_events (
    id          TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL,
    at          BIGINT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_instance_at ON audit_events (instance_id, at);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE machine_scopes;
DROP TABLE machines;
DROP TABLE credentials;
DROP TABLE instances;
