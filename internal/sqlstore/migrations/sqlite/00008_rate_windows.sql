-- +goose Up
-- Rate-limit windows, one row per key and fixed window. The table matches
-- the PostgreSQL migration of the same number, so the schemas stay in
-- lockstep, but it is unused on SQLite: a SQLite store serves one node,
-- which counts in memory (Store.Limiter returns nil).

CREATE TABLE rate_windows (
    key          TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);

CREATE INDEX rate_windows_window_end ON rate_windows (window_end);

-- +goose Down
DROP TABLE rate_windows;
