package metrics

import (
	"context"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

const namespace = "keyward"

// Histogram buckets, in seconds.
var (
	// verifyBuckets suit an in-memory verification (µs) up to a cold
	// store read or an RSA signature check (ms): 25µs … 250ms.
	verifyBuckets = []float64{
		25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3,
	}
	// httpBuckets cover 100µs … 10s.
	httpBuckets = []float64{
		100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
		1, 2.5, 5, 10,
	}
	// storeBuckets cover 25µs … 5s (a busy SQLite writer can wait).
	storeBuckets = []float64{
		25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
		1, 2.5, 5,
	}
)

// Metrics holds keyward's collectors and the registry they live in. The
// zero value is not usable; call New. All methods are safe for concurrent
// use.
type Metrics struct {
	reg *prometheus.Registry

	verifyTotal    *prometheus.CounterVec
	verifyDuration *prometheus.HistogramVec
	cacheHit       prometheus.Counter
	cacheMiss      prometheus.Counter
	rateLimited    *prometheus.CounterVec
	authFailures   *prometheus.CounterVec

	httpTotal    *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	storeDuration *prometheus.HistogramVec

	// series caches the resolved children of the labelled vectors, so a
	// request looks its series up in one map read instead of hashing label
	// values and allocating their slice (bounded: the labels are).
	seriesMu      sync.RWMutex
	requestSeries map[requestKey]requestChildren
	verifySeries  map[verifyKey]verifyChildren

	fallbackActive *prometheus.GaugeVec
	fallbackTotal  *prometheus.CounterVec
	fallbackMu     sync.Mutex
	fallbackState  map[string]bool

	buildInfo *prometheus.GaugeVec
	busErrors *prometheus.CounterVec
}

// Components that can fall back to single-node operation (Fallback).
var fallbackComponents = []string{"bus", "ratelimit"}

// knownKinds and knownReasons are the label values kindLabel and
// codeLabel keep, pre-initialised so their series exist at zero.
var (
	knownKinds = []credential.Kind{credential.KindAdminKey, credential.KindMachineKey, credential.KindM2MToken,
		credential.KindOrgToken, credential.KindPAT, credential.KindActorTicket}
	knownReasons = []authority.Reason{authority.ReasonValid, authority.ReasonNotFound, authority.ReasonExpired,
		authority.ReasonRevoked, authority.ReasonIPNotAllowed, authority.ReasonInsufficientScope, authority.ReasonRateLimited}
)

var _ authority.Observer = (*Metrics)(nil)

// New returns a Metrics with a fresh registry holding keyward's
// collectors and the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		verifyTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "verify_total",
			Help: "Verification decisions by credential kind and outcome code.",
		}, []string{"kind", "code"}),
		verifyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "verify_duration_seconds",
			Help:    "Time taken by one verification, by credential kind.",
			Buckets: verifyBuckets,
		}, []string{"kind"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "ratelimit_refusals_total",
			Help: "Calls refused by a rate limit, by credential kind.",
		}, []string{"kind"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "auth_failures_total",
			Help: "Refused authentications to keyward, by outcome: refused (401) or throttled (429, the address was over its failure budget).",
		}, []string{"outcome"}),
		httpTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request duration by route pattern.",
			Buckets: httpBuckets,
		}, []string{"route"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_transaction_duration_seconds",
			Help:    "Store transaction duration by mode (update, view) and outcome (ok, error).",
			Buckets: storeBuckets,
		}, []string{"mode", "outcome"}),
		fallbackActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "fallback_active",
			Help: "1 while a component runs on its single-node fallback, else 0.",
		}, []string{"component"}),
		fallbackTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "fallback_total",
			Help: "Transitions of a component to its single-node fallback.",
		}, []string{"component"}),
		busErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bus_errors_total",
			Help: "Errors of the invalidation bus by operation (publish, subscribe).",
		}, []string{"op"}),
		fallbackState: make(map[string]bool),
		requestSeries: make(map[requestKey]requestChildren),
		verifySeries:  make(map[verifyKey]verifyChildren),
	}
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; its labels name the running build (version, VCS revision, Go version).",
	}, []string{"version", "revision", "go_version"})
	m.SetBuildInfo(buildFromBinary())
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "cache_lookups_total",
		Help: "Credential-cache lookups by result (hit, miss).",
	}, []string{"result"})
	m.cacheHit = cache.WithLabelValues("hit")
	m.cacheMiss = cache.WithLabelValues("miss")
	// Expose the store series at zero from the start, so rates and
	// error ratios exist before the first error.
	for _, mode := range []string{"update", "view"} {
		for _, outcome := range []string{"ok", "error"} {
			m.storeDuration.WithLabelValues(mode, outcome)
		}
	}
	// Likewise every series whose labels are known in advance: a rate or
	// an increase over a series that appears with its first event misses
	// that event.
	for _, kind := range knownKinds {
		for _, reason := range knownReasons {
			m.verifyTotal.WithLabelValues(string(kind), string(reason))
		}
		m.verifyDuration.WithLabelValues(string(kind))
		m.rateLimited.WithLabelValues(string(kind))
	}
	for _, outcome := range []string{"refused", "throttled"} {
		m.authFailures.WithLabelValues(outcome)
	}
	for _, component := range fallbackComponents {
		m.fallbackActive.WithLabelValues(component)
		m.fallbackTotal.WithLabelValues(component)
	}
	m.KnownRoutes(nil)
	// Exposed at zero from the start, so an alert on their rate works
	// before the first error.
	for _, op := range []string{"publish", "subscribe"} {
		m.busErrors.WithLabelValues(op)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.verifyTotal, m.verifyDuration, cache, m.rateLimited, m.authFailures,
		m.httpTotal, m.httpDuration,
		m.storeDuration,
		m.fallbackActive, m.fallbackTotal,
		m.buildInfo,
		m.busErrors,
	)
	return m
}

