package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

var t0 = testkit.ClockStart

func at(seconds int) time.Time { return t0.Add(time.Duration(seconds) * time.Second) }

// update runs fn in a write transaction and fails the test on error.
func update(t *testing.T, s *sqlstore.Store, fn func(authority.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// view runs fn in a read transaction and returns its value, failing the
// test on error.
func view[T any](t *testing.T, s *sqlstore.Store, fn func(authority.Tx) (T, error)) T {
	t.Helper()
	var v T
	err := s.View(context.Background(), func(tx authority.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return v
}

func wantCode(t *testing.T, err error, want credential.Code) {
	t.Helper()
	if got := credential.CodeOf(err); err == nil || got != want {
		t.Fatalf("error = %v (code %q), want code %q", err, got, want)
	}
}

func newInstance(t *testing.T, s *sqlstore.Store, name string) credential.Instance {
	t.Helper()
	in := credential.Instance{ID: credential.NewID(credential.PrefixInstance, t0), Name: name, CreatedAt: t0}
	update(t, s, func(tx authority.Tx) error { return tx.CreateInstance(context.Background(), in) })
	return in
}

func newMachine(t *testing.T, s *sqlstore.Store, instanceID, name string, created time.Time) credential.Machine {
	t.Helper()
	m := credential.Machine{
		ID:              credential.NewID(credential.PrefixMachine, created),
		InstanceID:      instanceID,
		Name:            name,
		DefaultTokenTTL: 3600,
		CreatedAt:       created,
		UpdatedAt:       created,
	}
	update(t, s, func(tx authority.Tx) error { return tx.InsertMachine(context.Background(), m) })
	return m
}

func newScope(t *testing.T, s *sqlstore.Store, from, to credential.Machine, created time.Time) {
	t.Helper()
	update(t, s, func(tx authority.Tx) error {
		return tx.InsertMachineScope(context.Background(), credential.MachineScope{
			InstanceID: from.InstanceID, FromMachineID: from.ID, ToMachineID: to.ID, CreatedAt: created,
		})
	})
}

// machineKey returns an unsaved machine secret key credential with a fresh
// digest.
func machineKey(instanceID, subject string) credential.Credential {
	secret := credential.MustGenerate(credential.KindMachineKey)
	var d credential.Digest
	rand.Read(d[:])
	return credential.Credential{
		ID:            credential.NewID(credential.PrefixMachineKey, t0),
		InstanceID:    instanceID,
		Kind:          credential.KindMachineKey,
		Digest:        d,
		DisplayPrefix: secret.DisplayPrefix(),
		Subject:       subject,
		CreatedAt:     t0,
		UpdatedAt:     t0,
		Attrs:         json.RawMessage(`{}`),
	}
}

func insertCredential(t *testing.T, s *sqlstore.Store, c credential.Credential) {
	t.Helper()
	update(t, s, func(tx authority.Tx) error { return tx.InsertCredential(context.Background(), c) })
}

func ids(ms []credential.Machine) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestMigrationDirectoriesMatch(t *testing.T) {
	names := func(dir string) []string {
		t.Helper()
		entries, err := os.ReadDir(filepath.Join("migrations", dir))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	sqlite, postgres := names("sqlite"), names("postgres")
	if len(sqlite) == 0 {
		t.Fatal("no sqlite migrations")
	}
	if diff := cmp.Diff(sqlite, postgres); diff != "" {
		t.Errorf("migration files differ between dialects (-sqlite +postgres):\n%s", diff)
	}
}

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "keyward.db")
	s, err := sqlstore.Open(ctx, "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Dialect(); got != "sqlite" {
		t.Errorf("Dialect() = %q, want sqlite", got)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	in := credential.Instance{ID: "ins_1", Name: "persisted", CreatedAt: t0}
	if err := s.Update(ctx, func(tx authority.Tx) error { return tx.CreateInstance(ctx, in) }); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		info, err := os.Stat(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(path+suffix), mode)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening applies no migration twice and finds the data.
	s, err = sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	got := view(t, s, func(tx authority.Tx) (credential.Instance, error) { return tx.GetInstance(ctx, in.ID) })
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("instance after reopen (-want +got):\n%s", diff)
	}
}

func TestOpenDispatchesPostgresURLs(t *testing.T) {
	t.Chdir(t.TempDir()) // were a URL taken for a SQLite path, the file lands here
	for _, scheme := range []string{"postgres", "postgresql"} {
		t.Run(scheme, func(t *testing.T) {
			s, err := sqlstore.Open(context.Background(), scheme+"://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
			if err == nil {
				s.Close()
				t.Fatalf("Open of an unreachable %s:// URL succeeded as %s", scheme, s.Dialect())
			}
		})
	}
}

func TestDialectAndPing(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		if got, want := s.Dialect(), path.Base(t.Name()); got != want {
			t.Errorf("Dialect() = %q, want %q", got, want)
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

func TestInstances(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		b := credential.Instance{ID: "ins_b", Name: "second", CreatedAt: at(1)}
		a := credential.Instance{ID: "ins_a", Name: "first", CreatedAt: at(0)}
		update(t, s, func(tx authority.Tx) error {
			return errors.Join(tx.CreateInstance(ctx, b), tx.CreateInstance(ctx, a))
		})

		got := view(t, s, func(tx authority.Tx) ([]credential.Instance, error) { return tx.ListInstances(ctx) })
		if diff := cmp.Diff([]credential.Instance{a, b}, got); diff != "" {
			t.Errorf("ListInstances, oldest first (-want +got):\n%s", diff)
		}
		wantCode(t, s.Update(ctx, func(tx authority.Tx) error { return tx.CreateInstance(ctx, a) }), credential.CodeConflict)
		wantCode(t, s.View(ctx, func(tx authority.Tx) error {
			_, err := tx.GetInstance(ctx, "ins_missing")
			return err
		}), credential.CodeNotFound)
	})
}

func TestCredentialRoundTrip(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")

		everyField := machineKey(in.ID, "mch_subject")
		everyField.ExpiresAt = at(3600)
		everyField.RevokedAt = at(60)
		everyField.RevocationReason = "rotated"
		everyField.LastUsedAt = at(30)
		everyField.UpdatedAt = at(60)
		everyField.Sealed = []byte{0, 1, 2, 0xff}
		everyField.Attrs = json.RawMessage(`{"scopes":["read","write"],"n":1}`)

		unset := machineKey(in.ID, "")
		unset.Kind, unset.UpdatedAt, unset.Attrs = credential.KindAdminKey, at(1), nil

		tests := []struct {
			name string
			in   credential.Credential
			want credential.Credential
		}{
			{"every field comes back", everyField, everyField},
			{"zero times, nil sealed and nil attrs come back unset", unset, func() credential.Credential {
				c := unset
				c.Attrs = json.RawMessage(`{}`)
				return c
			}()},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				insertCredential(t, s, tc.in)
				byID := view(t, s, func(tx authority.Tx) (credential.Credential, error) {
					return tx.GetCredential(ctx, in.ID, tc.in.ID)
				})
				if diff := cmp.Diff(tc.want, byID); diff != "" {
					t.Errorf("GetCredential (-want +got):\n%s", diff)
				}
				byDigest := view(t, s, func(tx authority.Tx) (credential.Credential, error) {
					return tx.CredentialByDigest(ctx, tc.in.Digest)
				})
				if diff := cmp.Diff(tc.want, byDigest); diff != "" {
					t.Errorf("CredentialByDigest (-want +got):\n%s", diff)
				}
			})
		}

		wantCode(t, s.View(ctx, func(tx authority.Tx) error {
			_, err := tx.CredentialByDigest(ctx, credential.Digest{1, 2, 3})
			return err
		}), credential.CodeNotFound)
	})
}

