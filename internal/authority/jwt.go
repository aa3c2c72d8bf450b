package authority

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/signing"
)

// m2mCategory is the cat header of M2M JWTs, so that no other kind of JWT
// (a session, an impersonation token) can pass as one. The value is the
// one Clerk uses, so its SDKs recognise keyward's tokens.
const m2mCategory = "cl_B7d4PD333AAA"

// signerTTL bounds how long a node keeps signing with a key after another
// process (keyward signing-key rotate) retired it.
const signerTTL = time.Minute

// DefaultIssuer is the iss of keyward's JWTs when no public URL is set.
const DefaultIssuer = "keyward"

type activeSigner struct {
	key     credential.SigningKey
	signer  *signing.Signer
	expires time.Time
}

// keyCache holds parsed keys: RSA parsing is far too slow to repeat per
// token. Verifiers are keyed by instance and kid, so a kid is only ever
// looked up within the caller's tenant.
type keyCache struct {
	mu        sync.Mutex
	signers   map[string]activeSigner      // by instance
	verifiers map[string]*signing.Verifier // by instance + "/" + kid
	machines  map[machineRef]machineState
	verified  *lru.Cache[[sha256.Size]byte, verifiedJWT] // by the SHA-256 of the token
}

type machineState struct {
	exists  bool
	epoch   uint64
	expires time.Time
}

func newKeyCache() *keyCache {
	verified, err := lru.New[[sha256.Size]byte, verifiedJWT](cacheSize)
	if err != nil {
		panic(err)
	}
	return &keyCache{signers: map[string]activeSigner{}, verifiers: map[string]*signing.Verifier{}, machines: map[machineRef]machineState{}, verified: verified}
}

// signer returns the instance's active signer, creating the instance's
// first key (RS256) on first use.
func (a *Authority) signer(ctx context.Context, instanceID string) (activeSigner, error) {
	now := a.clock.Now()
	a.jwtKeys.mu.Lock()
	s, ok := a.jwtKeys.signers[instanceID]
	a.jwtKeys.mu.Unlock()
	if ok && now.Before(s.expires) {
		return s, nil
	}
	var key credential.SigningKey
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		key, err = activeKey(ctx, tx, instanceID)
		return err
	})
	if credential.IsCode(err, credential.CodeNotFound) {
		key, err = a.createFirstSigningKey(ctx, instanceID)
	}
	if err != nil {
		return activeSigner{}, err
	}
	private, err := a.keyring.Open(key.Sealed, []byte(key.ID))
	if err != nil {
		return activeSigner{}, credential.Wrap(credential.CodeInternal, err, "open signing key "+key.ID)
	}
	signer, err := signing.NewSigner(key.Algorithm, key.ID, private)
	if err != nil {
		return activeSigner{}, credential.Wrap(credential.CodeInternal, err, "load signing key")
	}
	s = activeSigner{key: key, signer: signer, expires: now.Add(signerTTL)}
	a.jwtKeys.mu.Lock()
	a.jwtKeys.signers[instanceID] = s
	a.jwtKeys.mu.Unlock()
	return s, nil
}

func activeKey(ctx context.Context, tx SigningKeyTx, instanceID string) (credential.SigningKey, error) {
	keys, err := tx.ListSigningKeys(ctx, instanceID)
	if err != nil {
		return credential.SigningKey{}, err
	}
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			return k, nil
		}
	}
	return credential.SigningKey{}, credential.Errorf(credential.CodeNotFound, "no active signing key")
}

func (a *Authority) newSigningKey(instanceID, alg string, now time.Time) (credential.SigningKey, error) {
	public, private, err := signing.GenerateKey(alg)
	if err != nil {
		return credential.SigningKey{}, credential.Wrap(credential.CodeInternal, err, "generate signing key")
	}
	k := credential.SigningKey{ID: credential.NewID("kid_", now), InstanceID: instanceID, Algorithm: alg, PublicKey: public, CreatedAt: now}
	if k.Sealed, err = a.keyring.Seal(private, []byte(k.ID)); err != nil {
		return credential.SigningKey{}, credential.Wrap(credential.CodeInternal, err, "seal signing key")
	}
	return k, nil
}