// CommitCounts exposes a store's group commits: counts reports how many
// transactions committed and how many writes they carried (sqlstore's
// CommitCounts). Call it once per Metrics.
func (m *Metrics) CommitCounts(counts func() (commits, writes int64)) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_commits_total",
			Help: "Group-commit transactions committed (each one fsync on SQLite).",
		}, func() float64 { c, _ := counts(); return float64(c) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_committed_writes_total",
			Help: "Writes (Update calls) those transactions carried; ÷ store_commits_total is the mean batch.",
		}, func() float64 { _, w := counts(); return float64(w) }),
	)
}

// SetBuildInfo names the running build in keyward_build_info (New sets
// what the binary's build info says; a release build knows its version
// better). Empty values are "unknown".
func (m *Metrics) SetBuildInfo(version, revision, goVersion string) {
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(orUnknown(version), orUnknown(revision), orUnknown(goVersion)).Set(1)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// buildFromBinary reads the module version and VCS revision Go recorded.
func buildFromBinary() (version, revision, goVersion string) {
	goVersion = runtime.Version()
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", "", goVersion
	}
	version = info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	return version, revision, goVersion
}

// KnownRoutes puts the HTTP series of every route pattern ("METHOD /path",
// or a bare path) at zero: the duration histogram by route, and the
// request counter by route, method and status 200 (the other statuses of
// a route are not known before they happen). "unmatched" is always known.
func (m *Metrics) KnownRoutes(patterns []string) {
	m.httpDuration.WithLabelValues("unmatched")
	for _, p := range patterns {
		m.httpDuration.WithLabelValues(p)
		if method, _, ok := strings.Cut(p, " "); ok {
			m.httpTotal.WithLabelValues(p, methodLabel(method), "200")
		}
	}
}

