package authority

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/keyward/keyward/internal/credential"
)

// OrgTokenNameMax bounds an org token's name.
const OrgTokenNameMax = 255

// OrgToken is an organization API token, as every surface may show it.
type OrgToken struct {
	ID         string
	InstanceID string
	OrgID      string
	Name       string
	Privileges []credential.Privilege
	SrcIPs     []string
	CreatedBy  string
	// Mask is the key's first four and last four characters (kept at
	// creation, when the key is known); the key itself is in Key, in the
	// create response only.
	Mask       string
	Key        string
	CreatedAt  time.Time
	LastUsedAt time.Time
	// Meta is the token's meta (its controls, controls.go), or nil.
	Meta json.RawMessage
}

// orgTokenAttrs are what an org token's credential row keeps beside the
// digest.
type orgTokenAttrs struct {
	Name       string                 `json:"name"`
	Privileges []credential.Privilege `json:"privileges"`
	SrcIPs     []string               `json:"src_ips,omitempty"`
	CreatedBy  string                 `json:"created_by"`
	Mask       string                 `json:"mask"`
	// Controls are the credential's controls at verify time (controls.go),
	// for every kind: tokenAttrs embeds this struct.
	Controls *Controls `json:"controls,omitempty"`
}

func orgTokenView(c credential.Credential, a tokenAttrs) OrgToken {
	t := OrgToken{
		ID: c.ID, InstanceID: c.InstanceID, OrgID: c.Subject, Name: a.Name, Privileges: a.Privileges,
		SrcIPs: a.SrcIPs, CreatedBy: a.CreatedBy, Mask: a.Mask, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt,
	}
	if a.Controls != nil {
		t.Meta = a.Controls.Meta
	}
	return t
}

// maskKey shows the first and last four characters of a key (Mist's
// list shows this form).
func maskKey(key string) string { return key[:4] + "..." + key[len(key)-4:] }

// OrgTokenInput creates or updates an org token. Nil fields are absent.
type OrgTokenInput struct {
	Name       *string
	Privileges []credential.Privilege // nil: absent
	SrcIPs     []string               // nil: absent
}

// RateLimit is where a credential stands in its current window.
type RateLimit struct {
	Limit     int
	Remaining int
	ResetAt   time.Time
	ResetIn   time.Duration // from now, on the authority's clock
	// RetryIn, for a call refused by its limits, is when it could pass:
	// when the last exhausted limit (the hour's or a named one) resets;
	// 0 for a call refused for its credits, which waiting does not help.
	RetryIn time.Duration
}

// authorizeOrg checks that the caller may manage the organization's
// tokens: the admin key, or an org token of that organization holding
// admin at org scope. A token of another organization sees a 404.
func (a *Authority) authorizeOrg(ctx context.Context, tx Tx, c Caller, orgID string) (credential.Organization, credential.Topology, error) {
	notFound := credential.Errorf(credential.CodeNotFound, "no such organization")
	if _, err := uuid.Parse(orgID); err != nil {
		return credential.Organization{}, credential.Topology{}, notFound
	}
	o, err := tx.GetOrganization(ctx, c.InstanceID, orgID)
	if credential.IsCode(err, credential.CodeNotFound) {
		return o, credential.Topology{}, notFound
	}
	if err != nil {
		return o, credential.Topology{}, err
	}
	switch {
	case c.IsAdmin():
	case c.Kind == credential.KindOrgToken && c.OrgID == o.ID:
		if !credential.Grants(c.Privileges, credential.Privilege{Scope: credential.ScopeOrg, Role: credential.RoleAdmin}, credential.Topology{}) {
			return o, credential.Topology{}, a.forbidIn(ctx, tx, c, "org_admin_required", errForbidden)
		}
	case c.Kind == credential.KindOrgToken:
		return o, credential.Topology{}, notFound
	default:
		return o, credential.Topology{}, a.forbidIn(ctx, tx, c, "org_admin_required", errForbidden)
	}
	t, err := loadTopology(ctx, tx, c.InstanceID, o.ID)
	return o, t, err
}

func loadTopology(ctx context.Context, tx OrganizationTx, instanceID, orgID string) (credential.Topology, error) {
	groups, err := tx.ListSitegroups(ctx, instanceID, orgID)
	if err != nil {
		return credential.Topology{}, err
	}
	t := credential.Topology{SitegroupSites: make(map[string][]string, len(groups))}
	for _, g := range groups {
		t.SitegroupSites[g.ID] = g.SiteIDs
	}
	return t, nil
}

