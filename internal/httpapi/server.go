package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/clerk"
	"github.com/keyward/keyward/internal/httpapi/freezer"
	"github.com/keyward/keyward/internal/httpapi/mist"
	"github.com/keyward/keyward/internal/httpapi/spatio"
	"github.com/keyward/keyward/internal/httpapi/wire"
	"github.com/keyward/keyward/internal/logging"
)

// Metrics is what the HTTP layer reports to, and serves at /metrics.
type Metrics interface {
	// ObserveRequest records one request by its route pattern (never its
	// path, so no id or secret reaches a label).
	ObserveRequest(route, method string, status int, took time.Duration)
	Handler() http.Handler
}

// DefaultMaxBodyBytes bounds every request body.
const DefaultMaxBodyBytes = 1 << 20

// Config wires the HTTP handler.
type Config struct {
	Authority    *authority.Authority
	Logger       *slog.Logger
	MaxBodyBytes int64            // 0 means DefaultMaxBodyBytes
	Now          func() time.Time // for request ids and durations; defaults to time.Now
	// Metrics, when set, observes every request and is served at /metrics.
	Metrics Metrics
	// PublicURL is where clients reach keyward (for ticket accept URLs).
	PublicURL string
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// finding a caller's address (none by default).
	TrustedProxies []netip.Prefix
	// ClientCertRequired, when set and true, makes the native API (/v1/)
	// refuse requests without a verified TLS client certificate.
	ClientCertRequired func() bool
	// AuthzInstance is the instance GET /v1/authz verifies credentials
	// for; "" means the default instance (the one created at first start).
	AuthzInstance string
	// AuthzHeader is the header /v1/authz reads the credential from (such
	// as X-Api-Key); "" means Authorization: Bearer.
	AuthzHeader string
	// TracerProvider, when set, gives every request a server span (otelhttp),
	// a child of the incoming traceparent as Propagator reads it. Nil means
	// no tracing and no cost: the handler is not wrapped at all.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	// LeakReports configures POST /v1/leaks (secret-scanning reports).
	LeakReports LeakReportConfig
}

// New returns the handler for every surface.
func New(cfg Config) http.Handler {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	mux := http.NewServeMux()
	register(binding{mux}, cfg)
	if known, ok := cfg.Metrics.(interface{ KnownRoutes([]string) }); ok {
		known.KnownRoutes(Routes()) // every route's series at zero before its first request
	}
	var next http.Handler = mux
	if cfg.ClientCertRequired != nil {
		next = requireClientCert(mux, cfg.ClientCertRequired, &native{log: cfg.Logger})
	}
	m := &middleware{next: next, log: cfg.Logger, maxBody: cfg.MaxBodyBytes, now: cfg.Now, metrics: cfg.Metrics, trusted: cfg.TrustedProxies,
		tracing: cfg.TracerProvider != nil}
	if cfg.TracerProvider == nil {
		return m
	}
	prop := cfg.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	return otelhttp.NewHandler(m, "keyward",
		otelhttp.WithTracerProvider(cfg.TracerProvider),
		otelhttp.WithPropagators(prop),
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()), // /metrics is Prometheus'
		otelhttp.WithFilter(func(r *http.Request) bool { return !isProbePath(r.URL.Path) }),
	)
}

// isProbePath tells the paths of probes and scrapes: polled every few
// seconds, they are neither traced nor logged above debug.
func isProbePath(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// maxRequestIDLen bounds an X-Request-Id taken from the client.
const maxRequestIDLen = 128

// incomingRequestID returns the request's X-Request-Id when it is sane:
// one header line of 1 to maxRequestIDLen token characters (RFC 9110
// tchar), so it can go into logs and audit events as it is. Else "".
func incomingRequestID(h http.Header) string {
	v := h["X-Request-Id"]
	if len(v) != 1 || len(v[0]) == 0 || len(v[0]) > maxRequestIDLen {
		return ""
	}
	for i := 0; i < len(v[0]); i++ {
		if !isTokenChar(v[0][i]) {
			return ""
		}
	}
	return v[0]
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// register mounts every surface and the native API on mux.
func register(mux wire.Router, cfg Config) {
	n := &native{auth: cfg.Authority, log: cfg.Logger, publicURL: cfg.PublicURL, trusted: cfg.TrustedProxies,
		authzInstance: cfg.AuthzInstance, authzHeader: http.CanonicalHeaderKey(cfg.AuthzHeader), leaks: cfg.LeakReports}
	n.register(mux)
	clerk.Register(mux, cfg.Authority, cfg.Logger, cfg.PublicURL)
	mist.Register(mux, cfg.Authority, cfg.Logger, cfg.TrustedProxies)
	spatio.Register(mux, cfg.Authority, cfg.Logger)
	freezer.Register(mux, cfg.Authority, cfg.Logger, cfg.PublicURL)
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.Metrics == nil {
			n.writeError(w, r, credential.Errorf(credential.CodeNotFound, "no such endpoint"))
			return
		}
		cfg.Metrics.Handler().ServeHTTP(w, r)
	}))
}

