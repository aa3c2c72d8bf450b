package credential

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

const (
	siteA = "11111111-1111-4111-8111-111111111111"
	siteB = "22222222-2222-4222-8222-222222222222"
	siteC = "33333333-3333-4333-8333-333333333333"
	sgAB  = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa" // holds sites A and B
	sgC   = "cccccccc-cccc-4ccc-8ccc-cccccccccccc" // holds site C
)

var testTopology = Topology{SitegroupSites: map[string][]string{
	sgAB: {siteA, siteB},
	sgC:  {siteC},
}}

func org(r Role, views ...string) Privilege { return Privilege{Scope: ScopeOrg, Role: r, Views: views} }
func site(id string, r Role, views ...string) Privilege {
	return Privilege{Scope: ScopeSite, Role: r, SiteID: id, Views: views}
}
func sitegroup(id string, r Role, views ...string) Privilege {
	return Privilege{Scope: ScopeSitegroup, Role: r, SitegroupID: id, Views: views}
}

var allRoles = []Role{RoleAdmin, RoleWrite, RoleHelpdesk, RoleRead, RoleInstaller}

func TestRoleCovers(t *testing.T) {
	// The documented table, spelled out: want[r] are the roles r covers.
	want := map[Role][]Role{
		RoleAdmin:     {RoleAdmin, RoleWrite, RoleHelpdesk, RoleRead, RoleInstaller},
		RoleWrite:     {RoleWrite, RoleHelpdesk, RoleRead},
		RoleHelpdesk:  {RoleHelpdesk, RoleRead},
		RoleRead:      {RoleRead},
		RoleInstaller: {RoleInstaller},
	}
	for _, r := range allRoles {
		for _, o := range allRoles {
			if got, exp := r.Covers(o), slices.Contains(want[r], o); got != exp {
				t.Errorf("%s.Covers(%s) = %v, want %v", r, o, got, exp)
			}
		}
	}
	for _, r := range append(allRoles, "") {
		if Role("superuser").Covers(r) || r.Covers("superuser") || Role("ADMIN").Covers(r) {
			t.Errorf("an unknown role covers or is covered by %q", r)
		}
	}
}