func TestListCredentials(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		m1key := machineKey(in.ID, "mch_1")
		m2key := machineKey(in.ID, "mch_2")
		m2key.CreatedAt = at(1)
		admin := machineKey(in.ID, "")
		admin.Kind, admin.CreatedAt = credential.KindAdminKey, at(2)
		for _, c := range []credential.Credential{admin, m2key, m1key, machineKey(other.ID, "mch_1")} {
			insertCredential(t, s, c)
		}

		tests := []struct {
			name   string
			filter authority.CredentialFilter
			want   []credential.Credential
		}{
			{"whole instance oldest first", authority.CredentialFilter{InstanceID: in.ID}, []credential.Credential{m1key, m2key, admin}},
			{"one kind", authority.CredentialFilter{InstanceID: in.ID, Kind: credential.KindMachineKey}, []credential.Credential{m1key, m2key}},
			{"one kind and subject", authority.CredentialFilter{InstanceID: in.ID, Kind: credential.KindMachineKey, Subject: "mch_2"}, []credential.Credential{m2key}},
			{"nothing matches", authority.CredentialFilter{InstanceID: in.ID, Kind: credential.KindPAT}, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got := view(t, s, func(tx authority.Tx) ([]credential.Credential, error) {
					return tx.ListCredentials(ctx, tc.filter)
				})
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("ListCredentials (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestDigestUniqueness(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := newInstance(t, s, "a")
		b := newInstance(t, s, "b")
		original := machineKey(a.ID, "mch_1")
		insertCredential(t, s, original)

		// The same digest in another instance, after a write that must be
		// rolled back with it.
		innocent := machineKey(b.ID, "mch_2")
		duplicate := machineKey(b.ID, "mch_3")
		duplicate.Digest = original.Digest
		err := s.Update(ctx, func(tx authority.Tx) error {
			if err := tx.InsertCredential(ctx, innocent); err != nil {
				return err
			}
			return tx.InsertCredential(ctx, duplicate)
		})
		wantCode(t, err, credential.CodeConflict)

		got := view(t, s, func(tx authority.Tx) ([]credential.Credential, error) {
			return tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: b.ID})
		})
		if len(got) != 0 {
			t.Errorf("instance b holds %d credentials after the conflict, want 0", len(got))
		}
		byDigest := view(t, s, func(tx authority.Tx) (credential.Credential, error) {
			return tx.CredentialByDigest(ctx, original.Digest)
		})
		if byDigest.ID != original.ID {
			t.Errorf("digest now finds %s, want the original %s", byDigest.ID, original.ID)
		}
	})
}

// snapshot reads everything instance in holds, to show it unchanged.
type snapshot struct {
	Instance      credential.Instance
	Credentials   []credential.Credential
	Machines      []credential.Machine
	Scoped        map[string][]credential.Machine
	SigningKeys   []credential.SigningKey
	Organizations []credential.Organization
	Sites         map[string][]credential.Site      // by organization id
	Sitegroups    map[string][]credential.Sitegroup // by organization id
	Workspaces    map[string][]credential.Workspace // by organization id
	Members       map[string][]credential.Member    // by workspace id
}

func takeSnapshot(t *testing.T, s *sqlstore.Store, instanceID string) snapshot {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (snapshot, error) {
		ctx := context.Background()
		var snap snapshot
		var err error
		if snap.Instance, err = tx.GetInstance(ctx, instanceID); err != nil {
			return snap, err
		}
		if snap.Credentials, err = tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: instanceID}); err != nil {
			return snap, err
		}
		if snap.Machines, _, err = tx.ListMachines(ctx, authority.MachineFilter{InstanceID: instanceID}); err != nil {
			return snap, err
		}
		if snap.Scoped, err = tx.ScopedMachines(ctx, instanceID, ids(snap.Machines)); err != nil {
			return snap, err
		}
		if snap.SigningKeys, err = tx.ListSigningKeys(ctx, instanceID); err != nil {
			return snap, err
		}
		if snap.Organizations, _, err = tx.ListOrganizations(ctx, instanceID, 0, 0); err != nil {
			return snap, err
		}
		snap.Sites = make(map[string][]credential.Site)
		snap.Sitegroups = make(map[string][]credential.Sitegroup)
		snap.Workspaces = make(map[string][]credential.Workspace)
		snap.Members = make(map[string][]credential.Member)
		for _, o := range snap.Organizations {
			if snap.Sites[o.ID], err = tx.ListSites(ctx, instanceID, o.ID); err != nil {
				return snap, err
			}
			if snap.Sitegroups[o.ID], err = tx.ListSitegroups(ctx, instanceID, o.ID); err != nil {
				return snap, err
			}
			if snap.Workspaces[o.ID], err = tx.ListWorkspaces(ctx, instanceID, o.ID); err != nil {
				return snap, err
			}
			for _, w := range snap.Workspaces[o.ID] {
				if snap.Members[w.ID], err = tx.ListMembers(ctx, instanceID, w.ID); err != nil {
					return snap, err
				}
			}
		}
		return snap, nil
	})
}

