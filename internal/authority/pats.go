package authority

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/credential"
)

// Built-in scopes, available in every instance beside its catalogue.
const (
	ScopeTokens  = "keyward:tokens"  // manage one's own tokens
	ScopeClients = "keyward:clients" // use the client registry
)

// BuiltinScopes are always in the catalogue.
var BuiltinScopes = []string{ScopeTokens, ScopeClients}

// Catalogue and PAT limits.
const (
	MaxCatalogueScopes = 200
	PATNameMax         = 255
	PATDescriptionMax  = 1000
	MaxPATScopes       = 50
	PrefixPAT          = "pt_" // PAT ids; the secrets start pat_
)

var scopePattern = regexp.MustCompile(`^[a-z][a-z0-9:._-]{0,63}$`)

// Catalogue returns the instance's scope catalogue (without built-ins).
func (a *Authority) Catalogue(ctx context.Context, c Caller) ([]string, error) {
	if _, err := a.enter(ctx, c, "Catalogue"); err != nil {
		return nil, err
	}
	return a.catalogue(ctx, c.InstanceID)
}

func (a *Authority) catalogue(ctx context.Context, instanceID string) ([]string, error) {
	var in credential.Instance
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		in, err = tx.GetInstance(ctx, instanceID)
		return err
	})
	return catalogue(in), err
}

func catalogue(in credential.Instance) []string {
	if in.Scopes == nil {
		return slices.Clone(credential.DefaultScopes)
	}
	return slices.Clone(in.Scopes)
}

// AvailableScopes is the catalogue plus the built-in scopes: what a PAT
// may be given.
func (a *Authority) AvailableScopes(ctx context.Context, c Caller) ([]string, error) {
	if _, err := a.enter(ctx, c, "AvailableScopes"); err != nil {
		return nil, err
	}
	cat, err := a.catalogue(ctx, c.InstanceID)
	return append(cat, BuiltinScopes...), err
}

// SetCatalogue replaces the instance's scope catalogue. Existing tokens
// keep their scopes; only new tokens are checked against it.
func (a *Authority) SetCatalogue(ctx context.Context, c Caller, scopes []string) ([]string, error) {
	g, err := a.enter(ctx, c, "SetCatalogue")
	if err != nil {
		return nil, err
	}
	if scopes == nil {
		return nil, credential.ParamError(credential.CodeMissing, "scopes", "is missing")
	}
	if len(scopes) > MaxCatalogueScopes {
		return nil, credential.ParamError(credential.CodeTooMany, "scopes", fmt.Sprintf("must hold at most %d scopes", MaxCatalogueScopes))
	}
	seen := map[string]bool{}
	for _, s := range scopes {
		switch {
		case !scopePattern.MatchString(s):
			return nil, credential.ParamError(credential.CodeInvalid, "scopes", fmt.Sprintf("%.64q does not match ^[a-z][a-z0-9:._-]{0,63}$", s))
		case slices.Contains(BuiltinScopes, s) || len(s) >= 8 && s[:8] == "keyward:":
			return nil, credential.ParamError(credential.CodeInvalid, "scopes", fmt.Sprintf("%q is reserved: keyward: scopes are built in", s))
		case seen[s]:
			return nil, credential.ParamError(credential.CodeInvalid, "scopes", fmt.Sprintf("%q is listed twice", s))
		}
		seen[s] = true
	}
	var out []string
	err = g.mutate(ctx, func(tx *change) error {
		in, err := tx.GetInstance(ctx, c.InstanceID)
		if err != nil {
			return err
		}
		in.Scopes = slices.Clone(scopes)
		if err := tx.UpdateInstance(ctx, in); err != nil {
			return err
		}
		out = in.Scopes
		return tx.audit("scopes.update", "instance", in.ID, map[string][]string{"scopes": scopes})
	})
	return out, err
}

// Workspace refusals: the Reason of the forbidden error (and the audited
// refusal) when a user is not in the workspace or a token is bound to
// another one.
const (
	ReasonNotAMember     = "not_a_member"
	ReasonOtherWorkspace = "other_workspace"
)

var (
	errNotAMember     = &credential.Error{Code: credential.CodeForbidden, Reason: ReasonNotAMember, Message: "not a member of this workspace"}
	errOtherWorkspace = &credential.Error{Code: credential.CodeForbidden, Reason: ReasonOtherWorkspace, Message: "the token is bound to another workspace"}
)