// createFirstSigningKey creates the instance's first key unless a
// concurrent request already did, in which case that one is used.
func (a *Authority) createFirstSigningKey(ctx context.Context, instanceID string) (credential.SigningKey, error) {
	fresh, err := a.newSigningKey(instanceID, signing.RS256, a.clock.Now())
	if err != nil {
		return fresh, err
	}
	var k credential.SigningKey
	err = a.store.Update(ctx, func(tx Tx) error {
		if existing, err := activeKey(ctx, tx, instanceID); err == nil {
			k = existing
			return nil
		} else if !credential.IsCode(err, credential.CodeNotFound) {
			return err
		}
		k = fresh
		if err := tx.InsertSigningKey(ctx, k); err != nil {
			return err
		}
		return a.audit(ctx, tx, Operator(instanceID), "signing_key.create", "signing_key", k.ID, map[string]string{"algorithm": k.Algorithm})
	})
	return k, err
}

// RotateSigningKey makes a new key (RS256 or EdDSA) the instance's signing
// key. Older keys stop signing at once and stay in the JWKS until every
// token they signed has expired.
func (a *Authority) RotateSigningKey(ctx context.Context, c Caller, alg string) (credential.SigningKey, error) {
	g, err := a.enter(ctx, c, "RotateSigningKey")
	if err != nil {
		return credential.SigningKey{}, err
	}
	if alg == "" {
		alg = signing.RS256
	}
	if !signing.ValidAlgorithm(alg) {
		return credential.SigningKey{}, credential.ParamError(credential.CodeInvalid, "algorithm", "must be RS256 or EdDSA")
	}
	k, err := a.newSigningKey(c.InstanceID, alg, g.now)
	if err != nil {
		return k, err
	}
	err = g.mutate(ctx, func(tx *change) error {
		if _, err := tx.GetInstance(ctx, c.InstanceID); err != nil {
			return err
		}
		if err := tx.RetireSigningKeys(ctx, c.InstanceID, k.CreatedAt); err != nil {
			return err
		}
		if err := tx.InsertSigningKey(ctx, k); err != nil {
			return err
		}
		return tx.audit("signing_key.rotate", "signing_key", k.ID, map[string]string{"algorithm": alg})
	})
	a.jwtKeys.mu.Lock()
	delete(a.jwtKeys.signers, c.InstanceID)
	a.jwtKeys.mu.Unlock()
	return k, err
}

// SigningKeys returns the instance's keys, newest first, private parts
// sealed.
func (a *Authority) SigningKeys(ctx context.Context, c Caller) ([]credential.SigningKey, error) {
	if _, err := a.enter(ctx, c, "SigningKeys"); err != nil {
		return nil, err
	}
	var out []credential.SigningKey
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		out, err = tx.ListSigningKeys(ctx, c.InstanceID)
		return err
	})
	return out, err
}

// PublishedKeys returns the public keys that belong in a JWKS: of one
// instance, or of every instance when instanceID is "".
func (a *Authority) PublishedKeys(ctx context.Context, instanceID string) ([]credential.SigningKey, error) {
	now := a.clock.Now()
	var out []credential.SigningKey
	err := a.store.View(ctx, func(tx Tx) error {
		ids := []string{instanceID}
		if instanceID == "" {
			ins, err := tx.ListInstances(ctx)
			if err != nil {
				return err
			}
			ids = ids[:0]
			for _, in := range ins {
				ids = append(ids, in.ID)
			}
		}
		for _, id := range ids {
			keys, err := tx.ListSigningKeys(ctx, id)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if k.Published(now) {
					k.Sealed = nil
					out = append(out, k)
				}
			}
		}
		return nil
	})
	return out, err
}

// m2mClaims are the structural claims of an M2M JWT.
type m2mClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud,omitempty"`
	Scopes    string          `json:"scopes"`
	IssuedAt  int64           `json:"iat"`
	NotBefore int64           `json:"nbf"`
	Expiry    int64           `json:"exp"`
	ID        string          `json:"jti"`
}