func TestPrivilegeCovers(t *testing.T) {
	cases := []struct {
		name string
		p, q Privilege
		want bool
	}{
		{"org admin covers a site write", org(RoleAdmin), site(siteA, RoleWrite), true},
		{"org admin covers a sitegroup installer", org(RoleAdmin), sitegroup(sgC, RoleInstaller), true},
		{"org admin covers org admin", org(RoleAdmin), org(RoleAdmin), true},
		{"org read covers a site read", org(RoleRead), site(siteC, RoleRead), true},
		{"org read does not cover a site write", org(RoleRead), site(siteC, RoleWrite), false},
		{"org write covers a sitegroup helpdesk", org(RoleWrite), sitegroup(sgAB, RoleHelpdesk), true},
		{"site admin does not cover org read", site(siteA, RoleAdmin), org(RoleRead), false},
		{"site admin does not cover its sitegroup's read", site(siteA, RoleAdmin), sitegroup(sgAB, RoleRead), false},
		{"site admin covers the same site's write", site(siteA, RoleAdmin), site(siteA, RoleWrite), true},
		{"site admin does not cover another site", site(siteA, RoleAdmin), site(siteB, RoleRead), false},
		{"sitegroup write covers a site in it", sitegroup(sgAB, RoleWrite), site(siteB, RoleWrite), true},
		{"sitegroup write does not cover a site outside it", sitegroup(sgAB, RoleWrite), site(siteC, RoleRead), false},
		{"sitegroup write covers itself at read", sitegroup(sgAB, RoleWrite), sitegroup(sgAB, RoleRead), true},
		{"sitegroup does not cover another sitegroup", sitegroup(sgAB, RoleAdmin), sitegroup(sgC, RoleRead), false},
		{"sitegroup does not cover org", sitegroup(sgAB, RoleAdmin), org(RoleRead), false},
		{"unknown sitegroup covers no site", sitegroup("dddddddd-dddd-4ddd-8ddd-dddddddddddd", RoleAdmin), site(siteA, RoleRead), false},
		{"read does not cover write", org(RoleRead), org(RoleWrite), false},
		{"read does not cover helpdesk", org(RoleRead), org(RoleHelpdesk), false},
		{"helpdesk covers read", org(RoleHelpdesk), org(RoleRead), true},
		{"helpdesk does not cover write", org(RoleHelpdesk), org(RoleWrite), false},
		{"write covers helpdesk", org(RoleWrite), org(RoleHelpdesk), true},
		{"write does not cover admin", org(RoleWrite), org(RoleAdmin), false},
		{"installer covered by admin", site(siteA, RoleAdmin), site(siteA, RoleInstaller), true},
		{"installer covered by installer", sitegroup(sgAB, RoleInstaller), site(siteA, RoleInstaller), true},
		{"installer not covered by write", org(RoleWrite), site(siteA, RoleInstaller), false},
		{"installer not covered by helpdesk", org(RoleHelpdesk), org(RoleInstaller), false},
		{"installer not covered by read", org(RoleRead), org(RoleInstaller), false},
		{"installer does not cover read", org(RoleInstaller), site(siteA, RoleRead), false},
		{"org admin holds every view", org(RoleAdmin), site(siteA, RoleAdmin, "lobby_admin", "reporting"), true},
		{"site admin without the view does not cover it", site(siteA, RoleAdmin), site(siteA, RoleAdmin, "lobby_admin"), false},
		{"org write without the view does not cover it", org(RoleWrite), site(siteA, RoleRead, "reporting"), false},
		{"org write with the view covers it", org(RoleWrite, "location", "reporting"), site(siteA, RoleRead, "reporting"), true},
		{"views must all be held", org(RoleWrite, "location"), org(RoleWrite, "location", "security"), false},
		{"views are extra grants, not needed to cover none", site(siteA, RoleRead, "reporting"), site(siteA, RoleRead), true},
		{"unknown scope covers nothing", Privilege{Scope: "msp", Role: RoleAdmin}, site(siteA, RoleRead), false},
		{"nothing covers an unknown scope", org(RoleAdmin), Privilege{Scope: "msp", Role: RoleRead}, false},
		{"nothing covers an unknown role", org(RoleAdmin), org("superuser"), false},
		{"a site privilege without a site_id covers nothing", site("", RoleAdmin), site("", RoleRead), false},
		{"nothing covers a site privilege without a site_id", org(RoleAdmin), site("", RoleRead), false},
		{"an org privilege with a site_id covers nothing", Privilege{Scope: ScopeOrg, Role: RoleAdmin, SiteID: siteA}, site(siteA, RoleRead), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.Covers(c.q, testTopology); got != c.want {
				t.Fatalf("%+v.Covers(%+v) = %v, want %v", c.p, c.q, got, c.want)
			}
		})
	}
}

func TestGrantsAndSubset(t *testing.T) {
	have := []Privilege{org(RoleRead), site(siteA, RoleAdmin), sitegroup(sgC, RoleWrite)}
	if !Grants(have, site(siteC, RoleWrite), testTopology) {
		t.Error("sitegroup write does not grant a site write in it")
	}
	if Grants(have, site(siteB, RoleWrite), testTopology) {
		t.Error("org read plus other places' writes grants a write at site B")
	}
	if Grants(nil, org(RoleRead), testTopology) {
		t.Error("no privileges grant something")
	}
	if !Subset(have, []Privilege{site(siteB, RoleRead), site(siteA, RoleInstaller), sitegroup(sgC, RoleHelpdesk)}, testTopology) {
		t.Error("a covered request is not a subset")
	}
	if Subset(have, []Privilege{site(siteB, RoleRead), org(RoleWrite)}, testTopology) {
		t.Error("a request with one uncovered privilege is a subset")
	}
	if !Subset(have, nil, testTopology) {
		t.Error("the empty request is not a subset")
	}
}

