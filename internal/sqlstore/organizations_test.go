package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

var uuidSeq atomic.Int64

// newUUID returns a fresh UUID; each is greater than the ones before it.
func newUUID() string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", uuidSeq.Add(1)) }

func newOrg(t *testing.T, s *sqlstore.Store, instanceID, slug string, created time.Time) credential.Organization {
	t.Helper()
	o := credential.Organization{
		ID: newUUID(), InstanceID: instanceID, Slug: slug, Name: "Org " + slug,
		CreatedAt: created, UpdatedAt: created,
	}
	update(t, s, func(tx authority.Tx) error { return tx.InsertOrganization(context.Background(), o) })
	return o
}

func newSite(t *testing.T, s *sqlstore.Store, org credential.Organization, name string, created time.Time) credential.Site {
	t.Helper()
	site := credential.Site{
		ID: newUUID(), InstanceID: org.InstanceID, OrgID: org.ID, Name: name,
		CreatedAt: created, UpdatedAt: created,
	}
	update(t, s, func(tx authority.Tx) error { return tx.InsertSite(context.Background(), site) })
	return site
}

// newSitegroup stores a sitegroup of sites and returns it as it reads back:
// siteIDs must be given sorted and without duplicates.
func newSitegroup(t *testing.T, s *sqlstore.Store, org credential.Organization, name string, created time.Time, siteIDs ...string) credential.Sitegroup {
	t.Helper()
	g := credential.Sitegroup{
		ID: newUUID(), InstanceID: org.InstanceID, OrgID: org.ID, Name: name,
		SiteIDs: append([]string{}, siteIDs...), CreatedAt: created, UpdatedAt: created,
	}
	update(t, s, func(tx authority.Tx) error { return tx.InsertSitegroup(context.Background(), g) })
	return g
}

func getOrg(t *testing.T, s *sqlstore.Store, instanceID, id string) credential.Organization {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (credential.Organization, error) {
		return tx.GetOrganization(context.Background(), instanceID, id)
	})
}

func getSite(t *testing.T, s *sqlstore.Store, instanceID, orgID, id string) credential.Site {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (credential.Site, error) {
		return tx.GetSite(context.Background(), instanceID, orgID, id)
	})
}

func getSitegroup(t *testing.T, s *sqlstore.Store, instanceID, orgID, id string) credential.Sitegroup {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (credential.Sitegroup, error) {
		return tx.GetSitegroup(context.Background(), instanceID, orgID, id)
	})
}

func listSites(t *testing.T, s *sqlstore.Store, instanceID, orgID string) []credential.Site {
	t.Helper()
	return view(t, s, func(tx authority.Tx) ([]credential.Site, error) {
		return tx.ListSites(context.Background(), instanceID, orgID)
	})
}

func listSitegroups(t *testing.T, s *sqlstore.Store, instanceID, orgID string) []credential.Sitegroup {
	t.Helper()
	return view(t, s, func(tx authority.Tx) ([]credential.Sitegroup, error) {
		return tx.ListSitegroups(context.Background(), instanceID, orgID)
	})
}

