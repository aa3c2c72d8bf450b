package authority

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/keyward/keyward/internal/credential"
)

// M2M token formats.
const (
	FormatOpaque = "opaque"
	FormatJWT    = "jwt"
)

// M2M limits.
const (
	M2MListLimitDefault = 10
	M2MListLimitMax     = 100
	MaxClaimsBytes      = 4096 // claims travel in every JWT; keep them small
	MaxRevocationReason = 1000
)

// M2MToken is a machine-to-machine token, as every surface may show it.
type M2MToken struct {
	ID               string
	InstanceID       string
	Subject          string // the minting machine
	Claims           json.RawMessage
	Scopes           []string // the machines it may call, fixed at mint time
	Revoked          bool
	RevocationReason string
	Expired          bool
	ExpiresAt        time.Time
	LastUsedAt       time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// Meta is the token's meta (its controls, controls.go), or nil.
	Meta json.RawMessage
	// Token is the token itself: set in the create response only.
	Token string
}

func m2mView(c credential.Credential, a tokenAttrs, now time.Time) M2MToken {
	t := M2MToken{
		ID:               c.ID,
		InstanceID:       c.InstanceID,
		Subject:          c.Subject,
		Claims:           a.Claims,
		Scopes:           a.Scopes,
		Revoked:          c.Revoked(),
		RevocationReason: c.RevocationReason,
		Expired:          c.ExpiredAt(now),
		ExpiresAt:        c.ExpiresAt,
		LastUsedAt:       c.LastUsedAt,
		CreatedAt:        c.CreatedAt,
		UpdatedAt:        c.UpdatedAt,
	}
	if a.Controls != nil {
		t.Meta = a.Controls.Meta
	}
	return t
}

// CreateM2MTokenInput is what minting takes. Nil means absent.
type CreateM2MTokenInput struct {
	Format                 string // "" means opaque
	SecondsUntilExpiration *float64
	Claims                 json.RawMessage // a JSON object, or nil
	MinRemainingTTLSeconds *int64
	// Scopes narrows the token to some of the machine's scoped machines
	// (an OAuth scope request); nil means all of them.
	Scopes []string
	// Controls sets an opaque token's controls at verify time
	// (controls.go); a JWT is not stored and takes none.
	Controls ControlsInput
}

// reservedClaims are the structural claims of an M2M JWT; custom claims
// may not shadow them.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scopes", "act", "sid"}

