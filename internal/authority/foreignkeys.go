package authority

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyward/keyward/internal/credential"
)

// Foreign keys are API keys another system issued and kept only as a hash.
// They are imported as API key credentials whose digest is a random
// placeholder, each with a ForeignHash row holding the other system's
// hash. A presented key that is not one of keyward's own (it fails
// credential.Parse) is looked up by that hash; on its first successful
// verify the credential is re-keyed to keyward's digest and the foreign
// hash is deleted, in one transaction.

// ForeignFormat is how the other system hashed its keys.
type ForeignFormat string

const (
	// ForeignSHA256 is SHA-256 of the whole key, given as hex or base64
	// (Unkey's hash is the base64 form).
	ForeignSHA256 ForeignFormat = "sha256"
	// ForeignHMACSHA256 is HMAC-SHA256 of the whole key under a key the
	// import is given, as hex or base64.
	ForeignHMACSHA256 ForeignFormat = "hmac-sha256"
	// ForeignBcrypt is a bcrypt hash ($2a$, $2b$, $2y$). bcrypt is salted,
	// so it cannot be looked up: a bcrypt key must come with its start.
	ForeignBcrypt ForeignFormat = "bcrypt"
)

// Foreign key limits.
const (
	// ForeignStartMax bounds a key's start (the lookup hint of bcrypt keys).
	ForeignStartMax = 32
	// ForeignStartMinExtra is how many characters past its prefix a bcrypt
	// key's start must have, so that few keys share one.
	ForeignStartMinExtra = 3
	// foreignBcryptCandidates bounds the bcrypt hashes tried per presented
	// key (keys sharing a start).
	foreignBcryptCandidates = 8
	foreignKeyMax           = 512
	bcryptMaxKey            = 72
	// foreignBcryptMaxCost bounds the cost of an imported bcrypt hash.
	foreignBcryptMaxCost  = 12
	foreignMissDomain     = "keyward/foreign-miss\x00"
	foreignFingerprintKey = "keyward/v1/foreign-hmac-fingerprint"
)

// ForeignHMACKeyGrace is how long a foreign HMAC key no hash needs is kept
// after the last import that used it: an import still running (its hashes
// not yet committed) must not lose the key it found.
const ForeignHMACKeyGrace = time.Hour

// ForeignHash is what the store keeps of an imported key until it is
// re-keyed.
type ForeignHash struct {
	CredentialID string
	InstanceID   string
	Format       ForeignFormat
	Prefix       string // the foreign prefix the key was mapped by
	Lookup       []byte // SHA-256 or HMAC-SHA256 of the key; nil for bcrypt
	HMACKeyID    string // the ForeignHMACKey of an hmac-sha256 key
	Start        string // the key's start: bcrypt's lookup hint
	BcryptHash   string
	CreatedAt    time.Time
}

// ForeignHMACKey is a foreign system's HMAC key, sealed under the keyring
// (bound to its id). Fingerprint identifies the key without revealing it.
type ForeignHMACKey struct {
	ID          string
	InstanceID  string
	Fingerprint []byte
	Sealed      []byte
	CreatedAt   time.Time
}

