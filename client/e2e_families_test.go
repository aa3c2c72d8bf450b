package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/httpapi/apitest"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// Each native family through the SDK, against a real server on both
// stores: create, list (walked with Iterate), read, change, remove, and
// the secret never in a list or a read.

const sdkAPIKeySubject = "user_2xhFjEI5X2qWRvtV13BzSj8H6Dk"

func sdkEnv(t *testing.T, s *sqlstore.Store) (*apitest.Env, *client.Client) {
	t.Helper()
	e := apitest.Start(t, s)
	return e, client.New(e.URL, e.AdminKey, client.WithRetries(0))
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// noSecretIn fails when v, as JSON, holds secret.
func noSecretIn(t *testing.T, what string, v any, secret string) {
	t.Helper()
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), secret) {
		t.Errorf("%s shows the secret", what)
	}
}

func TestSDKMachinesAndM2MTokens(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e, kw := sdkEnv(t, s)
		ctx := context.Background()
		var made []client.Machine
		for i := range 5 {
			m, err := kw.CreateMachine(ctx, client.MachineParams{Name: fmt.Sprintf("m%d", i)})
			check(t, "create machine", err)
			e.Remember(m.SecretKey)
			made = append(made, m)
		}
		all, err := client.All(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.Machine], error) {
			return kw.ListMachines(ctx, client.MachineQuery{ListParams: client.ListParams{Limit: 2, Cursor: cursor}})
		})
		if check(t, "list machines", err); len(all) != 5 {
			t.Fatalf("walked %d machines, want 5", len(all))
		}
		noSecretIn(t, "the machine list", all, made[0].SecretKey)
		got, err := kw.GetMachine(ctx, made[0].ID)
		if check(t, "get machine", err); got.Name != "m0" || got.SecretKey != "" {
			t.Errorf("get machine: %+v", got)
		}
		sk, err := kw.MachineSecretKey(ctx, made[0].ID)
		if check(t, "secret read", err); sk.SecretKey != made[0].SecretKey {
			t.Error("the secret read is not the create's key")
		}
		rotated, err := kw.RotateMachineSecretKey(ctx, made[0].ID, 0)
		check(t, "rotate", err)
		e.Remember(rotated.SecretKey)
		_, err = kw.AddMachineScope(ctx, made[0].ID, made[1].ID)
		check(t, "add scope", err)
		if got, _ := kw.GetMachine(ctx, made[0].ID); len(got.ScopedMachines) != 1 || got.ScopedMachines[0].ID != made[1].ID {
			t.Errorf("scoped machines: %+v", got.ScopedMachines)
		}
		check(t, "remove scope", kw.RemoveMachineScope(ctx, made[0].ID, made[1].ID))
		if got, err := kw.UpdateMachine(ctx, made[0].ID, client.MachineParams{Name: "renamed"}); err != nil || got.Name != "renamed" {
			t.Errorf("update machine: %+v %v", got, err)
		}

		// M2M tokens: a machine mints; the admin key lists and revokes.
		machine := client.New(e.URL, made[2].SecretKey, client.WithRetries(0))
		if _, err := kw.CreateM2MToken(ctx, client.M2MTokenParams{}); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("an admin key mints: %v", err)
		}
		var tokens []client.M2MToken
		for range 3 {
			tok, err := machine.CreateM2MToken(ctx, client.M2MTokenParams{Claims: json.RawMessage(`{"a":1}`)})
			check(t, "mint", err)
			e.Remember(tok.Token)
			tokens = append(tokens, tok)
		}
		listed, err := client.All(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.M2MToken], error) {
			return kw.ListM2MTokens(ctx, made[2].ID, client.M2MTokenQuery{ListParams: client.ListParams{Limit: 2, Cursor: cursor}})
		})
		if check(t, "list tokens", err); len(listed) != 3 {
			t.Errorf("listed %d tokens, want 3", len(listed))
		}
		noSecretIn(t, "the token list", listed, tokens[0].Token)
		if res, err := kw.Verify(ctx, client.VerifyRequest{Token: tokens[0].Token}); err != nil || !res.Valid {
			t.Errorf("verify: %+v %v", res, err)
		}
		if r, err := kw.RevokeM2MToken(ctx, tokens[0].ID, "done"); err != nil || !r.Revoked {
			t.Errorf("revoke token: %+v %v", r, err)
		}
		if res, _ := kw.Verify(ctx, client.VerifyRequest{Token: tokens[0].Token}); res.Valid {
			t.Error("a revoked token verifies")
		}
		check(t, "delete machine", kw.DeleteMachine(ctx, made[4].ID))
		if _, err := kw.GetMachine(ctx, made[4].ID); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("deleted machine: %v", err)
		}
	})
}

