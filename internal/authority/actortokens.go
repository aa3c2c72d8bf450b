package authority

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/signing"
)

// Actor token limits and defaults (Clerk's defaults; the maxima are
// keyward's: an impersonation ticket or session should be short).
const (
	DefaultTicketTTL          = 3600
	MaxTicketTTL              = 30 * 24 * 3600
	DefaultSessionMaxDuration = 1800
	MaxSessionMaxDuration     = 24 * 3600
	MaxActorBytes             = 4096
	ActorListLimitDefault     = 10
	ActorListLimitMax         = 500
	PrefixActorToken          = "act_"
	PrefixSession             = "sess_"
)

// Ticket redemption failures: the Reason of the unauthenticated error a
// refused ticket returns (the codes Clerk uses).
const (
	TicketInvalid      = "ticket_invalid"
	TicketExpired      = "ticket_expired"
	TicketRevoked      = "actor_token_revoked"
	TicketAlreadyUsed  = "actor_token_already_used"
	sessionTokenType   = "at+jwt"
	sessionClaimsActor = "act"
)

// ticketMessages say why a ticket is refused, by reason.
var ticketMessages = map[string]string{
	TicketInvalid:     "the ticket is not valid",
	TicketExpired:     "the ticket has expired",
	TicketRevoked:     "the ticket was revoked",
	TicketAlreadyUsed: "the ticket has already been used",
}

// TicketMessage says why a ticket is refused, for one of the Ticket*
// reasons.
func TicketMessage(reason string) string { return ticketMessages[reason] }

// ticketRefused is why a ticket could not be redeemed: unauthenticated,
// about the parameter "ticket", with one of the Ticket* codes as Reason.
func ticketRefused(reason string) error {
	return &credential.Error{Code: credential.CodeUnauthenticated, Param: "ticket", Reason: reason, Message: ticketMessages[reason]}
}

// TicketRefusal returns the Ticket* reason when err is a refused ticket.
func TicketRefusal(err error) (string, bool) {
	var e *credential.Error
	if errors.As(err, &e) && e.Code == credential.CodeUnauthenticated && e.Param == "ticket" && e.Reason != "" {
		return e.Reason, true
	}
	return "", false
}

// CreateActorTokenInput is what creating an actor token takes.
type CreateActorTokenInput struct {
	UserID                      *string
	Actor                       json.RawMessage
	ExpiresInSeconds            *int64
	SessionMaxDurationInSeconds *int64
}

// ActorTokenView is an actor token; Token and URL are set in the create
// response only.
type ActorTokenView struct {
	credential.ActorToken
	Token string
	URL   string
}

// CreateActorToken issues a one-time impersonation ticket for a user.
func (a *Authority) CreateActorToken(ctx context.Context, c Caller, in CreateActorTokenInput, publicURL string) (ActorTokenView, error) {
	g, err := a.enter(ctx, c, "CreateActorToken")
	if err != nil {
		return ActorTokenView{}, err
	}
	if in.UserID == nil || *in.UserID == "" {
		return ActorTokenView{}, credential.ParamError(credential.CodeMissing, "user_id", "is missing")
	}
	if !ValidUserID(*in.UserID) {
		return ActorTokenView{}, credential.ParamError(credential.CodeInvalid, "user_id", "must be 1 to 255 printable characters without spaces")
	}
	if len(in.Actor) == 0 {
		return ActorTokenView{}, credential.ParamError(credential.CodeMissing, "actor", "is missing")
	}
	if len(in.Actor) > MaxActorBytes {
		return ActorTokenView{}, credential.ParamError(credential.CodeTooLong, "actor", fmt.Sprintf("must be at most %d bytes of JSON", MaxActorBytes))
	}
	var actor map[string]json.RawMessage
	if err := json.Unmarshal(in.Actor, &actor); err != nil {
		return ActorTokenView{}, credential.ParamError(credential.CodeWrongType, "actor", "must be an object")
	}
	var sub string
	if raw, ok := actor["sub"]; !ok || string(raw) == "null" {
		return ActorTokenView{}, credential.ParamError(credential.CodeMissing, "actor.sub", "is missing")
	} else if json.Unmarshal(raw, &sub) != nil || sub == "" {
		return ActorTokenView{}, credential.ParamError(credential.CodeInvalid, "actor.sub", "must be a non-empty string")
	}
	ttl, err := positive("expires_in_seconds", in.ExpiresInSeconds, DefaultTicketTTL, MaxTicketTTL)
	if err != nil {
		return ActorTokenView{}, err
	}
	session, err := positive("session_max_duration_in_seconds", in.SessionMaxDurationInSeconds, DefaultSessionMaxDuration, MaxSessionMaxDuration)
	if err != nil {
		return ActorTokenView{}, err
	}
	ticket, err := credential.Generate(credential.KindActorTicket)
	if err != nil {
		return ActorTokenView{}, err
	}
	now := g.now
	t := credential.ActorToken{
		ID: credential.NewID(PrefixActorToken, now), InstanceID: c.InstanceID, UserID: *in.UserID, Actor: in.Actor,
		Status: credential.ActorPending, Digest: a.keyring.Digest(ticket), ExpiresAt: now.Add(time.Duration(ttl) * time.Second),
		SessionMaxDuration: session, CreatedAt: now, UpdatedAt: now,
	}
	if !c.ExpiresAt.IsZero() && t.ExpiresAt.After(c.ExpiresAt) {
		t.ExpiresAt = c.ExpiresAt // a ticket is not redeemable after the key that made it expired
	}
	err = g.mutate(ctx, func(tx *change) error {
		if err := tx.InsertActorToken(ctx, t); err != nil {
			return err
		}
		return tx.audit("actor_token.create", "actor_token", t.ID, map[string]any{"user_id": t.UserID, "actor_sub": sub, "expires_at": t.ExpiresAt.UnixMilli()})
	})
	if err != nil {
		return ActorTokenView{}, err
	}
	return ActorTokenView{ActorToken: t, Token: ticket.Reveal(), URL: publicURL + "/v1/tickets/accept?ticket=" + url.QueryEscape(ticket.Reveal())}, nil
}

