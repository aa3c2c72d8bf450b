package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func newWorkspace(t *testing.T, s *sqlstore.Store, org credential.Organization, slug string, created time.Time) credential.Workspace {
	t.Helper()
	w := credential.Workspace{
		ID: newUUID(), InstanceID: org.InstanceID, OrgID: org.ID, Slug: slug, Name: "Workspace " + slug,
		CreatedAt: created, UpdatedAt: created,
	}
	update(t, s, func(tx authority.Tx) error { return tx.InsertWorkspace(context.Background(), w) })
	return w
}

func newMember(t *testing.T, s *sqlstore.Store, w credential.Workspace, userID, role string, created time.Time) credential.Member {
	t.Helper()
	m := credential.Member{
		InstanceID: w.InstanceID, WorkspaceID: w.ID, UserID: userID, Role: role,
		CreatedAt: created, UpdatedAt: created,
	}
	update(t, s, func(tx authority.Tx) error { return tx.PutMember(context.Background(), m) })
	return m
}

func getWorkspace(t *testing.T, s *sqlstore.Store, instanceID, orgID, id string) credential.Workspace {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (credential.Workspace, error) {
		return tx.GetWorkspace(context.Background(), instanceID, orgID, id)
	})
}

func listWorkspaces(t *testing.T, s *sqlstore.Store, instanceID, orgID string) []credential.Workspace {
	t.Helper()
	return view(t, s, func(tx authority.Tx) ([]credential.Workspace, error) {
		return tx.ListWorkspaces(context.Background(), instanceID, orgID)
	})
}

func getMember(t *testing.T, s *sqlstore.Store, instanceID, workspaceID, userID string) credential.Member {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (credential.Member, error) {
		return tx.GetMember(context.Background(), instanceID, workspaceID, userID)
	})
}

func listMembers(t *testing.T, s *sqlstore.Store, instanceID, workspaceID string) []credential.Member {
	t.Helper()
	return view(t, s, func(tx authority.Tx) ([]credential.Member, error) {
		return tx.ListMembers(context.Background(), instanceID, workspaceID)
	})
}

func TestWorkspaceRoundTrip(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		org := newOrg(t, s, in.ID, "acme", at(0))
		ws := credential.Workspace{
			ID: newUUID(), InstanceID: in.ID, OrgID: org.ID, Slug: "platform", Name: "Platform Team",
			CreatedAt: at(1), UpdatedAt: at(2),
		}
		update(t, s, func(tx authority.Tx) error { return tx.InsertWorkspace(ctx, ws) })

		t.Run("every field comes back by id, by slug and by instance alone", func(t *testing.T) {
			if diff := cmp.Diff(ws, getWorkspace(t, s, in.ID, org.ID, ws.ID)); diff != "" {
				t.Errorf("GetWorkspace (-want +got):\n%s", diff)
			}
			bySlug := view(t, s, func(tx authority.Tx) (credential.Workspace, error) {
				return tx.GetWorkspaceBySlug(ctx, in.ID, org.ID, ws.Slug)
			})
			if diff := cmp.Diff(ws, bySlug); diff != "" {
				t.Errorf("GetWorkspaceBySlug (-want +got):\n%s", diff)
			}
			found := view(t, s, func(tx authority.Tx) (credential.Workspace, error) { return tx.FindWorkspace(ctx, in.ID, ws.ID) })
			if diff := cmp.Diff(ws, found); diff != "" {
				t.Errorf("FindWorkspace (-want +got):\n%s", diff)
			}
		})

		t.Run("slug, name and updated_at are written, created_at is not", func(t *testing.T) {
			changed := ws
			changed.Slug, changed.Name, changed.UpdatedAt, changed.CreatedAt = "infra", "Infrastructure", at(5), at(99)
			update(t, s, func(tx authority.Tx) error { return tx.UpdateWorkspace(ctx, changed) })
			want := changed
			want.CreatedAt = ws.CreatedAt
			if diff := cmp.Diff(want, getWorkspace(t, s, in.ID, org.ID, ws.ID)); diff != "" {
				t.Errorf("after UpdateWorkspace (-want +got):\n%s", diff)
			}
			wantCode(t, s.View(ctx, func(tx authority.Tx) error {
				_, err := tx.GetWorkspaceBySlug(ctx, in.ID, org.ID, ws.Slug)
				return err
			}), credential.CodeNotFound)
			ws = want
		})

		missing := ws
		missing.ID, missing.Slug = newUUID(), "missing"
		orphan := ws
		orphan.ID, orphan.OrgID, orphan.Slug = newUUID(), newUUID(), "orphan"
		noInstance := ws
		noInstance.ID, noInstance.InstanceID, noInstance.Slug = newUUID(), "ins_missing", "no-instance"
		sameID := ws
		sameID.Slug = "another-slug"
		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
			want credential.Code
		}{
			{"get of a missing id is not found", func(tx authority.Tx) error { _, err := tx.GetWorkspace(ctx, in.ID, org.ID, missing.ID); return err }, credential.CodeNotFound},
			{"get of a missing slug is not found", func(tx authority.Tx) error {
				_, err := tx.GetWorkspaceBySlug(ctx, in.ID, org.ID, missing.Slug)
				return err
			}, credential.CodeNotFound},
			{"find of a missing id is not found", func(tx authority.Tx) error { _, err := tx.FindWorkspace(ctx, in.ID, missing.ID); return err }, credential.CodeNotFound},
			{"update of a missing id is not found", func(tx authority.Tx) error { return tx.UpdateWorkspace(ctx, missing) }, credential.CodeNotFound},
			{"delete of a missing id is not found", func(tx authority.Tx) error { return tx.DeleteWorkspace(ctx, in.ID, org.ID, missing.ID) }, credential.CodeNotFound},
			{"insert into a missing organization is not found", func(tx authority.Tx) error { return tx.InsertWorkspace(ctx, orphan) }, credential.CodeNotFound},
			{"insert into a missing instance is not found", func(tx authority.Tx) error { return tx.InsertWorkspace(ctx, noInstance) }, credential.CodeNotFound},
			{"insert of a taken id conflicts", func(tx authority.Tx) error { return tx.InsertWorkspace(ctx, sameID) }, credential.CodeConflict},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := takeSnapshot(t, s, in.ID)
				wantCode(t, s.Update(ctx, tc.op), tc.want)
				if diff := cmp.Diff(before, takeSnapshot(t, s, in.ID)); diff != "" {
					t.Errorf("instance changed (-before +after):\n%s", diff)
				}
			})
		}
	})
}