func TestTenantIsolation(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := newInstance(t, s, "a")
		b := newInstance(t, s, "b")
		m1 := newMachine(t, s, a.ID, "one", at(0))
		m2 := newMachine(t, s, a.ID, "two", at(1))
		mb := newMachine(t, s, b.ID, "b's own", at(3))
		newScope(t, s, m1, m2, at(2))
		key := machineKey(a.ID, m1.ID)
		key.LastUsedAt = at(4)
		insertCredential(t, s, key)
		sk := signingKey(a.ID, "kid_a", at(5))
		sk.TokensExpireAt = at(6)
		insertSigningKey(t, s, sk)
		org := newOrg(t, s, a.ID, "acme", at(7))
		sibling := newOrg(t, s, a.ID, "sibling", at(7)) // another organization of the same instance
		orgB := newOrg(t, s, b.ID, "b-own", at(7))
		site := newSite(t, s, org, "hq", at(8))
		siblingSite := newSite(t, s, sibling, "theirs", at(8))
		group := newSitegroup(t, s, org, "all", at(8), site.ID)
		ws := newWorkspace(t, s, org, "platform", at(9))
		wsB := newWorkspace(t, s, orgB, "b-platform", at(9))
		member := newMember(t, s, ws, "usr_1", credential.MemberOwner, at(9))
		boundPAT := pat(a.ID, "pat_1", "usr_1", ws.ID, at(9))
		insertCredential(t, s, boundPAT)
		before := takeSnapshot(t, s, a.ID)
		// The moved* helpers return a row as written through another instance
		// or organization.
		movedOrg := func(instanceID string) credential.Organization {
			o := org
			o.InstanceID, o.Name, o.Slug = instanceID, "stolen", "stolen"
			return o
		}
		movedSite := func(instanceID, orgID string) credential.Site {
			st := site
			st.InstanceID, st.OrgID, st.Name = instanceID, orgID, "stolen"
			return st
		}
		movedGroup := func(instanceID, orgID string, siteIDs ...string) credential.Sitegroup {
			g := group
			g.InstanceID, g.OrgID, g.Name, g.SiteIDs = instanceID, orgID, "stolen", siteIDs
			return g
		}
		movedWorkspace := func(instanceID, orgID string) credential.Workspace {
			w := ws
			w.InstanceID, w.OrgID, w.Slug, w.Name = instanceID, orgID, "stolen", "stolen"
			return w
		}
		movedMember := func(instanceID string) credential.Member {
			m := member
			m.InstanceID, m.Role, m.UpdatedAt = instanceID, credential.MemberMember, at(99)
			return m
		}

		notFound := []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"get credential", func(tx authority.Tx) error { _, err := tx.GetCredential(ctx, b.ID, key.ID); return err }},
			{"revoke credential", func(tx authority.Tx) error { return tx.RevokeCredential(ctx, b.ID, key.ID, at(9), "x") }},
			{"set credential expiry", func(tx authority.Tx) error { return tx.SetCredentialExpiry(ctx, b.ID, key.ID, at(9), at(9)) }},
			{"get machine", func(tx authority.Tx) error { _, err := tx.GetMachine(ctx, b.ID, m1.ID); return err }},
			{"update machine", func(tx authority.Tx) error {
				m := m1
				m.InstanceID, m.Name = b.ID, "stolen"
				return tx.UpdateMachine(ctx, m)
			}},
			{"delete machine", func(tx authority.Tx) error { return tx.DeleteMachine(ctx, b.ID, m1.ID) }},
			{"get signing key", func(tx authority.Tx) error { _, err := tx.GetSigningKey(ctx, b.ID, sk.ID); return err }},
			{"extend signing key", func(tx authority.Tx) error { return tx.ExtendSigningKey(ctx, b.ID, sk.ID, at(99)) }},
			{"get scope", func(tx authority.Tx) error { _, err := tx.GetMachineScope(ctx, b.ID, m1.ID, m2.ID); return err }},
			{"delete scope", func(tx authority.Tx) error { return tx.DeleteMachineScope(ctx, b.ID, m1.ID, m2.ID) }},
			{"insert scope between another instance's machines", func(tx authority.Tx) error {
				return tx.InsertMachineScope(ctx, credential.MachineScope{InstanceID: b.ID, FromMachineID: m2.ID, ToMachineID: m1.ID, CreatedAt: at(9)})
			}},
			{"insert scope from another instance's machine", func(tx authority.Tx) error {
				return tx.InsertMachineScope(ctx, credential.MachineScope{InstanceID: b.ID, FromMachineID: m1.ID, ToMachineID: mb.ID, CreatedAt: at(9)})
			}},
			{"insert scope to another instance's machine", func(tx authority.Tx) error {
				return tx.InsertMachineScope(ctx, credential.MachineScope{InstanceID: a.ID, FromMachineID: m1.ID, ToMachineID: mb.ID, CreatedAt: at(9)})
			}},
			{"delete credential", func(tx authority.Tx) error { return tx.DeleteCredential(ctx, b.ID, key.ID) }},
			{"update credential attrs", func(tx authority.Tx) error {
				return tx.UpdateCredentialAttrs(ctx, b.ID, key.ID, json.RawMessage(`{"stolen":true}`), at(9))
			}},
			{"get organization", func(tx authority.Tx) error { _, err := tx.GetOrganization(ctx, b.ID, org.ID); return err }},
			{"get organization by slug", func(tx authority.Tx) error { _, err := tx.GetOrganizationBySlug(ctx, b.ID, org.Slug); return err }},
			{"update organization", func(tx authority.Tx) error { return tx.UpdateOrganization(ctx, movedOrg(b.ID)) }},
			{"delete organization", func(tx authority.Tx) error { return tx.DeleteOrganization(ctx, b.ID, org.ID) }},
			{"insert site into another instance's organization", func(tx authority.Tx) error {
				st := movedSite(b.ID, org.ID)
				st.ID = newUUID()
				return tx.InsertSite(ctx, st)
			}},
			{"get site", func(tx authority.Tx) error { _, err := tx.GetSite(ctx, b.ID, org.ID, site.ID); return err }},
			{"get site through another organization", func(tx authority.Tx) error { _, err := tx.GetSite(ctx, a.ID, sibling.ID, site.ID); return err }},
			{"update site", func(tx authority.Tx) error { return tx.UpdateSite(ctx, movedSite(b.ID, org.ID)) }},
			{"update site through another organization", func(tx authority.Tx) error { return tx.UpdateSite(ctx, movedSite(a.ID, sibling.ID)) }},
			{"delete site", func(tx authority.Tx) error { return tx.DeleteSite(ctx, b.ID, org.ID, site.ID) }},
			{"delete site through another organization", func(tx authority.Tx) error { return tx.DeleteSite(ctx, a.ID, sibling.ID, site.ID) }},
			{"insert sitegroup into another instance's organization", func(tx authority.Tx) error {
				g := movedGroup(b.ID, org.ID)
				g.ID = newUUID()
				return tx.InsertSitegroup(ctx, g)
			}},
			{"insert sitegroup with another organization's site", func(tx authority.Tx) error {
				g := movedGroup(a.ID, sibling.ID, site.ID)
				g.ID = newUUID()
				return tx.InsertSitegroup(ctx, g)
			}},
			{"insert sitegroup with another instance's site", func(tx authority.Tx) error {
				g := movedGroup(b.ID, orgB.ID, site.ID)
				g.ID = newUUID()
				return tx.InsertSitegroup(ctx, g)
			}},
			{"get sitegroup", func(tx authority.Tx) error { _, err := tx.GetSitegroup(ctx, b.ID, org.ID, group.ID); return err }},
			{"get sitegroup through another organization", func(tx authority.Tx) error {
				_, err := tx.GetSitegroup(ctx, a.ID, sibling.ID, group.ID)
				return err
			}},
			{"update sitegroup", func(tx authority.Tx) error { return tx.UpdateSitegroup(ctx, movedGroup(b.ID, org.ID)) }},
			{"update sitegroup through another organization", func(tx authority.Tx) error {
				return tx.UpdateSitegroup(ctx, movedGroup(a.ID, sibling.ID, siblingSite.ID))
			}},
			{"update sitegroup to another organization's site", func(tx authority.Tx) error {
				return tx.UpdateSitegroup(ctx, movedGroup(a.ID, org.ID, site.ID, siblingSite.ID))
			}},
			{"delete sitegroup", func(tx authority.Tx) error { return tx.DeleteSitegroup(ctx, b.ID, org.ID, group.ID) }},
			{"delete sitegroup through another organization", func(tx authority.Tx) error { return tx.DeleteSitegroup(ctx, a.ID, sibling.ID, group.ID) }},
			{"insert workspace into another instance's organization", func(tx authority.Tx) error {
				w := movedWorkspace(b.ID, org.ID)
				w.ID = newUUID()
				return tx.InsertWorkspace(ctx, w)
			}},
			{"get workspace", func(tx authority.Tx) error { _, err := tx.GetWorkspace(ctx, b.ID, org.ID, ws.ID); return err }},
			{"get workspace through another organization", func(tx authority.Tx) error { _, err := tx.GetWorkspace(ctx, a.ID, sibling.ID, ws.ID); return err }},
			{"get workspace by slug", func(tx authority.Tx) error { _, err := tx.GetWorkspaceBySlug(ctx, b.ID, org.ID, ws.Slug); return err }},
			{"get workspace by slug through another organization", func(tx authority.Tx) error {
				_, err := tx.GetWorkspaceBySlug(ctx, a.ID, sibling.ID, ws.Slug)
				return err
			}},
			{"find workspace", func(tx authority.Tx) error { _, err := tx.FindWorkspace(ctx, b.ID, ws.ID); return err }},
			{"find another instance's workspace", func(tx authority.Tx) error { _, err := tx.FindWorkspace(ctx, a.ID, wsB.ID); return err }},
			{"update workspace", func(tx authority.Tx) error { return tx.UpdateWorkspace(ctx, movedWorkspace(b.ID, org.ID)) }},
			{"update workspace through another organization", func(tx authority.Tx) error { return tx.UpdateWorkspace(ctx, movedWorkspace(a.ID, sibling.ID)) }},
			{"delete workspace", func(tx authority.Tx) error { return tx.DeleteWorkspace(ctx, b.ID, org.ID, ws.ID) }},
			{"delete workspace through another organization", func(tx authority.Tx) error { return tx.DeleteWorkspace(ctx, a.ID, sibling.ID, ws.ID) }},
			{"put member into another instance's workspace", func(tx authority.Tx) error { return tx.PutMember(ctx, movedMember(b.ID)) }},
			{"get member", func(tx authority.Tx) error { _, err := tx.GetMember(ctx, b.ID, ws.ID, member.UserID); return err }},
			{"delete member", func(tx authority.Tx) error { return tx.DeleteMember(ctx, b.ID, ws.ID, member.UserID) }},
		}
		for _, tc := range notFound {
			t.Run(tc.name+" is not found", func(t *testing.T) {
				wantCode(t, s.Update(ctx, tc.op), credential.CodeNotFound)
			})
		}

		t.Run("reads and deletes of another instance see nothing", func(t *testing.T) {
			update(t, s, func(tx authority.Tx) error {
				deleted, err := tx.DeleteCredentials(ctx, b.ID, credential.KindMachineKey, m1.ID)
				if err != nil || deleted != 0 {
					t.Errorf("DeleteCredentials = %d, %v; want 0, nil", deleted, err)
				}
				byID, err := tx.MachinesByID(ctx, b.ID, []string{m1.ID, m2.ID})
				if err != nil || len(byID) != 0 {
					t.Errorf("MachinesByID = %v, %v; want none", ids(byID), err)
				}
				scoped, err := tx.ScopedMachines(ctx, b.ID, []string{m1.ID})
				if err != nil || len(scoped) != 0 {
					t.Errorf("ScopedMachines = %v, %v; want none", scoped, err)
				}
				count, err := tx.CountMachineScopes(ctx, b.ID, m1.ID)
				if err != nil || count != 0 {
					t.Errorf("CountMachineScopes = %d, %v; want 0", count, err)
				}
				listed, total, err := tx.ListMachines(ctx, authority.MachineFilter{InstanceID: b.ID, Query: m1.ID})
				if err != nil || len(listed) != 0 || total != 0 {
					t.Errorf("ListMachines = %v, %d, %v; want none", ids(listed), total, err)
				}
				revoked, err := tx.RevokeCredentialsOf(ctx, b.ID, credential.KindMachineKey, m1.ID, at(9), "x")
				if err != nil || revoked != 0 {
					t.Errorf("RevokeCredentialsOf = %d, %v; want 0, nil", revoked, err)
				}
				page, pageTotal, err := tx.PageCredentials(ctx, authority.CredentialQuery{InstanceID: b.ID, Kind: credential.KindMachineKey, Subject: m1.ID})
				if err != nil || len(page) != 0 || pageTotal != 0 {
					t.Errorf("PageCredentials = %v, %d, %v; want none", credentialIDs(page), pageTotal, err)
				}
				if err := tx.TouchCredentials(ctx, []authority.Usage{{InstanceID: b.ID, CredentialID: key.ID, At: at(99)}}); err != nil {
					t.Errorf("TouchCredentials: %v", err)
				}
				if err := tx.RetireSigningKeys(ctx, b.ID, at(9)); err != nil {
					t.Errorf("RetireSigningKeys: %v", err)
				}
				keys, err := tx.ListSigningKeys(ctx, b.ID)
				if err != nil || len(keys) != 0 {
					t.Errorf("ListSigningKeys = %d keys, %v; want none", len(keys), err)
				}
				orgs, orgTotal, err := tx.ListOrganizations(ctx, b.ID, 0, 0)
				if err != nil || len(orgs) != 1 || orgs[0].ID != orgB.ID || orgTotal != 1 {
					t.Errorf("ListOrganizations = %v, %d, %v; want only b's own", orgs, orgTotal, err)
				}
				sites, err := tx.ListSites(ctx, b.ID, org.ID)
				if err != nil || len(sites) != 0 {
					t.Errorf("ListSites = %v, %v; want none", sites, err)
				}
				groups, err := tx.ListSitegroups(ctx, b.ID, org.ID)
				if err != nil || len(groups) != 0 {
					t.Errorf("ListSitegroups = %v, %v; want none", groups, err)
				}
				siblingGroups, err := tx.ListSitegroups(ctx, a.ID, sibling.ID)
				if err != nil || len(siblingGroups) != 0 {
					t.Errorf("ListSitegroups of the sibling organization = %v, %v; want none", siblingGroups, err)
				}
				workspaces, err := tx.ListWorkspaces(ctx, b.ID, org.ID)
				if err != nil || len(workspaces) != 0 {
					t.Errorf("ListWorkspaces = %v, %v; want none", workspaces, err)
				}
				siblingWorkspaces, err := tx.ListWorkspaces(ctx, a.ID, sibling.ID)
				if err != nil || len(siblingWorkspaces) != 0 {
					t.Errorf("ListWorkspaces of the sibling organization = %v, %v; want none", siblingWorkspaces, err)
				}
				members, err := tx.ListMembers(ctx, b.ID, ws.ID)
				if err != nil || len(members) != 0 {
					t.Errorf("ListMembers = %v, %v; want none", members, err)
				}
				for _, q := range []authority.CredentialQuery{
					{InstanceID: b.ID, Kind: credential.KindMachineKey, Subject: m1.ID},
					{InstanceID: b.ID, Kind: credential.KindPAT, ParentID: ws.ID},
					{InstanceID: b.ID, Kind: credential.KindPAT},
				} {
					if n, err := tx.RevokeMatching(ctx, q, at(9), "x"); err != nil || n != 0 {
						t.Errorf("RevokeMatching(%+v) = %d, %v; want 0, nil", q, n, err)
					}
				}
				parentPage, parentTotal, err := tx.PageCredentials(ctx, authority.CredentialQuery{InstanceID: b.ID, Kind: credential.KindPAT, ParentID: ws.ID})
				if err != nil || len(parentPage) != 0 || parentTotal != 0 {
					t.Errorf("PageCredentials by parent = %v, %d, %v; want none", credentialIDs(parentPage), parentTotal, err)
				}
				return nil
			})
		})

		if diff := cmp.Diff(before, takeSnapshot(t, s, a.ID)); diff != "" {
			t.Errorf("instance a changed (-before +after):\n%s", diff)
		}
	})
}