// ForeignKey is one imported key: its hash and the API key it becomes.
type ForeignKey struct {
	Line        int // where it came from, for errors
	Format      ForeignFormat
	Hash        string
	Start       string // the non-secret start of the key; required for bcrypt
	Prefix      string // the foreign prefix; found from Start when empty
	Subject     string
	Name        string
	Description string
	Scopes      []string
	Claims      json.RawMessage
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// ImportForeignKeysInput is one import run. Prefixes maps each foreign
// prefix (sk_live_) to the API key type its keys get. HMACKey is the
// foreign system's key for hmac-sha256 hashes.
type ImportForeignKeysInput struct {
	InstanceID string
	Keys       []ForeignKey
	Prefixes   map[string]string
	HMACKey    []byte
}

// ImportForeignKeysResult counts what an import wrote, per format.
type ImportForeignKeysResult struct {
	Imported int
	ByFormat map[ForeignFormat]int
}

// ImportForeignKeys validates every key, then writes them all in one
// transaction: a bad line is an error naming it, and nothing is written.
// It is the host operator's (keyward import-keys opens the store directly).
func (a *Authority) ImportForeignKeys(ctx context.Context, in ImportForeignKeysInput) (ImportForeignKeysResult, error) {
	res := ImportForeignKeysResult{ByFormat: map[ForeignFormat]int{}}
	if len(in.Prefixes) == 0 {
		return res, credential.ParamError(credential.CodeMissing, "prefix", "is missing: map each foreign prefix to an API key type")
	}
	for p, typ := range in.Prefixes {
		if p == "" || len(p) > ForeignStartMax {
			return res, credential.ParamError(credential.CodeInvalid, "prefix", fmt.Sprintf("must be 1 to %d characters", ForeignStartMax))
		}
		if !apiKeyType.MatchString(typ) {
			return res, credential.ParamError(credential.CodeInvalid, "prefix", fmt.Sprintf("type %q of %s must be 3 to 25 letters, digits or _ . : -", typ, p))
		}
	}
	now := a.clock.Now()
	var hmacKey *ForeignHMACKey
	if len(in.HMACKey) > 0 {
		k, err := a.sealForeignHMACKey(in.InstanceID, in.HMACKey, now)
		if err != nil {
			return res, err
		}
		hmacKey = &k
	}
	rows := make([]foreignRow, 0, len(in.Keys))
	seen := make(map[string]int, len(in.Keys))
	for _, k := range in.Keys {
		r, err := a.checkForeignKey(in, k, hmacKey, now)
		if err != nil {
			return res, atLine(k.Line, err)
		}
		if r.hash.Lookup != nil {
			if first, dup := seen[string(r.hash.Lookup)]; dup {
				return res, credential.Errorf(credential.CodeInvalid, "line %d: the same key as line %d", k.Line, first)
			}
			seen[string(r.hash.Lookup)] = k.Line
		}
		rows = append(rows, r)
		res.ByFormat[k.Format]++
	}
	err := a.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.GetInstance(ctx, in.InstanceID); err != nil {
			return err
		}
		if hmacKey != nil {
			id, err := tx.InsertForeignHMACKey(ctx, *hmacKey)
			if err != nil {
				return err
			}
			for i := range rows {
				if rows[i].hash.Format == ForeignHMACSHA256 {
					rows[i].hash.HMACKeyID = id
				}
			}
		}
		used := map[string]bool{}
		for _, r := range rows {
			if !used[r.hash.Prefix] {
				if err := tx.InsertForeignPrefix(ctx, in.InstanceID, r.hash.Prefix, now); err != nil {
					return err
				}
				used[r.hash.Prefix] = true
			}
		}
		machines := map[string]bool{}
		for i, r := range rows {
			if s := r.cred.Subject; strings.HasPrefix(s, credential.PrefixMachine) && !machines[s] {
				if err := requireSubjectMachine(ctx, tx, in.InstanceID, s); err != nil {
					return atLine(in.Keys[i].Line, err)
				}
				machines[s] = true
			}
			if err := tx.InsertCredential(ctx, r.cred); err != nil {
				return lineError(in.Keys[i].Line, err)
			}
			if err := tx.InsertForeignHash(ctx, r.hash); err != nil {
				return lineError(in.Keys[i].Line, err)
			}
		}
		return a.audit(ctx, tx, Operator(in.InstanceID), "api_key.import", "instance", in.InstanceID, map[string]any{"imported": len(rows), "formats": res.ByFormat})
	})
	if err != nil {
		return ImportForeignKeysResult{ByFormat: map[ForeignFormat]int{}}, err
	}
	// This node verifies the new keys at once; others at their next refresh.
	_ = a.RefreshForeignPrefixes(ctx)
	res.Imported = len(rows)
	return res, nil
}

// atLine names the input line an error is about, keeping its code.
func atLine(line int, err error) error {
	return credential.Errorf(credential.CodeOf(err), "line %d: %s", line, err.Error())
}

func lineError(line int, err error) error {
	if credential.IsCode(err, credential.CodeConflict) {
		return credential.Errorf(credential.CodeConflict, "line %d: this key is already imported", line)
	}
	return err
}

