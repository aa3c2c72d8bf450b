-- +goose Up
-- Named rate limits (Limiter.TakeAll) shared by every node of a PostgreSQL
-- deployment: one row per key, window length and fixed window, counting
-- the units admitted in it. Times and lengths are Unix milliseconds. A
-- TakeAll locks the rows of all its windows in one INSERT … ON CONFLICT DO
-- UPDATE … RETURNING count (in key order), checks every limit, and adds
-- the costs only if all fit, in one transaction. keep_until is when no
-- call can need the row any more (a sliding limit reads the window after
-- it ends, as its previous one); expired rows are deleted by it. Kept
-- apart from rate_windows (Take), whose rows are keyed by key and start
-- alone. The columns match the SQLite migration of the same number; key
-- is compared bytewise ("C"), as on SQLite.

CREATE TABLE limit_windows (
    key          TEXT COLLATE "C" NOT NULL,
    window_ms    BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    keep_until   BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (key, window_ms, window_start)
);

CREATE INDEX limit_windows_keep_until ON limit_windows (keep_until);

-- +goose Down
DROP TABLE limit_windows;