// CreateM2MToken mints a token for the calling machine. Its scopes are the
// machine's scoped machines now; later scope edits do not change it.
//
// With MinRemainingTTLSeconds, an opaque token is minted "for reuse": its
// secret is kept sealed (as machine keys are) so that a later request with
// identical claims and scopes gets the same live token back instead of a
// new one. Tokens minted without it are stored as digests only and are
// never reused.
func (a *Authority) CreateM2MToken(ctx context.Context, c Caller, in CreateM2MTokenInput) (M2MToken, error) {
	g, err := a.enter(ctx, c, "CreateM2MToken")
	if err != nil {
		return M2MToken{}, err
	}
	format := in.Format
	if format == "" {
		format = FormatOpaque
	}
	if format != FormatOpaque && format != FormatJWT {
		return M2MToken{}, credential.ParamError(credential.CodeInvalid, "token_format", "must be opaque or jwt")
	}
	claims, err := normalizeClaims(in.Claims, format)
	if err != nil {
		return M2MToken{}, err
	}
	if in.SecondsUntilExpiration != nil {
		if s := *in.SecondsUntilExpiration; !(s > 0) || s > MaxTokenTTL || math.IsNaN(s) {
			return M2MToken{}, credential.ParamError(credential.CodeInvalid, "seconds_until_expiration", fmt.Sprintf("must be greater than 0 and at most %d", MaxTokenTTL))
		}
	}
	if in.MinRemainingTTLSeconds != nil && (*in.MinRemainingTTLSeconds < 0 || *in.MinRemainingTTLSeconds > MaxTokenTTL) {
		return M2MToken{}, credential.ParamError(credential.CodeInvalid, "min_remaining_ttl_seconds", fmt.Sprintf("must be between 0 and %d", MaxTokenTTL))
	}
	if in.MinRemainingTTLSeconds != nil && format == FormatJWT {
		// Reuse needs a stored token; a JWT is never stored, so the caller
		// would silently get a fresh token where it asked for reuse.
		return M2MToken{}, credential.ParamError(credential.CodeConstraint, "min_remaining_ttl_seconds", "applies to opaque tokens only: JWT tokens are never reused")
	}
	if !in.Controls.isZero() {
		if format == FormatJWT || in.MinRemainingTTLSeconds != nil {
			return M2MToken{}, credential.ParamError(credential.CodeConstraint, controlsParam(in.Controls), "controls apply to opaque tokens minted without reuse only")
		}
		if in.Controls, err = validateControls(in.Controls); err != nil {
			return M2MToken{}, err
		}
	}

	machine, err := a.mintingProfile(ctx, c.InstanceID, c.MachineID, g.now)
	if err != nil {
		return M2MToken{}, err
	}
	scopes := slices.Clone(machine.scopes) // the cache's stays as it is
	if in.Scopes != nil {
		if scopes, err = narrowScopes(scopes, in.Scopes); err != nil {
			return M2MToken{}, err
		}
	}
	now := g.now
	lifetime := time.Duration(machine.defaultTTL) * time.Second
	if in.SecondsUntilExpiration != nil {
		lifetime = time.Duration(*in.SecondsUntilExpiration * float64(time.Second)).Truncate(time.Millisecond)
	}
	if in.MinRemainingTTLSeconds != nil && format == FormatOpaque && time.Duration(*in.MinRemainingTTLSeconds)*time.Second >= lifetime {
		return M2MToken{}, credential.ParamError(credential.CodeConstraint, "min_remaining_ttl_seconds", "must be less than the token's lifetime")
	}
	expiresAt := now.Add(lifetime)
	if !c.ExpiresAt.IsZero() && expiresAt.After(c.ExpiresAt) {
		// A machine key in its rotation grace mints tokens that expire
		// with it: no token outlives the credential that made it.
		expiresAt = c.ExpiresAt
	}
	if format == FormatJWT {
		return a.mintM2MJWT(ctx, g, claims, scopes, expiresAt)
	}
	if in.MinRemainingTTLSeconds != nil {
		tok, found, err := a.reusableM2MToken(ctx, g, claims, scopes, now.Add(time.Duration(*in.MinRemainingTTLSeconds)*time.Second))
		if err != nil || found {
			return tok, err
		}
	}
	return a.mintOpaqueM2M(ctx, g, claims, scopes, expiresAt, in.MinRemainingTTLSeconds != nil, in.Controls)
}

// mintingProfile is what minting a token reads of the calling machine:
// its default token lifetime and the machines it may call. It comes from
// the cache while no change to machines or scopes has been made since
// (each such change invalidates everything, here and on every node).
func (a *Authority) mintingProfile(ctx context.Context, instanceID, machineID string, now time.Time) (machineProfile, error) {
	ref := machineRef{instanceID, machineID}
	if p, ok := a.cache.machine(ref, now); ok {
		return p, nil
	}
	epoch := a.cache.currentEpoch()
	p := machineProfile{scopes: []string{}}
	err := a.store.View(ctx, func(tx Tx) error {
		m, err := tx.GetMachine(ctx, instanceID, machineID)
		if err != nil {
			return err
		}
		p.defaultTTL = m.DefaultTokenTTL
		scoped, err := tx.ScopedMachines(ctx, instanceID, []string{machineID})
		for _, m := range scoped[machineID] {
			p.scopes = append(p.scopes, m.ID)
		}
		return err
	})
	if err != nil {
		return machineProfile{}, err
	}
	// At most FallbackTTL: a change whose invalidation another node missed
	// (a failed publish it could not know of) is stamped into its tokens
	// for seconds, not for the credential cache's half minute.
	p.expires = now.Add(min(a.cache.positiveLifetime(), FallbackTTL)).UnixNano()
	a.cache.fillMachine(ref, p, epoch)
	return p, nil
}