func TestValidatePrivilegesAcceptsMistsMixedExample(t *testing.T) {
	ps := []Privilege{
		{Scope: ScopeOrg, Role: RoleRead},
		{Scope: ScopeSite, SiteID: siteA, Role: RoleAdmin},
		{Scope: ScopeSitegroup, SitegroupID: sgAB, Role: RoleWrite},
	}
	if err := ValidatePrivileges(ps); err != nil {
		t.Fatal(err)
	}
	// Ten, with every view at its minimum role, and the same place with
	// different roles, is also fine.
	ps = append(ps,
		org(RoleHelpdesk, "switch_admin"),
		org(RoleWrite, "location", "security"),
		org(RoleAdmin, "mxedge_admin", "lobby_admin", "reporting"),
		org(RoleInstaller),
		site(siteA, RoleInstaller),
		site(siteB, RoleRead, "reporting", "marketing", "super_observer"),
		site(siteC, RoleRead),
	)
	if len(ps) != MaxPrivileges {
		t.Fatalf("test setup: %d privileges", len(ps))
	}
	if err := ValidatePrivileges(ps); err != nil {
		t.Fatal(err)
	}
}

func TestValidatePrivilegesRejects(t *testing.T) {
	eleven := make([]Privilege, MaxPrivileges+1)
	for i := range eleven {
		eleven[i] = site(fmt.Sprintf("%08x-0000-4000-8000-000000000000", i), RoleRead)
	}
	long := strings.Repeat("x", 200)
	cases := []struct {
		name string
		ps   []Privilege
		code Code
		msg  string // a substring of the message
	}{
		{"none", nil, CodeMissing, "at least one"},
		{"empty", []Privilege{}, CodeMissing, "at least one"},
		{"eleven", eleven, CodeTooMany, "at most 10"},
		{"unknown scope", []Privilege{{Scope: "msp", Role: RoleRead}}, CodeInvalid, `privileges[0]: scope "msp"`},
		{"empty scope", []Privilege{{Role: RoleRead}}, CodeInvalid, `privileges[0]: scope ""`},
		{"uppercase scope", []Privilege{{Scope: "Org", Role: RoleRead}}, CodeInvalid, `scope "Org"`},
		{"unknown role", []Privilege{org(RoleRead), org("superuser")}, CodeInvalid, `privileges[1]: role "superuser"`},
		{"empty role", []Privilege{{Scope: ScopeOrg}}, CodeInvalid, `privileges[0]: role ""`},
		{"long role is capped", []Privilege{org(Role(long))}, CodeInvalid, `role "` + strings.Repeat("x", 64) + `"…`},
		{"site without site_id", []Privilege{org(RoleRead), org(RoleWrite), site("", RoleAdmin)}, CodeInvalid, "privileges[2]: site_id is required for scope site"},
		{"sitegroup without sitegroup_id", []Privilege{sitegroup("", RoleRead)}, CodeInvalid, "privileges[0]: sitegroup_id is required for scope sitegroup"},
		{"org with site_id", []Privilege{{Scope: ScopeOrg, Role: RoleRead, SiteID: siteA}}, CodeInvalid, "site_id is not allowed for scope org"},
		{"org with sitegroup_id", []Privilege{{Scope: ScopeOrg, Role: RoleRead, SitegroupID: sgAB}}, CodeInvalid, "sitegroup_id is not allowed for scope org"},
		{"site with sitegroup_id", []Privilege{{Scope: ScopeSite, Role: RoleRead, SiteID: siteA, SitegroupID: sgAB}}, CodeInvalid, "sitegroup_id is not allowed for scope site"},
		{"sitegroup with site_id", []Privilege{{Scope: ScopeSitegroup, Role: RoleRead, SiteID: siteA, SitegroupID: sgAB}}, CodeInvalid, "site_id is not allowed for scope sitegroup"},
		{"site_id not a uuid", []Privilege{site("site-1", RoleRead)}, CodeInvalid, `site_id "site-1" is not a lowercase UUID`},
		{"site_id uppercase", []Privilege{site(strings.ToUpper(sgAB), RoleRead)}, CodeInvalid, "not a lowercase UUID"},
		{"site_id braced", []Privilege{site("{"+siteA+"}", RoleRead)}, CodeInvalid, "not a lowercase UUID"},
		{"site_id without dashes", []Privilege{site(strings.ReplaceAll(siteA, "-", ""), RoleRead)}, CodeInvalid, "not a lowercase UUID"},
		{"site_id with a non-hex digit", []Privilege{site("g"+siteA[1:], RoleRead)}, CodeInvalid, "not a lowercase UUID"},
		{"site_id with a dash misplaced", []Privilege{site("1111111-11111-4111-8111-111111111111", RoleRead)}, CodeInvalid, "not a lowercase UUID"},
		{"sitegroup_id not a uuid", []Privilege{sitegroup("sg", RoleRead)}, CodeInvalid, `sitegroup_id "sg" is not a lowercase UUID`},
		{"unknown view", []Privilege{org(RoleAdmin, "superpowers")}, CodeInvalid, `privileges[0]: view "superpowers"`},
		{"empty view", []Privilege{org(RoleAdmin, "")}, CodeInvalid, `view ""`},
		{"view above read", []Privilege{org(RoleRead, "location")}, CodeInvalid, `view "location" needs role write`},
		{"view above helpdesk", []Privilege{site(siteA, RoleHelpdesk, "security")}, CodeInvalid, `view "security" needs role write`},
		{"view above write", []Privilege{org(RoleWrite, "mxedge_admin")}, CodeInvalid, `view "mxedge_admin" needs role admin`},
		{"lobby_admin above write", []Privilege{org(RoleWrite, "lobby_admin")}, CodeInvalid, `view "lobby_admin" needs role admin`},
		{"switch_admin above read", []Privilege{org(RoleRead, "switch_admin")}, CodeInvalid, `view "switch_admin" needs role helpdesk`},
		{"installer holds no read view", []Privilege{org(RoleInstaller, "reporting")}, CodeInvalid, `view "reporting" needs role read`},
		{"repeated view", []Privilege{org(RoleRead, "reporting", "marketing", "reporting")}, CodeInvalid, `duplicate view "reporting"`},
		{"duplicate org", []Privilege{org(RoleRead), org(RoleWrite), org(RoleRead)}, CodeInvalid, "privileges[2]: duplicate of privileges[0]"},
		{"duplicate site", []Privilege{site(siteA, RoleAdmin), site(siteA, RoleAdmin, "lobby_admin")}, CodeInvalid, "privileges[1]: duplicate"},
		{"duplicate sitegroup", []Privilege{sitegroup(sgAB, RoleRead), sitegroup(sgAB, RoleRead)}, CodeInvalid, "duplicate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidatePrivileges(c.ps)
			if err == nil {
				t.Fatal("accepted")
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T, want *Error", err)
			}
			if e.Code != c.code || e.Param != "privileges" {
				t.Fatalf("code %s param %q, want %s privileges (%v)", e.Code, e.Param, c.code, err)
			}
			if !strings.Contains(e.Message, c.msg) {
				t.Fatalf("message %q does not contain %q", e.Message, c.msg)
			}
		})
	}
}