func positive(param string, v *int64, def, max int64) (int64, error) {
	if v == nil {
		return def, nil
	}
	if *v <= 0 || *v > max {
		return 0, credential.ParamError(credential.CodeInvalid, param, fmt.Sprintf("must be greater than 0 and at most %d", max))
	}
	return *v, nil
}

// GetActorToken returns one actor token (keyward's addition to Clerk).
func (a *Authority) GetActorToken(ctx context.Context, c Caller, id string) (credential.ActorToken, error) {
	if _, err := a.enter(ctx, c, "GetActorToken"); err != nil {
		return credential.ActorToken{}, err
	}
	var t credential.ActorToken
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		t, err = tx.GetActorToken(ctx, c.InstanceID, id)
		return err
	})
	return t, err
}

// ListActorTokens lists actor tokens by user and status (keyward's
// addition to Clerk), newest first.
func (a *Authority) ListActorTokens(ctx context.Context, c Caller, userID, status string, limit, offset *int64) ([]credential.ActorToken, int, error) {
	if _, err := a.enter(ctx, c, "ListActorTokens"); err != nil {
		return nil, 0, err
	}
	switch status {
	case "", credential.ActorPending, credential.ActorAccepted, credential.ActorRevoked:
	default:
		return nil, 0, credential.ParamError(credential.CodeInvalid, "status", "must be pending, accepted or revoked")
	}
	l, o, err := page(limit, offset, ActorListLimitDefault, ActorListLimitMax)
	if err != nil {
		return nil, 0, err
	}
	var (
		out   []credential.ActorToken
		total int
	)
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		out, total, err = tx.ListActorTokens(ctx, c.InstanceID, userID, status, l, o)
		return err
	})
	return out, total, err
}

// ReasonNotPending is the Reason of the conflict that refuses to revoke an
// actor token that is no longer pending (the token, with its status, is
// returned beside the error).
const ReasonNotPending = "not_pending"

// RevokeActorToken revokes a pending actor token; any other status is
// refused with a conflict whose Reason is ReasonNotPending.
func (a *Authority) RevokeActorToken(ctx context.Context, c Caller, id string) (credential.ActorToken, error) {
	var t credential.ActorToken
	err := a.mutate(ctx, c, "RevokeActorToken", func(tx *change) error {
		ok, err := tx.TransitionActorToken(ctx, c.InstanceID, id, credential.ActorPending, credential.ActorRevoked, tx.now, time.Time{})
		if err != nil {
			return err
		}
		if t, err = tx.GetActorToken(ctx, c.InstanceID, id); err != nil {
			return err
		}
		if !ok {
			return &credential.Error{Code: credential.CodeConflict, Param: "status", Reason: ReasonNotPending,
				Message: "only a pending actor token can be revoked; this one is " + t.Status}
		}
		return tx.audit("actor_token.revoke", "actor_token", id, map[string]string{"user_id": t.UserID, "actor_sub": actorSub(t.Actor)})
	})
	return t, err
}

func actorSub(actor json.RawMessage) string {
	var a struct{ Sub string }
	_ = json.Unmarshal(actor, &a)
	return a.Sub
}

// TicketPreview is what a ticket would do, shown without consuming it.
type TicketPreview struct {
	Token  credential.ActorToken
	Usable bool
	Reason string // a Ticket* code when not usable
}