func TestWorkspaceSlugs(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := newInstance(t, s, "a")
		b := newInstance(t, s, "b")
		acme := newOrg(t, s, a.ID, "acme", at(0))
		globex := newOrg(t, s, a.ID, "globex", at(0))
		elsewhere := newOrg(t, s, b.ID, "acme", at(0))
		platform := newWorkspace(t, s, acme, "platform", at(1))
		infra := newWorkspace(t, s, acme, "infra", at(2))
		newWorkspace(t, s, globex, "sales", at(3))

		insert := func(org credential.Organization, slug string) func(tx authority.Tx) error {
			return func(tx authority.Tx) error {
				return tx.InsertWorkspace(ctx, credential.Workspace{
					ID: newUUID(), InstanceID: org.InstanceID, OrgID: org.ID, Slug: slug, Name: slug, CreatedAt: at(4), UpdatedAt: at(4),
				})
			}
		}
		rename := func(w credential.Workspace, slug string) func(tx authority.Tx) error {
			return func(tx authority.Tx) error {
				w.Slug, w.UpdatedAt = slug, at(5)
				return tx.UpdateWorkspace(ctx, w)
			}
		}
		tests := []struct {
			name string
			op   func(tx authority.Tx) error
			want credential.Code // "" for success
		}{
			{"a slug taken in the organization conflicts", insert(acme, "platform"), credential.CodeConflict},
			{"a slug taken in another organization of the instance is free", insert(globex, "platform"), ""},
			{"a slug taken in another instance is free", insert(elsewhere, "platform"), ""},
			{"slugs compare exactly, so another case is another slug", insert(acme, "PLATFORM"), ""},
			{"renaming to a slug taken in the organization conflicts", rename(infra, "platform"), credential.CodeConflict},
			{"renaming to a slug taken only in another organization is allowed", rename(infra, "sales"), ""},
			{"keeping its own slug is allowed", rename(platform, "platform"), ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := takeSnapshot(t, s, a.ID)
				err := s.Update(ctx, tc.op)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("want success, got %v", err)
					}
					return
				}
				wantCode(t, err, tc.want)
				if diff := cmp.Diff(before, takeSnapshot(t, s, a.ID)); diff != "" {
					t.Errorf("instance changed by a refused write (-before +after):\n%s", diff)
				}
			})
		}
	})
}