// Routes lists every registered route pattern ("METHOD /path", or a bare
// path for catch-alls), in registration order.
func Routes() []string {
	var rec routeRecorder
	register(&rec, Config{})
	return rec
}

// binding registers on a ServeMux, and binds each surface's catch-all to
// the mux's matcher so it can answer a wrong method with 405.
type binding struct{ mux *http.ServeMux }

func (b binding) Handle(pattern string, h http.Handler) {
	if u, ok := h.(*wire.Unrouted); ok {
		u.Bind(b.mux.Handler)
	}
	b.mux.Handle(pattern, h)
}

type routeRecorder []string

func (r *routeRecorder) Handle(pattern string, _ http.Handler) { *r = append(*r, pattern) }

type middleware struct {
	next    http.Handler
	log     *slog.Logger
	maxBody int64
	now     func() time.Time
	metrics Metrics
	trusted []netip.Prefix
	tracing bool // otelhttp wraps it: name the span and log its trace id
}

// ServeHTTP gives the request an id (the client's X-Request-Id when sane,
// else a new one; echoed either way) and its client address (both carried
// in the context for the audit trail and the brute-force throttle), bounds
// its body, recovers panics and writes one access log line (logging.Request).
// Probes and scrapes are logged at debug only.
func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := m.now()
	id := incomingRequestID(r.Header)
	if id == "" {
		id = credential.NewID(credential.PrefixRequest, start)
	}
	w.Header()["X-Request-Id"] = []string{id}
	ip := wire.ClientIP(r, m.trusted)
	ctx := authority.WithRequest(r.Context(), id, ip)
	r = r.WithContext(ctx)
	r.Body = http.MaxBytesReader(w, r.Body, m.maxBody)
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			m.log.LogAttrs(r.Context(), slog.LevelError, "panic", slog.String("request_id", id), slog.Any("panic", p))
			if rec.status == 0 {
				http.Error(rec, `{"error":{"code":"internal","message":"internal error"}}`, http.StatusInternalServerError)
			}
		}
		level := slog.LevelInfo
		switch {
		case rec.status >= 500 && rec.status < 600: // Freezer's 753 is a client error
			level = slog.LevelError
		case isProbePath(r.URL.Path):
			level = slog.LevelDebug
		}
		took := m.now().Sub(start)
		if m.metrics != nil {
			m.metrics.ObserveRequest(r.Pattern, r.Method, rec.statusOrOK(), took)
		}
		line := logging.Request{ID: id, Method: r.Method, Route: r.Pattern, Path: r.URL.Path, Status: rec.statusOrOK(), Took: took,
			ClientIP: ip, CredentialID: authority.CallerCredentialID(ctx)}
		if m.tracing {
			line.TraceID = m.annotateSpan(r, line)
		}
		m.accessLog(r.Context(), level, line)
	}()
	m.next.ServeHTTP(rec, r)
}

// annotateSpan names the server span after the route that matched (known
// only now, past the mux) and adds the request id, the client address and
// the caller credential id, none of them a secret; it returns the trace id, "" when the
// request is not traced.
func (m *middleware) annotateSpan(r *http.Request, line logging.Request) string {
	span := trace.SpanFromContext(r.Context())
	sc := span.SpanContext()
	if !sc.IsValid() {
		return ""
	}
	if span.IsRecording() {
		if r.Pattern != "" {
			span.SetName(r.Pattern)
			route := r.Pattern
			if i := strings.IndexByte(route, ' '); i >= 0 {
				route = route[i+1:]
			}
			span.SetAttributes(attribute.String("http.route", route))
		}
		span.SetAttributes(attribute.String("keyward.request_id", line.ID))
		if line.ClientIP.IsValid() {
			// otelhttp believes any X-Forwarded-For; this is the address
			// --trusted-proxies vouches for.
			span.SetAttributes(attribute.String("client.address", line.ClientIP.String()))
		}
		if line.CredentialID != "" {
			span.SetAttributes(attribute.String("keyward.credential_id", line.CredentialID))
		}
	}
	return sc.TraceID().String()
}

// requestLogger is a handler with a fast path for the access log line
// (logging.New's handlers have one).
type requestLogger interface {
	LogRequest(ctx context.Context, level slog.Level, req logging.Request)
}

// accessLog writes the request line: through the handler's fast path when
// it has one, else as a record straight to the handler (no caller lookup).
func (m *middleware) accessLog(ctx context.Context, level slog.Level, line logging.Request) {
	h := m.log.Handler()
	if fast, ok := h.(requestLogger); ok {
		fast.LogRequest(ctx, level, line)
		return
	}
	if !h.Enabled(ctx, level) {
		return
	}
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(line.Attrs()...)
	_ = h.Handle(ctx, rec)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) statusOrOK() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