func rowCount(t *testing.T, s *sqlstore.Store, table string) int {
	t.Helper()
	n, err := sqlstore.RowCount(context.Background(), s, table)
	if err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// wantNotFoundAndCommit runs op in a transaction that commits whatever op
// returns, and wants op's error to be CodeNotFound: what it leaves in the
// transaction is then committed for the caller to inspect.
func wantNotFoundAndCommit(t *testing.T, s *sqlstore.Store, op func(authority.Tx) error) {
	t.Helper()
	var opErr error
	update(t, s, func(tx authority.Tx) error {
		opErr = op(tx)
		return nil
	})
	wantCode(t, opErr, credential.CodeNotFound)
}

func TestUpdateInstance(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		unset := credential.Instance{ID: "ins_a", Name: "default limit", CreatedAt: at(0)}
		limited := credential.Instance{ID: "ins_b", Name: "limited", CreatedAt: at(1), OrgTokenHourlyLimit: 250}
		update(t, s, func(tx authority.Tx) error {
			if err := tx.CreateInstance(ctx, unset); err != nil {
				return err
			}
			return tx.CreateInstance(ctx, limited)
		})

		for _, tc := range []struct {
			name string
			want credential.Instance
		}{
			{"a zero limit comes back zero", unset},
			{"a set limit comes back", limited},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := view(t, s, func(tx authority.Tx) (credential.Instance, error) { return tx.GetInstance(ctx, tc.want.ID) })
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("GetInstance (-want +got):\n%s", diff)
				}
			})
		}

		t.Run("name and limit are written, created_at is not", func(t *testing.T) {
			changed := unset
			changed.Name, changed.OrgTokenHourlyLimit = "renamed", 100
			changed.CreatedAt = at(99)
			update(t, s, func(tx authority.Tx) error { return tx.UpdateInstance(ctx, changed) })
			want := changed
			want.CreatedAt = unset.CreatedAt
			got := view(t, s, func(tx authority.Tx) ([]credential.Instance, error) { return tx.ListInstances(ctx) })
			if diff := cmp.Diff([]credential.Instance{want, limited}, got); diff != "" {
				t.Errorf("ListInstances after UpdateInstance (-want +got):\n%s", diff)
			}
		})

		t.Run("a missing instance is not found", func(t *testing.T) {
			wantCode(t, s.Update(ctx, func(tx authority.Tx) error {
				return tx.UpdateInstance(ctx, credential.Instance{ID: "ins_missing", Name: "x"})
			}), credential.CodeNotFound)
		})
	})
}

func TestDeleteCredential(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		doomed := machineKey(in.ID, "mch_1")
		kept := machineKey(in.ID, "mch_1")
		insertCredential(t, s, doomed)
		insertCredential(t, s, kept)

		tests := []struct {
			name       string
			instanceID string
			id         string
			want       credential.Code // "" for success
		}{
			{"deletes the one credential", in.ID, doomed.ID, ""},
			{"a second delete is not found", in.ID, doomed.ID, credential.CodeNotFound},
			{"another instance's credential is not found", other.ID, kept.ID, credential.CodeNotFound},
			{"a missing id is not found", in.ID, "msk_missing", credential.CodeNotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := s.Update(ctx, func(tx authority.Tx) error { return tx.DeleteCredential(ctx, tc.instanceID, tc.id) })
				if tc.want == "" && err != nil {
					t.Fatalf("DeleteCredential: %v", err)
				}
				if tc.want != "" {
					wantCode(t, err, tc.want)
				}
				left := view(t, s, func(tx authority.Tx) ([]credential.Credential, error) {
					return tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: in.ID})
				})
				if diff := cmp.Diff([]credential.Credential{kept}, left); diff != "" {
					t.Errorf("credentials left (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestUpdateCredentialAttrs(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		key := machineKey(in.ID, "mch_1")
		key.Attrs = json.RawMessage(`{"old":true}`)
		insertCredential(t, s, key)
		get := func(t *testing.T) credential.Credential {
			t.Helper()
			return view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.GetCredential(ctx, in.ID, key.ID) })
		}

		for _, tc := range []struct {
			name  string
			attrs json.RawMessage
			at    time.Time
			want  json.RawMessage
		}{
			{"attrs are replaced and updated_at set", json.RawMessage(`{"name":"ci","privileges":["read"]}`), at(10), json.RawMessage(`{"name":"ci","privileges":["read"]}`)},
			{"nil attrs become the empty object", nil, at(20), json.RawMessage(`{}`)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := get(t)
				update(t, s, func(tx authority.Tx) error { return tx.UpdateCredentialAttrs(ctx, in.ID, key.ID, tc.attrs, tc.at) })
				want := before
				want.Attrs, want.UpdatedAt = tc.want, tc.at
				if diff := cmp.Diff(want, get(t)); diff != "" {
					t.Errorf("credential after UpdateCredentialAttrs (-want +got):\n%s", diff)
				}
			})
		}

		for _, tc := range []struct {
			name       string
			instanceID string
			id         string
		}{
			{"another instance's credential is not found and unchanged", other.ID, key.ID},
			{"a missing id is not found", in.ID, "msk_missing"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := get(t)
				wantCode(t, s.Update(ctx, func(tx authority.Tx) error {
					return tx.UpdateCredentialAttrs(ctx, tc.instanceID, tc.id, json.RawMessage(`{"stolen":true}`), at(99))
				}), credential.CodeNotFound)
				if diff := cmp.Diff(before, get(t)); diff != "" {
					t.Errorf("credential changed (-before +after):\n%s", diff)
				}
			})
		}
	})
}