func TestListWorkspaces(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		org := newOrg(t, s, in.ID, "acme", at(0))
		sibling := newOrg(t, s, in.ID, "sibling", at(0))
		otherOrg := newOrg(t, s, other.ID, "acme", at(0))
		// Inserted out of order; second and third share a creation time, so
		// the id (increasing with each newUUID) breaks the tie.
		second := newWorkspace(t, s, org, "second", at(2))
		third := newWorkspace(t, s, org, "third", at(2))
		first := newWorkspace(t, s, org, "first", at(1))
		theirs := newWorkspace(t, s, sibling, "theirs", at(0))
		elsewhere := newWorkspace(t, s, otherOrg, "first", at(0))

		tests := []struct {
			name              string
			instanceID, orgID string
			want              []credential.Workspace
		}{
			{"the organization's, oldest first, id breaking ties", in.ID, org.ID, []credential.Workspace{first, second, third}},
			{"a sibling organization has only its own", in.ID, sibling.ID, []credential.Workspace{theirs}},
			{"another instance has only its own", other.ID, otherOrg.ID, []credential.Workspace{elsewhere}},
			{"an organization through another instance has none", other.ID, org.ID, nil},
			{"a missing organization has none", in.ID, newUUID(), nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, listWorkspaces(t, s, tc.instanceID, tc.orgID)); diff != "" {
					t.Errorf("ListWorkspaces (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestDeleteWorkspaceCascadesMembers(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		org := newOrg(t, s, in.ID, "acme", at(0))
		doomed := newWorkspace(t, s, org, "doomed", at(1))
		kept := newWorkspace(t, s, org, "kept", at(2))
		newMember(t, s, doomed, "usr_1", credential.MemberOwner, at(3))
		newMember(t, s, doomed, "usr_2", credential.MemberMember, at(3))
		keptMember := newMember(t, s, kept, "usr_1", credential.MemberAdmin, at(3))
		bound := pat(in.ID, "pat_1", "usr_1", doomed.ID, at(3))
		insertCredential(t, s, bound)

		update(t, s, func(tx authority.Tx) error { return tx.DeleteWorkspace(ctx, in.ID, org.ID, doomed.ID) })

		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"the workspace is not found", func(tx authority.Tx) error { _, err := tx.GetWorkspace(ctx, in.ID, org.ID, doomed.ID); return err }},
			{"its member is not found", func(tx authority.Tx) error { _, err := tx.GetMember(ctx, in.ID, doomed.ID, "usr_1"); return err }},
			{"a second delete is not found", func(tx authority.Tx) error { return tx.DeleteWorkspace(ctx, in.ID, org.ID, doomed.ID) }},
			{"a member put into it is not found", func(tx authority.Tx) error {
				return tx.PutMember(ctx, credential.Member{InstanceID: in.ID, WorkspaceID: doomed.ID, UserID: "usr_3", Role: credential.MemberMember, CreatedAt: at(4), UpdatedAt: at(4)})
			}},
		} {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, s.Update(ctx, tc.op), credential.CodeNotFound) })
		}

		t.Run("its memberships are gone, the other workspace's stay", func(t *testing.T) {
			for table, want := range map[string]int{"workspaces": 1, "workspace_members": 1} {
				if n := rowCount(t, s, table); n != want {
					t.Errorf("%d rows in %s, want %d", n, table, want)
				}
			}
			if diff := cmp.Diff([]credential.Member{keptMember}, listMembers(t, s, in.ID, kept.ID)); diff != "" {
				t.Errorf("kept members (-want +got):\n%s", diff)
			}
		})

		t.Run("credentials bound to it stay, for the caller to revoke", func(t *testing.T) {
			got := view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.GetCredential(ctx, in.ID, bound.ID) })
			if diff := cmp.Diff(bound, got); diff != "" {
				t.Errorf("bound credential (-want +got):\n%s", diff)
			}
		})

		t.Run("its slug is free again", func(t *testing.T) {
			newWorkspace(t, s, org, doomed.Slug, at(5))
		})
	})
}