func TestSDKAPIKeysAndActorTokens(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e, kw := sdkEnv(t, s)
		ctx := context.Background()
		var keys []client.APIKey
		for i := range 3 {
			k, err := kw.CreateAPIKey(ctx, client.APIKeyParams{Name: fmt.Sprintf("key%d", i), Subject: sdkAPIKeySubject})
			check(t, "create API key", err)
			e.Remember(k.Secret)
			keys = append(keys, k)
		}
		listed, err := client.All(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.APIKey], error) {
			return kw.ListAPIKeys(ctx, client.APIKeyQuery{Subject: sdkAPIKeySubject, ListParams: client.ListParams{Limit: 2, Cursor: cursor}})
		})
		if check(t, "list API keys", err); len(listed) != 3 {
			t.Errorf("listed %d keys, want 3", len(listed))
		}
		noSecretIn(t, "the key list", listed, keys[0].Secret)
		got, err := kw.GetAPIKey(ctx, keys[0].ID)
		check(t, "get API key", err)
		noSecretIn(t, "a key read", got, keys[0].Secret)
		if secret, err := kw.APIKeySecret(ctx, keys[0].ID); err != nil || secret != keys[0].Secret {
			t.Errorf("secret read: %v", err)
		}
		desc := "weekly"
		if got, err := kw.UpdateAPIKey(ctx, keys[0].ID, client.APIKeyUpdate{Description: &desc}); err != nil || got.Description == nil || *got.Description != desc {
			t.Errorf("update API key: %+v %v", got, err)
		}
		if got, err := kw.RevokeAPIKey(ctx, keys[0].ID, "leaked"); err != nil || !got.Revoked {
			t.Errorf("revoke API key: %+v %v", got, err)
		}
		if _, err := kw.ListAPIKeys(ctx, client.APIKeyQuery{}); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("list without a subject: %v", err)
		}

		at, err := kw.CreateActorToken(ctx, client.ActorTokenParams{UserID: "user_1", Actor: json.RawMessage(`{"sub":"admin_1"}`)})
		check(t, "create actor token", err)
		e.Remember(at.Token)
		if at.Token == "" || at.Status != "pending" {
			t.Errorf("actor token: %+v", at)
		}
		page, err := kw.ListActorTokens(ctx, client.ActorTokenQuery{UserID: "user_1"})
		if check(t, "list actor tokens", err); len(page.Data) != 1 || page.NextCursor != "" {
			t.Errorf("actor tokens: %+v", page)
		}
		noSecretIn(t, "the actor token list", page, at.Token)
		if got, err := kw.GetActorToken(ctx, at.ID); err != nil || got.Token != "" {
			t.Errorf("get actor token: %+v %v", got, err)
		}
		if got, err := kw.RevokeActorToken(ctx, at.ID); err != nil || got.Status != "revoked" {
			t.Errorf("revoke actor token: %+v %v", got, err)
		}
		if _, err := kw.RevokeActorToken(ctx, at.ID); !errors.Is(err, client.ErrConflict) {
			t.Errorf("revoke twice: %v", err)
		}

		// A redeemed ticket's session is ended by id.
		at2, err := kw.CreateActorToken(ctx, client.ActorTokenParams{UserID: "user_1", Actor: json.RawMessage(`{"sub":"admin_1"}`)})
		check(t, "create actor token", err)
		e.Remember(at2.Token)
		redeemed, err := e.Auth.RedeemTicket(ctx, at2.Token)
		check(t, "redeem", err)
		e.Remember(redeemed.AccessToken)
		if got, err := kw.RevokeImpersonationSession(ctx, redeemed.Session.ID); err != nil || !got.Revoked || got.ActorTokenID != at2.ID {
			t.Errorf("revoke session: %+v %v", got, err)
		}
		if res, _ := kw.Verify(ctx, client.VerifyRequest{Token: redeemed.AccessToken}); res.Valid {
			t.Error("a revoked session's token verifies")
		}
	})
}

