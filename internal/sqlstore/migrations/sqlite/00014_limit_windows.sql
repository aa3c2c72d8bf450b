-- +goose Up
-- Named rate-limit windows, one row per key, window length and fixed
-- window. The table matches the PostgreSQL migration of the same number, so
-- the schemas stay in lockstep, but it is unused on SQLite: a SQLite store
-- serves one node, which counts in memory (Store.Limiter returns nil).

CREATE TABLE limit_windows (
    key          TEXT NOT NULL,
    window_ms    BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    keep_until   BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (key, window_ms, window_start)
);

CREATE INDEX limit_windows_keep_until ON limit_windows (keep_until);

-- +goose Down
DROP TABLE limit_windows;
