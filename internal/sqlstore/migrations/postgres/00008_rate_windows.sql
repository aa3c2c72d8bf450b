-- +goose Up
-- Rate-limit windows shared by every node of a PostgreSQL deployment: one
-- row per key and fixed window, counting the calls admitted in it. Times are
-- Unix milliseconds. A window is counted by one INSERT … ON CONFLICT DO
-- UPDATE … WHERE count < limit RETURNING count, so concurrent nodes never
-- over-admit, and refused calls are not counted. Expired windows are deleted
-- by window_end. The columns match the SQLite migration of the same number;
-- key is compared bytewise ("C"), as on SQLite.

CREATE TABLE rate_windows (
    key          TEXT COLLATE "C" NOT NULL,
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);

CREATE INDEX rate_windows_window_end ON rate_windows (window_end);

-- +goose Down
DROP TABLE rate_windows;