func TestOrganizationRoundTrip(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		org := credential.Organization{
			ID: newUUID(), InstanceID: in.ID, Slug: "acme-corp", Name: "ACME Corporation",
			CreatedAt: at(1), UpdatedAt: at(2),
		}
		update(t, s, func(tx authority.Tx) error { return tx.InsertOrganization(ctx, org) })

		t.Run("every field comes back by id and by slug", func(t *testing.T) {
			if diff := cmp.Diff(org, getOrg(t, s, in.ID, org.ID)); diff != "" {
				t.Errorf("GetOrganization (-want +got):\n%s", diff)
			}
			bySlug := view(t, s, func(tx authority.Tx) (credential.Organization, error) {
				return tx.GetOrganizationBySlug(ctx, in.ID, org.Slug)
			})
			if diff := cmp.Diff(org, bySlug); diff != "" {
				t.Errorf("GetOrganizationBySlug (-want +got):\n%s", diff)
			}
		})

		t.Run("slug, name and updated_at are written, created_at is not", func(t *testing.T) {
			changed := org
			changed.Slug, changed.Name, changed.UpdatedAt = "acme-inc", "ACME Inc.", at(5)
			changed.CreatedAt = at(99)
			update(t, s, func(tx authority.Tx) error { return tx.UpdateOrganization(ctx, changed) })
			want := changed
			want.CreatedAt = org.CreatedAt
			if diff := cmp.Diff(want, getOrg(t, s, in.ID, org.ID)); diff != "" {
				t.Errorf("after UpdateOrganization (-want +got):\n%s", diff)
			}
			wantCode(t, s.View(ctx, func(tx authority.Tx) error {
				_, err := tx.GetOrganizationBySlug(ctx, in.ID, org.Slug)
				return err
			}), credential.CodeNotFound)
		})

		missing := org
		missing.ID, missing.Slug = newUUID(), "missing"
		orphan := org
		orphan.ID, orphan.InstanceID, orphan.Slug = newUUID(), "ins_missing", "orphan"
		sameID := org
		sameID.Slug = "another-slug"
		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
			want credential.Code
		}{
			{"get of a missing id is not found", func(tx authority.Tx) error { _, err := tx.GetOrganization(ctx, in.ID, missing.ID); return err }, credential.CodeNotFound},
			{"get of a missing slug is not found", func(tx authority.Tx) error { _, err := tx.GetOrganizationBySlug(ctx, in.ID, missing.Slug); return err }, credential.CodeNotFound},
			{"update of a missing id is not found", func(tx authority.Tx) error { return tx.UpdateOrganization(ctx, missing) }, credential.CodeNotFound},
			{"delete of a missing id is not found", func(tx authority.Tx) error { return tx.DeleteOrganization(ctx, in.ID, missing.ID) }, credential.CodeNotFound},
			{"insert into a missing instance is not found", func(tx authority.Tx) error { return tx.InsertOrganization(ctx, orphan) }, credential.CodeNotFound},
			{"insert of a taken id conflicts", func(tx authority.Tx) error { return tx.InsertOrganization(ctx, sameID) }, credential.CodeConflict},
		} {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, s.Update(ctx, tc.op), tc.want) })
		}
	})
}