// --- property tests ---------------------------------------------------------

// A world is a random org: a pool of site and sitegroup ids and a topology
// over part of them (some sites belong to no sitegroup, some to several;
// some sitegroups are unknown to the topology).
type world struct {
	sites, sitegroups []string
	top               Topology
}

func uuidN(tag byte, i int) string {
	return fmt.Sprintf("%c%07x-0000-4000-8000-000000000000", tag, i)
}

func genWorld(t *rapid.T) world {
	w := world{top: Topology{SitegroupSites: map[string][]string{}}}
	for i := range rapid.IntRange(1, 6).Draw(t, "sites") {
		w.sites = append(w.sites, uuidN('a', i))
	}
	for i := range rapid.IntRange(0, 4).Draw(t, "sitegroups") {
		sg := uuidN('b', i)
		w.sitegroups = append(w.sitegroups, sg)
		if rapid.Bool().Draw(t, "inTopology") {
			w.top.SitegroupSites[sg] = rapid.SliceOfDistinct(rapid.SampledFrom(w.sites), rapid.ID).Draw(t, "members")
		}
	}
	return w
}

var allViews = []string{"reporting", "marketing", "super_observer", "location", "security", "switch_admin", "mxedge_admin", "lobby_admin"}

// genPrivilege draws a well-formed privilege of w. Its views are any of
// Mist's, allowed by the role or not: Covers does not validate.
func genPrivilege(w world) *rapid.Generator[Privilege] {
	return rapid.Custom(func(t *rapid.T) Privilege {
		p := Privilege{Role: rapid.SampledFrom(allRoles).Draw(t, "role")}
		scopes := []Scope{ScopeOrg, ScopeSite}
		if len(w.sitegroups) > 0 {
			scopes = append(scopes, ScopeSitegroup)
		}
		switch p.Scope = rapid.SampledFrom(scopes).Draw(t, "scope"); p.Scope {
		case ScopeSite:
			p.SiteID = rapid.SampledFrom(w.sites).Draw(t, "site")
		case ScopeSitegroup:
			p.SitegroupID = rapid.SampledFrom(w.sitegroups).Draw(t, "sitegroup")
		}
		p.Views = rapid.SliceOfNDistinct(rapid.SampledFrom(allViews), 0, 3, rapid.ID).Draw(t, "views")
		return p
	})
}

