package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/testkit"
)

// sameMeta reports whether raw is the JSON object want (by value: a
// store may keep the keys in another order).
func sameMeta(raw json.RawMessage, want string) bool {
	var got, w any
	return json.Unmarshal(raw, &got) == nil && json.Unmarshal([]byte(want), &w) == nil && reflect.DeepEqual(got, w)
}

// Every list's Meta option reaches the server as ?meta.<key>=<value>, and
// VerificationQuery.IdentityID as ?identity=; every list item carries its
// meta ({} when none).
func TestListMetaAndIdentityAnalyticsAgainstKeyward(t *testing.T) {
	e := apitest.Start(t, testkit.OpenSQLite(t))
	ctx := context.Background()
	kw := client.New(e.URL, e.AdminKey)
	pro := map[string]string{"plan": "pro", "count": "3"}
	tag := func(id, plan string) {
		t.Helper()
		meta := json.RawMessage(fmt.Sprintf(`{"plan":%q,"count":3}`, plan))
		if _, err := kw.SetCredentialControls(ctx, id, client.ControlsUpdate{Meta: meta}); err != nil {
			t.Fatal(err)
		}
	}
	ident, err := kw.CreateIdentity(ctx, client.IdentityParams{ExternalID: "acme"})
	if err != nil {
		t.Fatal(err)
	}

	// M2M tokens.
	m, err := kw.CreateMachine(ctx, client.MachineParams{Name: "minter"})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(m.SecretKey)
	minter := client.New(e.URL, m.SecretKey, client.WithRetries(0))
	var m2m []string
	for i := range 2 {
		tok, err := minter.CreateM2MToken(ctx, client.M2MTokenParams{Claims: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(tok.Token)
		m2m = append(m2m, tok.ID)
	}
	tag(m2m[0], "pro")
	tag(m2m[1], "free")
	if page, err := kw.ListM2MTokens(ctx, m.ID, client.M2MTokenQuery{Meta: pro}); err != nil || len(page.Data) != 1 || page.Data[0].ID != m2m[0] || !sameMeta(page.Data[0].Meta, `{"plan":"pro","count":3}`) {
		t.Fatalf("M2M tokens by meta: %+v %v", page, err)
	}

	// PATs.
	var pats []string
	for i := range 2 {
		p, err := kw.CreatePAT(ctx, "user_alice", client.PATParams{Name: fmt.Sprintf("p%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(p.Token)
		pats = append(pats, p.ID)
	}
	tag(pats[0], "free")
	tag(pats[1], "pro")
	if page, err := kw.ListPATs(ctx, "user_alice", client.PATQuery{Meta: pro}); err != nil || len(page.Data) != 1 || page.Data[0].ID != pats[1] || !sameMeta(page.Data[0].Meta, `{"plan":"pro","count":3}`) {
		t.Fatalf("PATs by meta: %+v %v", page, err)
	}

	// Org tokens.
	org, err := kw.CreateOrganization(ctx, client.OrganizationParams{Slug: "acme", Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := kw.CreateOrgToken(ctx, org.ID, client.OrgTokenParams{Name: "ci", Privileges: []client.Privilege{{Scope: "org", Role: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.Remember(tok.Key)
	tag(tok.ID, "pro")
	if page, err := kw.ListOrgTokens(ctx, org.ID, client.OrgTokenQuery{Meta: map[string]string{"plan": "free"}}); err != nil || len(page.Data) != 0 {
		t.Fatalf("org tokens by meta, none: %+v %v", page, err)
	}
	if page, err := kw.ListOrgTokens(ctx, org.ID, client.OrgTokenQuery{Meta: pro}); err != nil || len(page.Data) != 1 || !sameMeta(page.Data[0].Meta, `{"plan":"pro","count":3}`) {
		t.Fatalf("org tokens by meta: %+v %v", page, err)
	}

	// An identity's credentials, and its analytics.
	var keys []client.APIKey
	for i := range 2 {
		k, err := kw.CreateAPIKey(ctx, client.APIKeyParams{Name: fmt.Sprintf("key%d", i), Subject: "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk", IdentityID: ident.ID})
		if err != nil {
			t.Fatal(err)
		}
		e.Remember(k.Secret)
		keys = append(keys, k)
	}
	tag(keys[0].ID, "pro")
	if ics, err := kw.IdentityCredentials(ctx, ident.ID, client.IdentityCredentialQuery{Meta: pro}); err != nil || len(ics) != 1 || ics[0].ID != keys[0].ID || !sameMeta(ics[0].Meta, `{"plan":"pro","count":3}`) {
		t.Fatalf("identity credentials by meta: %+v %v", ics, err)
	}
	ics, err := kw.IdentityCredentials(ctx, ident.ID, client.IdentityCredentialQuery{})
	if err != nil || len(ics) != 2 {
		t.Fatalf("identity credentials: %+v %v", ics, err)
	}
	for _, ic := range ics {
		if want := map[string]string{keys[0].ID: `{"plan":"pro","count":3}`, keys[1].ID: `{}`}[ic.ID]; !sameMeta(ic.Meta, want) {
			t.Errorf("identity credential %s: meta %s, want %s", ic.ID, ic.Meta, want)
		}
	}
	tooMany := map[string]string{}
	for i := range client.MaxMetaFilters + 1 {
		tooMany[fmt.Sprintf("k%02d", i)] = "v"
	}
	var apiErr *client.APIError
	if _, err := kw.ListPATs(ctx, "user_alice", client.PATQuery{Meta: tooMany}); !errors.As(err, &apiErr) || apiErr.Param != "meta.k10" {
		t.Fatalf("too many filters: %v", err)
	}

	for _, k := range keys {
		if _, err := kw.Verify(ctx, client.VerifyRequest{Token: k.Secret}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Auth.FlushVerificationCounts(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := kw.Verifications(ctx, client.VerificationQuery{IdentityID: ident.ID, Granularity: "day"})
	if err != nil || len(s.Buckets) != 1 || s.Buckets[0].Outcome != "valid" || s.Buckets[0].Count != 2 {
		t.Fatalf("the identity's verifications: %+v %v", s, err)
	}
	_, err = kw.Verifications(ctx, client.VerificationQuery{IdentityID: ident.ID, CredentialID: keys[0].ID})
	if !errors.As(err, &apiErr) || apiErr.Param != "identity" {
		t.Fatalf("identity and credential_id: %v", err)
	}
	if _, err := kw.Verifications(ctx, client.VerificationQuery{IdentityID: "idt_0000000000000000000000000"}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("an unknown identity: %v", err)
	}
}