func TestOrganizationSlugs(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := newInstance(t, s, "a")
		b := newInstance(t, s, "b")
		acme := newOrg(t, s, a.ID, "acme", at(0))
		globex := newOrg(t, s, a.ID, "globex", at(1))
		newOrg(t, s, b.ID, "initech", at(2))

		insert := func(instanceID, slug string) func(tx authority.Tx) error {
			return func(tx authority.Tx) error {
				return tx.InsertOrganization(ctx, credential.Organization{
					ID: newUUID(), InstanceID: instanceID, Slug: slug, Name: slug, CreatedAt: at(3), UpdatedAt: at(3),
				})
			}
		}
		rename := func(o credential.Organization, slug string) func(tx authority.Tx) error {
			return func(tx authority.Tx) error {
				o.Slug, o.UpdatedAt = slug, at(4)
				return tx.UpdateOrganization(ctx, o)
			}
		}
		tests := []struct {
			name string
			op   func(tx authority.Tx) error
			want credential.Code // "" for success
		}{
			{"a slug taken in the instance conflicts", insert(a.ID, "acme"), credential.CodeConflict},
			{"a slug taken in another instance is free", insert(b.ID, "acme"), ""},
			{"slugs compare exactly, so another case is another slug", insert(a.ID, "ACME"), ""},
			{"renaming to a slug taken in the instance conflicts", rename(globex, "acme"), credential.CodeConflict},
			{"renaming to a slug taken only in another instance is allowed", rename(globex, "initech"), ""},
			{"keeping its own slug is allowed", rename(acme, "acme"), ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := view(t, s, func(tx authority.Tx) ([]credential.Organization, error) {
					orgs, _, err := tx.ListOrganizations(ctx, a.ID, 0, 0)
					return orgs, err
				})
				err := s.Update(ctx, tc.op)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("want success, got %v", err)
					}
					return
				}
				wantCode(t, err, tc.want)
				after := view(t, s, func(tx authority.Tx) ([]credential.Organization, error) {
					orgs, _, err := tx.ListOrganizations(ctx, a.ID, 0, 0)
					return orgs, err
				})
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("organizations changed by a refused write (-before +after):\n%s", diff)
				}
			})
		}
	})
}

func TestListOrganizations(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		empty := newInstance(t, s, "empty")
		// Inserted out of order; second and third share a creation time, so
		// the id (increasing with each newUUID) breaks the tie.
		second := newOrg(t, s, in.ID, "second", at(2))
		third := newOrg(t, s, in.ID, "third", at(2))
		first := newOrg(t, s, in.ID, "first", at(1))
		fourth := newOrg(t, s, in.ID, "fourth", at(3))
		elsewhere := newOrg(t, s, other.ID, "first", at(0))

		tests := []struct {
			name          string
			instanceID    string
			limit, offset int
			want          []credential.Organization
			wantTotal     int
		}{
			{"all, oldest first, id breaking ties", in.ID, 0, 0, []credential.Organization{first, second, third, fourth}, 4},
			{"a page", in.ID, 2, 1, []credential.Organization{second, third}, 4},
			{"the last, short page", in.ID, 3, 3, []credential.Organization{fourth}, 4},
			{"past the end", in.ID, 2, 10, nil, 4},
			{"a negative offset starts at the beginning", in.ID, 1, -5, []credential.Organization{first}, 4},
			{"another instance has only its own", other.ID, 0, 0, []credential.Organization{elsewhere}, 1},
			{"an instance without organizations", empty.ID, 0, 0, nil, 0},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var total int
				got := view(t, s, func(tx authority.Tx) (orgs []credential.Organization, err error) {
					orgs, total, err = tx.ListOrganizations(ctx, tc.instanceID, tc.limit, tc.offset)
					return orgs, err
				})
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("ListOrganizations (-want +got):\n%s", diff)
				}
				if total != tc.wantTotal {
					t.Errorf("total = %d, want %d", total, tc.wantTotal)
				}
			})
		}
	})
}

