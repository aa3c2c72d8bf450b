package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

// Every controls route and field through the SDK, against a real server.
func TestControlsAgainstKeyward(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	ctx := context.Background()
	kw := client.New(e.URL, e.AdminKey)
	const subject = "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"

	if _, err := kw.CreateRole(ctx, "reader", []string{"docs.read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kw.UpdateRole(ctx, "reader", []string{"docs.read", "docs.list"}); err != nil {
		t.Fatal(err)
	}
	if r, err := kw.GetRole(ctx, "reader"); err != nil || len(r.Permissions) != 2 {
		t.Fatalf("role: %+v %v", r, err)
	}
	if rs, err := kw.ListRoles(ctx); err != nil || len(rs) != 1 {
		t.Fatalf("roles: %+v %v", rs, err)
	}
	ident, err := kw.CreateIdentity(ctx, client.IdentityParams{ExternalID: "acme", Meta: json.RawMessage(`{"tier":"gold"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kw.UpdateIdentity(ctx, ident.ID, client.IdentityParams{RateLimits: &[]client.NamedLimit{{Name: "calls", Limit: 100, Duration: 60000, Algorithm: "sliding", AutoApply: true}}}); err != nil {
		t.Fatal(err)
	}
	if page, err := kw.ListIdentities(ctx, "acme", client.ListParams{}); err != nil || len(page.Data) != 1 {
		t.Fatalf("identities: %+v %v", page, err)
	}
	k, err := kw.CreateAPIKey(ctx, client.APIKeyParams{Name: "sdk key", Subject: subject, Meta: json.RawMessage(`{"plan":"pro"}`),
		Permissions: []string{"docs.write"}, Roles: []string{"reader"}, Credits: &client.Credits{Remaining: 2}, IdentityID: ident.ID,
		RateLimits: []client.NamedLimit{{Name: "burst", Limit: 10, Duration: 1000, Algorithm: "fixed"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(k.Secret)
	v, err := kw.Verify(ctx, client.VerifyRequest{Token: k.Secret, Permissions: "docs.read AND docs.write",
		RateLimits: []client.LimitCost{{Name: "burst", Cost: 2}, {Name: "calls", Cost: 1}}, Credits: &client.CreditsCost{Cost: 1}})
	if err != nil || !v.Valid || len(v.RateLimits) != 2 || v.Credits.Remaining != 1 || v.Identity.ExternalID != "acme" || string(v.Meta) != `{"plan":"pro"}` {
		t.Fatalf("verify: %+v %v", v, err)
	}
	if v, _ = kw.Verify(ctx, client.VerifyRequest{Token: k.Secret, Permissions: "admin"}); v.Code != client.CodeInsufficientPermissions || v.MissingPermissions[0] != "admin" {
		t.Fatalf("insufficient: %+v", v)
	}
	if cr, err := kw.ChangeCredits(ctx, k.ID, "set", 0); err != nil || cr.Remaining != 0 {
		t.Fatalf("credits: %+v %v", cr, err)
	}
	if v, _ = kw.Verify(ctx, client.VerifyRequest{Token: k.Secret}); v.Code != client.CodeUsageExceeded {
		t.Fatalf("usage_exceeded: %+v", v)
	}
	ctl, err := kw.SetCredentialControls(ctx, k.ID, client.ControlsUpdate{Meta: json.RawMessage(`{"plan":"free"}`), ClearCredits: true})
	if err != nil || ctl.Credits != nil || string(ctl.Meta) != `{"plan":"free"}` {
		t.Fatalf("set controls: %+v %v", ctl, err)
	}
	if got, err := kw.CredentialControls(ctx, k.ID); err != nil || *got.IdentityID != ident.ID || len(got.RateLimits) != 1 {
		t.Fatalf("controls: %+v %v", got, err)
	}
	if page, err := kw.ListAPIKeys(ctx, client.APIKeyQuery{Subject: subject, Meta: map[string]string{"plan": "free"}}); err != nil || len(page.Data) != 1 {
		t.Fatalf("meta filter: %+v %v", page, err)
	}
	_, err = kw.SetCredentialControls(ctx, k.ID, client.ControlsUpdate{Permissions: &[]string{"bad name"}})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Param != "permissions[0]" {
		t.Fatalf("bad permission: %v", err)
	}
	if ics, err := kw.IdentityCredentials(ctx, ident.ID, client.IdentityCredentialQuery{}); err != nil || len(ics) != 1 {
		t.Fatalf("identity credentials: %+v %v", ics, err)
	}
	if n, err := kw.DeleteIdentity(ctx, ident.ID); err != nil || n != 1 {
		t.Fatalf("delete identity: %d %v", n, err)
	}
	if v, _ = kw.Verify(ctx, client.VerifyRequest{Token: k.Secret}); v.Code != client.CodeRevoked {
		t.Fatalf("after the identity's delete: %+v", v)
	}
	if err := kw.DeleteRole(ctx, "reader"); err != nil {
		t.Fatal(err)
	}
}