func TestSDKOrgTokens(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e, kw := sdkEnv(t, s)
		ctx := context.Background()
		org, err := kw.CreateOrganization(ctx, client.OrganizationParams{Slug: "acme", Name: "Acme"})
		check(t, "create org", err)
		var toks []client.OrgToken
		for i := range 3 {
			tok, err := kw.CreateOrgToken(ctx, org.ID, client.OrgTokenParams{Name: fmt.Sprintf("t%d", i), Privileges: []client.Privilege{{Scope: "org", Role: "read"}}})
			check(t, "create org token", err)
			e.Remember(tok.Key)
			toks = append(toks, tok)
		}
		listed, err := client.All(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.OrgToken], error) {
			return kw.ListOrgTokens(ctx, org.ID, client.OrgTokenQuery{ListParams: client.ListParams{Limit: 2, Cursor: cursor}})
		})
		if check(t, "list org tokens", err); len(listed) != 3 {
			t.Errorf("listed %d, want 3", len(listed))
		}
		noSecretIn(t, "the org token list", listed, toks[0].Key)
		if got, err := kw.UpdateOrgToken(ctx, org.ID, toks[0].ID, client.OrgTokenParams{Name: "renamed"}); err != nil || got.Name != "renamed" || got.Key != "" {
			t.Errorf("update org token: %+v %v", got, err)
		}
		if res, err := kw.Verify(ctx, client.VerifyRequest{Token: toks[1].Key}); err != nil || !res.Valid {
			t.Errorf("verify an org token: %+v %v", res, err)
		}
		check(t, "delete org token", kw.DeleteOrgToken(ctx, org.ID, toks[1].ID))
		if _, err := kw.GetOrgToken(ctx, org.ID, toks[1].ID); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("deleted org token: %v", err)
		}
	})
}

func TestSDKPATsAndBackupClients(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e, kw := sdkEnv(t, s)
		ctx := context.Background()
		var pats []client.PAT
		for i := range 3 {
			p, err := kw.CreatePAT(ctx, "user_alice", client.PATParams{Name: fmt.Sprintf("p%d", i)})
			check(t, "create PAT", err)
			e.Remember(p.Token)
			pats = append(pats, p)
		}
		listed, err := client.All(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.PAT], error) {
			return kw.ListPATs(ctx, "user_alice", client.PATQuery{ListParams: client.ListParams{Limit: 2, Cursor: cursor}})
		})
		if check(t, "list PATs", err); len(listed) != 3 {
			t.Errorf("listed %d, want 3", len(listed))
		}
		noSecretIn(t, "the PAT list", listed, pats[0].Token)
		// A PAT acts as its own user, and only that user.
		own := client.New(e.URL, pats[0].Token, client.WithRetries(0))
		if page, err := own.ListPATs(ctx, "user_alice", client.PATQuery{}); err != nil || len(page.Data) != 3 {
			t.Errorf("a PAT lists its user's: %+v %v", page, err)
		}
		if _, err := own.ListPATs(ctx, "user_bob", client.PATQuery{}); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("a PAT lists another user's: %v", err)
		}
		name := "renamed"
		if got, err := kw.UpdatePAT(ctx, "user_alice", pats[0].ID, client.PATUpdate{Name: &name}); err != nil || got.Name != name {
			t.Errorf("update PAT: %+v %v", got, err)
		}
		check(t, "revoke PAT", kw.RevokePAT(ctx, "user_alice", pats[1].ID))

		for i := range 3 {
			info := json.RawMessage(fmt.Sprintf(`{"client_id":"host%d.example.org","hostname":"host%d.example.org"}`, i, i))
			_, err := kw.CreateBackupClient(ctx, "user_alice", info)
			check(t, "create client", err)
		}
		clients, err := client.All(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.BackupClient], error) {
			return kw.ListBackupClients(ctx, "user_alice", client.ListParams{Limit: 2, Cursor: cursor})
		})
		if check(t, "list clients", err); len(clients) != 3 {
			t.Errorf("listed %d clients, want 3", len(clients))
		}
		if got, err := kw.GetBackupClient(ctx, "user_alice", "host0.example.org"); err != nil || got.UserID != "user_alice" {
			t.Errorf("get client: %+v %v", got, err)
		}
		if _, err := kw.GetBackupClient(ctx, "user_bob", "host0.example.org"); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("another user's client: %v", err)
		}
		check(t, "delete client", kw.DeleteBackupClient(ctx, "user_alice", "host0.example.org"))
		if _, err := kw.CreateBackupClient(ctx, "user_alice", json.RawMessage(`{"hostname":"x.example.org"}`)); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("a client without client_id: %v", err)
		}
	})
}