// genValidPrivilege draws a privilege of w that ValidatePrivileges accepts
// on its own: its views are ones its role allows.
func genValidPrivilege(w world) *rapid.Generator[Privilege] {
	return rapid.Custom(func(t *rapid.T) Privilege {
		p := genPrivilege(w).Draw(t, "privilege")
		p.Views = slices.DeleteFunc(p.Views, func(v string) bool { return !oracleRoleCovers(p.Role, oracleViewMinRole[v]) })
		return p
	})
}

// The oracle restates the documented rules independently of privilege.go:
// a privilege is expanded into the explicit set of (place, role) pairs it
// grants, and a request is covered when its own (place, role) is in that
// set and its views are held.

var oracleRank = map[Role]int{RoleRead: 1, RoleHelpdesk: 2, RoleWrite: 3, RoleAdmin: 4}

func oracleRoleCovers(r, o Role) bool {
	switch {
	case r == RoleAdmin:
		return true
	case r == RoleInstaller || o == RoleInstaller:
		return r == o
	default:
		return oracleRank[r] >= oracleRank[o]
	}
}

var oracleViewMinRole = map[string]Role{
	"reporting": RoleRead, "marketing": RoleRead, "super_observer": RoleRead,
	"location": RoleWrite, "security": RoleWrite, "switch_admin": RoleHelpdesk,
	"mxedge_admin": RoleAdmin, "lobby_admin": RoleAdmin,
}

type grant struct{ place, role string }

func place(p Privilege) string {
	switch p.Scope {
	case ScopeSite:
		return "site:" + p.SiteID
	case ScopeSitegroup:
		return "sitegroup:" + p.SitegroupID
	}
	return "org"
}

func oracleExpand(w world, p Privilege) map[grant]bool {
	var places []string
	switch p.Scope {
	case ScopeOrg:
		places = append(places, "org")
		for _, s := range w.sites {
			places = append(places, "site:"+s)
		}
		for _, g := range w.sitegroups {
			places = append(places, "sitegroup:"+g)
		}
	case ScopeSitegroup:
		places = append(places, "sitegroup:"+p.SitegroupID)
		for g, members := range w.top.SitegroupSites {
			if g == p.SitegroupID {
				for _, s := range members {
					places = append(places, "site:"+s)
				}
			}
		}
	case ScopeSite:
		places = append(places, "site:"+p.SiteID)
	}
	out := map[grant]bool{}
	for _, pl := range places {
		for _, r := range allRoles {
			if oracleRoleCovers(p.Role, r) {
				out[grant{pl, string(r)}] = true
			}
		}
	}
	return out
}

func oracleCovers(w world, p, q Privilege) bool {
	if !oracleExpand(w, p)[grant{place(q), string(q.Role)}] {
		return false
	}
	if p.Scope == ScopeOrg && p.Role == RoleAdmin {
		return true
	}
	held := map[string]bool{}
	for _, v := range p.Views {
		held[v] = true
	}
	for _, v := range q.Views {
		if !held[v] {
			return false
		}
	}
	return true
}

func oracleSubset(w world, have, want []Privilege) bool {
	for _, q := range want {
		found := false
		for _, p := range have {
			found = found || oracleCovers(w, p, q)
		}
		if !found {
			return false
		}
	}
	return true
}