func TestUpdate(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")

		writeEverything := func(tx authority.Tx) error {
			m := credential.Machine{ID: "mch_rolled_back", InstanceID: in.ID, Name: "x", CreatedAt: t0, UpdatedAt: t0}
			return errors.Join(
				tx.CreateInstance(ctx, credential.Instance{ID: "ins_rolled_back", Name: "x", CreatedAt: t0}),
				tx.InsertMachine(ctx, m),
				tx.InsertCredential(ctx, machineKey(in.ID, m.ID)),
				insertAuditEvent(ctx, tx, credential.AuditEvent{ID: "aud_rolled_back", InstanceID: in.ID, At: t0}),
			)
		}
		assertNothingWritten := func(t *testing.T) {
			t.Helper()
			err := s.View(ctx, func(tx authority.Tx) error {
				instances, err := tx.ListInstances(ctx)
				if len(instances) != 1 {
					t.Errorf("%d instances, want only the seeded one", len(instances))
				}
				machines, total, err2 := tx.ListMachines(ctx, authority.MachineFilter{InstanceID: in.ID})
				creds, err3 := tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: in.ID})
				events, eventTotal, err4 := tx.ListAuditEvents(ctx, authority.AuditFilter{InstanceID: in.ID})
				if len(machines)+total+len(creds)+len(events)+eventTotal != 0 {
					t.Errorf("rolled-back rows remain: %d machines, %d credentials, %d events", total, len(creds), eventTotal)
				}
				return errors.Join(err, err2, err3, err4)
			})
			if err != nil {
				t.Fatal(err)
			}
		}

		t.Run("an error from fn rolls everything back and comes back unchanged", func(t *testing.T) {
			domainErr := credential.Errorf(credential.CodeForbidden, "no")
			err := s.Update(ctx, func(tx authority.Tx) error {
				if err := writeEverything(tx); err != nil {
					t.Fatalf("writes inside the transaction: %v", err)
				}
				return domainErr
			})
			if err != domainErr {
				t.Errorf("Update returned %v, want fn's error itself", err)
			}
			assertNothingWritten(t)
		})

		t.Run("a panic in fn rolls back and frees the writer", func(t *testing.T) {
			func() {
				defer func() { _ = recover() }()
				_ = s.Update(ctx, func(tx authority.Tx) error {
					_ = writeEverything(tx)
					panic("boom")
				})
			}()
			assertNothingWritten(t)
			update(t, s, func(authority.Tx) error { return nil })
		})

		t.Run("writes in View fail and leave nothing", func(t *testing.T) {
			err := s.View(ctx, writeEverything)
			if err == nil {
				t.Fatal("View allowed writes")
			}
			assertNothingWritten(t)
		})

		t.Run("concurrent updates all commit", func(t *testing.T) {
			const writers = 20
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for i := range writers {
				wg.Go(func() {
					errs <- s.Update(ctx, func(tx authority.Tx) error {
						return insertAuditEvent(ctx, tx, credential.AuditEvent{ID: fmt.Sprintf("aud_%02d", i), InstanceID: "ins_concurrent", At: at(i)})
					})
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			_, total := listAudit(t, s, authority.AuditFilter{InstanceID: "ins_concurrent"})
			if total != writers {
				t.Errorf("%d events committed, want %d", total, writers)
			}
		})
	})
}