// narrowScopes returns the requested machine ids, each once, in the
// order asked, if every one is among the machine's scoped machines.
func narrowScopes(scoped, requested []string) ([]string, error) {
	out := []string{}
	for _, id := range requested {
		if !slices.Contains(scoped, id) {
			return nil, credential.ParamError(credential.CodeInvalid, "scopes", fmt.Sprintf("%q is not a machine this machine may call", id))
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// normalizeClaims checks that claims is a JSON object (or absent) of
// bounded size, without reserved names for JWTs, and compacts it.
func normalizeClaims(raw json.RawMessage, format string) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, credential.ParamError(credential.CodeWrongType, "claims", "must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, credential.ParamError(credential.CodeWrongType, "claims", "must be a JSON object")
	}
	if buf.Len() > MaxClaimsBytes {
		return nil, credential.ParamError(credential.CodeTooLong, "claims", fmt.Sprintf("must be at most %d bytes of JSON", MaxClaimsBytes))
	}
	if format == FormatJWT {
		for _, name := range reservedClaims {
			if _, ok := obj[name]; ok {
				return nil, &credential.Error{Code: credential.CodeReserved, Param: "claims", Message: fmt.Sprintf("You can't use the reserved claim: '%s'", name)}
			}
		}
	}
	return buf.Bytes(), nil
}

// mintOpaqueM2M mints an opaque token for the grant's machine at the
// grant's instant.
func (a *Authority) mintOpaqueM2M(ctx context.Context, g grant, claims json.RawMessage, scopes []string, expiresAt time.Time, reusable bool, controls ControlsInput) (M2MToken, error) {
	c, now := g.caller, g.now
	secret, err := credential.Generate(credential.KindM2MToken)
	if err != nil {
		return M2MToken{}, err
	}
	cred := a.newCredential(credential.NewTimeHexID("mt_", now), c.InstanceID, credential.KindM2MToken, secret, c.MachineID, now)
	cred.ExpiresAt = expiresAt
	attrs := tokenAttrs{Claims: claims, Scopes: scopes, Reusable: reusable}
	if cred.Attrs, err = json.Marshal(attrs); err != nil {
		return M2MToken{}, credential.Wrap(credential.CodeInternal, err, "encode token attributes")
	}
	if reusable {
		if cred.Sealed, err = a.keyring.Seal([]byte(secret.Reveal()), []byte(cred.ID)); err != nil {
			return M2MToken{}, credential.Wrap(credential.CodeInternal, err, "seal reusable token")
		}
	}
	err = g.mutate(ctx, func(tx *change) error {
		if !controls.isZero() {
			ctl, err := applyControls(ctx, tx, c.InstanceID, cred.ID, nil, controls, tx.now)
			if err != nil {
				return err
			}
			attrs.Controls = ctl // stored, and shown in the answer
			if cred.Attrs, err = json.Marshal(attrs); err != nil {
				return credential.Wrap(credential.CodeInternal, err, "encode token attributes")
			}
		}
		if err := tx.InsertCredential(ctx, cred); err != nil {
			return err
		}
		return tx.audit("m2m_token.create", "m2m_token", cred.ID, map[string]any{"format": FormatOpaque, "scopes": scopes, "expires_at": expiresAt.UnixMilli()})
	})
	if err != nil {
		return M2MToken{}, err
	}
	tok := m2mView(cred, attrs, now)
	tok.Token = secret.Reveal()
	return tok, nil
}

// reusableM2MToken finds a live token minted for reuse by the caller with
// identical claims and scopes that lives past minExpiry.
func (a *Authority) reusableM2MToken(ctx context.Context, g grant, claims json.RawMessage, scopes []string, minExpiry time.Time) (M2MToken, bool, error) {
	c, now := g.caller, g.now
	var candidates []credential.Credential
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		candidates, _, err = tx.PageCredentials(ctx, CredentialQuery{
			InstanceID: c.InstanceID, Kind: credential.KindM2MToken, Subject: c.MachineID,
			Revoked: new(bool), ExpiresAfter: minExpiry.Add(-time.Millisecond), Limit: 100,
		})
		return err
	})
	if err != nil {
		return M2MToken{}, false, err
	}
	for _, cand := range candidates {
		attrs, err := parseTokenAttrs(cand)
		if err != nil {
			return M2MToken{}, false, err
		}
		if !attrs.Reusable || cand.Sealed == nil || !slices.Equal(attrs.Scopes, scopes) || !sameJSON(attrs.Claims, claims) {
			continue
		}
		if !c.ExpiresAt.IsZero() && cand.ExpiresAt.After(c.ExpiresAt) {
			// A key in its rotation grace is handed no token that
			// outlives it, minted or reused.
			continue
		}
		plain, err := a.keyring.Open(cand.Sealed, []byte(cand.ID))
		if err != nil {
			return M2MToken{}, false, credential.Wrap(credential.CodeInternal, err, "open reusable token")
		}
		// Handing out a stored secret again is a secret read: audited.
		if err := g.mutate(ctx, func(tx *change) error {
			return tx.audit("m2m_token.reuse", "m2m_token", cand.ID, nil)
		}); err != nil {
			return M2MToken{}, false, err
		}
		tok := m2mView(cand, attrs, now)
		tok.Token = string(plain)
		return tok, true, nil
	}
	return M2MToken{}, false, nil
}