// PAT is a personal access token, as every surface may show it.
type PAT struct {
	ID          string
	InstanceID  string
	UserID      string
	Name        string
	Description string
	Scopes      []string
	WorkspaceID string
	TokenPrefix string
	CreatedAt   time.Time
	LastUsedAt  time.Time
	ExpiresAt   time.Time
	Meta        json.RawMessage // the token's meta (its controls, controls.go), or nil
	Token       string          // in the create response only
}

func patView(c credential.Credential, a tokenAttrs) PAT {
	p := PAT{
		ID: c.ID, InstanceID: c.InstanceID, UserID: c.Subject, Name: a.Name, Description: a.Description,
		Scopes: a.Scopes, WorkspaceID: c.ParentID, TokenPrefix: c.DisplayPrefix,
		CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt, ExpiresAt: c.ExpiresAt,
	}
	if a.Controls != nil {
		p.Meta = a.Controls.Meta
	}
	return p
}

// patAttrs are what a PAT's credential row keeps beside the digest.
type patAttrs struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Scopes      []string  `json:"scopes"`
	Controls    *Controls `json:"controls,omitempty"`
}

// WorkspaceRef names a workspace by organization and workspace, each an id
// or a slug (the Spatio workspace routes).
type WorkspaceRef struct{ Org, Workspace string }

// CreatePATInput is what creating a PAT takes. Nil means absent.
type CreatePATInput struct {
	Name        *string
	Description *string
	Scopes      []string
	// WorkspaceID binds the token to a workspace (top-level route); the
	// workspace route passes a WorkspaceRef instead.
	WorkspaceID *string
	ExpiresAt   *time.Time
}

// actingUser is the user a caller acts as on user-scoped surfaces: a PAT's
// own user, or the user the admin key names.
func (a *Authority) actingUser(ctx context.Context, c Caller) (string, error) {
	switch {
	case c.Kind == credential.KindPAT:
		return c.UserID, nil
	case c.IsAdmin() && ValidUserID(c.UserID):
		return c.UserID, nil
	case c.IsAdmin():
		return "", credential.ParamError(credential.CodeMissing, "X-User-ID", "the admin key acts for the user named in the X-User-ID header")
	}
	return "", a.forbid(ctx, c, "user_required", errForbidden)
}

// workspaceAccess resolves the workspace of a workspace route and the
// caller's membership in it. A non-member is refused with CodeForbidden; a
// workspace of another organization or instance is CodeNotFound.
func (a *Authority) workspaceAccess(ctx context.Context, tx Tx, c Caller, user string, ref WorkspaceRef) (credential.Workspace, credential.Member, error) {
	_, w, err := findWorkspace(ctx, tx, c.InstanceID, ref.Org, ref.Workspace)
	if err != nil {
		return w, credential.Member{}, err
	}
	m, err := tx.GetMember(ctx, c.InstanceID, w.ID, user)
	if credential.IsCode(err, credential.CodeNotFound) {
		return w, m, a.forbidIn(ctx, tx, c, ReasonNotAMember, errNotAMember)
	}
	if err == nil && c.Kind == credential.KindPAT && c.WorkspaceID != "" && c.WorkspaceID != w.ID {
		err = a.forbidIn(ctx, tx, c, ReasonOtherWorkspace, errOtherWorkspace)
	}
	return w, m, err
}