func TestMachineRoundTripAndUpdate(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		m := newMachine(t, s, in.ID, "worker", at(0))

		got := view(t, s, func(tx authority.Tx) (credential.Machine, error) { return tx.GetMachine(ctx, in.ID, m.ID) })
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("GetMachine (-want +got):\n%s", diff)
		}
		wantCode(t, s.Update(ctx, func(tx authority.Tx) error { return tx.InsertMachine(ctx, m) }), credential.CodeConflict)
		orphan := m
		orphan.ID, orphan.InstanceID = "mch_orphan", "ins_missing"
		wantCode(t, s.Update(ctx, func(tx authority.Tx) error { return tx.InsertMachine(ctx, orphan) }), credential.CodeNotFound)

		changed := m
		changed.Name, changed.DefaultTokenTTL, changed.UpdatedAt = "renamed", 60, at(5)
		changed.CreatedAt = at(99) // not written by UpdateMachine
		update(t, s, func(tx authority.Tx) error { return tx.UpdateMachine(ctx, changed) })
		want := changed
		want.CreatedAt = m.CreatedAt
		got = view(t, s, func(tx authority.Tx) (credential.Machine, error) { return tx.GetMachine(ctx, in.ID, m.ID) })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after UpdateMachine (-want +got):\n%s", diff)
		}

		missing := m
		missing.ID = "mch_missing"
		wantCode(t, s.Update(ctx, func(tx authority.Tx) error { return tx.UpdateMachine(ctx, missing) }), credential.CodeNotFound)
	})
}

