// Package pgbus is authority.Bus over PostgreSQL's LISTEN/NOTIFY, for
// nodes that share a PostgreSQL store and no Redis.
//
// Publish sends one NOTIFY (SELECT pg_notify(channel, payload)) on a small
// connection pool created on first use; the payload is the Invalidation as
// JSON. NOTIFY payloads must be shorter than 8000 bytes, so an invalidation
// whose JSON exceeds 7900 bytes is sent as {"all":true} instead: every node
// drops its whole cache, which is safe, merely costly. A notification is
// delivered only when the publishing transaction commits (pg_notify runs in
// its own autocommit statement here) and, by PostgreSQL, to every session
// listening on the channel, the publisher's node included.
//
// Subscribe holds one dedicated connection, outside the pool, that runs
// LISTEN and then waits for notifications. When that connection fails it
// reports connected(false), closes it and reconnects with a capped,
// jittered backoff (50 ms doubling to 2 s) until its context ends, then
// reports connected(true) again. Notifications sent while no connection
// was listening are lost, which is why the authority empties its cache on
// every change of state. An idle connection is pinged every 15 s (with a
// 5 s timeout), so a silently dead one (a half-open TCP connection) is
// noticed within about 20 s, well inside the authority's 30 s positive
// cache lifetime. The listener's application_name is "keyward-pgbus"
// unless the URL sets one.
//
// Channels are database-wide: LISTEN and NOTIFY ignore search_path, so a
// search_path in the URL changes nothing here. Deployments that share one
// database but keep their stores in different schemas must therefore use
// different channel names, or each will empty the others' caches (harmless
// for correctness, costly for hit rates). The default channel is
// "keyward_invalidate". A channel name is a PostgreSQL identifier, quoted,
// so it is case-sensitive and may hold any character but NUL; it must be
// at most 63 bytes long, the longest identifier PostgreSQL keeps.
//
// LISTEN needs a real server session: it does not work through a pooler in
// transaction mode (PgBouncer's pool_mode=transaction), so point the URL at
// PostgreSQL itself or at a session-mode pool.
package pgbus
