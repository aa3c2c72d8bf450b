package authority

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/keyring"
)

// Authority runs keyward's use cases against a store.
type Authority struct {
	store   Store
	keyring *keyring.Keyring
	clock   Clock
	issuer  string

	limiter        Limiter
	bus            Bus
	observer       Observer
	tracer         Tracer // nil: no spans
	onPublishError func(error)

	cache    *credentialCache
	jwtKeys  *keyCache
	usage    usageRecorder
	counts   verificationCounter
	settings settingsCache
	subs     subscriptions // webhook endpoints per instance
	wake     chan struct{} // a committed change queued deliveries
	notices  noticeState   // notices.go

	refusals        refusalAggregator
	throttle        throttle
	sink            AuditSink
	sinkRequired    bool
	onSinkError     func(error)
	defaultInstance defaultInstance
	foreignGate     foreignGate
}

// Config wires an Authority. Clock defaults to the system clock, Issuer
// (the iss of keyward's JWTs, normally the public URL) to DefaultIssuer.
type Config struct {
	Store   Store
	Keyring *keyring.Keyring
	Clock   Clock
	Issuer  string
	// Limiter counts org token calls per clock hour (required).
	Limiter Limiter
	// Bus, when set, carries cache invalidations to the other nodes that
	// share the store; run RunBus beside the authority.
	Bus Bus
	// Observer, when set, receives verification and cache measurements.
	Observer Observer
	// Tracer, when set, gets a span around each cache fill (the store read
	// a cache miss makes).
	Tracer Tracer
	// CacheBytes is the credential cache's memory budget (0 means
	// DefaultCacheBytes; at least MinCacheBytes).
	CacheBytes int
	// AuthFailureLimit failed authentications per client address in a
	// fixed AuthFailureWindow put the address over budget: its requests are
	// refused with CodeRateLimited until the window ends. Zero values take
	// DefaultAuthFailureLimit and DefaultAuthFailureWindow; a negative
	// limit turns the throttle off. Failures are counted through Limiter.
	AuthFailureLimit  int
	AuthFailureWindow time.Duration
	// AuditSink, when set, also receives every audit event (the
	// --audit-log file). With AuditSinkRequired a mutation whose event the
	// sink refuses fails and is not committed; otherwise OnAuditSinkError
	// is told and the mutation goes ahead.
	AuditSink         AuditSink
	AuditSinkRequired bool
	OnAuditSinkError  func(error)
	// NoAnalytics turns off the per-minute verification counts
	// (serve --analytics=false); Verifications then reads only what is
	// stored.
	NoAnalytics bool
}

