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

-- +goose Down
DROP TABLE credits;
DROP TABLE roles;