// checkPrivileges validates requested privileges against the organization
// and, for a token caller, against the caller's own: granted ⊆ caller's.
func (a *Authority) checkPrivileges(ctx context.Context, tx Tx, c Caller, o credential.Organization, t credential.Topology, ps []credential.Privilege) error {
	if err := credential.ValidatePrivileges(ps); err != nil {
		return err
	}
	for _, p := range ps {
		switch p.Scope {
		case credential.ScopeSite:
			if _, err := tx.GetSite(ctx, c.InstanceID, o.ID, p.SiteID); err != nil {
				return orgRef(err, "site_id "+p.SiteID+" is not a site of this organization")
			}
		case credential.ScopeSitegroup:
			if _, ok := t.SitegroupSites[p.SitegroupID]; !ok {
				return credential.ParamError(credential.CodeInvalid, "privileges", "sitegroup_id "+p.SitegroupID+" is not a sitegroup of this organization")
			}
		}
	}
	if c.Kind == credential.KindOrgToken && !credential.Subset(c.Privileges, ps, t) {
		return a.forbidIn(ctx, tx, c, "privilege_escalation", credential.Errorf(credential.CodeForbidden, "a token cannot grant privileges beyond its own"))
	}
	return nil
}

func orgRef(err error, msg string) error {
	if credential.IsCode(err, credential.CodeNotFound) {
		return credential.ParamError(credential.CodeInvalid, "privileges", msg)
	}
	return err
}

// CreateOrgToken issues an org API token; the key is in the result this
// once and masked everywhere after.
func (a *Authority) CreateOrgToken(ctx context.Context, c Caller, orgID string, in OrgTokenInput) (OrgToken, error) {
	g, err := a.enter(ctx, c, "CreateOrgToken")
	if err != nil {
		return OrgToken{}, err
	}
	if in.Name == nil {
		return OrgToken{}, credential.ParamError(credential.CodeMissing, "name", "is required")
	}
	if err := validateName("name", *in.Name, OrgTokenNameMax); err != nil {
		return OrgToken{}, err
	}
	allowlist, srcIPs, err := credential.ParseAllowlist(in.SrcIPs)
	if err != nil {
		return OrgToken{}, err
	}
	key, err := credential.Generate(credential.KindOrgToken)
	if err != nil {
		return OrgToken{}, err
	}
	var tok OrgToken
	err = g.mutate(ctx, func(tx *change) error {
		o, t, err := a.authorizeOrg(ctx, tx, c, orgID)
		if err != nil {
			return err
		}
		if err := a.checkPrivileges(ctx, tx, c, o, t, in.Privileges); err != nil {
			return err
		}
		if err := a.refusedIfIn(ctx, tx, c, "restriction_widened", inheritsRestrictions(c, allowlist, c.ExpiresAt)); err != nil {
			return err
		}
		cred := a.newCredential(uuid.NewString(), c.InstanceID, credential.KindOrgToken, key, o.ID, tx.now)
		// Mist tokens carry no expiry of their own: one made by an expiring
		// credential expires with it.
		cred.ExpiresAt = c.ExpiresAt
		attrs := orgTokenAttrs{Name: *in.Name, Privileges: in.Privileges, SrcIPs: srcIPs, CreatedBy: c.actorID(), Mask: maskKey(key.Reveal())}
		if cred.Attrs, err = json.Marshal(attrs); err != nil {
			return credential.Wrap(credential.CodeInternal, err, "encode org token")
		}
		if err := tx.InsertCredential(ctx, cred); err != nil {
			return err
		}
		parsed, err := parseTokenAttrs(cred)
		if err != nil {
			return err
		}
		tok = orgTokenView(cred, parsed)
		return tx.audit("org_token.create", "org_token", cred.ID, map[string]any{"org_id": o.ID, "privileges": in.Privileges, "src_ips": srcIPs})
	})
	if err != nil {
		return OrgToken{}, err
	}
	tok.Key = key.Reveal()
	return tok, nil
}

// inheritsRestrictions refuses a credential, created or changed by c,
// that would be usable from an address c is not, or after c expires.
func inheritsRestrictions(c Caller, allowlist credential.Allowlist, expiresAt time.Time) error {
	if !allowlist.Within(c.SrcIPs) {
		if allowlist.Empty() {
			return credential.Errorf(credential.CodeForbidden, "a token restricted to source IPs cannot create or change a token without src_ips; give it src_ips within %v", c.SrcIPs.Strings())
		}
		return credential.Errorf(credential.CodeForbidden, "src_ips must lie within the calling token's own src_ips %v", c.SrcIPs.Strings())
	}
	return outlivesNot(c, expiresAt)
}

