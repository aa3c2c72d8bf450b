// Package apitest starts a real keyward HTTP server over a real store for
// surface tests: an injected clock, captured debug logs, an instance with
// its admin key, and a record of every secret handed out so tests can scan
// logs, responses and database files for leaks.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/logging"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/testkit"
	"github.com/keyward/keyward/internal/tracing"
)

// Env is one running server and what a test needs to drive it.
type Env struct {
	URL        string
	Clock      *testkit.Clock
	Auth       *authority.Authority
	Store      authority.Store
	InstanceID string
	AdminKey   string
	Logs       *Buffer

	mu      sync.Mutex
	secrets []string
	srv     *httptest.Server
}

// Close stops the server, waiting for the requests in flight to finish
// (Start's cleanup does it too).
func (e *Env) Close() { e.srv.Close() }

// Options adjust the server Start runs.
type Options struct {
	TrustedProxies []netip.Prefix
	// Metrics, when set, instruments the authority and serves /metrics.
	Metrics *metrics.Metrics
	// Wrap, when set, wraps the server's handler: a surface's tests check
	// every response against the vendor's spec this way.
	Wrap func(http.Handler) http.Handler
	// AuthFailureLimit and AuthFailureWindow set the brute-force throttle.
	// Zero turns it off: surface tests send many bad credentials from one
	// address on purpose; the throttle's own tests set a budget.
	AuthFailureLimit  int
	AuthFailureWindow time.Duration
	// AuditSink and AuditSinkRequired are passed to the authority.
	AuditSink         authority.AuditSink
	AuditSinkRequired bool
	// PublicURL makes the server's own URL its public URL and the iss of
	// its JWTs (for OAuth discovery clients, which insist they match).
	PublicURL bool
	// AuthzInstance and AuthzHeader configure GET /v1/authz.
	AuthzInstance string
	AuthzHeader   string
	// Tracing, when set, traces the server and the authority's ports.
	Tracing *tracing.Tracing
	// LeakReports configures POST /v1/leaks.
	LeakReports httpapi.LeakReportConfig
}

// Start serves keyward over store with a fake clock and debug logging.
func Start(t testing.TB, store authority.Store) *Env {
	t.Helper()
	return StartWith(t, store, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, store authority.Store, opts Options) *Env {
	t.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{7}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock()
	cfg := authority.Config{Store: store, Keyring: keys, Clock: clock, Limiter: inmem.NewLimiter(),
		AuthFailureLimit: opts.AuthFailureLimit, AuthFailureWindow: opts.AuthFailureWindow,
		AuditSink: opts.AuditSink, AuditSinkRequired: opts.AuditSinkRequired}
	if cfg.AuthFailureLimit == 0 {
		cfg.AuthFailureLimit = -1
	}
	var httpMetrics httpapi.Metrics
	if opts.Metrics != nil {
		cfg.Store, cfg.Observer, httpMetrics = opts.Metrics.Store(store), opts.Metrics, opts.Metrics
		if counted, ok := store.(interface{ CommitCounts() (int64, int64) }); ok {
			opts.Metrics.CommitCounts(counted.CommitCounts) // as serve does
		}
	}
	opts.Tracing.Instrument(&cfg)
	srv := httptest.NewUnstartedServer(nil)
	publicURL := ""
	if opts.PublicURL {
		publicURL = "http://" + srv.Listener.Addr().String()
		cfg.Issuer = publicURL
	}
	auth := authority.New(cfg)
	logs := &Buffer{}
	log, err := logging.New(logs, "json", slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.Config{Authority: auth, Logger: log, TrustedProxies: opts.TrustedProxies, Metrics: httpMetrics,
		PublicURL: publicURL, AuthzInstance: opts.AuthzInstance, AuthzHeader: opts.AuthzHeader, LeakReports: opts.LeakReports}
	if opts.Tracing != nil {
		api.TracerProvider, api.Propagator = opts.Tracing.Provider, opts.Tracing.Propagator
	}
	var handler http.Handler = httpapi.New(api)
	if opts.Wrap != nil {
		handler = opts.Wrap(handler)
	}
	srv.Config.Handler = handler
	srv.Start()
	t.Cleanup(srv.Close)
	e := &Env{URL: srv.URL, Clock: clock, Auth: auth, Store: store, Logs: logs, srv: srv}
	e.InstanceID, e.AdminKey = e.NewInstance(t, "test")
	return e
}

// NewInstance creates another tenant and returns its id and admin key.
func (e *Env) NewInstance(t testing.TB, name string) (string, string) {
	t.Helper()
	in, key, err := e.Auth.CreateInstance(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(key.Reveal())
	return in.ID, key.Reveal()
}

// Remember records a secret the test saw handed out.
func (e *Env) Remember(secrets ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, secrets...)
}

// Secrets returns every secret remembered so far.
func (e *Env) Secrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.secrets...)
}

// Response is a captured HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return v
}

// Do sends a request with key as the bearer credential ("" for none). A
// string or []byte body is sent as is; anything else is JSON-encoded.
func (e *Env) Do(t testing.TB, method, path, key string, body any) Response {
	t.Helper()
	return e.DoWith(t, method, path, body, http.Header{"Authorization": bearer(key)})
}

func bearer(key string) []string {
	if key == "" {
		return nil
	}
	return []string{"Bearer " + key}
}

// DoWith sends a request with the given headers.
func (e *Env) DoWith(t testing.TB, method, path string, body any, header http.Header) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: out}
}

// Buffer is a goroutine-safe log sink.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