func TestDeleteOrganizationCascadesWorkspaces(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		doomed := newOrg(t, s, in.ID, "doomed", at(0))
		d1 := newWorkspace(t, s, doomed, "d1", at(1))
		d2 := newWorkspace(t, s, doomed, "d2", at(2))
		newMember(t, s, d1, "usr_1", credential.MemberOwner, at(3))
		newMember(t, s, d2, "usr_1", credential.MemberOwner, at(3))
		kept := newOrg(t, s, in.ID, "kept", at(4))
		k1 := newWorkspace(t, s, kept, "d1", at(5)) // the same slug in another organization
		km := newMember(t, s, k1, "usr_1", credential.MemberMember, at(6))

		update(t, s, func(tx authority.Tx) error { return tx.DeleteOrganization(ctx, in.ID, doomed.ID) })

		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"its workspace is not found", func(tx authority.Tx) error { _, err := tx.GetWorkspace(ctx, in.ID, doomed.ID, d1.ID); return err }},
			{"its workspace is not found by id alone", func(tx authority.Tx) error { _, err := tx.FindWorkspace(ctx, in.ID, d2.ID); return err }},
			{"its member is not found", func(tx authority.Tx) error { _, err := tx.GetMember(ctx, in.ID, d1.ID, "usr_1"); return err }},
		} {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, s.Update(ctx, tc.op), credential.CodeNotFound) })
		}

		t.Run("its rows are gone, the other organization's stay", func(t *testing.T) {
			for table, want := range map[string]int{"organizations": 1, "workspaces": 1, "workspace_members": 1} {
				if n := rowCount(t, s, table); n != want {
					t.Errorf("%d rows in %s, want %d", n, table, want)
				}
			}
			if diff := cmp.Diff([]credential.Workspace{k1}, listWorkspaces(t, s, in.ID, kept.ID)); diff != "" {
				t.Errorf("kept workspaces (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]credential.Member{km}, listMembers(t, s, in.ID, k1.ID)); diff != "" {
				t.Errorf("kept members (-want +got):\n%s", diff)
			}
		})
	})
}

func TestMembers(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		org := newOrg(t, s, in.ID, "acme", at(0))
		ws := newWorkspace(t, s, org, "platform", at(0))
		other := newWorkspace(t, s, org, "other", at(0))

		t.Run("a new member comes back with every field", func(t *testing.T) {
			m := credential.Member{InstanceID: in.ID, WorkspaceID: ws.ID, UserID: "usr_a", Role: credential.MemberMember, CreatedAt: at(1), UpdatedAt: at(2)}
			update(t, s, func(tx authority.Tx) error { return tx.PutMember(ctx, m) })
			if diff := cmp.Diff(m, getMember(t, s, in.ID, ws.ID, m.UserID)); diff != "" {
				t.Errorf("GetMember (-want +got):\n%s", diff)
			}
		})

		t.Run("putting again changes role and updated_at, keeps created_at", func(t *testing.T) {
			m := credential.Member{InstanceID: in.ID, WorkspaceID: ws.ID, UserID: "usr_a", Role: credential.MemberAdmin, CreatedAt: at(99), UpdatedAt: at(10)}
			update(t, s, func(tx authority.Tx) error { return tx.PutMember(ctx, m) })
			want := m
			want.CreatedAt = at(1)
			if diff := cmp.Diff(want, getMember(t, s, in.ID, ws.ID, m.UserID)); diff != "" {
				t.Errorf("GetMember after the second put (-want +got):\n%s", diff)
			}
			if n := rowCount(t, s, "workspace_members"); n != 1 {
				t.Errorf("%d memberships, want 1", n)
			}
		})

		// Byte order: upper case before lower case, a prefix before its
		// extensions, whatever the database's collation.
		upper := newMember(t, s, ws, "usr_B", credential.MemberOwner, at(3))
		longer := newMember(t, s, ws, "usr_a-2", credential.MemberMember, at(4))
		first := newMember(t, s, ws, "usr_0", credential.MemberMember, at(5))
		elsewhere := newMember(t, s, other, "usr_a", credential.MemberOwner, at(6))

		t.Run("list is the workspace's, by user id in byte order", func(t *testing.T) {
			a := getMember(t, s, in.ID, ws.ID, "usr_a")
			if diff := cmp.Diff([]credential.Member{first, upper, a, longer}, listMembers(t, s, in.ID, ws.ID)); diff != "" {
				t.Errorf("ListMembers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]credential.Member{elsewhere}, listMembers(t, s, in.ID, other.ID)); diff != "" {
				t.Errorf("ListMembers of the other workspace (-want +got):\n%s", diff)
			}
			if got := listMembers(t, s, in.ID, newUUID()); len(got) != 0 {
				t.Errorf("ListMembers of a missing workspace = %v, want none", got)
			}
		})

		t.Run("a deleted member is gone, the same user elsewhere stays", func(t *testing.T) {
			update(t, s, func(tx authority.Tx) error { return tx.DeleteMember(ctx, in.ID, ws.ID, "usr_a") })
			wantCode(t, s.View(ctx, func(tx authority.Tx) error {
				_, err := tx.GetMember(ctx, in.ID, ws.ID, "usr_a")
				return err
			}), credential.CodeNotFound)
			if diff := cmp.Diff(elsewhere, getMember(t, s, in.ID, other.ID, "usr_a")); diff != "" {
				t.Errorf("the user's other membership (-want +got):\n%s", diff)
			}
		})

		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"a second delete is not found", func(tx authority.Tx) error { return tx.DeleteMember(ctx, in.ID, ws.ID, "usr_a") }},
			{"get of a missing user is not found", func(tx authority.Tx) error { _, err := tx.GetMember(ctx, in.ID, ws.ID, "usr_none"); return err }},
			{"put into a missing workspace is not found", func(tx authority.Tx) error {
				return tx.PutMember(ctx, credential.Member{InstanceID: in.ID, WorkspaceID: newUUID(), UserID: "usr_x", Role: credential.MemberMember, CreatedAt: at(7), UpdatedAt: at(7)})
			}},
			{"put through a missing instance is not found", func(tx authority.Tx) error {
				return tx.PutMember(ctx, credential.Member{InstanceID: "ins_missing", WorkspaceID: ws.ID, UserID: upper.UserID, Role: credential.MemberMember, CreatedAt: at(7), UpdatedAt: at(7)})
			}},
		} {
			t.Run(tc.name+", leaving nothing written even when committed", func(t *testing.T) {
				before, members := takeSnapshot(t, s, in.ID), rowCount(t, s, "workspace_members")
				wantNotFoundAndCommit(t, s, tc.op)
				if diff := cmp.Diff(before, takeSnapshot(t, s, in.ID)); diff != "" {
					t.Errorf("instance changed (-before +after):\n%s", diff)
				}
				if n := rowCount(t, s, "workspace_members"); n != members {
					t.Errorf("%d memberships, want %d", n, members)
				}
			})
		}
	})
}