// orgTokenOf loads one org token of the organization.
func orgTokenOf(ctx context.Context, tx CredentialTx, instanceID, orgID, id string) (credential.Credential, tokenAttrs, error) {
	notFound := credential.Errorf(credential.CodeNotFound, "no such token")
	cred, err := tx.GetCredential(ctx, instanceID, id)
	if credential.IsCode(err, credential.CodeNotFound) || (err == nil && (cred.Kind != credential.KindOrgToken || cred.Subject != orgID || cred.Revoked())) {
		return cred, tokenAttrs{}, notFound
	}
	if err != nil {
		return cred, tokenAttrs{}, err
	}
	attrs, err := parseTokenAttrs(cred)
	return cred, attrs, err
}

// ListOrgTokens lists an organization's live tokens, masked. meta keeps
// the tokens whose meta has each key with its value (metaMatches; nil
// keeps all).
func (a *Authority) ListOrgTokens(ctx context.Context, c Caller, orgID string, meta map[string]string) ([]OrgToken, error) {
	if _, err := a.enter(ctx, c, "ListOrgTokens"); err != nil {
		return nil, err
	}
	if err := checkMetaFilter(meta); err != nil {
		return nil, err
	}
	var out []OrgToken
	err := a.store.View(ctx, func(tx Tx) error {
		o, _, err := a.authorizeOrg(ctx, tx, c, orgID)
		if err != nil {
			return err
		}
		q := CredentialQuery{InstanceID: c.InstanceID, Kind: credential.KindOrgToken, Subject: o.ID, Revoked: new(bool)}
		out, _, err = pageCredentials(ctx, tx, q, metaKeep(meta), orgTokenView)
		return err
	})
	return out, err
}

// GetOrgToken returns one org token, masked.
func (a *Authority) GetOrgToken(ctx context.Context, c Caller, orgID, id string) (OrgToken, error) {
	if _, err := a.enter(ctx, c, "GetOrgToken"); err != nil {
		return OrgToken{}, err
	}
	var tok OrgToken
	err := a.store.View(ctx, func(tx Tx) error {
		o, _, err := a.authorizeOrg(ctx, tx, c, orgID)
		if err != nil {
			return err
		}
		cred, attrs, err := orgTokenOf(ctx, tx, c.InstanceID, o.ID, id)
		tok = orgTokenView(cred, attrs)
		return err
	})
	return tok, err
}

// UpdateOrgToken changes a token's name and privileges. src_ips cannot
// change: sending a different list is refused.
func (a *Authority) UpdateOrgToken(ctx context.Context, c Caller, orgID, id string, in OrgTokenInput) error {
	g, err := a.enter(ctx, c, "UpdateOrgToken")
	if err != nil {
		return err
	}
	if in.Name != nil {
		if err := validateName("name", *in.Name, OrgTokenNameMax); err != nil {
			return err
		}
	}
	var srcIPs []string
	if in.SrcIPs != nil {
		if _, srcIPs, err = credential.ParseAllowlist(in.SrcIPs); err != nil {
			return err
		}
	}
	return g.mutate(ctx, func(tx *change) error {
		o, t, err := a.authorizeOrg(ctx, tx, c, orgID)
		if err != nil {
			return err
		}
		cred, attrs, err := orgTokenOf(ctx, tx, c.InstanceID, o.ID, id)
		if err != nil {
			return err
		}
		if in.SrcIPs != nil && !slices.Equal(srcIPs, attrs.SrcIPs) {
			return credential.ParamError(credential.CodeInvalid, "src_ips", "src_ips cannot be changed after the token is created")
		}
		if err := a.refusedIfIn(ctx, tx, c, "restriction_widened", inheritsRestrictions(c, attrs.allowlist, cred.ExpiresAt)); err != nil {
			return err
		}
		stored := orgTokenAttrs{Name: attrs.Name, Privileges: attrs.Privileges, SrcIPs: attrs.SrcIPs, CreatedBy: attrs.CreatedBy, Mask: attrs.Mask}
		if in.Name != nil {
			stored.Name = *in.Name
		}
		if in.Privileges != nil {
			// The caller must hold what the token has now and what it will
			// have: no token can widen or narrow another beyond itself.
			if err := a.checkPrivileges(ctx, tx, c, o, t, in.Privileges); err != nil {
				return err
			}
			if c.Kind == credential.KindOrgToken && !credential.Subset(c.Privileges, attrs.Privileges, t) {
				return a.forbidIn(ctx, tx, c, "privilege_escalation", credential.Errorf(credential.CodeForbidden, "a token cannot change a token with privileges beyond its own"))
			}
			stored.Privileges = in.Privileges
		}
		raw, err := json.Marshal(stored)
		if err != nil {
			return credential.Wrap(credential.CodeInternal, err, "encode org token")
		}
		if err := tx.UpdateCredentialAttrs(ctx, c.InstanceID, id, raw, tx.now); err != nil {
			return err
		}
		tx.invalidate(cred.Digest)
		return tx.audit("org_token.update", "org_token", id, map[string]any{"name": stored.Name, "privileges": stored.Privileges})
	})
}

