package credential

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// Scope is where a Privilege applies.
type Scope string

const (
	ScopeOrg       Scope = "org"
	ScopeSite      Scope = "site"
	ScopeSitegroup Scope = "sitegroup"
)

// Role is what a Privilege allows at its scope.
type Role string

const (
	RoleAdmin     Role = "admin"     // Mist "Super User": full read/write
	RoleWrite     Role = "write"     // Mist "Network Admin"
	RoleRead      Role = "read"      // Mist "Observer": read-only
	RoleHelpdesk  Role = "helpdesk"  // read plus basic device actions
	RoleInstaller Role = "installer" // claim, assign and place devices only
)

// MaxPrivileges is the most privileges one credential may hold (Mist's
// maxItems).
const MaxPrivileges = 10

// Privilege is an org API token privilege, after Juniper Mist's
// PrivilegeOrg: a role held at a scope (the whole org, one site, or one
// sitegroup), plus optional UI "views" (Mist's custom roles).
//
// keyward's one policy function for them is [Privilege.Covers], with
// [Grants] and [Subset] built on it. A credential may only be created or
// changed with privileges that are a Subset of its creator's (threat T18:
// granted ⊆ caller's). Anything the rules below do not name is denied:
// unknown scopes and roles cover nothing and are covered by nothing.
//
// Role order (row covers column):
//
//	           admin  write  helpdesk  read  installer
//	admin        ✓      ✓       ✓       ✓       ✓
//	write               ✓       ✓       ✓
//	helpdesk                    ✓       ✓
//	read                                ✓
//	installer                                   ✓
//
// So admin ⊇ write ⊇ helpdesk ⊇ read, and installer (claim, assign and
// place devices) sits apart: only admin and installer cover it, and it
// covers nothing but itself.
//
// Scope hierarchy (row covers column, all within one org):
//
//	              org   sitegroup G          site S
//	org            ✓        ✓ (any)             ✓ (any)
//	sitegroup G             ✓ (G only)          ✓ (S in G, per Topology)
//	site S                                      ✓ (S only)
//
// A sitegroup never covers another sitegroup, even one whose sites it
// holds today: membership changes.
//
// Views (Mist's UI custom roles) are extra grants that must be held: p
// covers q only if every view of q is among p's views, except that admin at
// org scope holds every view.
//
// Each view needs a minimum role, which the privilege's role must cover:
//
//	view                                     minimum role
//	reporting, marketing, super_observer     read
//	switch_admin                             helpdesk
//	location, security                       write
//	mxedge_admin, lobby_admin                admin
//
// SiteID is set exactly when Scope is site and SitegroupID exactly when
// Scope is sitegroup; both are UUIDs of the credential's org.
type Privilege struct {
	Scope       Scope    `json:"scope"`
	Role        Role     `json:"role"`
	SiteID      string   `json:"site_id,omitempty"`
	SitegroupID string   `json:"sitegroup_id,omitempty"`
	Views       []string `json:"views,omitempty"`
}

// Topology tells which sites a sitegroup holds, within one org. A sitegroup
// absent from the map holds no sites.
type Topology struct {
	SitegroupSites map[string][]string
}

// contains reports whether sitegroup sg holds site.
func (t Topology) contains(sg, site string) bool {
	return slices.Contains(t.SitegroupSites[sg], site)
}

// roleCovers lists, for each known role, the roles it covers (itself
// included). It is the role table of the Privilege documentation.
var roleCovers = map[Role][]Role{
	RoleAdmin:     {RoleAdmin, RoleWrite, RoleHelpdesk, RoleRead, RoleInstaller},
	RoleWrite:     {RoleWrite, RoleHelpdesk, RoleRead},
	RoleHelpdesk:  {RoleHelpdesk, RoleRead},
	RoleRead:      {RoleRead},
	RoleInstaller: {RoleInstaller},
}

// Covers reports whether role r includes everything role o allows. Unknown
// roles cover nothing and are covered by nothing.
func (r Role) Covers(o Role) bool {
	return slices.Contains(roleCovers[r], o)
}

func (r Role) known() bool {
	_, ok := roleCovers[r]
	return ok
}

func (s Scope) known() bool {
	return s == ScopeOrg || s == ScopeSite || s == ScopeSitegroup
}

// coversScope reports whether p's scope includes q's. Scopes that lack the
// id they need cover nothing and are covered by nothing.
func (p Privilege) coversScope(q Privilege, t Topology) bool {
	if !q.scopeWellFormed() || !p.scopeWellFormed() {
		return false
	}
	switch p.Scope {
	case ScopeOrg:
		return true
	case ScopeSitegroup:
		switch q.Scope {
		case ScopeSitegroup:
			return q.SitegroupID == p.SitegroupID
		case ScopeSite:
			return t.contains(p.SitegroupID, q.SiteID)
		}
	case ScopeSite:
		return q.Scope == ScopeSite && q.SiteID == p.SiteID
	}
	return false
}

// scopeWellFormed reports whether p's scope is known and carries exactly
// the id it needs.
func (p Privilege) scopeWellFormed() bool {
	switch p.Scope {
	case ScopeOrg:
		return p.SiteID == "" && p.SitegroupID == ""
	case ScopeSite:
		return p.SiteID != "" && p.SitegroupID == ""
	case ScopeSitegroup:
		return p.SitegroupID != "" && p.SiteID == ""
	}
	return false
}

