-- +goose Up
-- Usage analytics: how many verification decisions each credential had per
-- outcome (the authority's reason: valid, not_found, expired, revoked,
-- ip_not_allowed, insufficient_scope, rate_limited) and minute. minute is
-- the start of the minute in Unix milliseconds (UTC). Nodes aggregate in
-- memory and add their counts in batches (count = count + new), so rows
-- from several nodes add up. credential_id is '' for verifications of
-- tokens no credential of the instance answers to. The janitor deletes
-- minutes past --retention-analytics through the index on minute.
-- Matches the other dialect's migration of the same number.
CREATE TABLE verification_counts (
    instance_id   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    minute        BIGINT NOT NULL,
    count         BIGINT NOT NULL,
    PRIMARY KEY (instance_id, credential_id, outcome, minute)
);
CREATE INDEX verification_counts_instance_minute ON verification_counts (instance_id, minute);
CREATE INDEX verification_counts_minute ON verification_counts (minute);

-- +goose Down
DROP TABLE verification_counts;
