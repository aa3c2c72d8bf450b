-- +goose Up
-- Workspaces within organizations and their members, what a credential is
-- bound within (a PAT's workspace), and the instance's PAT settings. Times
-- are Unix milliseconds. The columns match the PostgreSQL migration of the
-- same number; only the collation of slug and name columns differs (SQLite
-- compares bytes already).

-- What the credential is bound within; '' for nothing.
ALTER TABLE credentials ADD COLUMN parent_id TEXT NOT NULL DEFAULT '';
CREATE INDEX credentials_instance_kind_parent ON credentials (instance_id, kind, parent_id);

-- The PAT scope catalogue as a JSON array of strings; NULL means the
-- built-in default.
ALTER TABLE instances ADD COLUMN scopes TEXT NULL;
-- The longest PAT lifetime in seconds; 0 means the built-in default, a
-- negative value no maximum.
ALTER TABLE instances ADD COLUMN pat_max_lifetime BIGINT NOT NULL DEFAULT 0;

CREATE TABLE workspaces (
    id          TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE workspace_members (
    instance_id  TEXT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    role         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_instance_user ON workspace_members (instance_id, user_id);

-- +goose Down
DROP TABLE workspace_members;
DROP TABLE workspaces;
ALTER TABLE instances DROP COLUMN pat_max_lifetime;
ALTER TABLE instances DROP COLUMN scopes;
DROP INDEX credentials_instance_kind_parent;
ALTER TABLE credentials DROP COLUMN parent_id;
