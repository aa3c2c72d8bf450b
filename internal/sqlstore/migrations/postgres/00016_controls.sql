-- +goose Up
-- Controls at verify time (authority/controls.go). roles are an
-- instance's named sets of permissions (a JSON array of names), which a
-- credential's controls name. credits are a credential's remaining uses:
-- the count changes on every verify, so it lives here and not in the
-- credential's cached attrs; owner_id is the credential's id. A verify
-- takes credits with one conditional UPDATE (remaining >= cost), setting
-- remaining to refill_amount first when refilled_at is before the
-- latest refill boundary (computed by the authority from its clock).
-- Times are Unix milliseconds. Matches the other dialect's migration of
-- the same number.
CREATE TABLE roles (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (instance_id, name)
);

CREATE TABLE credits (
    instance_id   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    owner_id      TEXT NOT NULL,
    remaining     BIGINT NOT NULL,
    refill_amount BIGINT NOT NULL,
    refilled_at   BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (instance_id, owner_id)
);

-- identities group credentials (a customer, a tenant of the user's own
-- product) under an external_id unique per instance; their named rate
-- limits (ratelimits, a JSON array) and credits (credits: the refill rule
-- as JSON, '' for none; the count is a credits row owned by the identity's
-- id) are shared by their credentials. identity_credentials links a
-- credential to its identity (at most one), for listing and for revoking
-- them when the identity is deleted.
CREATE TABLE identities (
    id          TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    meta        TEXT NOT NULL,
    ratelimits  TEXT NOT NULL,
    credits     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (instance_id, external_id)
);

CREATE TABLE identity_credentials (
    instance_id   TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    identity_id   TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    PRIMARY KEY (instance_id, credential_id)
);
CREATE INDEX identity_credentials_identity ON identity_credentials (identity_id);

-- +goose Down
DROP TABLE identity_credentials;
DROP TABLE identities;
DROP TABLE credits;
DROP TABLE roles;