func TestMachinesByID(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		m1 := newMachine(t, s, in.ID, "one", at(0))
		m2 := newMachine(t, s, in.ID, "two", at(1))
		newMachine(t, s, in.ID, "three", at(2))

		got := view(t, s, func(tx authority.Tx) ([]credential.Machine, error) {
			return tx.MachinesByID(ctx, in.ID, []string{m2.ID, "mch_missing", m1.ID})
		})
		if diff := cmp.Diff([]credential.Machine{m1, m2}, got); diff != "" {
			t.Errorf("MachinesByID returns the existing ones by id (-want +got):\n%s", diff)
		}
		if got := view(t, s, func(tx authority.Tx) ([]credential.Machine, error) { return tx.MachinesByID(ctx, in.ID, nil) }); len(got) != 0 {
			t.Errorf("MachinesByID(nil) = %v, want none", ids(got))
		}
	})
}

func TestListMachines(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		alpha := newMachine(t, s, in.ID, "Alpha", at(0))
		alphaBeta := newMachine(t, s, in.ID, "alpha beta", at(1))
		alpha2 := newMachine(t, s, in.ID, "alpha 2", at(2))
		underscore := newMachine(t, s, in.ID, "Gamma_1", at(3))
		percent := newMachine(t, s, in.ID, "Gamma%2", at(3)) // same time: id breaks the tie
		lookalike := newMachine(t, s, in.ID, "gammaX1", at(4))
		backslash := newMachine(t, s, in.ID, `back\slash`, at(5))
		twinA := newMachine(t, s, in.ID, "twin", at(6))
		twinB := newMachine(t, s, in.ID, "twin", at(7))
		newMachine(t, s, newInstance(t, s, "other").ID, "Alpha", at(0))

		all := []credential.Machine{alpha, alphaBeta, alpha2, underscore, percent, lookalike, backslash, twinA, twinB}
		byCreated := slices.Clone(all)
		slices.SortStableFunc(byCreated, func(x, y credential.Machine) int {
			if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(x.ID, y.ID)
		})
		byName := slices.Clone(all)
		slices.SortFunc(byName, func(x, y credential.Machine) int { // case-insensitive, then exact name, then id
			if c := strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)); c != 0 {
				return c
			}
			if c := strings.Compare(x.Name, y.Name); c != 0 {
				return c
			}
			return strings.Compare(x.ID, y.ID)
		})
		reversed := func(ms []credential.Machine) []credential.Machine {
			r := slices.Clone(ms)
			slices.Reverse(r)
			return r
		}

		tests := []struct {
			name      string
			filter    authority.MachineFilter
			want      []credential.Machine
			wantTotal int
		}{
			{"everything by creation, id breaking ties", authority.MachineFilter{}, byCreated, len(all)},
			{"everything by creation descending", authority.MachineFilter{OrderBy: authority.OrderByCreatedAt, Descending: true}, reversed(byCreated), len(all)},
			{"everything by name, id breaking ties", authority.MachineFilter{OrderBy: authority.OrderByName}, byName, len(all)},
			{"everything by name descending", authority.MachineFilter{OrderBy: authority.OrderByName, Descending: true}, reversed(byName), len(all)},
			{"exact id", authority.MachineFilter{Query: percent.ID}, []credential.Machine{percent}, 1},
			{"name substring in any case", authority.MachineFilter{Query: "ALPHA"}, []credential.Machine{alpha, alphaBeta, alpha2}, 3},
			{"underscore is literal", authority.MachineFilter{Query: "a_1"}, []credential.Machine{underscore}, 1},
			{"percent is literal", authority.MachineFilter{Query: "a%2"}, []credential.Machine{percent}, 1},
			{"backslash is literal", authority.MachineFilter{Query: `k\s`}, []credential.Machine{backslash}, 1},
			{"no match", authority.MachineFilter{Query: "zzz"}, nil, 0},
			{"first page", authority.MachineFilter{Limit: 2}, byCreated[:2], len(all)},
			{"middle page", authority.MachineFilter{Limit: 3, Offset: 2}, byCreated[2:5], len(all)},
			{"past the end", authority.MachineFilter{Limit: 3, Offset: 20}, nil, len(all)},
			{"page of a query", authority.MachineFilter{Query: "twin", OrderBy: authority.OrderByName, Descending: true, Limit: 1, Offset: 1}, []credential.Machine{lowerID(twinA, twinB)}, 2},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.filter.InstanceID = in.ID
				var total int
				got := view(t, s, func(tx authority.Tx) (ms []credential.Machine, err error) {
					ms, total, err = tx.ListMachines(ctx, tc.filter)
					return ms, err
				})
				if diff := cmp.Diff(ids(tc.want), ids(got)); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
				if total != tc.wantTotal {
					t.Errorf("total = %d, want %d", total, tc.wantTotal)
				}
			})
		}

		t.Run("unknown order is invalid", func(t *testing.T) {
			wantCode(t, s.View(ctx, func(tx authority.Tx) error {
				_, _, err := tx.ListMachines(ctx, authority.MachineFilter{InstanceID: in.ID, OrderBy: "name; DROP TABLE machines"})
				return err
			}), credential.CodeInvalid)
		})
	})
}