// Registry returns the registry behind Handler, for registering further
// collectors (for example database/sql pool statistics).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Verified records one verification decision (authority.Observer).
func (m *Metrics) Verified(kind credential.Kind, reason authority.Reason, took time.Duration) {
	key := verifyKey{kindLabel(kind), codeLabel(reason)}
	m.seriesMu.RLock()
	c, ok := m.verifySeries[key]
	m.seriesMu.RUnlock()
	if !ok {
		c = verifyChildren{m.verifyTotal.WithLabelValues(key.kind, key.code), m.verifyDuration.WithLabelValues(key.kind)}
		m.seriesMu.Lock()
		m.verifySeries[key] = c
		m.seriesMu.Unlock()
	}
	c.total.Inc()
	c.duration.Observe(took.Seconds())
}

type verifyKey struct{ kind, code string }

type verifyChildren struct {
	total    prometheus.Counter
	duration prometheus.Observer
}

// CacheLookup records a credential-cache lookup (authority.Observer).
func (m *Metrics) CacheLookup(hit bool) {
	if hit {
		m.cacheHit.Inc()
	} else {
		m.cacheMiss.Inc()
	}
}

// RateLimited records a call refused by a rate limit (authority.Observer).
func (m *Metrics) RateLimited(kind credential.Kind) {
	m.rateLimited.WithLabelValues(kindLabel(kind)).Inc()
}

// AuthFailed counts one refused authentication: throttled when the
// address was over its failure budget.
func (m *Metrics) AuthFailed(throttled bool) {
	outcome := "refused"
	if throttled {
		outcome = "throttled"
	}
	m.authFailures.WithLabelValues(outcome).Inc()
}

// ObserveRequest records one HTTP request. route must be the ServeMux
// pattern that matched (http.Request.Pattern), never the request path; an
// empty route is recorded as "unmatched".
func (m *Metrics) ObserveRequest(route, method string, status int, took time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	if status < 100 || status > 999 {
		status = 0 // statusLabel's "other"
	}
	key := requestKey{route, methodLabel(method), status}
	m.seriesMu.RLock()
	c, ok := m.requestSeries[key]
	m.seriesMu.RUnlock()
	if !ok {
		c = requestChildren{m.httpTotal.WithLabelValues(key.route, key.method, statusLabel(status)), m.httpDuration.WithLabelValues(route)}
		m.seriesMu.Lock()
		m.requestSeries[key] = c
		m.seriesMu.Unlock()
	}
	c.total.Inc()
	c.duration.Observe(took.Seconds())
}

type requestKey struct {
	route, method string
	status        int
}

type requestChildren struct {
	total    prometheus.Counter
	duration prometheus.Observer
}

// Fallback records whether component (a constant such as "bus" or
// "ratelimit") currently runs on its single-node fallback. The gauge
// follows active; the counter counts transitions to active, so repeated
// calls with the same state count once.
func (m *Metrics) Fallback(component string, active bool) {
	m.fallbackMu.Lock()
	defer m.fallbackMu.Unlock()
	was := m.fallbackState[component]
	m.fallbackState[component] = active
	if active {
		m.fallbackActive.WithLabelValues(component).Set(1)
		if !was {
			m.fallbackTotal.WithLabelValues(component).Inc()
		}
	} else {
		m.fallbackActive.WithLabelValues(component).Set(0)
		// Expose the counter at zero for a component seen only healthy.
		m.fallbackTotal.WithLabelValues(component)
	}
}

// BusError counts one error of the invalidation bus: op is "publish" (a
// committed change other nodes may hear of late) or "subscribe" (a failed
// connect or a lost connection, retried).
func (m *Metrics) BusError(op string) {
	if op != "publish" {
		op = "subscribe"
	}
	m.busErrors.WithLabelValues(op).Inc()
}

// Store returns s with every Update and View (and single-statement
// credential read, as a view) timed into
// keyward_store_transaction_duration_seconds. Ping and Close pass through.
func (m *Metrics) Store(s authority.Store) authority.Store {
	return &store{
		next:     s,
		updateOK: m.storeDuration.WithLabelValues("update", "ok"),
		updateKO: m.storeDuration.WithLabelValues("update", "error"),
		viewOK:   m.storeDuration.WithLabelValues("view", "ok"),
		viewKO:   m.storeDuration.WithLabelValues("view", "error"),
	}
}