// Covers reports whether p includes everything q allows: p's scope covers
// q's (per t), p's role covers q's, and p holds every view of q (admin at
// org scope holds them all). This is keyward's one privilege policy
// function; the Privilege documentation has its tables.
func (p Privilege) Covers(q Privilege, t Topology) bool {
	if !p.coversScope(q, t) || !p.Role.Covers(q.Role) {
		return false
	}
	if p.Scope == ScopeOrg && p.Role == RoleAdmin {
		return true
	}
	for _, v := range q.Views {
		if !slices.Contains(p.Views, v) {
			return false
		}
	}
	return true
}

// Grants reports whether some privilege in have covers want.
func Grants(have []Privilege, want Privilege, t Topology) bool {
	for _, p := range have {
		if p.Covers(want, t) {
			return true
		}
	}
	return false
}

// Subset reports whether every privilege in want is granted by have: the
// invariant for creating or updating a credential is
// Subset(creator's privileges, requested privileges). An empty want is a
// subset of anything; ValidatePrivileges refuses it separately.
func Subset(have, want []Privilege, t Topology) bool {
	for _, w := range want {
		if !Grants(have, w, t) {
			return false
		}
	}
	return true
}

// viewMinRole is Mist's list of UI views with the role each needs.
var viewMinRole = map[string]Role{
	"reporting":      RoleRead,
	"marketing":      RoleRead,
	"super_observer": RoleRead,
	"location":       RoleWrite,
	"security":       RoleWrite,
	"switch_admin":   RoleHelpdesk,
	"mxedge_admin":   RoleAdmin,
	"lobby_admin":    RoleAdmin,
}

// ValidatePrivileges checks a requested privilege list: 1..MaxPrivileges
// items; known scopes and roles; site_id exactly for scope site and
// sitegroup_id exactly for scope sitegroup, each a canonical lowercase UUID;
// known views, each allowed by the privilege's role, none repeated; and no
// two privileges alike in (scope, site_id, sitegroup_id, role). It does not
// check that the ids exist in the org: that needs the store.
//
// Every error is an *Error with Param "privileges" whose message names the
// offending index.
func ValidatePrivileges(ps []Privilege) error {
	const param = "privileges"
	if len(ps) == 0 {
		return ParamError(CodeMissing, param, "at least one privilege is required")
	}
	if len(ps) > MaxPrivileges {
		return ParamError(CodeTooMany, param,
			fmt.Sprintf("at most %d privileges are allowed, got %d", MaxPrivileges, len(ps)))
	}
	invalid := func(i int, format string, args ...any) error {
		return ParamError(CodeInvalid, param, fmt.Sprintf("privileges[%d]: ", i)+fmt.Sprintf(format, args...))
	}
	type key struct {
		scope           Scope
		site, sitegroup string
		role            Role
	}
	seen := make(map[key]int, len(ps))
	for i, p := range ps {
		if !p.Scope.known() {
			return invalid(i, "scope %s is not one of org, site, sitegroup", quoteCapped(string(p.Scope)))
		}
		if !p.Role.known() {
			return invalid(i, "role %s is not one of admin, write, read, helpdesk, installer", quoteCapped(string(p.Role)))
		}
		switch p.Scope {
		case ScopeOrg:
			if p.SiteID != "" {
				return invalid(i, "site_id is not allowed for scope org")
			}
			if p.SitegroupID != "" {
				return invalid(i, "sitegroup_id is not allowed for scope org")
			}
		case ScopeSite:
			if p.SiteID == "" {
				return invalid(i, "site_id is required for scope site")
			}
			if p.SitegroupID != "" {
				return invalid(i, "sitegroup_id is not allowed for scope site")
			}
			if !isCanonicalUUID(p.SiteID) {
				return invalid(i, "site_id %s is not a lowercase UUID", quoteCapped(p.SiteID))
			}
		case ScopeSitegroup:
			if p.SitegroupID == "" {
				return invalid(i, "sitegroup_id is required for scope sitegroup")
			}
			if p.SiteID != "" {
				return invalid(i, "site_id is not allowed for scope sitegroup")
			}
			if !isCanonicalUUID(p.SitegroupID) {
				return invalid(i, "sitegroup_id %s is not a lowercase UUID", quoteCapped(p.SitegroupID))
			}
		}
		for j, v := range p.Views {
			need, ok := viewMinRole[v]
			if !ok {
				return invalid(i, "view %s is not one of reporting, marketing, super_observer, location, security, switch_admin, mxedge_admin, lobby_admin", quoteCapped(v))
			}
			if !p.Role.Covers(need) {
				return invalid(i, "view %q needs role %s or above, not %s", v, need, p.Role)
			}
			if slices.Contains(p.Views[:j], v) {
				return invalid(i, "duplicate view %q", v)
			}
		}
		k := key{p.Scope, p.SiteID, p.SitegroupID, p.Role}
		if first, dup := seen[k]; dup {
			return invalid(i, "duplicate of privileges[%d] (same scope, id and role)", first)
		}
		seen[k] = i
	}
	return nil
}

// isCanonicalUUID reports whether s is a UUID in canonical form: 8-4-4-4-12
// lowercase hex digits.
func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// maxEcho is how much of a caller's value an error message repeats.
const maxEcho = 64

// quoteCapped quotes s for an error message, cut to maxEcho bytes (on a
// rune boundary) with "…" when longer. Quoting escapes control characters.
func quoteCapped(s string) string {
	if len(s) <= maxEcho {
		return fmt.Sprintf("%q", s)
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}