// lowerID returns the machine with the smaller id.
func lowerID(a, b credential.Machine) credential.Machine {
	if a.ID < b.ID {
		return a
	}
	return b
}

func TestMachineScopes(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		m1 := newMachine(t, s, in.ID, "one", at(0))
		m2 := newMachine(t, s, in.ID, "two", at(1))
		m3 := newMachine(t, s, in.ID, "three", at(2))
		m4 := newMachine(t, s, in.ID, "four", at(3))
		newScope(t, s, m1, m3, at(10))
		newScope(t, s, m1, m2, at(11))
		newScope(t, s, m2, m1, at(12))

		t.Run("scoped machines in scope order, only for ids with scopes", func(t *testing.T) {
			got := view(t, s, func(tx authority.Tx) (map[string][]credential.Machine, error) {
				return tx.ScopedMachines(ctx, in.ID, []string{m1.ID, m2.ID, m4.ID})
			})
			want := map[string][]credential.Machine{m1.ID: {m3, m2}, m2.ID: {m1}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ScopedMachines (-want +got):\n%s", diff)
			}
		})

		t.Run("get and count", func(t *testing.T) {
			got := view(t, s, func(tx authority.Tx) (credential.MachineScope, error) {
				return tx.GetMachineScope(ctx, in.ID, m1.ID, m2.ID)
			})
			want := credential.MachineScope{InstanceID: in.ID, FromMachineID: m1.ID, ToMachineID: m2.ID, CreatedAt: at(11)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("GetMachineScope (-want +got):\n%s", diff)
			}
			count := view(t, s, func(tx authority.Tx) (int, error) { return tx.CountMachineScopes(ctx, in.ID, m1.ID) })
			if count != 2 {
				t.Errorf("CountMachineScopes = %d, want 2", count)
			}
		})

		insertErrors := []struct {
			name  string
			scope credential.MachineScope
			want  credential.Code
		}{
			{"duplicate scope conflicts", credential.MachineScope{InstanceID: in.ID, FromMachineID: m1.ID, ToMachineID: m2.ID, CreatedAt: at(20)}, credential.CodeConflict},
			{"missing target is not found", credential.MachineScope{InstanceID: in.ID, FromMachineID: m1.ID, ToMachineID: "mch_missing", CreatedAt: at(20)}, credential.CodeNotFound},
			{"missing source is not found", credential.MachineScope{InstanceID: in.ID, FromMachineID: "mch_missing", ToMachineID: m1.ID, CreatedAt: at(20)}, credential.CodeNotFound},
		}
		for _, tc := range insertErrors {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.Update(ctx, func(tx authority.Tx) error { return tx.InsertMachineScope(ctx, tc.scope) }), tc.want)
			})
		}

		t.Run("delete scope once", func(t *testing.T) {
			update(t, s, func(tx authority.Tx) error { return tx.DeleteMachineScope(ctx, in.ID, m2.ID, m1.ID) })
			wantCode(t, s.Update(ctx, func(tx authority.Tx) error { return tx.DeleteMachineScope(ctx, in.ID, m2.ID, m1.ID) }), credential.CodeNotFound)
			wantCode(t, s.View(ctx, func(tx authority.Tx) error {
				_, err := tx.GetMachineScope(ctx, in.ID, m2.ID, m1.ID)
				return err
			}), credential.CodeNotFound)
		})
	})
}

func TestDeleteMachineCascadesScopes(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		doomed := newMachine(t, s, in.ID, "doomed", at(0))
		m2 := newMachine(t, s, in.ID, "two", at(1))
		m3 := newMachine(t, s, in.ID, "three", at(2))
		newScope(t, s, doomed, m2, at(10)) // from it
		newScope(t, s, m3, doomed, at(11)) // to it
		newScope(t, s, m3, m2, at(12))     // unrelated

		update(t, s, func(tx authority.Tx) error { return tx.DeleteMachine(ctx, in.ID, doomed.ID) })

		got := view(t, s, func(tx authority.Tx) (map[string][]credential.Machine, error) {
			return tx.ScopedMachines(ctx, in.ID, []string{doomed.ID, m2.ID, m3.ID})
		})
		if diff := cmp.Diff(map[string][]credential.Machine{m3.ID: {m2}}, got); diff != "" {
			t.Errorf("scopes after delete (-want +got):\n%s", diff)
		}
		for _, from := range []string{doomed.ID, m3.ID} {
			n := view(t, s, func(tx authority.Tx) (int, error) { return tx.CountMachineScopes(ctx, in.ID, from) })
			if want := map[string]int{doomed.ID: 0, m3.ID: 1}[from]; n != want {
				t.Errorf("CountMachineScopes(%s) = %d, want %d", from, n, want)
			}
		}
		wantCode(t, s.Update(ctx, func(tx authority.Tx) error { return tx.DeleteMachine(ctx, in.ID, doomed.ID) }), credential.CodeNotFound)
	})
}

func TestDeleteCredentials(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		kept := machineKey(in.ID, "mch_keep")
		otherKind := machineKey(in.ID, "mch_gone")
		otherKind.Kind = credential.KindM2MToken
		for _, c := range []credential.Credential{machineKey(in.ID, "mch_gone"), machineKey(in.ID, "mch_gone"), kept, otherKind} {
			insertCredential(t, s, c)
		}

		var deleted int
		update(t, s, func(tx authority.Tx) (err error) {
			deleted, err = tx.DeleteCredentials(ctx, in.ID, credential.KindMachineKey, "mch_gone")
			return err
		})
		if deleted != 2 {
			t.Errorf("deleted %d, want 2", deleted)
		}
		left := view(t, s, func(tx authority.Tx) ([]credential.Credential, error) {
			return tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: in.ID})
		})
		if diff := cmp.Diff([]string{kept.ID, otherKind.ID}, credentialIDs(left), cmpSorted); diff != "" {
			t.Errorf("credentials left (-want +got):\n%s", diff)
		}
	})
}