type store struct {
	next                               authority.Store
	updateOK, updateKO, viewOK, viewKO prometheus.Observer
}

func (s *store) Update(ctx context.Context, fn func(authority.Tx) error) error {
	start := time.Now()
	err := s.next.Update(ctx, fn)
	observe(s.updateOK, s.updateKO, err, time.Since(start))
	return err
}

func (s *store) View(ctx context.Context, fn func(authority.Tx) error) error {
	start := time.Now()
	err := s.next.View(ctx, fn)
	observe(s.viewOK, s.viewKO, err, time.Since(start))
	return err
}

// CredentialByDigest times the single-statement read as a view, and falls
// back to one when the wrapped store has no such read.
func (s *store) CredentialByDigest(ctx context.Context, d credential.Digest) (credential.Credential, error) {
	start := time.Now()
	var (
		cred credential.Credential
		err  error
	)
	if r, ok := s.next.(authority.DigestReader); ok {
		cred, err = r.CredentialByDigest(ctx, d)
	} else {
		err = s.next.View(ctx, func(tx authority.Tx) error {
			var err error
			cred, err = tx.CredentialByDigest(ctx, d)
			return err
		})
	}
	observe(s.viewOK, s.viewKO, err, time.Since(start))
	return cred, err
}

func (s *store) Ping(ctx context.Context) error { return s.next.Ping(ctx) }
func (s *store) Close() error                   { return s.next.Close() }

func observe(ok, ko prometheus.Observer, err error, took time.Duration) {
	if err != nil {
		ko.Observe(took.Seconds())
		return
	}
	ok.Observe(took.Seconds())
}

// kindLabel bounds the kind label to the known credential kinds.
func kindLabel(k credential.Kind) string {
	switch k {
	case credential.KindAdminKey, credential.KindMachineKey, credential.KindM2MToken,
		credential.KindOrgToken, credential.KindPAT, credential.KindActorTicket:
		return string(k)
	}
	return "unknown"
}

// codeLabel bounds the code label to the known reasons.
func codeLabel(r authority.Reason) string {
	switch r {
	case authority.ReasonValid, authority.ReasonNotFound, authority.ReasonExpired,
		authority.ReasonRevoked, authority.ReasonIPNotAllowed,
		authority.ReasonInsufficientScope, authority.ReasonRateLimited:
		return string(r)
	}
	return "other"
}

// methodLabel bounds the method label: a client can send any token as a
// method, so only the standard ones are kept.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions,
		http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// statusLabel renders a status code, bounded to three digits (Freezer
// uses non-standard codes such as 753).
func statusLabel(status int) string {
	if status < 100 || status > 999 {
		return "other"
	}
	return strconv.Itoa(status)
}

// SpendCredits and RefundCredits forward the verify path's credits
// statements (authority.CreditSpender), timed as updates.
func (s *store) SpendCredits(ctx context.Context, instanceID, ownerID string, cost int64, boundary, now time.Time) (bool, int64, error) {
	sp, ok := s.next.(authority.CreditSpender)
	if !ok {
		return false, 0, credential.Errorf(credential.CodeInternal, "the store cannot take credits")
	}
	start := time.Now()
	taken, remaining, err := sp.SpendCredits(ctx, instanceID, ownerID, cost, boundary, now)
	observe(s.updateOK, s.updateKO, err, time.Since(start))
	return taken, remaining, err
}

func (s *store) RefundCredits(ctx context.Context, instanceID, ownerID string, amount int64) error {
	sp, ok := s.next.(authority.CreditSpender)
	if !ok {
		return credential.Errorf(credential.CodeInternal, "the store cannot take credits")
	}
	start := time.Now()
	err := sp.RefundCredits(ctx, instanceID, ownerID, amount)
	observe(s.updateOK, s.updateKO, err, time.Since(start))
	return err
}

// The wrapper must forward the verify path's credits statements, or a
// served verify of a credential with credits fails.
var _ authority.CreditSpender = (*store)(nil)
