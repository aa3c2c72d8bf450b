// Package sqlstore is keyward's storage adapter: it implements
// authority.Store on SQLite (modernc.org/sqlite, pure Go) and on PostgreSQL
// (pgx through database/sql).
//
// Each query is written once, in the SQL both engines share, with ?
// placeholders that are rebound to $n for PostgreSQL; the few real
// differences live in one dialect value. Schema migrations are embedded,
// one directory per dialect numbered in lockstep, and applied by Open.
//
// Every tenant query carries instance_id in its WHERE clause, so a row of
// another instance is simply not found. Times are stored as Unix
// milliseconds, NULL meaning "not set". Database errors are translated in
// one place into *credential.Error codes.
//
// On SQLite the store keeps two pools on one WAL file: a single writer
// connection (BEGIN IMMEDIATE, synchronous=FULL) for Update, which
// serializes writes without lock contention, and a small query-only pool
// for View, which reads concurrently with the writer. A third connection
// checkpoints the WAL beside the writer (checkpoint.go).
package sqlstore