// PreviewTicket looks a ticket up without changing anything: link scanners
// and previews must never burn a ticket.
func (a *Authority) PreviewTicket(ctx context.Context, ticket string) (TicketPreview, error) {
	t, err := a.ticket(ctx, ticket)
	if err != nil {
		if reason, ok := TicketRefusal(err); ok {
			return TicketPreview{Reason: reason}, nil
		}
		return TicketPreview{}, err
	}
	p := TicketPreview{Token: t, Usable: true}
	if code := ticketState(t, a.clock.Now()); code != "" {
		p.Usable, p.Reason = false, code
	}
	return p, nil
}

// ticket finds a presented ticket. A ticket is a bearer secret like any
// other: an address that presents too many unknown ones is throttled, and
// the refusals are audited.
func (a *Authority) ticket(ctx context.Context, ticket string) (credential.ActorToken, error) {
	if err := a.checkThrottle(ctx, a.clock.Now()); err != nil {
		return credential.ActorToken{}, err
	}
	secret, kind, err := credential.Parse(ticket)
	if err != nil || kind != credential.KindActorTicket {
		_ = a.authFailed(ctx, nil, "malformed_ticket")
		return credential.ActorToken{}, ticketRefused(TicketInvalid)
	}
	d := a.keyring.Digest(secret)
	var t credential.ActorToken
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		t, err = tx.ActorTokenByDigest(ctx, d)
		return err
	})
	if credential.IsCode(err, credential.CodeNotFound) || (err == nil && !t.Digest.Equal(d)) {
		_ = a.authFailed(ctx, nil, "unknown_ticket")
		return t, ticketRefused(TicketInvalid)
	}
	return t, err
}

// ticketState is "" for a redeemable ticket, else why not.
func ticketState(t credential.ActorToken, now time.Time) string {
	switch {
	case t.Status == credential.ActorRevoked:
		return TicketRevoked
	case t.Status == credential.ActorAccepted:
		return TicketAlreadyUsed
	case credential.Expired(t.ExpiresAt, now):
		return TicketExpired
	}
	return ""
}

// Redemption is a redeemed ticket: the session and its access token.
type Redemption struct {
	Session     credential.ImpersonationSession
	AccessToken string
}

// RedeemTicket consumes a ticket exactly once (one conditional UPDATE from
// pending) and starts an impersonation session whose access token is a JWT
// signed with the instance key: sub is the user, act the actor, sid the
// session, exp the session's maximum duration from now.
func (a *Authority) RedeemTicket(ctx context.Context, ticket string) (Redemption, error) {
	t, err := a.ticket(ctx, ticket)
	if err != nil {
		return Redemption{}, err
	}
	now := a.clock.Now()
	if code := ticketState(t, now); code != "" {
		return Redemption{}, ticketRefused(code)
	}
	s, err := a.signer(ctx, t.InstanceID)
	if err != nil {
		return Redemption{}, err
	}
	sess := credential.ImpersonationSession{
		ID: credential.NewID(PrefixSession, now), InstanceID: t.InstanceID, ActorTokenID: t.ID, UserID: t.UserID,
		Actor: t.Actor, StartedAt: now, ExpiresAt: now.Add(time.Duration(t.SessionMaxDuration) * time.Second).Truncate(time.Second),
	}
	// Signed before the transaction so the winner commits at once; a
	// loser's token is thrown away unseen.
	claims := map[string]any{
		"iss": a.issuer, "sub": t.UserID, "aud": t.InstanceID, "act": t.Actor, "sid": sess.ID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": sess.ExpiresAt.Unix(), "jti": sess.ID, "client_id": t.ID,
	}
	token, err := s.signer.Sign(signing.Header{Type: sessionTokenType}, claims)
	if err != nil {
		return Redemption{}, credential.Wrap(credential.CodeInternal, err, "sign session token")
	}
	redeemer := Caller{InstanceID: t.InstanceID, Kind: credential.KindActorTicket, CredentialID: t.ID}
	noteCaller(ctx, t.ID)
	err = a.store.Update(ctx, func(tx Tx) error {
		ok, err := tx.TransitionActorToken(ctx, t.InstanceID, t.ID, credential.ActorPending, credential.ActorAccepted, now, now)
		if err != nil {
			return err
		}
		if !ok {
			cur, err := tx.GetActorToken(ctx, t.InstanceID, t.ID)
			if err != nil {
				return err
			}
			code := ticketState(cur, now)
			if code == "" {
				code = TicketAlreadyUsed
			}
			return ticketRefused(code)
		}
		if err := tx.InsertImpersonationSession(ctx, sess); err != nil {
			return err
		}
		if err := tx.ExtendSigningKey(ctx, t.InstanceID, s.key.ID, sess.ExpiresAt); err != nil {
			return err
		}
		return a.auditAt(ctx, tx, redeemer, now, "actor_token.redeem", "impersonation_session", sess.ID,
			map[string]string{"user_id": t.UserID, "actor_sub": actorSub(t.Actor), "actor_token_id": t.ID})
	})
	if err != nil {
		return Redemption{}, err
	}
	return Redemption{Session: sess, AccessToken: token}, nil
}

