// Package metrics exposes keyward's Prometheus metrics.
//
// A *Metrics owns its own registry (with the Go runtime and process
// collectors), never the global default one, so tests and several servers
// in one process do not collide. Handler serves that registry in the text
// exposition format for the /metrics endpoint.
//
// *Metrics is the authority's Observer (verification outcomes and
// latencies, credential-cache hits and misses, rate-limit refusals); it
// also records HTTP requests (ObserveRequest, called from the HTTP
// middleware), store transaction latencies (Store wraps an
// authority.Store), and the multi-node fallbacks of the invalidation bus
// and the shared rate limiter (Fallback), and the bus's errors (BusError).
//
// Families:
//
//	keyward_verify_total{kind, code}                                counter
//	keyward_verify_duration_seconds{kind}                           histogram
//	keyward_cache_lookups_total{result="hit"|"miss"}                counter
//	keyward_ratelimit_refusals_total{kind}                          counter
//	keyward_http_requests_total{route, method, status}              counter
//	keyward_http_request_duration_seconds{route}                    histogram
//	keyward_store_transaction_duration_seconds{mode, outcome}       histogram
//	keyward_store_commits_total                                     counter
//	keyward_store_committed_writes_total                            counter
//	keyward_fallback_active{component}                              gauge
//	keyward_fallback_total{component}                               counter
//	keyward_bus_errors_total{op="publish"|"subscribe"}              counter
//	keyward_auth_failures_total{outcome="refused"|"throttled"}      counter
//	keyward_build_info{version, revision, go_version}               gauge (always 1)
//
// Every series whose labels are known in advance (each kind and code, each
// route pattern, each fallback component) exists at zero from the start.
//
// Label values are bounded. kind is a credential.Kind (anything else is
// "unknown"), code an authority.Reason (anything else is "other"), route
// the ServeMux pattern that matched ("unmatched" when none did), method
// one of the standard HTTP methods ("OTHER" otherwise), status the
// three-digit code ("other" outside 100..999), component a constant chosen
// by the caller. Ids, raw paths, queries and tokens never become label
// values.
package metrics