// New returns an Authority. Call RunUsageFlusher beside it, or FlushUsage
// before closing the store, so last-used times reach the store.
func New(cfg Config) *Authority {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Limiter == nil {
		panic("authority: Config.Limiter is required")
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	switch {
	case cfg.AuthFailureLimit == 0:
		cfg.AuthFailureLimit = DefaultAuthFailureLimit
	case cfg.AuthFailureLimit < 0:
		cfg.AuthFailureLimit = 0
	}
	if cfg.AuthFailureWindow <= 0 {
		cfg.AuthFailureWindow = DefaultAuthFailureWindow
	}
	if cfg.OnAuditSinkError == nil {
		cfg.OnAuditSinkError = func(error) {}
	}
	a := &Authority{
		store: cfg.Store, keyring: cfg.Keyring, clock: cfg.Clock, issuer: cfg.Issuer, limiter: cfg.Limiter,
		bus: cfg.Bus, observer: cfg.Observer, tracer: cfg.Tracer, cache: newCredentialCache(cfg.CacheBytes), jwtKeys: newKeyCache(),
		throttle: throttle{limit: cfg.AuthFailureLimit, window: cfg.AuthFailureWindow},
		sink:     cfg.AuditSink, sinkRequired: cfg.AuditSinkRequired, onSinkError: cfg.OnAuditSinkError,
		wake: make(chan struct{}, 1),
	}
	a.counts.init(cfg.NoAnalytics)
	if a.bus != nil {
		// Until the first subscription is confirmed, other nodes' changes
		// may go unheard: keep cached credentials only briefly.
		a.cache.setPositiveTTL(FallbackTTL)
	}
	return a
}

// Ready reports whether the store answers.
func (a *Authority) Ready(ctx context.Context) error { return a.store.Ping(ctx) }

type requestIDKey struct{}

// WithRequestID returns a context that carries the request id recorded in
// audit events.
func WithRequestID(ctx context.Context, id string) context.Context {
	return &requestIDContext{Context: ctx, id: id}
}

// WithRequest is WithRequestID and WithClientIP in one allocation, for
// every request a server takes.
func WithRequest(ctx context.Context, id string, ip netip.Addr) context.Context {
	return &requestIDContext{Context: ctx, id: id, ip: ip}
}

// requestIDContext carries the id in one allocation (context.WithValue
// takes two: its node and the boxed string), for every request. It also
// holds the id of the credential the request authenticated with, for the
// access log, which reads it once the handler has returned: it is written
// and read on the request's goroutine only.
type requestIDContext struct {
	context.Context
	id         string
	credential string
	ip         netip.Addr // set by WithRequest
}

func (c *requestIDContext) Value(key any) any {
	if key == (requestIDKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// CallerCredentialID returns the id of the credential the request carried
// by ctx authenticated with (an admin key, a machine key, a PAT, an org
// token), or "" when none did. Never a secret: ids are not bearer values.
func CallerCredentialID(ctx context.Context) string {
	if c, ok := ctx.Value(requestIDKey{}).(*requestIDContext); ok {
		return c.credential
	}
	return ""
}

// noteCaller records on the request in ctx which credential authenticated
// it (see CallerCredentialID). Outside a request it does nothing.
func noteCaller(ctx context.Context, credentialID string) {
	if c, ok := ctx.Value(requestIDKey{}).(*requestIDContext); ok {
		c.credential = credentialID
	}
}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	if c, ok := ctx.Value(requestIDKey{}).(*requestIDContext); ok {
		return c.id
	}
	return ""
}

// audit writes one event inside tx, and to the audit sink if there is
// one. The mutation fails if it cannot be recorded: no change without its
// record (and, with a required sink, without its log line).
func (a *Authority) audit(ctx context.Context, tx AuditTx, c Caller, action, targetKind, targetID string, detail any) error {
	return a.auditAt(ctx, tx, c, a.clock.Now(), action, targetKind, targetID, detail)
}

// auditAt is audit at a given instant: a change's, so the event and the
// rows it records carry the same time.
func (a *Authority) auditAt(ctx context.Context, tx AuditTx, c Caller, now time.Time, action, targetKind, targetID string, detail any) error {
	raw := json.RawMessage("{}")
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return credential.Wrap(credential.CodeInternal, err, "encode audit detail")
		}
		raw = b
	}
	e, err := tx.InsertAuditEvent(ctx, credential.AuditEvent{
		ID:           credential.NewID(credential.PrefixAudit, now),
		InstanceID:   c.InstanceID,
		At:           now,
		ActorKind:    c.actorKind(),
		ActorID:      c.actorID(),
		Action:       action,
		TargetKind:   targetKind,
		TargetID:     targetID,
		RequestID:    RequestID(ctx),
		Outcome:      credential.OutcomeSuccess,
		Detail:       raw,
		ClientIP:     clientIPText(ctx),
		CredentialID: c.CredentialID,
		Count:        1,
	})
	if err != nil {
		return err
	}
	if a.sink == nil {
		return nil
	}
	write := func() error {
		if err := a.writeSink(e); err != nil && a.sinkRequired {
			return credential.Wrap(credential.CodeUnavailable, err, "the audit log cannot be written")
		}
		return nil
	}
	if h, ok := runHooksOf(tx); ok {
		return h.BeforeCommit(write)
	}
	return write()
}

// runHooksOf returns tx's RunHooks, if its store has them (see Store).
func runHooksOf(tx any) (RunHooks, bool) {
	if ch, ok := tx.(*change); ok {
		tx = ch.Tx
	}
	h, ok := tx.(RunHooks)
	return h, ok
}

// writeSink hands a sealed event to the audit sink, telling onSinkError of
// a failure.
func (a *Authority) writeSink(e credential.AuditEvent) error {
	if a.sink == nil {
		return nil
	}
	err := a.sink.WriteAuditEvent(e)
	if err != nil {
		a.onSinkError(err)
	}
	return err
}

// newCredential builds the stored form of a fresh secret: digest and
// display prefix, never the secret itself.
func (a *Authority) newCredential(id, instanceID string, kind credential.Kind, s credential.Secret, subject string, now time.Time) credential.Credential {
	return credential.Credential{
		ID:            id,
		InstanceID:    instanceID,
		Kind:          kind,
		Digest:        a.keyring.Digest(s),
		SearchDigest:  a.keyring.SearchDigestOf(s),
		DisplayPrefix: s.DisplayPrefix(),
		Subject:       subject,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
}

type noObserver struct{}

func (noObserver) Verified(credential.Kind, Reason, time.Duration) {}
func (noObserver) CacheLookup(bool)                                {}
func (noObserver) RateLimited(credential.Kind)                     {}
func (noObserver) AuthFailed(bool)                                 {}

// Now is the authority's clock, for surfaces that state times relative to
// its decisions (Retry-After).
func (a *Authority) Now() time.Time { return a.clock.Now() }

// Issuer is the iss of keyward's JWTs (the public URL when one is set).
func (a *Authority) Issuer() string { return a.issuer }