func TestSites(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		org := newOrg(t, s, in.ID, "acme", at(0))
		sibling := newOrg(t, s, in.ID, "sibling", at(0))
		hq := credential.Site{ID: newUUID(), InstanceID: in.ID, OrgID: org.ID, Name: "HQ", CreatedAt: at(1), UpdatedAt: at(2)}
		update(t, s, func(tx authority.Tx) error { return tx.InsertSite(ctx, hq) })
		// lab and depot share a creation time: the id breaks the tie.
		lab := newSite(t, s, org, "Lab", at(3))
		depot := newSite(t, s, org, "Depot", at(3))
		early := newSite(t, s, org, "Early", at(0))
		theirs := newSite(t, s, sibling, "Theirs", at(0))

		t.Run("every field comes back", func(t *testing.T) {
			if diff := cmp.Diff(hq, getSite(t, s, in.ID, org.ID, hq.ID)); diff != "" {
				t.Errorf("GetSite (-want +got):\n%s", diff)
			}
		})

		t.Run("list is the organization's, oldest first, id breaking ties", func(t *testing.T) {
			if diff := cmp.Diff([]credential.Site{early, hq, lab, depot}, listSites(t, s, in.ID, org.ID)); diff != "" {
				t.Errorf("ListSites (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]credential.Site{theirs}, listSites(t, s, in.ID, sibling.ID)); diff != "" {
				t.Errorf("ListSites of the sibling (-want +got):\n%s", diff)
			}
			if got := listSites(t, s, in.ID, newUUID()); len(got) != 0 {
				t.Errorf("ListSites of a missing organization = %v, want none", got)
			}
		})

		t.Run("name and updated_at are written, created_at is not", func(t *testing.T) {
			changed := lab
			changed.Name, changed.UpdatedAt, changed.CreatedAt = "Laboratory", at(9), at(99)
			update(t, s, func(tx authority.Tx) error { return tx.UpdateSite(ctx, changed) })
			want := changed
			want.CreatedAt = lab.CreatedAt
			if diff := cmp.Diff(want, getSite(t, s, in.ID, org.ID, lab.ID)); diff != "" {
				t.Errorf("after UpdateSite (-want +got):\n%s", diff)
			}
		})

		t.Run("a deleted site is gone, a second delete is not found", func(t *testing.T) {
			update(t, s, func(tx authority.Tx) error { return tx.DeleteSite(ctx, in.ID, org.ID, early.ID) })
			wantCode(t, s.View(ctx, func(tx authority.Tx) error {
				_, err := tx.GetSite(ctx, in.ID, org.ID, early.ID)
				return err
			}), credential.CodeNotFound)
			wantCode(t, s.Update(ctx, func(tx authority.Tx) error { return tx.DeleteSite(ctx, in.ID, org.ID, early.ID) }), credential.CodeNotFound)
		})

		missingOrg := hq
		missingOrg.ID, missingOrg.OrgID = newUUID(), newUUID()
		missingSite := hq
		missingSite.ID = newUUID()
		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
			want credential.Code
		}{
			{"insert into a missing organization is not found", func(tx authority.Tx) error { return tx.InsertSite(ctx, missingOrg) }, credential.CodeNotFound},
			{"insert of a taken id conflicts", func(tx authority.Tx) error { return tx.InsertSite(ctx, hq) }, credential.CodeConflict},
			{"get of a missing site is not found", func(tx authority.Tx) error { _, err := tx.GetSite(ctx, in.ID, org.ID, missingSite.ID); return err }, credential.CodeNotFound},
			{"update of a missing site is not found", func(tx authority.Tx) error { return tx.UpdateSite(ctx, missingSite) }, credential.CodeNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, s.Update(ctx, tc.op), tc.want) })
		}
	})
}