// TestMembersStayInTheirInstance shows member writes through another
// instance refused before they write anything, even when committed, and
// an existing membership of the same workspace and user left as it was.
func TestMembersStayInTheirInstance(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := newInstance(t, s, "a")
		b := newInstance(t, s, "b")
		orgA := newOrg(t, s, a.ID, "acme", at(0))
		orgB := newOrg(t, s, b.ID, "acme", at(0))
		wsA := newWorkspace(t, s, orgA, "platform", at(1))
		wsB := newWorkspace(t, s, orgB, "platform", at(1))
		owner := newMember(t, s, wsA, "usr_1", credential.MemberOwner, at(2))
		newMember(t, s, wsB, "usr_1", credential.MemberOwner, at(2))

		through := func(instanceID, workspaceID, userID string) credential.Member {
			return credential.Member{InstanceID: instanceID, WorkspaceID: workspaceID, UserID: userID, Role: credential.MemberMember, CreatedAt: at(9), UpdatedAt: at(9)}
		}
		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"demoting a's member through b", func(tx authority.Tx) error { return tx.PutMember(ctx, through(b.ID, wsA.ID, owner.UserID)) }},
			{"adding a member to a's workspace through b", func(tx authority.Tx) error { return tx.PutMember(ctx, through(b.ID, wsA.ID, "usr_2")) }},
			{"adding a member to b's workspace through a", func(tx authority.Tx) error { return tx.PutMember(ctx, through(a.ID, wsB.ID, "usr_2")) }},
			{"getting a's member through b", func(tx authority.Tx) error { _, err := tx.GetMember(ctx, b.ID, wsA.ID, owner.UserID); return err }},
			{"deleting a's member through b", func(tx authority.Tx) error { return tx.DeleteMember(ctx, b.ID, wsA.ID, owner.UserID) }},
		} {
			t.Run(tc.name+" is not found and writes nothing", func(t *testing.T) {
				beforeA, beforeB := takeSnapshot(t, s, a.ID), takeSnapshot(t, s, b.ID)
				wantNotFoundAndCommit(t, s, tc.op)
				if diff := cmp.Diff(beforeA, takeSnapshot(t, s, a.ID)); diff != "" {
					t.Errorf("instance a changed (-before +after):\n%s", diff)
				}
				if diff := cmp.Diff(beforeB, takeSnapshot(t, s, b.ID)); diff != "" {
					t.Errorf("instance b changed (-before +after):\n%s", diff)
				}
				if n := rowCount(t, s, "workspace_members"); n != 2 {
					t.Errorf("%d memberships, want 2", n)
				}
			})
		}
		if got := listMembers(t, s, b.ID, wsA.ID); len(got) != 0 {
			t.Errorf("ListMembers of a's workspace through b = %v, want none", got)
		}
	})
}