// CreatePAT issues a personal access token for the acting user. A PAT
// caller needs keyward:tokens, can grant only scopes it holds, and binds
// the new token to its own workspace (or none if it has none).
func (a *Authority) CreatePAT(ctx context.Context, c Caller, ref *WorkspaceRef, in CreatePATInput) (PAT, error) {
	g, err := a.enter(ctx, c, "CreatePAT")
	if err != nil {
		return PAT{}, err
	}
	user, err := a.actingUser(ctx, c)
	if err != nil {
		return PAT{}, err
	}
	scopes, err := a.checkNewPAT(ctx, c, in)
	if err != nil {
		return PAT{}, err
	}
	key, err := credential.Generate(credential.KindPAT)
	if err != nil {
		return PAT{}, err
	}
	var pat PAT
	err = g.mutate(ctx, func(tx *change) error {
		in2, err := tx.GetInstance(ctx, c.InstanceID)
		if err != nil {
			return err
		}
		available := append(catalogue(in2), BuiltinScopes...)
		for _, s := range scopes {
			if !slices.Contains(available, s) {
				return credential.ParamError(credential.CodeInvalid, "scopes", fmt.Sprintf("unknown scope %.64q", s))
			}
		}
		now := tx.now
		expiresAt, err := patExpiry(in.ExpiresAt, in2.PATMaxLifetime, now)
		if err != nil {
			return err
		}
		// A token made by an expiring credential expires with it by
		// default, and may not be asked to outlive it.
		if in.ExpiresAt == nil && !c.ExpiresAt.IsZero() && (expiresAt.IsZero() || expiresAt.After(c.ExpiresAt)) {
			expiresAt = c.ExpiresAt
		}
		if err := a.refusedIfIn(ctx, tx, c, "outlives_creator", outlivesNot(c, expiresAt)); err != nil {
			return err
		}
		workspaceID, err := a.newPATWorkspace(ctx, tx, c, user, ref, in.WorkspaceID)
		if err != nil {
			return err
		}
		if c.Kind == credential.KindPAT && workspaceID != c.WorkspaceID {
			return a.forbidIn(ctx, tx, c, ReasonOtherWorkspace, credential.Errorf(credential.CodeForbidden, "a token can only create tokens bound to its own workspace (or to none, if it has none)"))
		}
		cred := a.newCredential(credential.NewID(PrefixPAT, now), c.InstanceID, credential.KindPAT, key, user, now)
		cred.ParentID, cred.ExpiresAt = workspaceID, expiresAt
		attrs := patAttrs{Name: *in.Name, Scopes: scopes}
		if in.Description != nil {
			attrs.Description = *in.Description
		}
		if cred.Attrs, err = json.Marshal(attrs); err != nil {
			return credential.Wrap(credential.CodeInternal, err, "encode PAT")
		}
		if err := tx.InsertCredential(ctx, cred); err != nil {
			return err
		}
		parsed, err := parseTokenAttrs(cred)
		pat = patView(cred, parsed)
		if err != nil {
			return err
		}
		return tx.audit("pat.create", "pat", cred.ID, map[string]any{"user_id": user, "scopes": scopes, "workspace_id": workspaceID})
	})
	if err != nil {
		return PAT{}, err
	}
	pat.Token = key.Reveal()
	return pat, nil
}