var cmpSorted = cmp.Transformer("sorted", func(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
})

func credentialIDs(cs []credential.Credential) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestRevokeAndExpire(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		key := machineKey(in.ID, "mch_1")
		insertCredential(t, s, key)
		get := func(t *testing.T) credential.Credential {
			t.Helper()
			return view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.GetCredential(ctx, in.ID, key.ID) })
		}

		t.Run("expiry is set, then cleared", func(t *testing.T) {
			update(t, s, func(tx authority.Tx) error { return tx.SetCredentialExpiry(ctx, in.ID, key.ID, at(100), at(1)) })
			if got := get(t); !got.ExpiresAt.Equal(at(100)) || !got.UpdatedAt.Equal(at(1)) {
				t.Errorf("expires_at %v, updated_at %v; want %v, %v", got.ExpiresAt, got.UpdatedAt, at(100), at(1))
			}
			update(t, s, func(tx authority.Tx) error { return tx.SetCredentialExpiry(ctx, in.ID, key.ID, time.Time{}, at(2)) })
			if got := get(t); !got.ExpiresAt.IsZero() {
				t.Errorf("expires_at %v after clearing, want zero", got.ExpiresAt)
			}
			wantCode(t, s.Update(ctx, func(tx authority.Tx) error {
				return tx.SetCredentialExpiry(ctx, in.ID, "msk_missing", at(100), at(1))
			}), credential.CodeNotFound)
		})

		t.Run("revoked once; the second revocation is not found", func(t *testing.T) {
			update(t, s, func(tx authority.Tx) error { return tx.RevokeCredential(ctx, in.ID, key.ID, at(5), "leaked") })
			wantCode(t, s.Update(ctx, func(tx authority.Tx) error {
				return tx.RevokeCredential(ctx, in.ID, key.ID, at(6), "again")
			}), credential.CodeNotFound)
			got := get(t)
			if !got.RevokedAt.Equal(at(5)) || got.RevocationReason != "leaked" || !got.UpdatedAt.Equal(at(5)) {
				t.Errorf("revoked_at %v, reason %q, updated_at %v; want the first revocation at %v", got.RevokedAt, got.RevocationReason, got.UpdatedAt, at(5))
			}
		})
	})
}

func listAudit(t *testing.T, s *sqlstore.Store, f authority.AuditFilter) ([]credential.AuditEvent, int) {
	t.Helper()
	var total int
	events := view(t, s, func(tx authority.Tx) (es []credential.AuditEvent, err error) {
		es, total, err = tx.ListAuditEvents(context.Background(), f)
		return es, err
	})
	return events, total
}

func TestAuditEvents(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		event := func(id string, second int, action, target string) credential.AuditEvent {
			return credential.AuditEvent{
				ID: id, InstanceID: "ins_a", At: at(second),
				ActorKind: "admin_key", ActorID: "key_1", Action: action,
				TargetKind: "machine", TargetID: target, RequestID: "req_" + id,
				Outcome: credential.OutcomeSuccess, Detail: json.RawMessage(`{"name":"` + id + `"}`),
			}
		}
		e1 := event("aud_1", 1, "machine.create", "mch_1")
		e2 := event("aud_2", 2, "machine.update", "mch_1")
		e3 := event("aud_3", 2, "machine.create", "mch_2") // same instant as e2: id breaks the tie
		e4 := event("aud_4", 3, "machine.delete", "mch_1")
		noDetail := event("aud_5", 0, "machine.create", "mch_3")
		noDetail.Detail, noDetail.Outcome = nil, credential.OutcomeDenied
		elsewhere := event("aud_6", 9, "machine.create", "mch_1")
		elsewhere.InstanceID = "ins_b"
		update(t, s, func(tx authority.Tx) error {
			var errs []error
			for _, e := range []*credential.AuditEvent{&e1, &e2, &e3, &e4, &noDetail, &elsewhere} {
				sealed, err := tx.InsertAuditEvent(ctx, *e)
				*e = sealed
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		})
		wantNoDetail := noDetail
		if string(wantNoDetail.Detail) != `{}` || wantNoDetail.Count != 1 {
			t.Errorf("an event without detail or count is stored with detail %s and count %d, want {} and 1", wantNoDetail.Detail, wantNoDetail.Count)
		}

		tests := []struct {
			name      string
			filter    authority.AuditFilter
			want      []credential.AuditEvent
			wantTotal int
		}{
			{"newest first, every field", authority.AuditFilter{}, []credential.AuditEvent{e4, e3, e2, e1, wantNoDetail}, 5},
			{"by action", authority.AuditFilter{Action: "machine.create"}, []credential.AuditEvent{e3, e1, wantNoDetail}, 3},
			{"by target", authority.AuditFilter{TargetID: "mch_1"}, []credential.AuditEvent{e4, e2, e1}, 3},
			{"by action and target", authority.AuditFilter{Action: "machine.create", TargetID: "mch_1"}, []credential.AuditEvent{e1}, 1},
			{"a page", authority.AuditFilter{Limit: 2, Offset: 1}, []credential.AuditEvent{e3, e2}, 5},
			{"no match", authority.AuditFilter{Action: "instance.delete"}, nil, 0},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.filter.InstanceID = "ins_a"
				got, total := listAudit(t, s, tc.filter)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("ListAuditEvents (-want +got):\n%s", diff)
				}
				if total != tc.wantTotal {
					t.Errorf("total = %d, want %d", total, tc.wantTotal)
				}
			})
		}
	})
}

func insertAuditEvent(ctx context.Context, tx authority.Tx, e credential.AuditEvent) error {
	_, err := tx.InsertAuditEvent(ctx, e)
	return err
}

// A SQLite reader's page cache is bounded below SQLite's default (2000
// KiB): modernc charges each page about twice its size, outside the Go
// memory limit, and random digest lookups gain little from it.
func TestSQLiteReaderCacheIsBounded(t *testing.T) {
	s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	kib, err := sqlstore.ReaderCacheKiB(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if kib != 1000 {
		t.Fatalf("reader cache_size = %d KiB, want 1000", kib)
	}
}