func TestSitegroups(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		org := newOrg(t, s, in.ID, "acme", at(0))
		s1 := newSite(t, s, org, "one", at(0))
		s2 := newSite(t, s, org, "two", at(0))
		s3 := newSite(t, s, org, "three", at(0))

		tests := []struct {
			name    string
			siteIDs []string
			want    []string
		}{
			{"sites come back sorted, duplicates once", []string{s3.ID, s1.ID, s3.ID}, []string{s1.ID, s3.ID}},
			{"no sites come back as an empty slice", nil, []string{}},
			{"an empty slice comes back empty", []string{}, []string{}},
		}
		var stored []credential.Sitegroup
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				g := credential.Sitegroup{
					ID: newUUID(), InstanceID: in.ID, OrgID: org.ID, Name: tc.name, SiteIDs: tc.siteIDs,
					CreatedAt: at(10 - i), UpdatedAt: at(20 + i),
				}
				update(t, s, func(tx authority.Tx) error { return tx.InsertSitegroup(ctx, g) })
				want := g
				want.SiteIDs = tc.want
				if diff := cmp.Diff(want, getSitegroup(t, s, in.ID, org.ID, g.ID)); diff != "" {
					t.Errorf("GetSitegroup (-want +got):\n%s", diff)
				}
				stored = append([]credential.Sitegroup{want}, stored...) // newest created first
			})
		}

		t.Run("list is oldest first with each one's sites", func(t *testing.T) {
			if diff := cmp.Diff(stored, listSitegroups(t, s, in.ID, org.ID)); diff != "" {
				t.Errorf("ListSitegroups (-want +got):\n%s", diff)
			}
		})

		g := stored[len(stored)-1] // the one with s1 and s3
		t.Run("update replaces name, updated_at and the sites, not created_at", func(t *testing.T) {
			changed := g
			changed.Name, changed.UpdatedAt, changed.CreatedAt = "renamed", at(50), at(99)
			changed.SiteIDs = []string{s2.ID, s2.ID, s1.ID}
			update(t, s, func(tx authority.Tx) error { return tx.UpdateSitegroup(ctx, changed) })
			want := changed
			want.CreatedAt, want.SiteIDs = g.CreatedAt, []string{s1.ID, s2.ID}
			if diff := cmp.Diff(want, getSitegroup(t, s, in.ID, org.ID, g.ID)); diff != "" {
				t.Errorf("after UpdateSitegroup (-want +got):\n%s", diff)
			}
			g = want
		})

		t.Run("update to no sites empties the set", func(t *testing.T) {
			changed := g
			changed.SiteIDs, changed.UpdatedAt = nil, at(51)
			update(t, s, func(tx authority.Tx) error { return tx.UpdateSitegroup(ctx, changed) })
			want := changed
			want.SiteIDs = []string{}
			if diff := cmp.Diff(want, getSitegroup(t, s, in.ID, org.ID, g.ID)); diff != "" {
				t.Errorf("after UpdateSitegroup (-want +got):\n%s", diff)
			}
			g = want
		})

		missingSite := credential.Sitegroup{
			ID: newUUID(), InstanceID: in.ID, OrgID: org.ID, Name: "bad",
			SiteIDs: []string{s1.ID, newUUID()}, CreatedAt: at(60), UpdatedAt: at(60),
		}
		missingOrg := missingSite
		missingOrg.OrgID, missingOrg.SiteIDs = newUUID(), nil
		badUpdate := g
		badUpdate.Name, badUpdate.UpdatedAt, badUpdate.SiteIDs = "bad", at(61), []string{s1.ID, newUUID()}
		missingGroup := g
		missingGroup.ID, missingGroup.SiteIDs = newUUID(), []string{s1.ID}
		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"insert with a missing site is not found", func(tx authority.Tx) error { return tx.InsertSitegroup(ctx, missingSite) }},
			{"insert into a missing organization is not found", func(tx authority.Tx) error { return tx.InsertSitegroup(ctx, missingOrg) }},
			{"update with a missing site is not found", func(tx authority.Tx) error { return tx.UpdateSitegroup(ctx, badUpdate) }},
			{"update of a missing sitegroup is not found", func(tx authority.Tx) error { return tx.UpdateSitegroup(ctx, missingGroup) }},
			{"get of a missing sitegroup is not found", func(tx authority.Tx) error {
				_, err := tx.GetSitegroup(ctx, in.ID, org.ID, missingGroup.ID)
				return err
			}},
			{"delete of a missing sitegroup is not found", func(tx authority.Tx) error { return tx.DeleteSitegroup(ctx, in.ID, org.ID, missingGroup.ID) }},
		} {
			t.Run(tc.name+", leaving nothing written even when committed", func(t *testing.T) {
				before, members := takeSnapshot(t, s, in.ID), rowCount(t, s, "sitegroup_sites")
				wantNotFoundAndCommit(t, s, tc.op)
				if diff := cmp.Diff(before, takeSnapshot(t, s, in.ID)); diff != "" {
					t.Errorf("instance changed (-before +after):\n%s", diff)
				}
				if n := rowCount(t, s, "sitegroup_sites"); n != members {
					t.Errorf("%d memberships, want %d", n, members)
				}
			})
		}

		t.Run("delete takes the sitegroup and its memberships, not its sites", func(t *testing.T) {
			victim := stored[0]
			membersBefore := rowCount(t, s, "sitegroup_sites")
			victim2 := newSitegroup(t, s, org, "victim", at(70), s1.ID, s2.ID)
			update(t, s, func(tx authority.Tx) error { return tx.DeleteSitegroup(ctx, in.ID, org.ID, victim2.ID) })
			update(t, s, func(tx authority.Tx) error { return tx.DeleteSitegroup(ctx, in.ID, org.ID, victim.ID) })
			wantCode(t, s.View(ctx, func(tx authority.Tx) error {
				_, err := tx.GetSitegroup(ctx, in.ID, org.ID, victim2.ID)
				return err
			}), credential.CodeNotFound)
			if n := rowCount(t, s, "sitegroup_sites"); n != membersBefore {
				t.Errorf("%d memberships, want %d", n, membersBefore)
			}
			if got := listSites(t, s, in.ID, org.ID); len(got) != 3 {
				t.Errorf("%d sites left, want 3", len(got))
			}
			if diff := cmp.Diff(stored[1:2], listSitegroups(t, s, in.ID, org.ID)[:1]); diff != "" {
				t.Errorf("remaining sitegroups (-want +got):\n%s", diff)
			}
		})
	})
}