func TestSDKSitesSitegroupsAndPagedLists(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		e, kw := sdkEnv(t, s)
		ctx := context.Background()
		_, err := kw.CreateOrganization(ctx, client.OrganizationParams{Slug: "acme", Name: "Acme"})
		check(t, "create org", err)
		var sites []string
		for i := range 3 {
			site, err := kw.CreateSite(ctx, "acme", fmt.Sprintf("s%d", i))
			check(t, "create site", err)
			sites = append(sites, site.ID)
		}
		listed, err := client.All(ctx, func(ctx context.Context, cursor string) (client.CursorPage[client.Site], error) {
			return kw.ListSites(ctx, "acme", client.ListParams{Limit: 2, Cursor: cursor})
		})
		if check(t, "list sites", err); len(listed) != 3 {
			t.Errorf("listed %d sites, want 3", len(listed))
		}
		if got, err := kw.RenameSite(ctx, "acme", sites[0], "HQ"); err != nil || got.Name != "HQ" {
			t.Errorf("rename site: %+v %v", got, err)
		}
		g, err := kw.CreateSitegroup(ctx, "acme", client.SitegroupParams{Name: "west", SiteIDs: sites[:2]})
		if check(t, "create sitegroup", err); len(g.SiteIDs) != 2 {
			t.Errorf("sitegroup: %+v", g)
		}
		if got, err := kw.UpdateSitegroup(ctx, "acme", g.ID, client.SitegroupParams{SiteIDs: sites[2:]}); err != nil || len(got.SiteIDs) != 1 {
			t.Errorf("update sitegroup: %+v %v", got, err)
		}
		if page, err := kw.ListSitegroups(ctx, "acme", client.ListParams{}); err != nil || len(page.Data) != 1 || page.NextCursor != "" {
			t.Errorf("list sitegroups: %+v %v", page, err)
		}
		if got, err := kw.GetSitegroup(ctx, "acme", g.ID); err != nil || got.Name != "west" {
			t.Errorf("get sitegroup: %+v %v", got, err)
		}
		check(t, "delete sitegroup", kw.DeleteSitegroup(ctx, "acme", g.ID))
		check(t, "delete site", kw.DeleteSite(ctx, "acme", sites[1]))
		if _, err := kw.GetSite(ctx, "acme", sites[1]); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("deleted site: %v", err)
		}

		// The whole-list calls walk every page past the default of 20.
		for i := range 25 {
			_, err := kw.PutMember(ctx, "acme", mustWorkspace(t, kw, "acme", "eng"), fmt.Sprintf("user_%02d", i), "member")
			check(t, "put member", err)
		}
		if members, err := kw.ListMembers(ctx, "acme", "eng"); err != nil || len(members) != 25 {
			t.Errorf("list members: %d %v", len(members), err)
		}
		if page, err := kw.ListMembersPage(ctx, "acme", "eng", client.ListParams{}); err != nil || len(page.Data) != 20 || page.NextCursor == "" {
			t.Errorf("one page of members: %d %q %v", len(page.Data), page.NextCursor, err)
		}
		for i := range 21 {
			k, err := kw.CreateAdminKey(ctx, client.AdminKeyParams{Name: fmt.Sprintf("k%d", i), Permissions: []string{"verify"}})
			check(t, "create admin key", err)
			e.Remember(k.Secret)
		}
		if keys, err := kw.ListAdminKeys(ctx); err != nil || len(keys) != 22 {
			t.Errorf("list admin keys: %d %v", len(keys), err)
		}
		first, err := kw.ListOrganizations(ctx, client.Page{Limit: 1})
		check(t, "list orgs", err)
		if first.NextCursor != "" || first.TotalCount != 1 {
			t.Errorf("one org, one page: %+v", first)
		}
		ev, err := kw.AuditEvents(ctx, client.AuditQuery{Action: "workspace.member.put", Limit: 10})
		if check(t, "audit page", err); ev.NextCursor == "" {
			t.Fatalf("audit: no next cursor after 10 of %d", ev.TotalCount)
		}
		rest, err := kw.AuditEvents(ctx, client.AuditQuery{Action: "workspace.member.put", Limit: 100, Cursor: ev.NextCursor})
		if check(t, "audit next page", err); len(ev.Events)+len(rest.Events) != ev.TotalCount || rest.NextCursor != "" {
			t.Errorf("audit pages: %d + %d of %d", len(ev.Events), len(rest.Events), ev.TotalCount)
		}
	})
}

// mustWorkspace returns slug, creating the workspace on first use.
func mustWorkspace(t *testing.T, kw *client.Client, org, slug string) string {
	t.Helper()
	if _, err := kw.GetWorkspace(context.Background(), org, slug); err == nil {
		return slug
	}
	_, err := kw.CreateWorkspace(context.Background(), org, client.WorkspaceParams{Slug: slug, Name: slug})
	check(t, "create workspace", err)
	return slug
}
