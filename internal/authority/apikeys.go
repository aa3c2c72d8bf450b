package authority

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/credential"
)

// API key limits. Clerk publishes the name, type, description and subject
// rules; the others are keyward's (see the README's "API keys" section).
const (
	APIKeyDefaultType    = "api_key"
	APIKeyNameMin        = 3
	APIKeyNameMax        = 255
	APIKeyDescriptionMax = 255
	APIKeyMaxScopes      = 100
	APIKeyScopeMax       = 255
	APIKeyListLimitMax   = 100
)

var (
	apiKeySubject   = regexp.MustCompile(`^(user|org|mch)_\w{27}$`)
	apiKeyCreatedBy = regexp.MustCompile(`^user_\w{27}$`)
	apiKeyType      = regexp.MustCompile(`^[A-Za-z0-9_.:-]{3,25}$`)
)

// APIKey is an API key, as every surface may show it. The key's type is kept in
// the credential's ParentID, so listing by type is one indexed query.
type APIKey struct {
	ID               string
	InstanceID       string
	Type             string
	Name             string
	Subject          string // user_…, org_… or mch_…
	Description      *string
	Claims           json.RawMessage // a JSON object, or nil
	Scopes           []string
	Revoked          bool
	RevocationReason string
	Expired          bool
	ExpiresAt        time.Time
	CreatedBy        string
	LastUsedAt       time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	// Meta, Permissions and Roles are the key's controls (controls.go).
	Meta        json.RawMessage
	Permissions []string
	Roles       []string
	// Secret is set in the create response only.
	Secret string
}

// apiKeyAttrs are what an API key's credential row keeps beside the
// digest and the sealed secret.
type apiKeyAttrs struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"` // "" shows as null
	Claims      json.RawMessage `json:"claims,omitempty"`
	Scopes      []string        `json:"scopes"`
	CreatedBy   string          `json:"created_by,omitempty"`
	Controls    *Controls       `json:"controls,omitempty"`
}