func TestDeleteSiteLeavesItsSitegroups(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		org := newOrg(t, s, in.ID, "acme", at(0))
		doomed := newSite(t, s, org, "doomed", at(0))
		kept := newSite(t, s, org, "kept", at(1))
		both := newSitegroup(t, s, org, "both", at(2), doomed.ID, kept.ID)
		only := newSitegroup(t, s, org, "only the doomed", at(3), doomed.ID)

		update(t, s, func(tx authority.Tx) error { return tx.DeleteSite(ctx, in.ID, org.ID, doomed.ID) })

		wantBoth, wantOnly := both, only
		wantBoth.SiteIDs, wantOnly.SiteIDs = []string{kept.ID}, []string{}
		if diff := cmp.Diff([]credential.Sitegroup{wantBoth, wantOnly}, listSitegroups(t, s, in.ID, org.ID)); diff != "" {
			t.Errorf("sitegroups after DeleteSite, updated_at untouched (-want +got):\n%s", diff)
		}
		if n := rowCount(t, s, "sitegroup_sites"); n != 1 {
			t.Errorf("%d memberships, want 1", n)
		}
	})
}

func TestDeleteOrganizationCascades(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		doomed := newOrg(t, s, in.ID, "doomed", at(0))
		d1 := newSite(t, s, doomed, "d1", at(1))
		d2 := newSite(t, s, doomed, "d2", at(2))
		dg := newSitegroup(t, s, doomed, "dg", at(3), d1.ID, d2.ID)
		newSitegroup(t, s, doomed, "empty", at(4))
		kept := newOrg(t, s, in.ID, "kept", at(5))
		k1 := newSite(t, s, kept, "k1", at(6))
		kg := newSitegroup(t, s, kept, "kg", at(7), k1.ID)

		update(t, s, func(tx authority.Tx) error { return tx.DeleteOrganization(ctx, in.ID, doomed.ID) })

		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"the organization is not found", func(tx authority.Tx) error { _, err := tx.GetOrganization(ctx, in.ID, doomed.ID); return err }},
			{"its site is not found", func(tx authority.Tx) error { _, err := tx.GetSite(ctx, in.ID, doomed.ID, d1.ID); return err }},
			{"its sitegroup is not found", func(tx authority.Tx) error { _, err := tx.GetSitegroup(ctx, in.ID, doomed.ID, dg.ID); return err }},
			{"a second delete is not found", func(tx authority.Tx) error { return tx.DeleteOrganization(ctx, in.ID, doomed.ID) }},
		} {
			t.Run(tc.name, func(t *testing.T) { wantCode(t, s.Update(ctx, tc.op), credential.CodeNotFound) })
		}

		t.Run("its rows are gone, the other organization's stay", func(t *testing.T) {
			for table, want := range map[string]int{"organizations": 1, "sites": 1, "sitegroups": 1, "sitegroup_sites": 1} {
				if n := rowCount(t, s, table); n != want {
					t.Errorf("%d rows in %s, want %d", n, table, want)
				}
			}
			if diff := cmp.Diff([]credential.Site{k1}, listSites(t, s, in.ID, kept.ID)); diff != "" {
				t.Errorf("kept sites (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]credential.Sitegroup{kg}, listSitegroups(t, s, in.ID, kept.ID)); diff != "" {
				t.Errorf("kept sitegroups (-want +got):\n%s", diff)
			}
		})

		t.Run("its slug is free again", func(t *testing.T) {
			newOrg(t, s, in.ID, doomed.Slug, at(8))
		})
	})
}