// DeleteOrgToken deletes a token; it stops working at once.
func (a *Authority) DeleteOrgToken(ctx context.Context, c Caller, orgID, id string) error {
	return a.mutate(ctx, c, "DeleteOrgToken", func(tx *change) error {
		o, t, err := a.authorizeOrg(ctx, tx, c, orgID)
		if err != nil {
			return err
		}
		cred, attrs, err := orgTokenOf(ctx, tx, c.InstanceID, o.ID, id)
		if err != nil {
			return err
		}
		if c.Kind == credential.KindOrgToken && !credential.Subset(c.Privileges, attrs.Privileges, t) {
			return a.forbidIn(ctx, tx, c, "privilege_escalation", credential.Errorf(credential.CodeForbidden, "a token cannot delete a token with privileges beyond its own"))
		}
		if err := tx.DeleteCredential(ctx, c.InstanceID, id); err != nil {
			return err
		}
		tx.invalidate(cred.Digest)
		return tx.audit("org_token.delete", "org_token", id, map[string]string{"org_id": o.ID})
	})
}

// AuthenticateOrgToken resolves an org token presented to keyward itself
// (the Mist surface), enforcing its source-IP allowlist, its hourly
// limit and its controls (admitCaller: the hourly limit is taken with its
// auto-apply named limits, all or nothing). The RateLimit is set whenever
// the limits were taken, also with a CodeRateLimited error, so the
// surface can send its headers.
func (a *Authority) AuthenticateOrgToken(ctx context.Context, token string, clientIP netip.Addr) (Caller, RateLimit, error) {
	p, err := a.present(ctx, token, credential.KindOrgToken)
	if err != nil {
		return Caller{}, RateLimit{}, err
	}
	e, now := p.e, p.now
	caller := Caller{
		InstanceID: e.cred.InstanceID, Kind: credential.KindOrgToken, CredentialID: e.cred.ID,
		OrgID: e.cred.Subject, Privileges: e.attrs.Privileges,
	}
	if !e.attrs.allowsFrom(clientIP) {
		a.countCaller(e.cred, ReasonIPNotAllowed, now)
		return Caller{}, RateLimit{}, a.forbid(ctx, caller, "ip_not_allowed", credential.Errorf(credential.CodeForbidden, "the token may not be used from this address"))
	}
	hourly, err := a.hourlyTake(ctx, e.cred)
	if err != nil {
		return Caller{}, RateLimit{}, err
	}
	r, err := a.admitCaller(ctx, e, hourly, now)
	if err != nil {
		return Caller{}, RateLimit{}, err
	}
	var rl RateLimit
	if r.RateLimit != nil {
		rl = *r.RateLimit
	}
	if !r.Valid {
		// The surface sends Retry-After from rl: on Mist, an error's
		// RetryAfter reads as the failed-authentication budget's.
		err := a.refuseCaller(e.cred, r, now)
		rl.RetryIn, err.RetryAfter = err.RetryAfter, 0
		return Caller{}, rl, err
	}
	a.used(ctx, p.resolved, now)
	a.countCaller(e.cred, ReasonValid, now)
	noteCaller(ctx, e.cred.ID)
	caller.SrcIPs, caller.ExpiresAt = e.attrs.allowlist, e.cred.ExpiresAt
	return caller, rl, nil
}

// allowsFrom is the source-address rule of a credential with an
// allowlist: no list allows every address (the zero Addr included).
func (t tokenAttrs) allowsFrom(ip netip.Addr) bool {
	return t.allowlist.Empty() || t.allowlist.Allows(ip)
}

// settingsCache keeps per-instance settings for settingsTTL, so the hot
// path does not read them per call.
type settingsCache struct {
	mu         sync.Mutex
	gen        uint64 // bumped by every settings change on this node
	limits     map[string]cachedLimit
	topologies map[string]cachedTopology // by instance + "/" + org
}