// mintM2MJWT signs an M2M JWT for the grant's machine at the grant's
// instant; the transaction only keeps its key published and audits it.
func (a *Authority) mintM2MJWT(ctx context.Context, g grant, claims json.RawMessage, scopes []string, expiresAt time.Time) (M2MToken, error) {
	c, now := g.caller, g.now
	s, err := a.signer(ctx, c.InstanceID)
	if err != nil {
		return M2MToken{}, err
	}
	expiresAt = expiresAt.Truncate(time.Second) // JWT times are whole seconds
	if !expiresAt.After(now) {
		expiresAt = now.Truncate(time.Second).Add(time.Second)
	}
	id := credential.NewHexID("mt_")
	structural := m2mClaims{
		Issuer: a.issuer, Subject: c.MachineID, Scopes: strings.Join(scopes, " "),
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: expiresAt.Unix(), ID: id,
	}
	if len(scopes) > 0 {
		structural.Audience, _ = json.Marshal(scopes)
	}
	payload, err := mergeClaims(structural, claims)
	if err != nil {
		return M2MToken{}, err
	}
	token, err := s.signer.Sign(signing.Header{Type: "JWT", Category: m2mCategory}, payload)
	if err != nil {
		return M2MToken{}, credential.Wrap(credential.CodeInternal, err, "sign M2M token")
	}
	err = g.mutate(ctx, func(tx *change) error {
		// The key stays in the JWKS until this token has expired.
		if err := tx.ExtendSigningKey(ctx, c.InstanceID, s.key.ID, expiresAt); err != nil {
			return err
		}
		return tx.audit("m2m_token.create", "m2m_token", id, map[string]any{"format": FormatJWT, "scopes": scopes, "expires_at": expiresAt.UnixMilli(), "kid": s.key.ID})
	})
	if err != nil {
		return M2MToken{}, err
	}
	return M2MToken{
		ID: id, InstanceID: c.InstanceID, Subject: c.MachineID, Claims: claims, Scopes: scopes,
		ExpiresAt: expiresAt, CreatedAt: now, UpdatedAt: now, Token: token,
	}, nil
}

// mergeClaims puts custom claims at the top level beside the structural
// ones (normalizeClaims has already refused reserved names).
func mergeClaims(structural m2mClaims, custom json.RawMessage) (json.RawMessage, error) {
	base, err := json.Marshal(structural)
	if err != nil || len(custom) == 0 {
		return base, err
	}
	custom = bytes.TrimSpace(custom)
	if string(custom) == "{}" {
		return base, nil
	}
	// Both are JSON objects: splice custom's members after base's.
	return append(append(base[:len(base)-1:len(base)-1], ','), custom[1:]...), nil
}

// verifiedJWT is what a JWT's signature check established; it never
// changes for a given token, so it is cached by the token's SHA-256.
type verifiedJWT struct {
	instanceID string
	claims     m2mClaims
	custom     json.RawMessage
	scopes     []string
	expires    time.Time // of the entry
}

// verifyJWT verifies an M2M JWT. It must be signed by a key of the
// caller's instance with that key's algorithm, carry the M2M category and
// keyward's issuer, and its machine must still exist. The signature check
// runs once per token; the state rules run on every call.
func (a *Authority) verifyJWT(ctx context.Context, c Caller, in VerifyInput, now time.Time) (VerifyResult, error) {
	sum := sha256.Sum256([]byte(in.Token))
	v, ok := a.jwtKeys.verified.Get(sum)
	if !ok || v.instanceID != c.InstanceID || !now.Before(v.expires) {
		t, err := signing.Parse(in.Token)
		if err != nil {
			return notFound, nil
		}
		if t.Header.Type == sessionTokenType && t.Header.Category == "" {
			return a.verifySession(ctx, c, t, in)
		}
		if v, ok, err = a.checkJWT(ctx, c.InstanceID, t); err != nil || !ok {
			return notFound, err
		}
		v.expires = now.Add(positiveTTL)
		a.jwtKeys.verified.Add(sum, v)
	}
	if c.Kind == credential.KindMachineKey && !slices.Contains(v.scopes, c.MachineID) {
		return notFound, nil
	}
	exists, err := a.machineExists(ctx, c.InstanceID, v.claims.Subject, now)
	if err != nil {
		return VerifyResult{}, err
	}
	expiresAt := time.Unix(v.claims.Expiry, 0)
	tok := M2MToken{
		ID: v.claims.ID, InstanceID: c.InstanceID, Subject: v.claims.Subject, Claims: v.custom, Scopes: v.scopes,
		Revoked: !exists, Expired: credential.Expired(expiresAt, now), ExpiresAt: expiresAt,
		CreatedAt: time.Unix(v.claims.IssuedAt, 0), UpdatedAt: time.Unix(v.claims.IssuedAt, 0),
	}
	if !exists {
		tok.RevocationReason = "machine deleted"
	}
	r := VerifyResult{
		Kind: credential.KindM2MToken, ID: v.claims.ID, Subject: v.claims.Subject, Scopes: v.scopes, Claims: v.custom,
		ExpiresAt: expiresAt, IssuedAt: tok.CreatedAt, M2M: &tok,
	}
	r.Reason = decide(!exists, expiresAt, time.Unix(v.claims.NotBefore, 0), now, v.scopes, in, false)
	r.Valid = r.Reason == ReasonValid
	return r, nil
}