// TestSitegroupsStayInTheirOrganization shows a sitegroup write naming a
// site of another organization or instance refused before it writes
// anything, even when the caller commits anyway.
func TestSitegroupsStayInTheirOrganization(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := newInstance(t, s, "a")
		b := newInstance(t, s, "b")
		orgA := newOrg(t, s, a.ID, "org-a", at(0))
		orgB := newOrg(t, s, a.ID, "org-b", at(1))
		orgElsewhere := newOrg(t, s, b.ID, "org-a", at(2))
		siteA := newSite(t, s, orgA, "a's", at(3))
		siteB := newSite(t, s, orgB, "b's", at(4))
		siteElsewhere := newSite(t, s, orgElsewhere, "elsewhere", at(5))
		groupB := newSitegroup(t, s, orgB, "b's group", at(6), siteB.ID)

		fresh := func(instanceID, orgID string, siteIDs ...string) credential.Sitegroup {
			return credential.Sitegroup{ID: newUUID(), InstanceID: instanceID, OrgID: orgID, Name: "new", SiteIDs: siteIDs, CreatedAt: at(9), UpdatedAt: at(9)}
		}
		changed := func(siteIDs ...string) credential.Sitegroup {
			g := groupB
			g.Name, g.UpdatedAt, g.SiteIDs = "changed", at(9), siteIDs
			return g
		}
		tests := []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"insert into org B with org A's site", func(tx authority.Tx) error { return tx.InsertSitegroup(ctx, fresh(a.ID, orgB.ID, siteB.ID, siteA.ID)) }},
			{"update of org B's sitegroup to org A's site", func(tx authority.Tx) error { return tx.UpdateSitegroup(ctx, changed(siteA.ID)) }},
			{"insert with another instance's site", func(tx authority.Tx) error { return tx.InsertSitegroup(ctx, fresh(a.ID, orgA.ID, siteElsewhere.ID)) }},
			{"update to another instance's site", func(tx authority.Tx) error { return tx.UpdateSitegroup(ctx, changed(siteB.ID, siteElsewhere.ID)) }},
			{"insert into another instance's organization with its site", func(tx authority.Tx) error { return tx.InsertSitegroup(ctx, fresh(b.ID, orgA.ID, siteA.ID)) }},
			{"insert naming org A's site through instance b", func(tx authority.Tx) error { return tx.InsertSitegroup(ctx, fresh(b.ID, orgElsewhere.ID, siteA.ID)) }},
		}
		for _, tc := range tests {
			t.Run(tc.name+" is not found and writes nothing", func(t *testing.T) {
				beforeA, beforeB := takeSnapshot(t, s, a.ID), takeSnapshot(t, s, b.ID)
				members := rowCount(t, s, "sitegroup_sites")
				wantNotFoundAndCommit(t, s, tc.op)
				if diff := cmp.Diff(beforeA, takeSnapshot(t, s, a.ID)); diff != "" {
					t.Errorf("instance a changed (-before +after):\n%s", diff)
				}
				if diff := cmp.Diff(beforeB, takeSnapshot(t, s, b.ID)); diff != "" {
					t.Errorf("instance b changed (-before +after):\n%s", diff)
				}
				if n := rowCount(t, s, "sitegroup_sites"); n != members {
					t.Errorf("%d memberships, want %d", n, members)
				}
			})
		}
	})
}
