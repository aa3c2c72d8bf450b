package console

import (
	"context"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
)

// A user id may hold "/" and "..": placed in a form's path unescaped, a
// member named "../../../../../admin_keys/<id>/revoke#" turned the
// workspace page's Remove button into "revoke that admin key", posted with
// the viewer's CSRF token. Every id in a path is escaped, so the button
// removes that member and nothing else.
func TestAnIDInAPathCannotRetargetAForm(t *testing.T) {
	e := start(t, apitest.Options{})
	ctx := context.Background()
	target, err := e.kw.CreateAdminKey(ctx, client.AdminKeyParams{Name: "ci", Permissions: []string{"machines:read"}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := e.kw.CreateOrganization(ctx, client.OrganizationParams{Name: "Acme", Slug: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := e.kw.CreateWorkspace(ctx, o.ID, client.WorkspaceParams{Name: "Eng", Slug: "eng"})
	if err != nil {
		t.Fatal(err)
	}
	evil := "../../../../../admin_keys/" + target.ID + "/revoke#"
	if _, err := e.kw.PutMember(ctx, o.ID, ws.ID, evil, "member"); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.signIn(e.AdminKey)
	pagePath := "/console/organizations/" + o.ID + "/workspaces/" + ws.ID
	p := b.get(pagePath)
	re := regexp.MustCompile(`<form method="post" action="([^"]*/members/[^"]*/delete)"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)">`)
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no Remove form on the workspace page:\n%s", p.body)
	}
	base, _ := url.Parse(e.URL + pagePath)
	ref, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	dst := base.ResolveReference(ref)
	if want := pagePath + "/members/"; !strings.HasPrefix(dst.Path, want) || dst.Fragment != "" {
		t.Fatalf("the Remove form posts to %s (fragment %q), outside %s", dst.Path, dst.Fragment, want)
	}
	b.post(strings.TrimPrefix(dst.String(), e.URL), url.Values{"csrf": {m[2]}})
	k, err := e.kw.GetAdminKey(ctx, target.ID)
	if err != nil {
		t.Fatal(err)
	}
	if k.RevokedAt != nil {
		t.Fatal("clicking Remove on a member revoked an admin key")
	}
	if _, err := e.kw.GetMember(ctx, o.ID, ws.ID, evil); err == nil {
		t.Fatal("the member is still there after Remove")
	}
}