func apiKeyView(c credential.Credential, a tokenAttrs, now time.Time) APIKey {
	k := APIKey{
		ID: c.ID, InstanceID: c.InstanceID, Type: c.ParentID, Name: a.Name, Subject: c.Subject,
		Claims: a.Claims, Scopes: a.Scopes, Revoked: c.Revoked(), RevocationReason: c.RevocationReason,
		Expired: c.ExpiredAt(now), ExpiresAt: c.ExpiresAt, CreatedBy: a.CreatedBy,
		LastUsedAt: c.LastUsedAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	if a.Description != "" {
		d := a.Description
		k.Description = &d
	}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if ctl := a.Controls; ctl != nil {
		k.Meta, k.Permissions, k.Roles = ctl.Meta, ctl.Permissions, ctl.Roles
	}
	return k
}

// CreateAPIKeyInput is what creating an API key takes. Nil means absent
// (or JSON null).
type CreateAPIKeyInput struct {
	Type                   *string
	Name                   *string
	Description            *string
	Subject                *string
	Claims                 json.RawMessage
	Scopes                 []string
	CreatedBy              *string
	SecondsUntilExpiration *float64
	// Controls sets the key's controls at verify time (controls.go).
	Controls ControlsInput
}

// CreateAPIKey issues an API key for a user, an organization or a machine
// of the instance. The secret is returned here, and is kept sealed so that
// APIKeySecret can return it again.
func (a *Authority) CreateAPIKey(ctx context.Context, c Caller, in CreateAPIKeyInput) (APIKey, error) {
	g, err := a.enter(ctx, c, "CreateAPIKey")
	if err != nil {
		return APIKey{}, err
	}
	typ := APIKeyDefaultType
	if in.Type != nil {
		if !apiKeyType.MatchString(*in.Type) {
			return APIKey{}, credential.ParamError(credential.CodeInvalid, "type", "must be 3 to 25 letters, digits or _ . : -")
		}
		typ = *in.Type
	}
	if in.Name == nil {
		return APIKey{}, credential.ParamError(credential.CodeMissing, "name", "is missing")
	}
	if err := validateAPIKeyName(*in.Name); err != nil {
		return APIKey{}, err
	}
	if in.Subject == nil {
		return APIKey{}, credential.ParamError(credential.CodeMissing, "subject", "is missing")
	}
	attrs := apiKeyAttrs{Name: *in.Name}
	if in.Description != nil {
		attrs.Description = *in.Description
	}
	if err := validateAPIKeySubject(*in.Subject); err != nil {
		return APIKey{}, err
	}
	if err := validateAPIKeyDescription(in.Description); err != nil {
		return APIKey{}, err
	}
	if attrs.Claims, err = normalizeClaims(in.Claims, FormatOpaque); err != nil {
		return APIKey{}, err
	}
	if attrs.Scopes, err = validateAPIKeyScopes(in.Scopes); err != nil {
		return APIKey{}, err
	}
	if in.CreatedBy != nil {
		if !apiKeyCreatedBy.MatchString(*in.CreatedBy) {
			return APIKey{}, credential.ParamError(credential.CodeInvalid, "created_by", "must be a user id (user_…)")
		}
		attrs.CreatedBy = *in.CreatedBy
	}
	if err := validateAPIKeyTTL(in.SecondsUntilExpiration); err != nil {
		return APIKey{}, err
	}
	if in.Controls, err = validateControls(in.Controls); err != nil {
		return APIKey{}, err
	}
	secret, err := credential.Generate(credential.KindAPIKey)
	if err != nil {
		return APIKey{}, err
	}
	now := g.now
	cred := a.newCredential(credential.NewTimeHexID(credential.PrefixAPIKey, now), c.InstanceID, credential.KindAPIKey, secret, *in.Subject, now)
	cred.ParentID = typ
	cred.ExpiresAt = apiKeyExpiry(in.SecondsUntilExpiration, now)
	if cred.Attrs, err = json.Marshal(attrs); err != nil {
		return APIKey{}, credential.Wrap(credential.CodeInternal, err, "encode API key")
	}
	if cred.Sealed, err = a.keyring.Seal([]byte(secret.Reveal()), []byte(cred.ID)); err != nil {
		return APIKey{}, credential.Wrap(credential.CodeInternal, err, "seal API key")
	}
	err = g.mutate(ctx, func(tx *change) error {
		if err := requireSubjectMachine(ctx, tx, c.InstanceID, cred.Subject); err != nil {
			return err
		}
		if !in.Controls.isZero() {
			ctl, err := applyControls(ctx, tx, c.InstanceID, cred.ID, nil, in.Controls, tx.now)
			if err != nil {
				return err
			}
			with := attrs
			with.Controls = ctl
			if cred.Attrs, err = json.Marshal(with); err != nil {
				return credential.Wrap(credential.CodeInternal, err, "encode API key")
			}
		}
		if err := tx.InsertCredential(ctx, cred); err != nil {
			return err
		}
		return tx.audit("api_key.create", "api_key", cred.ID, map[string]any{"subject": cred.Subject, "type": typ, "scopes": attrs.Scopes})
	})
	if err != nil {
		return APIKey{}, err
	}
	parsed, err := parseTokenAttrs(cred)
	if err != nil {
		return APIKey{}, err
	}
	k := apiKeyView(cred, parsed, now)
	k.Secret = secret.Reveal()
	return k, nil
}

// requireSubjectMachine checks that a machine subject is a machine of the
// instance; users and organizations are the embedding application's, and
// keyward takes their ids as given.
func requireSubjectMachine(ctx context.Context, tx MachineTx, instanceID, subject string) error {
	if !strings.HasPrefix(subject, credential.PrefixMachine) {
		return nil
	}
	_, err := tx.GetMachine(ctx, instanceID, subject)
	if credential.IsCode(err, credential.CodeNotFound) {
		return credential.ParamError(credential.CodeInvalid, "subject", "is not a machine of this instance")
	}
	return err
}

func validateAPIKeyName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case n < APIKeyNameMin:
		return credential.ParamError(credential.CodeInvalid, "name", fmt.Sprintf("must be at least %d characters", APIKeyNameMin))
	case n > APIKeyNameMax:
		return credential.ParamError(credential.CodeTooLong, "name", fmt.Sprintf("must be at most %d characters", APIKeyNameMax))
	case strings.TrimSpace(name) != name:
		return credential.ParamError(credential.CodeInvalid, "name", "must not start or end with whitespace")
	}
	return nil
}

