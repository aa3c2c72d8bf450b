package credential

import (
	"fmt"
	"slices"
	"strings"
)

// Permission is one right an admin key may hold: PermAll, PermVerify, or
// the read or write permission of a resource Family ("machines:read").
type Permission string

const (
	// PermAll is every permission, present and future: the first-start
	// key and keys made by the operator hold it unless told otherwise.
	PermAll Permission = "*"
	// PermVerify verifies and introspects every kind of credential in the
	// instance, and nothing else: the key a protected API holds.
	PermVerify Permission = "verify"
)

// Family is a resource family with a read and a write permission; write
// implies read.
type Family string

// The resource families. Adding one is one line here: its permissions,
// parsing and the README table follow from the list.
var (
	Machines      = family("machines")      // Clerk machines, their scopes and secret keys
	M2MTokens     = family("m2m_tokens")    // Clerk M2M tokens (list, revoke)
	APIKeys       = family("api_keys")      // Clerk API keys (reading a secret is a write)
	ActorTokens   = family("actor_tokens")  // Clerk actor tokens and impersonation sessions
	Organizations = family("organizations") // organizations, sites, sitegroups and Mist org tokens
	Workspaces    = family("workspaces")    // workspaces and their members
	PATs          = family("pats")          // Spatio personal access tokens, for any user
	Clients       = family("clients")       // the Freezer client registry, for any user
	Scopes        = family("scopes")        // the PAT scope catalogue
	InstanceSetup = family("instance")      // instance settings and signing keys
	Audit         = family("audit")         // the audit log (read only in practice)
	AdminKeys     = family("admin_keys")    // admin keys
	Analytics     = family("analytics")     // verification counts (read only in practice)
	Webhooks      = family("webhooks")      // webhook endpoints and their deliveries
	Credentials   = family("credentials")   // any credential's controls at verify time, its credits, and the roles
)

var families []Family

func family(name string) Family {
	f := Family(name)
	families = append(families, f)
	return f
}

// Families returns every resource family, in declaration order.
func Families() []Family { return slices.Clone(families) }

// Read is the family's read permission ("machines:read").
func (f Family) Read() Permission { return Permission(string(f) + ":read") }

// Write is the family's write permission ("machines:write"); it implies Read.
func (f Family) Write() Permission { return Permission(string(f) + ":write") }

// AllPermissions lists every permission name, PermAll first.
func AllPermissions() []Permission {
	out := []Permission{PermAll, PermVerify}
	for _, f := range families {
		out = append(out, f.Read(), f.Write())
	}
	return out
}

// Known reports whether p is a permission of the vocabulary.
func (p Permission) Known() bool { return slices.Contains(AllPermissions(), p) }

// ParsePermissions validates permission names and returns them in the
// vocabulary's order, each once. An unknown name is CodeInvalid with
// Param param; an empty list is CodeMissing.
func ParsePermissions(param string, names []string) ([]Permission, error) {
	if len(names) == 0 {
		return nil, ParamError(CodeMissing, param, "must name at least one permission")
	}
	for i, n := range names {
		if !Permission(n).Known() {
			return nil, ParamError(CodeInvalid, param, fmt.Sprintf("%s[%d]: unknown permission %.64q (known: %s)", param, i, n, strings.Join(permissionNames(), ", ")))
		}
	}
	var out []Permission
	for _, p := range AllPermissions() {
		if slices.Contains(names, string(p)) {
			out = append(out, p)
		}
	}
	return out, nil
}

func permissionNames() []string {
	var out []string
	for _, p := range AllPermissions() {
		out = append(out, string(p))
	}
	return out
}

// Holds reports whether a key holding held may do what need permits.
// PermAll holds everything; a family's write holds its read; nothing else
// holds anything but itself. An empty need is held by nobody (an
// operation no admin key may perform).
func Holds(held []Permission, need Permission) bool {
	if need == "" {
		return false
	}
	for _, h := range held {
		switch {
		case h == PermAll, h == need:
			return true
		case strings.HasSuffix(string(h), ":write") && need == Permission(strings.TrimSuffix(string(h), ":write")+":read"):
			return true
		}
	}
	return false
}

// Covers reports whether held includes every permission of granted: a
// key can give another only what it holds itself.
func Covers(held, granted []Permission) bool {
	for _, g := range granted {
		if !Holds(held, g) {
			return false
		}
	}
	return true
}