// checkNewPAT checks a new PAT's fields, and that its creator may grant
// its scopes: a PAT only what it holds, an admin key keyward:clients only
// with the clients permission. It returns the scopes, each once.
func (a *Authority) checkNewPAT(ctx context.Context, c Caller, in CreatePATInput) ([]string, error) {
	if in.Name == nil {
		return nil, credential.ParamError(credential.CodeMissing, "name", "is required")
	}
	if err := validateName("name", *in.Name, PATNameMax); err != nil {
		return nil, err
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > PATDescriptionMax {
		return nil, credential.ParamError(credential.CodeTooLong, "description", fmt.Sprintf("must be at most %d characters", PATDescriptionMax))
	}
	if len(in.Scopes) > MaxPATScopes {
		return nil, credential.ParamError(credential.CodeTooMany, "scopes", fmt.Sprintf("must hold at most %d scopes", MaxPATScopes))
	}
	scopes := dedupe(in.Scopes)
	if c.Kind == credential.KindAdminKey {
		// A PAT is a way into the surfaces its built-in scopes open: an
		// admin key may grant keyward:clients only if it could use the
		// client registry itself.
		if slices.Contains(scopes, ScopeClients) && !credential.Holds(c.Permissions, credential.Clients.Write()) {
			return nil, credential.Errorf(credential.CodeForbidden, "granting %s needs the %s permission", ScopeClients, credential.Clients.Write())
		}
	}
	if c.Kind == credential.KindPAT {
		if !slices.Contains(c.Scopes, ScopeTokens) {
			return nil, a.forbid(ctx, c, "scope_required", credential.Errorf(credential.CodeForbidden, "creating tokens needs the keyward:tokens scope"))
		}
		for _, s := range scopes {
			if !slices.Contains(c.Scopes, s) {
				return nil, a.forbid(ctx, c, "scope_escalation", credential.Errorf(credential.CodeForbidden, "a token cannot grant the scope %q, which it does not hold", s))
			}
		}
	}
	return scopes, nil
}

// newPATWorkspace is the workspace a new PAT is bound to ("" for none):
// the route's, or the one named in the input, of which user must be a
// member.
func (a *Authority) newPATWorkspace(ctx context.Context, tx Tx, c Caller, user string, ref *WorkspaceRef, named *string) (string, error) {
	switch {
	case ref != nil:
		w, _, err := a.workspaceAccess(ctx, tx, c, user, *ref)
		if err != nil {
			return "", err
		}
		return w.ID, nil
	case named != nil && *named != "":
		w, err := tx.FindWorkspace(ctx, c.InstanceID, *named)
		if credential.IsCode(err, credential.CodeNotFound) {
			return "", credential.ParamError(credential.CodeInvalid, "workspace_id", "no such workspace")
		}
		if err != nil {
			return "", err
		}
		if _, err := tx.GetMember(ctx, c.InstanceID, w.ID, user); err != nil {
			if credential.IsCode(err, credential.CodeNotFound) {
				return "", a.forbidIn(ctx, tx, c, ReasonNotAMember, errNotAMember)
			}
			return "", err
		}
		return w.ID, nil
	}
	return "", nil
}

// patExpiry applies the instance's maximum lifetime: a requested expiry
// must be in the future and within it; none requested means the maximum
// (or never, when the instance sets no maximum).
func patExpiry(requested *time.Time, maxLifetime int64, now time.Time) (time.Time, error) {
	if maxLifetime == 0 {
		maxLifetime = credential.DefaultPATMaxLifetime
	}
	var limit time.Time
	if maxLifetime > 0 {
		limit = now.Add(time.Duration(maxLifetime) * time.Second)
	}
	if requested == nil {
		return limit, nil
	}
	switch {
	case !requested.After(now):
		return time.Time{}, credential.ParamError(credential.CodeInvalid, "expires_at", "must be in the future")
	case !limit.IsZero() && requested.After(limit):
		return time.Time{}, credential.ParamError(credential.CodeInvalid, "expires_at", fmt.Sprintf("must be at most %s from now", time.Duration(maxLifetime)*time.Second))
	}
	return requested.Truncate(time.Millisecond), nil
}

// ListPATs lists live tokens: on the top-level route the acting user's
// own; on a workspace route a member's own tokens there, and every token
// there for admins and owners. meta keeps the tokens whose meta has each
// key with its value (metaMatches; nil keeps all).
func (a *Authority) ListPATs(ctx context.Context, c Caller, ref *WorkspaceRef, meta map[string]string) ([]PAT, error) {
	if _, err := a.enter(ctx, c, "ListPATs"); err != nil {
		return nil, err
	}
	if err := checkMetaFilter(meta); err != nil {
		return nil, err
	}
	user, err := a.actingUser(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []PAT
	err = a.store.View(ctx, func(tx Tx) error {
		q := CredentialQuery{InstanceID: c.InstanceID, Kind: credential.KindPAT, Subject: user, Revoked: new(bool), Expired: new(bool), Now: a.clock.Now()}
		if c.Kind == credential.KindPAT && c.WorkspaceID != "" {
			q.ParentID = c.WorkspaceID // a bound token sees only its workspace
		}
		if ref != nil {
			w, m, err := a.workspaceAccess(ctx, tx, c, user, *ref)
			if err != nil {
				return err
			}
			q.ParentID = w.ID
			if m.Role == credential.MemberOwner || m.Role == credential.MemberAdmin {
				q.Subject = ""
			}
		}
		var err error
		out, _, err = pageCredentials(ctx, tx, q, metaKeep(meta), func(cred credential.Credential, attrs tokenAttrs) PAT {
			return patView(cred, attrs)
		})
		return err
	})
	return out, err
}

// patFor loads a live PAT the caller may act on: its own, or (for revoke,
// on a workspace route) any in a workspace it administers. Anything else
// is CodeNotFound, so user A never learns of user B's tokens.
func (a *Authority) patFor(ctx context.Context, tx Tx, c Caller, user, id string, ref *WorkspaceRef, adminMayAct bool) (credential.Credential, tokenAttrs, error) {
	notFound := credential.Errorf(credential.CodeNotFound, "no such token")
	mayActOnOthers := false
	workspaceID := ""
	if ref != nil {
		w, m, err := a.workspaceAccess(ctx, tx, c, user, *ref)
		if err != nil {
			return credential.Credential{}, tokenAttrs{}, err
		}
		workspaceID = w.ID
		mayActOnOthers = adminMayAct && (m.Role == credential.MemberOwner || m.Role == credential.MemberAdmin)
	}
	cred, err := tx.GetCredential(ctx, c.InstanceID, id)
	switch {
	case credential.IsCode(err, credential.CodeNotFound):
		return cred, tokenAttrs{}, notFound
	case err != nil:
		return cred, tokenAttrs{}, err
	case cred.Kind != credential.KindPAT || cred.Revoked():
		return cred, tokenAttrs{}, notFound
	case ref != nil && cred.ParentID != workspaceID:
		return cred, tokenAttrs{}, notFound
	case c.Kind == credential.KindPAT && c.WorkspaceID != "" && cred.ParentID != c.WorkspaceID:
		return cred, tokenAttrs{}, notFound // a bound token acts only within its workspace
	case cred.Subject != user && !mayActOnOthers:
		return cred, tokenAttrs{}, notFound
	}
	attrs, err := parseTokenAttrs(cred)
	return cred, attrs, err
}

// UpdatePATInput renames a token or changes its description; scopes are
// immutable.
type UpdatePATInput struct {
	Name        *string
	Description *string
}

// UpdatePAT changes one of the acting user's tokens.
func (a *Authority) UpdatePAT(ctx context.Context, c Caller, ref *WorkspaceRef, id string, in UpdatePATInput) (PAT, error) {
	g, err := a.enter(ctx, c, "UpdatePAT")
	if err != nil {
		return PAT{}, err
	}
	user, err := a.actingUser(ctx, c)
	if err != nil {
		return PAT{}, err
	}
	if in.Name != nil {
		if err := validateName("name", *in.Name, PATNameMax); err != nil {
			return PAT{}, err
		}
	}
	if in.Description != nil && utf8.RuneCountInString(*in.Description) > PATDescriptionMax {
		return PAT{}, credential.ParamError(credential.CodeTooLong, "description", fmt.Sprintf("must be at most %d characters", PATDescriptionMax))
	}
	var pat PAT
	err = g.mutate(ctx, func(tx *change) error {
		cred, attrs, err := a.patFor(ctx, tx, c, user, id, ref, false)
		if err != nil {
			return err
		}
		stored := patAttrs{Name: attrs.Name, Description: attrs.Description, Scopes: attrs.Scopes, Controls: attrs.Controls}
		if in.Name != nil {
			stored.Name = *in.Name
		}
		if in.Description != nil {
			stored.Description = *in.Description
		}
		raw, err := json.Marshal(stored)
		if err != nil {
			return credential.Wrap(credential.CodeInternal, err, "encode PAT")
		}
		now := tx.now
		if err := tx.UpdateCredentialAttrs(ctx, c.InstanceID, id, raw, now); err != nil {
			return err
		}
		cred.Attrs, cred.UpdatedAt = raw, now
		parsed, err := parseTokenAttrs(cred)
		pat = patView(cred, parsed)
		if err != nil {
			return err
		}
		return tx.audit("pat.update", "pat", id, map[string]string{"name": stored.Name})
	})
	return pat, err
}

// RevokePAT revokes a token; it fails verification on the next call.
func (a *Authority) RevokePAT(ctx context.Context, c Caller, ref *WorkspaceRef, id string) error {
	g, err := a.enter(ctx, c, "RevokePAT")
	if err != nil {
		return err
	}
	user, err := a.actingUser(ctx, c)
	if err != nil {
		return err
	}
	return g.mutate(ctx, func(tx *change) error {
		cred, _, err := a.patFor(ctx, tx, c, user, id, ref, true)
		if err != nil {
			return err
		}
		if err := tx.RevokeCredential(ctx, c.InstanceID, id, tx.now, "revoked by "+user); err != nil {
			return err
		}
		tx.invalidate(cred.Digest)
		return tx.audit("pat.revoke", "pat", id, map[string]string{"user_id": cred.Subject, "by": user})
	})
}
