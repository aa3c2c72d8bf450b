package authority

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/credential"
)

// Identities group credentials under an external id (a customer, a
// tenant of the user's own product): their named rate limits and credits
// are shared by every credential linked to them (a credential's controls
// name it with identity_id), and deleting one revokes its credentials.
const (
	PrefixIdentity      = "idt_"
	MaxExternalIDBytes  = 255
	IdentityListLimit   = 100
	identityListDefault = 20
)

// Identity is an identity, as stored.
type Identity struct {
	ID         string
	InstanceID string
	ExternalID string
	Meta       json.RawMessage
	RateLimits []NamedLimit
	// Credits is the refill rule when the identity has credits (their
	// count is the credits row owned by the identity's id).
	Credits   *CreditsRule
	CreatedAt time.Time
	UpdatedAt time.Time
}

// IdentityView is an identity with its credits' count.
type IdentityView struct {
	Identity
	CreditsView *Credits
}

// IdentityInput creates or changes an identity; in an update, a nil field
// is left as it is.
type IdentityInput struct {
	ExternalID *string
	Meta       json.RawMessage // JSON null clears
	RateLimits *[]NamedLimit
	SetCredits bool
	Credits    *CreditsInput
}

// IdentityCredential is a credential linked to an identity.
type IdentityCredential struct {
	ID      string
	Kind    credential.Kind
	Revoked bool
	Meta    json.RawMessage // the credential's meta (its controls), or nil
}

// IdentityTx reads and writes identities and their credential links.
type IdentityTx interface {
	// InsertIdentity stores i; CodeConflict when the external id is taken.
	InsertIdentity(ctx context.Context, i Identity) error
	GetIdentity(ctx context.Context, instanceID, id string) (Identity, error)
	// ListIdentities returns a page by creation, and the total; an empty
	// externalID matches all.
	ListIdentities(ctx context.Context, instanceID, externalID string, limit, offset int) ([]Identity, int, error)
	// UpdateIdentity writes external_id, meta, ratelimits, credits and
	// updated_at; CodeNotFound if none.
	UpdateIdentity(ctx context.Context, i Identity) error
	// DeleteIdentity deletes the identity and its links.
	DeleteIdentity(ctx context.Context, instanceID, id string) error
	// LinkIdentity links the credential to identityID ("" unlinks it).
	LinkIdentity(ctx context.Context, instanceID, credentialID, identityID string) error
	// IdentityCredentials lists the ids of the credentials linked to it.
	IdentityCredentials(ctx context.Context, instanceID, identityID string) ([]string, error)
}

var errIdentityNotFound = credential.Errorf(credential.CodeNotFound, "no identity was found with that id")

func validateIdentityInput(in IdentityInput, create bool) (IdentityInput, error) {
	if create && (in.ExternalID == nil || *in.ExternalID == "") {
		return in, credential.ParamError(credential.CodeMissing, "external_id", "is missing")
	}
	if e := in.ExternalID; e != nil && (*e == "" || len(*e) > MaxExternalIDBytes || !utf8.ValidString(*e) || strings.TrimSpace(*e) != *e) {
		return in, credential.ParamError(credential.CodeInvalid, "external_id", fmt.Sprintf("must be 1 to %d bytes, without surrounding whitespace", MaxExternalIDBytes))
	}
	ci, err := validateControls(ControlsInput{Meta: in.Meta, RateLimits: in.RateLimits, SetCredits: in.SetCredits, Credits: in.Credits})
	if err != nil {
		return in, err
	}
	in.Meta = ci.Meta
	return in, nil
}

// applyIdentity merges in into i and writes its credits row.
func applyIdentity(ctx context.Context, tx Tx, i *Identity, in IdentityInput, now time.Time) error {
	if in.ExternalID != nil {
		i.ExternalID = *in.ExternalID
	}
	if in.Meta != nil {
		i.Meta = nil
		if len(in.Meta) > 0 {
			i.Meta = in.Meta
		}
	}
	if in.RateLimits != nil {
		i.RateLimits = *in.RateLimits
		if len(i.RateLimits) == 0 {
			i.RateLimits = nil
		}
	}
	if in.SetCredits {
		if in.Credits == nil {
			i.Credits = nil
			if err := tx.DeleteCredits(ctx, i.InstanceID, i.ID); err != nil && !credential.IsCode(err, credential.CodeNotFound) {
				return err
			}
		} else {
			rule := CreditsRule{}
			row := CreditsRow{InstanceID: i.InstanceID, OwnerID: i.ID, Remaining: in.Credits.Remaining, RefilledAt: now, UpdatedAt: now}
			if r := in.Credits.Refill; r != nil {
				rule, row.RefillAmount = *r, r.Amount
			}
			i.Credits = &rule
			if err := tx.PutCredits(ctx, row); err != nil {
				return err
			}
		}
	}
	i.UpdatedAt = now
	return nil
}