func TestSubsetMatchesOracle(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genWorld(t)
		have := rapid.SliceOfN(genPrivilege(w), 0, 5).Draw(t, "have")
		want := rapid.SliceOfN(genPrivilege(w), 0, 5).Draw(t, "want")
		for _, q := range want {
			for _, p := range have {
				if got, exp := p.Covers(q, w.top), oracleCovers(w, p, q); got != exp {
					t.Fatalf("%+v.Covers(%+v) = %v, oracle %v (topology %v)", p, q, got, exp, w.top.SitegroupSites)
				}
			}
			if got, exp := Grants(have, q, w.top), oracleSubset(w, have, []Privilege{q}); got != exp {
				t.Fatalf("Grants(%+v, %+v) = %v, oracle %v", have, q, got, exp)
			}
		}
		if got, exp := Subset(have, want, w.top), oracleSubset(w, have, want); got != exp {
			t.Fatalf("Subset(%+v, %+v) = %v, oracle %v (topology %v)", have, want, got, exp, w.top.SitegroupSites)
		}
	})
}

func TestSubsetIsReflexive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genWorld(t)
		a := rapid.SliceOfN(genPrivilege(w), 0, 6).Draw(t, "a")
		if !Subset(a, a, w.top) {
			t.Fatalf("Subset(a, a) is false for %+v", a)
		}
	})
}

// narrow draws a privilege that p covers by the documented rules: a scope
// at or under p's, a role p's role covers, and a subset of p's views (any
// views, if p is admin at org).
func narrow(t *rapid.T, w world, p Privilege) Privilege {
	q := Privilege{Scope: p.Scope, SiteID: p.SiteID, SitegroupID: p.SitegroupID}
	switch p.Scope {
	case ScopeOrg:
		q = genPrivilege(w).Draw(t, "narrower place")
		q.Views = nil
	case ScopeSitegroup:
		if members := w.top.SitegroupSites[p.SitegroupID]; len(members) > 0 && rapid.Bool().Draw(t, "to a site") {
			q = site(rapid.SampledFrom(members).Draw(t, "member"), "")
		}
	}
	var roles []Role
	for _, r := range allRoles {
		if oracleRoleCovers(p.Role, r) {
			roles = append(roles, r)
		}
	}
	q.Role = rapid.SampledFrom(roles).Draw(t, "narrower role")
	views := p.Views
	if p.Scope == ScopeOrg && p.Role == RoleAdmin {
		views = allViews
	}
	for _, v := range views {
		if rapid.Bool().Draw(t, "keep view "+v) {
			q.Views = append(q.Views, v)
		}
	}
	return q
}

func narrowAll(t *rapid.T, w world, have []Privilege, label string) []Privilege {
	if len(have) == 0 {
		return nil
	}
	var out []Privilege
	for range rapid.IntRange(0, 5).Draw(t, label+" size") {
		p := rapid.SampledFrom(have).Draw(t, label+" from")
		out = append(out, narrow(t, w, p))
	}
	return out
}

func TestSubsetIsTransitive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genWorld(t)
		a := rapid.SliceOfN(genPrivilege(w), 0, 5).Draw(t, "a")
		b := narrowAll(t, w, a, "b")
		c := narrowAll(t, w, b, "c")
		if rapid.Bool().Draw(t, "unrelated c") {
			// Also try c drawn freely: then the property only binds when
			// Subset(b, c) happens to hold.
			c = rapid.SliceOfN(genPrivilege(w), 0, 3).Draw(t, "free c")
		}
		ab, bc, ac := Subset(a, b, w.top), Subset(b, c, w.top), Subset(a, c, w.top)
		if !ab {
			t.Fatalf("a narrowed is not a subset of a: a=%+v b=%+v", a, b)
		}
		if ab && bc && !ac {
			t.Fatalf("Subset(a,b) and Subset(b,c) but not Subset(a,c): a=%+v b=%+v c=%+v", a, b, c)
		}
	})
}

func TestOrgAdminCoversEveryValidRequest(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := genWorld(t)
		want := rapid.SliceOfNDistinct(genValidPrivilege(w), 1, MaxPrivileges, func(p Privilege) string {
			return fmt.Sprint(p.Scope, p.SiteID, p.SitegroupID, p.Role)
		}).Draw(t, "want")
		if err := ValidatePrivileges(want); err != nil {
			t.Fatalf("generator drew an invalid request: %v", err)
		}
		if !Subset([]Privilege{org(RoleAdmin)}, want, w.top) {
			t.Fatalf("org admin does not cover %+v", want)
		}
	})
}