// foreignRow is what one imported key writes: its API key credential and
// its foreign hash.
type foreignRow struct {
	cred credential.Credential
	hash ForeignHash
}

// checkForeignKey checks one imported key and builds its rows.
func (a *Authority) checkForeignKey(in ImportForeignKeysInput, k ForeignKey, hmacKey *ForeignHMACKey, now time.Time) (foreignRow, error) {
	var out foreignRow
	if len(k.Start) > ForeignStartMax {
		return out, credential.ParamError(credential.CodeTooLong, "start", fmt.Sprintf("must be at most %d characters", ForeignStartMax))
	}
	prefix := k.Prefix
	if prefix == "" {
		prefix = longestPrefix(in.Prefixes, k.Start)
	}
	if prefix == "" && len(in.Prefixes) == 1 && k.Start == "" {
		for p := range in.Prefixes {
			prefix = p
		}
	}
	typ, ok := in.Prefixes[prefix]
	if !ok {
		return out, credential.ParamError(credential.CodeInvalid, "prefix", fmt.Sprintf("%q is not mapped by --prefix (give the key's prefix or start)", prefix))
	}
	if k.Start != "" && !strings.HasPrefix(k.Start, prefix) {
		return out, credential.ParamError(credential.CodeInvalid, "start", "does not begin with the key's prefix")
	}
	h := ForeignHash{InstanceID: in.InstanceID, Format: k.Format, Prefix: prefix, Start: k.Start, CreatedAt: now}
	switch k.Format {
	case ForeignSHA256, ForeignHMACSHA256:
		sum, err := decodeDigest(k.Hash)
		if err != nil {
			return out, credential.ParamError(credential.CodeInvalid, "hash", err.Error())
		}
		if k.Format == ForeignHMACSHA256 && hmacKey == nil {
			return out, credential.ParamError(credential.CodeMissing, "hash", "is an hmac-sha256 hash, but no --hmac-key-file was given")
		}
		h.Lookup = sum
		if k.Start != "" && hmac.Equal(foreignDigestOf(k.Format, k.Start, in.HMACKey), sum) {
			// The start is shown in lists and exported: it must not be
			// the whole key.
			return out, credential.ParamError(credential.CodeInvalid, "start", "is the whole key; give only its first characters")
		}
	case ForeignBcrypt:
		cost, err := bcrypt.Cost([]byte(k.Hash))
		if err != nil {
			return out, credential.ParamError(credential.CodeInvalid, "hash", "is not a bcrypt hash")
		}
		if cost > foreignBcryptMaxCost {
			// Each unknown token under the key's start may cost a bcrypt
			// check: an import must not make verify arbitrarily slow.
			return out, credential.ParamError(credential.CodeInvalid, "hash", fmt.Sprintf("has bcrypt cost %d; at most %d is accepted", cost, foreignBcryptMaxCost))
		}
		if len(k.Start) < len(prefix)+ForeignStartMinExtra {
			return out, credential.ParamError(credential.CodeMissing, "start", fmt.Sprintf("is required for bcrypt: the key's first characters, at least %d past its prefix", ForeignStartMinExtra))
		}
		h.BcryptHash = k.Hash
	case "":
		return out, credential.ParamError(credential.CodeMissing, "format", "is missing (sha256, hmac-sha256 or bcrypt)")
	default:
		return out, credential.ParamError(credential.CodeInvalid, "format", fmt.Sprintf("%q is not sha256, hmac-sha256 or bcrypt", k.Format))
	}
	name := k.Name
	if name == "" {
		name = "imported key"
	}
	if err := validateAPIKeyName(name); err != nil {
		return out, err
	}
	if err := validateAPIKeySubject(k.Subject); err != nil {
		return out, err
	}
	desc := &k.Description
	if err := validateAPIKeyDescription(desc); err != nil {
		return out, err
	}
	attrs := apiKeyAttrs{Name: name, Description: k.Description}
	var err error
	if attrs.Claims, err = normalizeClaims(k.Claims, FormatOpaque); err != nil {
		return out, err
	}
	if attrs.Scopes, err = validateAPIKeyScopes(k.Scopes); err != nil {
		return out, err
	}
	// No secret maps to a random digest: the key verifies only through its
	// foreign hash until it is re-keyed.
	var placeholder credential.Digest
	if _, err := rand.Read(placeholder[:]); err != nil {
		return out, credential.Wrap(credential.CodeInternal, err, "read random bytes")
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = now
	}
	display := k.Start
	if display == "" {
		display = prefix
	}
	c := credential.Credential{
		ID: credential.NewTimeHexID(credential.PrefixAPIKey, now), InstanceID: in.InstanceID, Kind: credential.KindAPIKey,
		Digest: placeholder, DisplayPrefix: display, Subject: k.Subject, ParentID: typ,
		ExpiresAt: k.ExpiresAt, CreatedAt: created, UpdatedAt: now,
	}
	if k.Format == ForeignSHA256 {
		// The SHA-256 is what the search digest is made of, so a leaked key
		// is found in the audit trail before its first verify too.
		c.SearchDigest = a.keyring.SearchDigest([sha256.Size]byte(h.Lookup))
	}
	if c.Attrs, err = json.Marshal(attrs); err != nil {
		return out, credential.Wrap(credential.CodeInternal, err, "encode API key")
	}
	h.CredentialID = c.ID
	out.cred, out.hash = c, h
	return out, nil
}