func identityView(ctx context.Context, tx Tx, i Identity) (IdentityView, error) {
	v := IdentityView{Identity: i}
	if i.Credits != nil {
		row, err := tx.GetCredits(ctx, i.InstanceID, i.ID)
		if err != nil && !credential.IsCode(err, credential.CodeNotFound) {
			return v, err
		}
		v.CreditsView = &Credits{Remaining: row.Remaining}
		if i.Credits.Interval != "" {
			r := *i.Credits
			v.CreditsView.Refill = &r
		}
	}
	return v, nil
}

func conflictExternalID(err error, id string) error {
	if credential.IsCode(err, credential.CodeConflict) {
		return credential.ParamError(credential.CodeConflict, "external_id", fmt.Sprintf("an identity with external_id %q exists", id))
	}
	return err
}

// CreateIdentity adds an identity to the caller's instance.
func (a *Authority) CreateIdentity(ctx context.Context, c Caller, in IdentityInput) (IdentityView, error) {
	g, err := a.enter(ctx, c, "CreateIdentity")
	if err != nil {
		return IdentityView{}, err
	}
	if in, err = validateIdentityInput(in, true); err != nil {
		return IdentityView{}, err
	}
	i := Identity{ID: credential.NewID(PrefixIdentity, g.now), InstanceID: c.InstanceID, CreatedAt: g.now}
	var v IdentityView
	err = g.mutate(ctx, func(tx *change) error {
		one := i
		if err := applyIdentity(ctx, tx, &one, in, tx.now); err != nil {
			return err
		}
		if err := tx.InsertIdentity(ctx, one); err != nil {
			return conflictExternalID(err, one.ExternalID)
		}
		var err error
		if v, err = identityView(ctx, tx, one); err != nil {
			return err
		}
		return tx.audit("identity.create", "identity", one.ID, map[string]any{"external_id": one.ExternalID, "ratelimits": len(one.RateLimits), "credits": one.Credits != nil})
	})
	return v, err
}

// GetIdentity returns one identity.
func (a *Authority) GetIdentity(ctx context.Context, c Caller, id string) (IdentityView, error) {
	if _, err := a.enter(ctx, c, "GetIdentity"); err != nil {
		return IdentityView{}, err
	}
	var v IdentityView
	err := a.store.View(ctx, func(tx Tx) error {
		i, err := tx.GetIdentity(ctx, c.InstanceID, id)
		if credential.IsCode(err, credential.CodeNotFound) {
			return errIdentityNotFound
		} else if err != nil {
			return err
		}
		v, err = identityView(ctx, tx, i)
		return err
	})
	return v, err
}

