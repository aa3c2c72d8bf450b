package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/httpapi/clerk"
	"github.com/keyward/keyward/internal/httpapi/freezer"
	"github.com/keyward/keyward/internal/httpapi/mist"
	"github.com/keyward/keyward/internal/httpapi/spatio"
	"github.com/keyward/keyward/internal/httpapi/wire"
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
	var next http.Handler = mux
	if cfg.ClientCertRequired != nil {
		next = requireClientCert(mux, cfg.ClientCertRequired, &native{log: cfg.Logger})
	}
	return &middleware{next: next, log: cfg.Logger, maxBody: cfg.MaxBodyBytes, now: cfg.Now, metrics: cfg.Metrics, trusted: cfg.TrustedProxies}
}

// register mounts every surface and the native API on mux.
func register(mux wire.Router, cfg Config) {
	n := &native{auth: cfg.Authority, log: cfg.Logger, publicURL: cfg.PublicURL, trusted: cfg.TrustedProxies,
		authzInstance: cfg.AuthzInstance, authzHeader: http.CanonicalHeaderKey(cfg.AuthzHeader)}
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
}

// ServeHTTP gives the request an id and its client address (both carried
// in the context for the audit trail and the brute-force throttle), bounds its body, recovers panics and
// writes one access log line: method, route pattern, path (never the query,
// which may carry a ticket), status and duration.
func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := m.now()
	id := credential.NewID(credential.PrefixRequest, start)
	w.Header()["X-Request-Id"] = []string{id}
	ctx := authority.WithRequestID(r.Context(), id)
	r = r.WithContext(authority.WithClientIP(ctx, wire.ClientIP(r, m.trusted)))
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
		if rec.status >= 500 && rec.status < 600 { // Freezer's 753 is a client error
			level = slog.LevelError
		}
		took := m.now().Sub(start)
		if m.metrics != nil {
			m.metrics.ObserveRequest(r.Pattern, r.Method, rec.statusOrOK(), took)
		}
		m.accessLog(r, level, id, rec.statusOrOK(), took)
	}()
	m.next.ServeHTTP(rec, r)
}

// requestLogger is a handler with a fast path for the access log line
// (logging.New's handlers have one).
type requestLogger interface {
	LogRequest(ctx context.Context, level slog.Level, id, method, route, path string, status int, took time.Duration)
}

// accessLog writes the request line: through the handler's fast path when
// it has one, else as a record straight to the handler (no caller lookup).
func (m *middleware) accessLog(r *http.Request, level slog.Level, id string, status int, took time.Duration) {
	h := m.log.Handler()
	if fast, ok := h.(requestLogger); ok {
		fast.LogRequest(r.Context(), level, id, r.Method, r.Pattern, r.URL.Path, status, took)
		return
	}
	if !h.Enabled(r.Context(), level) {
		return
	}
	rec := slog.NewRecord(time.Now(), level, "request", 0)
	rec.AddAttrs(
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.String("route", r.Pattern),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", took),
	)
	_ = h.Handle(r.Context(), rec)
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