func validateAPIKeySubject(subject string) error {
	if !apiKeySubject.MatchString(subject) {
		return credential.ParamError(credential.CodeInvalid, "subject", "must be a user, organization or machine id (user_…, org_…, mch_… followed by 27 characters)")
	}
	return nil
}

func validateAPIKeyDescription(d *string) error {
	if d != nil && utf8.RuneCountInString(*d) > APIKeyDescriptionMax {
		return credential.ParamError(credential.CodeTooLong, "description", fmt.Sprintf("must be at most %d characters", APIKeyDescriptionMax))
	}
	return nil
}

// validateAPIKeyScopes checks free-form scopes (Clerk never interprets
// them) and drops repeats, keeping the first order.
func validateAPIKeyScopes(scopes []string) ([]string, error) {
	if len(scopes) > APIKeyMaxScopes {
		return nil, credential.ParamError(credential.CodeTooMany, "scopes", fmt.Sprintf("should not exceed %d items", APIKeyMaxScopes))
	}
	for _, s := range scopes {
		if s == "" || utf8.RuneCountInString(s) > APIKeyScopeMax {
			return nil, credential.ParamError(credential.CodeInvalid, "scopes", fmt.Sprintf("each scope must be 1 to %d characters", APIKeyScopeMax))
		}
	}
	out := dedupe(scopes)
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func validateAPIKeyTTL(s *float64) error {
	if s != nil && (!(*s > 0) || *s > MaxTokenTTL || math.IsNaN(*s)) {
		return credential.ParamError(credential.CodeInvalid, "seconds_until_expiration", fmt.Sprintf("must be greater than 0 and at most %d", MaxTokenTTL))
	}
	return nil
}

// apiKeyExpiry is now + seconds, to the millisecond; nil never expires.
func apiKeyExpiry(seconds *float64, now time.Time) time.Time {
	if seconds == nil {
		return time.Time{}
	}
	return now.Add(time.Duration(*seconds * float64(time.Second))).Truncate(time.Millisecond)
}

// ListAPIKeysInput selects a page of one subject's API keys of one type.
// Query, when set, keeps keys whose name contains it (any case).
type ListAPIKeysInput struct {
	Subject        string
	Type           *string
	IncludeInvalid bool // revoked and expired keys too
	Query          string
	// Meta keeps keys whose meta has each key with the value: a JSON
	// string equal to it, or another JSON value whose text is it.
	Meta   map[string]string
	Limit  *int64
	Offset *int64
}

// ListAPIKeys lists a subject's keys, newest first, without secrets.
func (a *Authority) ListAPIKeys(ctx context.Context, c Caller, in ListAPIKeysInput) ([]APIKey, int, error) {
	g, err := a.enter(ctx, c, "ListAPIKeys")
	if err != nil {
		return nil, 0, err
	}
	if in.Subject == "" {
		return nil, 0, credential.ParamError(credential.CodeMissing, "subject", "is missing")
	}
	if err := validateAPIKeySubject(in.Subject); err != nil {
		return nil, 0, err
	}
	typ := APIKeyDefaultType
	if in.Type != nil {
		if !apiKeyType.MatchString(*in.Type) {
			return nil, 0, credential.ParamError(credential.CodeInvalid, "type", "must be 3 to 25 letters, digits or _ . : -")
		}
		typ = *in.Type
	}
	limit, offset, err := page(in.Limit, in.Offset, M2MListLimitDefault, APIKeyListLimitMax)
	if err != nil {
		return nil, 0, err
	}
	if err := checkMetaFilter(in.Meta); err != nil {
		return nil, 0, err
	}
	now := g.now
	q := CredentialQuery{InstanceID: c.InstanceID, Kind: credential.KindAPIKey, Subject: in.Subject, ParentID: typ,
		Now: now, Limit: limit, Offset: offset}
	if !in.IncludeInvalid {
		q.Revoked, q.Expired = new(bool), new(bool)
	}
	// Names and meta live in attrs: with either filter, pageCredentials
	// filters in memory over the subject's keys (a subject holds a
	// handful), then pages.
	keep := metaKeep(in.Meta)
	if needle := strings.ToLower(in.Query); needle != "" {
		keep = func(a tokenAttrs) bool {
			return strings.Contains(strings.ToLower(a.Name), needle) && metaMatches(a.Controls, in.Meta)
		}
	}
	var out []APIKey
	var total int
	err = a.store.View(ctx, func(tx Tx) error {
		var err error
		out, total, err = pageCredentials(ctx, tx, q, keep, func(cred credential.Credential, attrs tokenAttrs) APIKey {
			return apiKeyView(cred, attrs, now)
		})
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// apiKeyID accepts Clerk's legacy api_key_ spelling of an id.
func apiKeyID(id string) string {
	if rest, ok := strings.CutPrefix(id, "api_key_"); ok {
		return credential.PrefixAPIKey + rest
	}
	return id
}

var errAPIKeyNotFound = credential.Errorf(credential.CodeNotFound, "no API key was found with that id")

// apiKeyFor loads an API key of the caller's instance; anything else
// (another kind, another instance, a malformed id) is the same not found.
func apiKeyFor(ctx context.Context, tx CredentialTx, c Caller, id string) (credential.Credential, tokenAttrs, error) {
	id = apiKeyID(id)
	if !credential.ValidHexID(credential.PrefixAPIKey, id) {
		return credential.Credential{}, tokenAttrs{}, errAPIKeyNotFound
	}
	cred, err := tx.GetCredential(ctx, c.InstanceID, id)
	switch {
	case credential.IsCode(err, credential.CodeNotFound):
		return cred, tokenAttrs{}, errAPIKeyNotFound
	case err != nil:
		return cred, tokenAttrs{}, err
	case cred.Kind != credential.KindAPIKey:
		return cred, tokenAttrs{}, errAPIKeyNotFound
	}
	attrs, err := parseTokenAttrs(cred)
	return cred, attrs, err
}

// GetAPIKey returns one API key, without its secret.
func (a *Authority) GetAPIKey(ctx context.Context, c Caller, id string) (APIKey, error) {
	g, err := a.enter(ctx, c, "GetAPIKey")
	if err != nil {
		return APIKey{}, err
	}
	var k APIKey
	err = a.store.View(ctx, func(tx Tx) error {
		cred, attrs, err := apiKeyFor(ctx, tx, c, id)
		k = apiKeyView(cred, attrs, g.now)
		return err
	})
	return k, err
}

// UpdateAPIKeyInput changes what is set: Set* marks a nullable field that
// was sent (its value nil for JSON null, which clears it). The name and
// type are not updatable.
type UpdateAPIKeyInput struct {
	Subject                   *string
	SetDescription            bool
	Description               *string
	SetClaims                 bool
	Claims                    json.RawMessage
	Scopes                    []string // nil: unchanged
	SetSecondsUntilExpiration bool
	SecondsUntilExpiration    *float64 // nil with the Set flag: never expires
	// Controls changes the key's controls (controls.go).
	Controls ControlsInput
}

// UpdateAPIKey changes an API key's metadata. The change applies to the
// very next verification (the cached entry is dropped on every node).
func (a *Authority) UpdateAPIKey(ctx context.Context, c Caller, id string, in UpdateAPIKeyInput) (APIKey, error) {
	g, err := a.enter(ctx, c, "UpdateAPIKey")
	if err != nil {
		return APIKey{}, err
	}
	if in.Subject != nil {
		if err := validateAPIKeySubject(*in.Subject); err != nil {
			return APIKey{}, err
		}
	}
	if err := validateAPIKeyDescription(in.Description); err != nil {
		return APIKey{}, err
	}
	var (
		claims json.RawMessage
		scopes []string
	)
	if in.SetClaims {
		if claims, err = normalizeClaims(in.Claims, FormatOpaque); err != nil {
			return APIKey{}, err
		}
	}
	if in.Scopes != nil {
		if scopes, err = validateAPIKeyScopes(in.Scopes); err != nil {
			return APIKey{}, err
		}
	}
	if in.SetSecondsUntilExpiration {
		if err := validateAPIKeyTTL(in.SecondsUntilExpiration); err != nil {
			return APIKey{}, err
		}
	}
	if in.Controls, err = validateControls(in.Controls); err != nil {
		return APIKey{}, err
	}
	var k APIKey
	err = g.mutate(ctx, func(tx *change) error {
		cred, attrs, err := apiKeyFor(ctx, tx, c, id)
		if err != nil {
			return err
		}
		stored := apiKeyAttrs{Name: attrs.Name, Description: attrs.Description, Claims: attrs.Claims, Scopes: attrs.Scopes, CreatedBy: attrs.CreatedBy, Controls: attrs.Controls}
		if in.SetDescription {
			stored.Description = ""
			if in.Description != nil {
				stored.Description = *in.Description
			}
		}
		if in.SetClaims {
			stored.Claims = claims
		}
		if scopes != nil {
			stored.Scopes = scopes
		}
		if !in.Controls.isZero() {
			if stored.Controls, err = applyControls(ctx, tx, c.InstanceID, cred.ID, attrs.Controls, in.Controls, tx.now); err != nil {
				return err
			}
		}
		now := tx.now
		if in.Subject != nil && *in.Subject != cred.Subject {
			if err := requireSubjectMachine(ctx, tx, c.InstanceID, *in.Subject); err != nil {
				return err
			}
			if err := tx.SetCredentialSubject(ctx, c.InstanceID, cred.ID, *in.Subject, now); err != nil {
				return err
			}
			cred.Subject = *in.Subject
		}
		if in.SetSecondsUntilExpiration {
			cred.ExpiresAt = apiKeyExpiry(in.SecondsUntilExpiration, now)
			if err := tx.SetCredentialExpiry(ctx, c.InstanceID, cred.ID, cred.ExpiresAt, now); err != nil {
				return err
			}
		}
		raw, err := json.Marshal(stored)
		if err != nil {
			return credential.Wrap(credential.CodeInternal, err, "encode API key")
		}
		if err := tx.UpdateCredentialAttrs(ctx, c.InstanceID, cred.ID, raw, now); err != nil {
			return err
		}
		cred.Attrs, cred.UpdatedAt = raw, now
		parsed, err := parseTokenAttrs(cred)
		if err != nil {
			return err
		}
		k = apiKeyView(cred, parsed, now)
		tx.invalidate(cred.Digest)
		return tx.audit("api_key.update", "api_key", cred.ID, map[string]any{"subject": cred.Subject, "scopes": parsed.Scopes})
	})
	if err != nil {
		return APIKey{}, err
	}
	return k, nil
}

// DeleteAPIKey deletes an API key; it fails verification on the next call.
func (a *Authority) DeleteAPIKey(ctx context.Context, c Caller, id string) (string, error) {
	var cred credential.Credential
	err := a.mutate(ctx, c, "DeleteAPIKey", func(tx *change) error {
		var err error
		if cred, _, err = apiKeyFor(ctx, tx, c, id); err != nil {
			return err
		}
		if err := tx.DeleteCredential(ctx, c.InstanceID, cred.ID); err != nil {
			return err
		}
		tx.invalidate(cred.Digest)
		return tx.audit("api_key.delete", "api_key", cred.ID, map[string]string{"subject": cred.Subject})
	})
	if err != nil {
		return "", err
	}
	return cred.ID, nil
}

// RevokeAPIKey revokes an API key at once and for good. Revoking a revoked
// key changes nothing and returns it with its first reason.
func (a *Authority) RevokeAPIKey(ctx context.Context, c Caller, id, reason string) (APIKey, error) {
	g, err := a.enter(ctx, c, "RevokeAPIKey")
	if err != nil {
		return APIKey{}, err
	}
	if utf8.RuneCountInString(reason) > MaxRevocationReason {
		return APIKey{}, credential.ParamError(credential.CodeTooLong, "revocation_reason", fmt.Sprintf("must be at most %d characters", MaxRevocationReason))
	}
	var (
		cred  credential.Credential
		attrs tokenAttrs
	)
	err = g.mutate(ctx, func(tx *change) error {
		var err error
		if cred, attrs, err = apiKeyFor(ctx, tx, c, id); err != nil {
			return err
		}
		if cred.Revoked() {
			tx.nothingChanged()
			return nil
		}
		now := tx.now
		if err := tx.RevokeCredential(ctx, c.InstanceID, cred.ID, now, reason); err != nil {
			return err
		}
		cred.RevokedAt, cred.RevocationReason, cred.UpdatedAt = now, reason, now
		tx.invalidate(cred.Digest)
		return tx.audit("api_key.revoke", "api_key", cred.ID, map[string]string{"reason": reason})
	})
	if err != nil {
		return APIKey{}, err
	}
	return apiKeyView(cred, attrs, g.now), nil
}

// APIKeySecret returns an API key's secret again (Clerk's get-secret). The
// read is audited. A revoked or expired key's secret is returned too: it
// no longer verifies.
func (a *Authority) APIKeySecret(ctx context.Context, c Caller, id string) (credential.Secret, error) {
	var cred credential.Credential
	err := a.mutate(ctx, c, "APIKeySecret", func(tx *change) error {
		var err error
		if cred, _, err = apiKeyFor(ctx, tx, c, id); err != nil {
			return err
		}
		if len(cred.Sealed) == 0 {
			// Imported by its hash (keyward import-keys): keyward never held it.
			return credential.Errorf(credential.CodeNotFound, "API key %s was imported by its hash; its secret is not stored", cred.ID)
		}
		return tx.audit("api_key.secret_read", "api_key", cred.ID, nil)
	})
	if err != nil {
		return credential.Secret{}, err
	}
	plain, err := a.keyring.Open(cred.Sealed, []byte(cred.ID))
	if err != nil {
		return credential.Secret{}, credential.Wrap(credential.CodeInternal, err, "open API key")
	}
	secret, kind, err := credential.Parse(string(plain))
	if err != nil || kind != credential.KindAPIKey {
		return credential.Secret{}, credential.Errorf(credential.CodeInternal, "stored API key %s is malformed", cred.ID)
	}
	return secret, nil
}

// verifyAPIKey applies the rules to an API key: only the admin key may
// verify one (Clerk verifies API keys with the instance secret key).
func verifyAPIKey(c Caller, e cacheEntry, in VerifyInput, now time.Time) VerifyResult {
	if c.Kind != credential.KindAdminKey {
		return notFound
	}
	k := apiKeyView(e.cred, e.attrs, now)
	r := VerifyResult{
		Kind: credential.KindAPIKey, ID: e.cred.ID, Subject: e.cred.Subject, Scopes: k.Scopes, Claims: e.attrs.Claims,
		ExpiresAt: e.cred.ExpiresAt, IssuedAt: e.cred.CreatedAt, APIKey: &k,
	}
	r.Reason = decide(e.cred.Revoked(), e.cred.ExpiresAt, time.Time{}, now, k.Scopes, in, false)
	if r.Valid = r.Reason == ReasonValid; r.Valid {
		k.LastUsedAt = now
	}
	return r
}
