package tracing

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// Store returns s with a span around every transaction (store.update,
// store.view) and single-statement credential read
// (store.credential_by_digest). Ping and Close pass through.
func (t *Tracing) Store(s authority.Store) authority.Store { return &store{next: s, t: t} }

type store struct {
	next authority.Store
	t    *Tracing
}

func (s *store) Update(ctx context.Context, fn func(authority.Tx) error) error {
	ctx, span := s.t.start(ctx, "store.update")
	err := s.next.Update(ctx, fn)
	end(span, err)
	return err
}

func (s *store) View(ctx context.Context, fn func(authority.Tx) error) error {
	ctx, span := s.t.start(ctx, "store.view")
	err := s.next.View(ctx, fn)
	end(span, err)
	return err
}

// CredentialByDigest is the cache's miss path; a store without the
// single-statement read answers it in a view, as the authority would.
func (s *store) CredentialByDigest(ctx context.Context, d credential.Digest) (credential.Credential, error) {
	ctx, span := s.t.start(ctx, "store.credential_by_digest")
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
	if credential.IsCode(err, credential.CodeNotFound) {
		span.SetAttributes(attribute.Bool("keyward.found", false))
		end(span, nil) // an unknown token is an answer, not a failure
		return cred, err
	}
	end(span, err)
	return cred, err
}

func (s *store) Ping(ctx context.Context) error { return s.next.Ping(ctx) }
func (s *store) Close() error                   { return s.next.Close() }

// Limiter returns l with a span (limiter.take) around every Take, and
// one (limiter.take_all) around every TakeAll. The
// span names what is counted (org_token, auth_failure), never the rest of
// the key, which holds a credential id or a client address.
func (t *Tracing) Limiter(l authority.Limiter) authority.Limiter { return &limiter{next: l, t: t} }

type limiter struct {
	next authority.Limiter
	t    *Tracing
}

func (l *limiter) Take(ctx context.Context, key string, limit int, start, stop time.Time) (bool, int, error) {
	counted, _, _ := strings.Cut(key, "/")
	ctx, span := l.t.start(ctx, "limiter.take", attribute.String("keyward.limiter.counts", counted), attribute.Int("keyward.limiter.limit", limit))
	admitted, count, err := l.next.Take(ctx, key, limit, start, stop)
	span.SetAttributes(attribute.Bool("keyward.limiter.admitted", admitted))
	end(span, err)
	return admitted, count, err
}

// TakeAll is spanned as limiter.take_all with the number of takes; the
// keys, which hold credential or identity ids, are not recorded.
func (l *limiter) TakeAll(ctx context.Context, now time.Time, takes []authority.LimitTake) (bool, []authority.LimitState, error) {
	ctx, span := l.t.start(ctx, "limiter.take_all", attribute.Int("keyward.limiter.takes", len(takes)))
	admitted, states, err := l.next.TakeAll(ctx, now, takes)
	span.SetAttributes(attribute.Bool("keyward.limiter.admitted", admitted))
	end(span, err)
	return admitted, states, err
}

// Bus returns b with a span (bus.publish) around every Publish; Subscribe
// passes through (it runs for the life of the process).
func (t *Tracing) Bus(b authority.Bus) authority.Bus { return &bus{next: b, t: t} }

type bus struct {
	next authority.Bus
	t    *Tracing
}

func (b *bus) Publish(ctx context.Context, inv authority.Invalidation) error {
	ctx, span := b.t.start(ctx, "bus.publish", attribute.Int("keyward.invalidation.digests", len(inv.Digests)), attribute.Bool("keyward.invalidation.all", inv.All))
	err := b.next.Publish(ctx, inv)
	end(span, err)
	return err
}

func (b *bus) Subscribe(ctx context.Context, deliver func(authority.Invalidation), connected func(bool)) error {
	return b.next.Subscribe(ctx, deliver, connected)
}

// Instrument puts spans on cfg's ports: its store, limiter and bus (when
// set), and its cache fills (cfg.Tracer). A nil Tracing leaves cfg as it
// is, so the untraced path has no decorator at all.
func (t *Tracing) Instrument(cfg *authority.Config) {
	if t == nil {
		return
	}
	cfg.Store = t.Store(cfg.Store)
	if cfg.Limiter != nil {
		cfg.Limiter = t.Limiter(cfg.Limiter)
	}
	if cfg.Bus != nil {
		cfg.Bus = t.Bus(cfg.Bus)
	}
	cfg.Tracer = t
}

// SpendCredits and RefundCredits forward the verify path's credits
// statements (authority.CreditSpender) in a span each.
func (s *store) SpendCredits(ctx context.Context, instanceID, ownerID string, cost int64, boundary, now time.Time) (bool, int64, error) {
	sp, ok := s.next.(authority.CreditSpender)
	if !ok {
		return false, 0, credential.Errorf(credential.CodeInternal, "the store cannot take credits")
	}
	ctx, span := s.t.start(ctx, "store.spend_credits")
	taken, remaining, err := sp.SpendCredits(ctx, instanceID, ownerID, cost, boundary, now)
	end(span, err)
	return taken, remaining, err
}

func (s *store) RefundCredits(ctx context.Context, instanceID, ownerID string, amount int64) error {
	sp, ok := s.next.(authority.CreditSpender)
	if !ok {
		return credential.Errorf(credential.CodeInternal, "the store cannot take credits")
	}
	ctx, span := s.t.start(ctx, "store.refund_credits")
	err := sp.RefundCredits(ctx, instanceID, ownerID, amount)
	end(span, err)
	return err
}

// The wrapper must forward the verify path's credits statements, or a
// served verify of a credential with credits fails.
var _ authority.CreditSpender = (*store)(nil)
