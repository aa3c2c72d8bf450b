// Command keyward-bench measures how fast keyward verifies credentials.
//
// It drives POST /v1/verify with a closed loop of concurrent clients over
// keep-alive connections and, in the same run and with the same load code,
// a no-op net/http server that answers a body of the same size. Baseline and
// keyward take turns per concurrency level, so the drift of a shared, noisy
// machine hits both alike: the ratio keyward ÷ baseline is the number to
// compare between runs, not the absolute requests per second.
//
// By default it builds keyward from the module it is run in, starts it on
// SQLite in a temporary directory with a generated admin key, creates
// machines (POST /clerk/v1/machines), mints M2M tokens with their keys
// (POST /clerk/v1/m2m_tokens), measures, prints a table and stops the server.
// With --database-url and --master-key the started server runs on
// PostgreSQL instead; with --url and --admin-key it targets a server that is
// already running and starts nothing.
//
// Examples:
//
//	go run ./cmd/keyward-bench --duration 3s
//	go run ./cmd/keyward-bench --url http://127.0.0.1:8080 --admin-key sk_live_… --format jwt --concurrency 1,64 --json
//
// Run it with --help for every flag. It exits non-zero if setup fails or
// more than 1 % of the requests of any run fail (non-200 or "valid":false).
package main