func longestPrefix(prefixes map[string]string, start string) string {
	best := ""
	for p := range prefixes {
		if strings.HasPrefix(start, p) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// decodeDigest reads a 32-byte digest as hex or base64 (standard or URL
// alphabet, padded or not).
func decodeDigest(s string) ([]byte, error) {
	if len(s) == 2*sha256.Size {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == sha256.Size {
			return b, nil
		}
	}
	return nil, fmt.Errorf("must be a SHA-256 digest as 64 hex digits or base64 of 32 bytes")
}

// foreignDigestOf is what the other system stored for key: its SHA-256,
// or its HMAC-SHA256 under hmacKey.
func foreignDigestOf(format ForeignFormat, key string, hmacKey []byte) []byte {
	if format == ForeignHMACSHA256 {
		m := hmac.New(sha256.New, hmacKey)
		m.Write([]byte(key))
		return m.Sum(nil)
	}
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

func (a *Authority) foreignFingerprint(key []byte) ([]byte, error) {
	fk, err := a.keyring.DeriveKey(foreignFingerprintKey, 32)
	if err != nil {
		return nil, credential.Wrap(credential.CodeInternal, err, "derive fingerprint key")
	}
	m := hmac.New(sha256.New, fk)
	m.Write(key)
	return m.Sum(nil), nil
}

func (a *Authority) sealForeignHMACKey(instanceID string, key []byte, now time.Time) (ForeignHMACKey, error) {
	fp, err := a.foreignFingerprint(key)
	if err != nil {
		return ForeignHMACKey{}, err
	}
	k := ForeignHMACKey{ID: credential.NewID("fhk_", now), InstanceID: instanceID, Fingerprint: fp, CreatedAt: now}
	if k.Sealed, err = a.keyring.Seal(key, []byte(k.ID)); err != nil {
		return ForeignHMACKey{}, credential.Wrap(credential.CodeInternal, err, "seal HMAC key")
	}
	return k, nil
}

// plausibleForeignKey keeps obvious garbage off the store: a key is
// printable ASCII without spaces, of a sane length.
func plausibleForeignKey(s string) bool {
	if len(s) < 8 || len(s) > foreignKeyMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// verifyImportedKey applies the API key rules to an imported key and
// records a good use.
func (a *Authority) verifyImportedKey(c Caller, e cacheEntry, in VerifyInput) VerifyResult {
	now := a.clock.Now()
	r := verifyAPIKey(c, e, in, now)
	if r.Valid {
		a.usage.record(e.cred.InstanceID, e.cred.ID, now)
	}
	return r
}

// verifyForeign verifies a presented key that is not keyward's own: an
// imported key, already re-keyed (found by its digest, as native keys are)
// or still held by its foreign hash. Only the admin key verifies API keys.
func (a *Authority) verifyForeign(ctx context.Context, c Caller, in VerifyInput, now time.Time) (VerifyResult, error) {
	if c.Kind != credential.KindAdminKey || !plausibleForeignKey(in.Token) {
		return notFound, nil
	}
	// Only a key under a prefix the instance imported keys under goes on
	// to the store; other garbage stays off it, as for native secrets.
	prefixes := a.foreignGate.prefixes(c.InstanceID)
	if longestPrefixOf(prefixes, in.Token) == "" {
		return notFound, nil
	}
	secret := credential.ForeignSecret(in.Token)
	d := a.keyring.Digest(secret)
	e, err := a.lookup(ctx, d, now)
	if err != nil {
		return VerifyResult{}, err
	}
	if e.found {
		if e.cred.InstanceID != c.InstanceID || e.cred.Kind != credential.KindAPIKey {
			return notFound, nil
		}
		return a.verifyImportedKey(c, e, in), nil
	}
	miss := a.keyring.Digest(credential.ForeignSecret(foreignMissDomain + c.InstanceID + "\x00" + in.Token))
	if _, ok := a.cache.get(miss, now); ok {
		return notFound, nil
	}
	epoch := a.cache.currentEpoch()
	h, cred, err := a.findForeign(ctx, c.InstanceID, in.Token, shortestPrefixOf(prefixes, in.Token))
	if err != nil {
		return VerifyResult{}, err
	}
	if h == nil {
		// A concurrent first verify may have re-keyed it since the lookup
		// above missed: read the digest once more, from the store.
		cred, err := a.credentialByDigest(ctx, d)
		switch {
		case err == nil && cred.Digest.Equal(d) && cred.InstanceID == c.InstanceID && cred.Kind == credential.KindAPIKey:
			attrs, err := parseTokenAttrs(cred)
			if err != nil {
				return VerifyResult{}, err
			}
			return a.verifyImportedKey(c, cacheEntry{found: true, cred: cred, attrs: attrs}, in), nil
		case err != nil && !credential.IsCode(err, credential.CodeNotFound):
			return VerifyResult{}, err
		}
		a.cache.fillNotFound(miss, now.Add(negativeTTL), epoch)
		return notFound, nil
	}
	attrs, err := parseTokenAttrs(cred)
	if err != nil {
		return VerifyResult{}, err
	}
	r := a.verifyImportedKey(c, cacheEntry{found: true, cred: cred, attrs: attrs}, in)
	if !r.Valid {
		return r, nil
	}
	// The first successful verify: from now on the key is keyward's, found
	// by its digest, and the other system's hash is gone.
	search := a.keyring.SearchDigestOf(secret)
	err = a.store.Update(ctx, func(tx Tx) error {
		done, err := tx.RekeyForeignCredential(ctx, cred.InstanceID, cred.ID, d, search, now)
		if err != nil || !done {
			return err // !done: a concurrent verify re-keyed it first
		}
		return a.audit(ctx, tx, c, "api_key.rekey", "api_key", cred.ID, map[string]any{"format": h.Format})
	})
	if credential.IsCode(err, credential.CodeNotFound) {
		return notFound, nil // revoked or deleted since it was read
	}
	if err != nil {
		return VerifyResult{}, err
	}
	a.invalidate(ctx, d) // every node's negative entry for the new digest
	return r, nil
}

// findForeign finds the instance's imported key that token is, by its
// SHA-256, by its HMAC under each foreign HMAC key, or among the bcrypt
// hashes that share its start; it compares in constant time (bcrypt's
// comparison is too).
func (a *Authority) findForeign(ctx context.Context, instanceID, token string, shortest int) (*ForeignHash, credential.Credential, error) {
	var (
		found      *ForeignHash
		candidates []ForeignHash
		keys       []ForeignHMACKey
	)
	sum := sha256.Sum256([]byte(token))
	// A bcrypt key's start has its prefix and ForeignStartMinExtra more.
	// bcrypt reads only a key's first 72 bytes: a longer token is never
	// matched by one, or its tail would not count.
	var starts []string
	if len(token) <= bcryptMaxKey {
		for n := shortest + ForeignStartMinExtra; n <= min(len(token), ForeignStartMax); n++ {
			starts = append(starts, token[:n])
		}
	}
	err := a.store.View(ctx, func(tx Tx) error {
		h, err := tx.ForeignHashByLookup(ctx, instanceID, sum[:])
		switch {
		case err == nil && h.Format == ForeignSHA256 && hmac.Equal(h.Lookup, sum[:]):
			found = &h
			return nil
		case err != nil && !credential.IsCode(err, credential.CodeNotFound):
			return err
		}
		if keys, err = tx.ForeignHMACKeys(ctx, instanceID); err != nil {
			return err
		}
		for _, k := range keys {
			key, err := a.keyring.Open(k.Sealed, []byte(k.ID))
			if err != nil {
				return credential.Wrap(credential.CodeInternal, err, "open foreign HMAC key "+k.ID)
			}
			m := hmac.New(sha256.New, key)
			m.Write([]byte(token))
			mac := m.Sum(nil)
			clear(key)
			h, err := tx.ForeignHashByLookup(ctx, instanceID, mac)
			switch {
			case err == nil && h.Format == ForeignHMACSHA256 && h.HMACKeyID == k.ID && hmac.Equal(h.Lookup, mac):
				found = &h
				return nil
			case err != nil && !credential.IsCode(err, credential.CodeNotFound):
				return err
			}
		}
		candidates, err = tx.ForeignHashesByStart(ctx, instanceID, starts, foreignBcryptCandidates)
		return err
	})
	if err != nil {
		return nil, credential.Credential{}, err
	}
	for i := range candidates {
		if found == nil && strings.HasPrefix(token, candidates[i].Start) &&
			bcrypt.CompareHashAndPassword([]byte(candidates[i].BcryptHash), []byte(token)) == nil {
			found = &candidates[i]
		}
	}
	if found == nil || !strings.HasPrefix(token, found.Prefix) {
		return nil, credential.Credential{}, nil
	}
	var cred credential.Credential
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		cred, err = tx.GetCredential(ctx, instanceID, found.CredentialID)
		return err
	})
	if credential.IsCode(err, credential.CodeNotFound) {
		return nil, credential.Credential{}, nil // deleted meanwhile
	}
	return found, cred, err
}

// shortestPrefixOf is the length of the shortest of prefixes token starts
// with.
func shortestPrefixOf(prefixes []string, token string) int {
	n := len(token)
	for _, p := range prefixes {
		if strings.HasPrefix(token, p) && len(p) < n {
			n = len(p)
		}
	}
	return n
}

func longestPrefixOf(prefixes []string, token string) string {
	best := ""
	for _, p := range prefixes {
		if strings.HasPrefix(token, p) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// foreignGate is, per instance, the foreign prefixes keys were imported
// under, held in memory so that the verify path never reads the store for
// a token of no such prefix (nor for any garbage, on an instance that
// imported nothing). RunForeignPrefixRefresh reloads it; an import on this
// node reloads it at once, one in another process shows at the next
// refresh.
type foreignGate struct {
	mu         sync.RWMutex
	byInstance map[string][]string
}

// ForeignPrefixRefreshInterval is how often serve reloads the prefixes.
const ForeignPrefixRefreshInterval = 30 * time.Second

func (g *foreignGate) prefixes(instanceID string) []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.byInstance[instanceID]
}

// RefreshForeignPrefixes reloads the foreign prefixes from the store.
func (a *Authority) RefreshForeignPrefixes(ctx context.Context) error {
	var m map[string][]string
	if err := a.store.View(ctx, func(tx Tx) error {
		var err error
		m, err = tx.ForeignPrefixes(ctx)
		return err
	}); err != nil {
		return err
	}
	a.foreignGate.mu.Lock()
	a.foreignGate.byInstance = m
	a.foreignGate.mu.Unlock()
	return nil
}

// RunForeignPrefixRefresh reloads the foreign prefixes every interval
// until ctx ends (the first reload is the caller's, before serving).
func (a *Authority) RunForeignPrefixRefresh(ctx context.Context, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.RefreshForeignPrefixes(ctx); err != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}
