-- +goose Up
-- Organizations, their sites and sitegroups, and the instance's org token
-- rate limit. Times are Unix milliseconds. The columns match the PostgreSQL
-- migration of the same number; only the collation of slug and name
-- columns differs (SQLite compares bytes already).

-- Calls per org token per clock hour; 0 means the built-in default.
ALTER TABLE instances ADD COLUMN org_token_hourly_limit BIGINT NOT NULL DEFAULT 0;

CREATE TABLE organizations (
    id          TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (instance_id, slug)
);
CREATE INDEX organizations_instance_created ON organizations (instance_id, created_at);

CREATE TABLE sites (
    id          TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX sites_org ON sites (org_id);

CREATE TABLE sitegroups (
    id          TEXT NOT NULL PRIMARY KEY,
    instance_id TEXT NOT NULL,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX sitegroups_org ON sitegroups (org_id);

CREATE TABLE sitegroup_sites (
    sitegroup_id TEXT NOT NULL REFERENCES sitegroups (id) ON DELETE CASCADE,
    site_id      TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    PRIMARY KEY (sitegroup_id, site_id)
);
CREATE INDEX sitegroup_sites_site ON sitegroup_sites (site_id);

-- +goose Down
DROP TABLE sitegroup_sites;
DROP TABLE sitegroups;
DROP TABLE sites;
DROP TABLE organizations;
ALTER TABLE instances DROP COLUMN org_token_hourly_limit;