type cachedTopology struct {
	t       credential.Topology
	epoch   uint64
	expires time.Time
}

// topology returns an organization's sitegroup membership, cached until the
// next cache invalidation (every sitegroup or site change makes one).
func (a *Authority) topology(ctx context.Context, instanceID, orgID string) (credential.Topology, error) {
	now, epoch, key := a.clock.Now(), a.cache.currentEpoch(), instanceID+"/"+orgID
	a.settings.mu.Lock()
	ct, ok := a.settings.topologies[key]
	a.settings.mu.Unlock()
	if ok && ct.epoch == epoch && now.Before(ct.expires) {
		return ct.t, nil
	}
	var t credential.Topology
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		t, err = loadTopology(ctx, tx, instanceID, orgID)
		return err
	})
	if err != nil {
		return t, err
	}
	a.settings.mu.Lock()
	if a.settings.topologies == nil {
		a.settings.topologies = map[string]cachedTopology{}
	}
	a.settings.topologies[key] = cachedTopology{t: t, epoch: epoch, expires: now.Add(min(settingsTTL, a.cache.positiveLifetime()))}
	a.settings.mu.Unlock()
	return t, nil
}

type cachedLimit struct {
	limit   int
	expires time.Time
}

const settingsTTL = 30 * time.Second

func (a *Authority) orgTokenLimit(ctx context.Context, instanceID string) (int, error) {
	now := a.clock.Now()
	a.settings.mu.Lock()
	l, ok := a.settings.limits[instanceID]
	gen := a.settings.gen
	a.settings.mu.Unlock()
	if ok && now.Before(l.expires) {
		return l.limit, nil
	}
	var in credential.Instance
	err := a.store.View(ctx, func(tx Tx) error {
		var err error
		in, err = tx.GetInstance(ctx, instanceID)
		return err
	})
	if err != nil {
		return 0, err
	}
	l = cachedLimit{limit: in.OrgTokenHourlyLimit, expires: now.Add(settingsTTL)}
	if l.limit <= 0 {
		l.limit = credential.DefaultOrgTokenHourlyLimit
	}
	a.settings.mu.Lock()
	if a.settings.limits == nil {
		a.settings.limits = map[string]cachedLimit{}
	}
	if a.settings.gen == gen { // a change since the read must not be undone
		a.settings.limits[instanceID] = l
	}
	a.settings.mu.Unlock()
	return l.limit, nil
}

// MaxOrgTokenHourlyLimit bounds the instance's org-token hourly limit.
const MaxOrgTokenHourlyLimit = 1_000_000_000

// CheckOrgTokenHourlyLimit reports whether SetOrgTokenHourlyLimit would
// refuse limit, so a request changing several settings can be refused
// before any is written.
func CheckOrgTokenHourlyLimit(limit *int64) error {
	if limit != nil && (*limit < 1 || *limit > MaxOrgTokenHourlyLimit) {
		return credential.ParamError(credential.CodeInvalid, "org_token_hourly_limit",
			fmt.Sprintf("must be between 1 and %d; send null to restore the default (%d)", MaxOrgTokenHourlyLimit, credential.DefaultOrgTokenHourlyLimit))
	}
	return nil
}

// SetOrgTokenHourlyLimit changes how many calls each org token of the
// instance may make per clock hour; nil restores Mist's 5000. Zero and
// negative limits are refused rather than read as "the default": a caller
// sending 0 may well mean "no calls".
func (a *Authority) SetOrgTokenHourlyLimit(ctx context.Context, c Caller, limit *int64) (credential.Instance, error) {
	g, err := a.enter(ctx, c, "SetOrgTokenHourlyLimit")
	if err != nil {
		return credential.Instance{}, err
	}
	if err := CheckOrgTokenHourlyLimit(limit); err != nil {
		return credential.Instance{}, err
	}
	stored := 0 // the default
	if limit != nil {
		stored = int(*limit)
	}
	var in credential.Instance
	err = g.mutate(ctx, func(tx *change) error {
		var err error
		if in, err = tx.GetInstance(ctx, c.InstanceID); err != nil {
			return err
		}
		in.OrgTokenHourlyLimit = stored
		if err := tx.UpdateInstance(ctx, in); err != nil {
			return err
		}
		return tx.audit("instance.update", "instance", in.ID, map[string]*int64{"org_token_hourly_limit": limit})
	})
	if err == nil {
		a.settings.mu.Lock()
		a.settings.gen++
		delete(a.settings.limits, c.InstanceID)
		a.settings.mu.Unlock()
	}
	return in, err
}