// RevokeImpersonationSession ends a session: keyward's verify answers
// revoked from now on (offline JWKS verifiers only see its expiry).
func (a *Authority) RevokeImpersonationSession(ctx context.Context, c Caller, id string) (credential.ImpersonationSession, error) {
	var s credential.ImpersonationSession
	err := a.mutate(ctx, c, "RevokeImpersonationSession", func(tx *change) error {
		if err := tx.RevokeImpersonationSession(ctx, c.InstanceID, id, tx.now); err != nil {
			return err
		}
		var err error
		if s, err = tx.GetImpersonationSession(ctx, c.InstanceID, id); err != nil {
			return err
		}
		return tx.audit("impersonation_session.revoke", "impersonation_session", id, map[string]string{"user_id": s.UserID, "actor_sub": actorSub(s.Actor)})
	})
	return s, err
}

// verifySession verifies an impersonation session JWT (typ at+jwt) of the
// caller's instance: signature with the instance key, issuer, then the
// session's state in the store.
func (a *Authority) verifySession(ctx context.Context, c Caller, t *signing.Token, in VerifyInput) (VerifyResult, error) {
	if c.Kind != credential.KindAdminKey {
		return notFound, nil
	}
	ver, err := a.verifier(ctx, c.InstanceID, t.KeyID)
	if credential.IsCode(err, credential.CodeNotFound) {
		return notFound, nil
	}
	if err != nil {
		return VerifyResult{}, err
	}
	payload, err := ver.Verify(t)
	if err != nil {
		return notFound, nil
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Sid string          `json:"sid"`
		Act json.RawMessage `json:"act"`
		Exp int64           `json:"exp"`
		Iat int64           `json:"iat"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Iss != a.issuer || claims.Sid == "" || claims.Exp == 0 {
		return notFound, nil
	}
	var sess credential.ImpersonationSession
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		sess, err = tx.GetImpersonationSession(ctx, c.InstanceID, claims.Sid)
		return err
	})
	if credential.IsCode(err, credential.CodeNotFound) {
		return notFound, nil
	}
	if err != nil {
		return VerifyResult{}, err
	}
	act, _ := json.Marshal(map[string]json.RawMessage{sessionClaimsActor: claims.Act})
	expiresAt := time.Unix(claims.Exp, 0)
	r := VerifyResult{
		Kind: KindImpersonationSession, ID: sess.ID, Subject: claims.Sub, Claims: act,
		ExpiresAt: expiresAt, IssuedAt: time.Unix(claims.Iat, 0),
	}
	r.Reason = decide(!sess.RevokedAt.IsZero(), expiresAt, time.Time{}, a.clock.Now(), nil, in, false)
	r.Valid = r.Reason == ReasonValid
	return r, nil
}

// KindImpersonationSession is the kind /v1/verify reports for session
// JWTs.
const KindImpersonationSession credential.Kind = "impersonation_session"

// ImpersonationRedirectURL is where an instance sends browsers after an
// accepted ticket ("" for a JSON answer).
func (a *Authority) ImpersonationRedirectURL(ctx context.Context, instanceID string) (string, error) {
	var in credential.Instance
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		in, err = tx.GetInstance(ctx, instanceID)
		return err
	})
	return in.ImpersonationRedirectURL, err
}

// SetImpersonationRedirectURL sets where accepted tickets redirect: an
// absolute http(s) URL without a fragment, or "" for JSON answers.
func (a *Authority) SetImpersonationRedirectURL(ctx context.Context, c Caller, raw string) (credential.Instance, error) {
	g, err := a.enter(ctx, c, "SetImpersonationRedirectURL")
	if err != nil {
		return credential.Instance{}, err
	}
	if raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || len(raw) > 2048 {
			return credential.Instance{}, credential.ParamError(credential.CodeInvalid, "impersonation_redirect_url", "must be an absolute http(s) URL without a fragment")
		}
	}
	var in credential.Instance
	err = g.mutate(ctx, func(tx *change) error {
		var err error
		if in, err = tx.GetInstance(ctx, c.InstanceID); err != nil {
			return err
		}
		in.ImpersonationRedirectURL = raw
		if err := tx.UpdateInstance(ctx, in); err != nil {
			return err
		}
		return tx.audit("instance.update", "instance", in.ID, map[string]string{"impersonation_redirect_url": raw})
	})
	return in, err
}