// ListIdentities lists the instance's identities by creation; externalID
// keeps the one with that external id.
func (a *Authority) ListIdentities(ctx context.Context, c Caller, externalID string, limit, offset *int64) ([]IdentityView, int, error) {
	if _, err := a.enter(ctx, c, "ListIdentities"); err != nil {
		return nil, 0, err
	}
	l, o, err := page(limit, offset, identityListDefault, IdentityListLimit)
	if err != nil {
		return nil, 0, err
	}
	out := []IdentityView{}
	var total int
	err = a.store.View(ctx, func(tx Tx) error {
		list, n, err := tx.ListIdentities(ctx, c.InstanceID, externalID, l, o)
		if err != nil {
			return err
		}
		total = n
		for _, i := range list {
			v, err := identityView(ctx, tx, i)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	return out, total, err
}

// UpdateIdentity changes an identity. Every cached credential is dropped:
// the identity's limits and credits are read with its credentials'.
func (a *Authority) UpdateIdentity(ctx context.Context, c Caller, id string, in IdentityInput) (IdentityView, error) {
	g, err := a.enter(ctx, c, "UpdateIdentity")
	if err != nil {
		return IdentityView{}, err
	}
	if in, err = validateIdentityInput(in, false); err != nil {
		return IdentityView{}, err
	}
	var v IdentityView
	err = g.mutate(ctx, func(tx *change) error {
		i, err := tx.GetIdentity(ctx, c.InstanceID, id)
		if credential.IsCode(err, credential.CodeNotFound) {
			return errIdentityNotFound
		} else if err != nil {
			return err
		}
		if err := applyIdentity(ctx, tx, &i, in, tx.now); err != nil {
			return err
		}
		if err := tx.UpdateIdentity(ctx, i); err != nil {
			return conflictExternalID(err, i.ExternalID)
		}
		if v, err = identityView(ctx, tx, i); err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("identity.update", "identity", i.ID, map[string]any{"external_id": i.ExternalID, "ratelimits": len(i.RateLimits), "credits": i.Credits != nil})
	})
	return v, err
}

// DeleteIdentity deletes an identity and revokes every credential linked
// to it (audited in the one event, dropped from every node's cache); it
// returns how many it revoked.
func (a *Authority) DeleteIdentity(ctx context.Context, c Caller, id string) (int, error) {
	revoked := 0
	err := a.mutate(ctx, c, "DeleteIdentity", func(tx *change) error {
		revoked = 0
		if _, err := tx.GetIdentity(ctx, c.InstanceID, id); credential.IsCode(err, credential.CodeNotFound) {
			return errIdentityNotFound
		} else if err != nil {
			return err
		}
		ids, err := tx.IdentityCredentials(ctx, c.InstanceID, id)
		if err != nil {
			return err
		}
		var done []string
		for _, cid := range ids {
			cred, err := tx.GetCredential(ctx, c.InstanceID, cid)
			if credential.IsCode(err, credential.CodeNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if !cred.Revoked() {
				if err := tx.RevokeCredential(ctx, c.InstanceID, cid, tx.now, "identity_deleted"); err != nil {
					return err
				}
				revoked++
				done = append(done, cid)
			}
			tx.invalidate(cred.Digest)
		}
		if err := tx.DeleteCredits(ctx, c.InstanceID, id); err != nil && !credential.IsCode(err, credential.CodeNotFound) {
			return err
		}
		if err := tx.DeleteIdentity(ctx, c.InstanceID, id); err != nil {
			return err
		}
		tx.invalidateAll()
		return tx.audit("identity.delete", "identity", id, map[string]any{"revoked": done})
	})
	return revoked, err
}

// IdentityCredentials lists the credentials linked to an identity. meta
// keeps those whose meta has each key with its value (metaMatches; nil
// keeps all).
func (a *Authority) IdentityCredentials(ctx context.Context, c Caller, id string, meta map[string]string) ([]IdentityCredential, error) {
	if _, err := a.enter(ctx, c, "IdentityCredentials"); err != nil {
		return nil, err
	}
	if err := checkMetaFilter(meta); err != nil {
		return nil, err
	}
	out := []IdentityCredential{}
	err := a.store.View(ctx, func(tx Tx) error {
		if _, err := tx.GetIdentity(ctx, c.InstanceID, id); credential.IsCode(err, credential.CodeNotFound) {
			return errIdentityNotFound
		} else if err != nil {
			return err
		}
		ids, err := tx.IdentityCredentials(ctx, c.InstanceID, id)
		if err != nil {
			return err
		}
		for _, cid := range ids {
			cred, err := tx.GetCredential(ctx, c.InstanceID, cid)
			if credential.IsCode(err, credential.CodeNotFound) {
				continue
			} else if err != nil {
				return err
			}
			attrs, err := parseTokenAttrs(cred)
			if err != nil {
				return err
			}
			if !metaMatches(attrs.Controls, meta) {
				continue
			}
			ic := IdentityCredential{ID: cred.ID, Kind: cred.Kind, Revoked: cred.Revoked()}
			if attrs.Controls != nil {
				ic.Meta = attrs.Controls.Meta
			}
			out = append(out, ic)
		}
		return nil
	})
	return out, err
}

// Verify time: an identity's limits and credits, through the cache (every
// identity change invalidates everything, which empties it).

type identityRef struct{ instanceID, id string }

type cachedIdentity struct {
	found      bool
	externalID string
	limits     []NamedLimit
	credits    *CreditsRule
	expires    int64
}

func (a *Authority) verifyIdentity(ctx context.Context, instanceID, id string, now time.Time) (cachedIdentity, error) {
	ref := identityRef{instanceID, id}
	a.cache.mu.Lock()
	ci, ok := a.cache.identities[ref]
	epoch := a.cache.epoch
	a.cache.mu.Unlock()
	if ok && now.UnixNano() < ci.expires {
		return ci, nil
	}
	ci = cachedIdentity{}
	err := a.store.View(ctx, func(tx Tx) error {
		i, err := tx.GetIdentity(ctx, instanceID, id)
		if credential.IsCode(err, credential.CodeNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		ci = cachedIdentity{found: true, externalID: i.ExternalID, limits: i.RateLimits, credits: i.Credits}
		return nil
	})
	if err != nil {
		return cachedIdentity{}, err
	}
	ci.expires = now.Add(a.cache.positiveLifetime()).UnixNano()
	a.cache.mu.Lock()
	if a.cache.epoch == epoch {
		if len(a.cache.identities) >= maxMachineProfiles {
			clear(a.cache.identities)
		}
		a.cache.identities[ref] = ci
	}
	a.cache.mu.Unlock()
	return ci, nil
}