// checkJWT verifies a parsed token's signature and structural claims; ok is false for anything that is not a genuine M2M JWT of the
// instance.
func (a *Authority) checkJWT(ctx context.Context, instanceID string, t *signing.Token) (verifiedJWT, bool, error) {
	if t.Header.Type != "JWT" || t.Header.Category != m2mCategory {
		return verifiedJWT{}, false, nil
	}
	ver, err := a.verifier(ctx, instanceID, t.KeyID)
	if credential.IsCode(err, credential.CodeNotFound) {
		return verifiedJWT{}, false, nil
	}
	if err != nil {
		return verifiedJWT{}, false, err
	}
	payload, err := ver.Verify(t)
	if err != nil {
		return verifiedJWT{}, false, nil
	}
	v := verifiedJWT{instanceID: instanceID}
	var all map[string]json.RawMessage
	if json.Unmarshal(payload, &v.claims) != nil || json.Unmarshal(payload, &all) != nil ||
		v.claims.Issuer != a.issuer || !credential.ValidID(credential.PrefixMachine, v.claims.Subject) || v.claims.Expiry == 0 {
		return verifiedJWT{}, false, nil
	}
	v.scopes = strings.Fields(v.claims.Scopes)
	for _, name := range reservedClaims {
		delete(all, name)
	}
	if len(all) > 0 {
		v.custom, _ = json.Marshal(all)
	}
	return v, true, nil
}

// verifier returns the verifier for kid within the instance.
func (a *Authority) verifier(ctx context.Context, instanceID, kid string) (*signing.Verifier, error) {
	cacheKey := instanceID + "/" + kid
	a.jwtKeys.mu.Lock()
	v, ok := a.jwtKeys.verifiers[cacheKey]
	a.jwtKeys.mu.Unlock()
	if ok {
		return v, nil
	}
	var key credential.SigningKey
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		key, err = tx.GetSigningKey(ctx, instanceID, kid)
		return err
	})
	if err != nil {
		return nil, err
	}
	if v, err = signing.NewVerifier(key.Algorithm, key.PublicKey); err != nil {
		return nil, credential.Wrap(credential.CodeInternal, err, "load verification key")
	}
	a.jwtKeys.mu.Lock()
	a.jwtKeys.verifiers[cacheKey] = v
	a.jwtKeys.mu.Unlock()
	return v, nil
}

// machineExists answers from a short-lived cache that every cache
// invalidation (a deleted machine among them) makes stale.
func (a *Authority) machineExists(ctx context.Context, instanceID, id string, now time.Time) (bool, error) {
	epoch := a.cache.currentEpoch()
	cacheKey := machineRef{instanceID: instanceID, machineID: id}
	a.jwtKeys.mu.Lock()
	st, ok := a.jwtKeys.machines[cacheKey]
	a.jwtKeys.mu.Unlock()
	if ok && st.epoch == epoch && now.Before(st.expires) {
		return st.exists, nil
	}
	err := a.store.View(ctx, func(tx Tx) error {
		_, err := tx.GetMachine(ctx, instanceID, id)
		return err
	})
	if err != nil && !credential.IsCode(err, credential.CodeNotFound) {
		return false, err
	}
	st = machineState{exists: err == nil, epoch: epoch, expires: now.Add(a.cache.positiveLifetime())}
	a.jwtKeys.mu.Lock()
	a.jwtKeys.machines[cacheKey] = st
	a.jwtKeys.mu.Unlock()
	return st.exists, nil
}