func sameJSON(x, y json.RawMessage) bool {
	if len(x) == 0 || len(y) == 0 {
		return len(x) == len(y)
	}
	var vx, vy any
	return json.Unmarshal(x, &vx) == nil && json.Unmarshal(y, &vy) == nil && reflect.DeepEqual(vx, vy)
}

// ListM2MTokensInput selects a page of one machine's opaque tokens.
// Revoked and Expired filter by state (default false: live tokens only);
// Meta keeps tokens whose meta has each key with its value (metaMatches).
type ListM2MTokensInput struct {
	Subject string
	Revoked *bool
	Expired *bool
	Meta    map[string]string
	Limit   *int64
	Offset  *int64
}

// ListM2MTokens lists a machine's opaque tokens, newest first. A machine
// caller may list only its own.
func (a *Authority) ListM2MTokens(ctx context.Context, c Caller, in ListM2MTokensInput) ([]M2MToken, int, error) {
	g, err := a.enter(ctx, c, "ListM2MTokens")
	if err != nil {
		return nil, 0, err
	}
	if in.Subject == "" {
		return nil, 0, credential.ParamError(credential.CodeMissing, "subject", "is missing")
	}
	if !credential.ValidID(credential.PrefixMachine, in.Subject) {
		return nil, 0, credential.ParamError(credential.CodeInvalid, "subject", "must be a machine id (mch_…)")
	}
	if c.Kind == credential.KindMachineKey && in.Subject != c.MachineID {
		return nil, 0, a.forbid(ctx, c, "other_machine", credential.Errorf(credential.CodeForbidden, "a machine can list only its own tokens"))
	}
	limit, offset, err := page(in.Limit, in.Offset, M2MListLimitDefault, M2MListLimitMax)
	if err != nil {
		return nil, 0, err
	}
	if err := checkMetaFilter(in.Meta); err != nil {
		return nil, 0, err
	}
	now := g.now
	q := CredentialQuery{InstanceID: c.InstanceID, Kind: credential.KindM2MToken, Subject: in.Subject,
		Revoked: in.Revoked, Expired: in.Expired, Now: now, Limit: limit, Offset: offset}
	if q.Revoked == nil {
		q.Revoked = new(bool)
	}
	if q.Expired == nil {
		q.Expired = new(bool)
	}
	var (
		out   []M2MToken
		total int
	)
	err = a.store.View(ctx, func(tx Tx) error {
		if _, err := tx.GetMachine(ctx, c.InstanceID, in.Subject); err != nil {
			return machineNotFound(err, in.Subject)
		}
		var err error
		out, total, err = pageCredentials(ctx, tx, q, metaKeep(in.Meta), func(cred credential.Credential, attrs tokenAttrs) M2MToken {
			return m2mView(cred, attrs, now)
		})
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// RevokeM2MToken revokes an opaque token; it fails verification on the very
// next call. Revoking a revoked token changes nothing and returns it as it
// is, with its first reason. A machine caller may revoke only its own.
func (a *Authority) RevokeM2MToken(ctx context.Context, c Caller, id string, reason string) (M2MToken, error) {
	g, err := a.enter(ctx, c, "RevokeM2MToken")
	if err != nil {
		return M2MToken{}, err
	}
	if len(reason) > MaxRevocationReason {
		return M2MToken{}, credential.ParamError(credential.CodeTooLong, "revocation_reason", fmt.Sprintf("must be at most %d characters", MaxRevocationReason))
	}
	notFound := credential.Errorf(credential.CodeNotFound, "no M2M token was found with that id")
	var cred credential.Credential
	err = g.mutate(ctx, func(tx *change) error {
		var err error
		if cred, err = tx.GetCredential(ctx, c.InstanceID, id); err != nil {
			if credential.IsCode(err, credential.CodeNotFound) {
				return notFound
			}
			return err
		}
		if cred.Kind != credential.KindM2MToken || (c.Kind == credential.KindMachineKey && cred.Subject != c.MachineID) {
			return notFound
		}
		if cred.Revoked() {
			tx.nothingChanged()
			return nil
		}
		now := tx.now
		if err := tx.RevokeCredential(ctx, c.InstanceID, id, now, reason); err != nil {
			return err
		}
		cred.RevokedAt, cred.RevocationReason, cred.UpdatedAt = now, reason, now
		tx.invalidate(cred.Digest)
		return tx.audit("m2m_token.revoke", "m2m_token", id, map[string]string{"reason": reason})
	})
	if err != nil {
		return M2MToken{}, err
	}
	attrs, err := parseTokenAttrs(cred)
	return m2mView(cred, attrs, g.now), err
}

// SeedM2MTokens mints n opaque M2M tokens with the machine key c, lasting
// lifetime, in transactions of up to seedBatch tokens, each with its audit
// event as CreateM2MToken writes it. It is the bulk path load tests
// (keyward-bench) use to store many tokens without n HTTP calls.
func (a *Authority) SeedM2MTokens(ctx context.Context, c Caller, n int, lifetime time.Duration) ([]credential.Secret, error) {
	g, err := a.enter(ctx, c, "SeedM2MTokens")
	if err != nil {
		return nil, err
	}
	if lifetime <= 0 || lifetime > MaxTokenTTL*time.Second {
		return nil, credential.ParamError(credential.CodeInvalid, "lifetime", fmt.Sprintf("must be greater than 0 and at most %d s", MaxTokenTTL))
	}
	scopes := []string{}
	err = a.store.View(ctx, func(tx Tx) error {
		if _, err := tx.GetMachine(ctx, c.InstanceID, c.MachineID); err != nil {
			return err
		}
		scoped, err := tx.ScopedMachines(ctx, c.InstanceID, []string{c.MachineID})
		for _, m := range scoped[c.MachineID] {
			scopes = append(scopes, m.ID)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	attrs, err := json.Marshal(tokenAttrs{Scopes: scopes})
	if err != nil {
		return nil, credential.Wrap(credential.CodeInternal, err, "encode token attributes")
	}
	const seedBatch = 10000
	now := g.now
	secrets := make([]credential.Secret, 0, n)
	for len(secrets) < n {
		batch := make([]credential.Credential, min(seedBatch, n-len(secrets)))
		minted := make([]credential.Secret, len(batch))
		for i := range batch {
			if minted[i], err = credential.Generate(credential.KindM2MToken); err != nil {
				return nil, err
			}
			batch[i] = a.newCredential(credential.NewTimeHexID("mt_", now), c.InstanceID, credential.KindM2MToken, minted[i], c.MachineID, now)
			batch[i].ExpiresAt, batch[i].Attrs = now.Add(lifetime), attrs
			if !c.ExpiresAt.IsZero() && batch[i].ExpiresAt.After(c.ExpiresAt) {
				batch[i].ExpiresAt = c.ExpiresAt // no token outlives the key that made it
			}
		}
		err := g.mutate(ctx, func(tx *change) error {
			for _, cred := range batch {
				if err := tx.InsertCredential(ctx, cred); err != nil {
					return err
				}
				if err := tx.audit("m2m_token.create", "m2m_token", cred.ID, map[string]any{"format": FormatOpaque, "scopes": scopes, "expires_at": cred.ExpiresAt.UnixMilli()}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, minted...)
	}
	return secrets, nil
}
