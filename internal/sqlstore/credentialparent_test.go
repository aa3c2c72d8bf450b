package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// pat returns an unsaved personal access token of subject bound within
// parentID ("" for none), with a fresh digest.
func pat(instanceID, id, subject, parentID string, created time.Time) credential.Credential {
	secret := credential.MustGenerate(credential.KindPAT)
	var d credential.Digest
	rand.Read(d[:])
	return credential.Credential{
		ID: id, InstanceID: instanceID, Kind: credential.KindPAT, Digest: d,
		DisplayPrefix: secret.DisplayPrefix(), Subject: subject, ParentID: parentID,
		CreatedAt: created, UpdatedAt: created, Attrs: json.RawMessage(`{"scopes":["read"]}`),
	}
}

func TestCredentialParentRoundTrip(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		for _, tc := range []struct {
			name string
			c    credential.Credential
		}{
			{"a set parent comes back", pat(in.ID, "pat_bound", "usr_1", "ws_1", at(1))},
			{"no parent comes back empty", pat(in.ID, "pat_unbound", "usr_1", "", at(2))},
		} {
			t.Run(tc.name, func(t *testing.T) {
				insertCredential(t, s, tc.c)
				byID := view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.GetCredential(ctx, in.ID, tc.c.ID) })
				if diff := cmp.Diff(tc.c, byID); diff != "" {
					t.Errorf("GetCredential (-want +got):\n%s", diff)
				}
				byDigest := view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.CredentialByDigest(ctx, tc.c.Digest) })
				if diff := cmp.Diff(tc.c, byDigest); diff != "" {
					t.Errorf("CredentialByDigest (-want +got):\n%s", diff)
				}
				listed := view(t, s, func(tx authority.Tx) ([]credential.Credential, error) {
					return tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: in.ID, Kind: credential.KindPAT, Subject: "usr_1"})
				})
				if diff := cmp.Diff(tc.c, listed[len(listed)-1]); diff != "" {
					t.Errorf("ListCredentials (-want +got):\n%s", diff)
				}
				paged, _ := pageCredentials(t, s, authority.CredentialQuery{InstanceID: in.ID, Kind: credential.KindPAT, Limit: 1})
				if diff := cmp.Diff([]credential.Credential{tc.c}, paged); diff != "" {
					t.Errorf("PageCredentials (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestPageCredentialsByParent(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		u1ws1 := pat(in.ID, "pat_1", "usr_1", "ws_1", at(1))
		u2ws1 := pat(in.ID, "pat_2", "usr_2", "ws_1", at(2))
		u1ws2 := pat(in.ID, "pat_3", "usr_1", "ws_2", at(3))
		u1none := pat(in.ID, "pat_4", "usr_1", "", at(4))
		revoked := pat(in.ID, "pat_5", "usr_2", "ws_1", at(5))
		revoked.RevokedAt, revoked.RevocationReason, revoked.UpdatedAt = at(6), "leaked", at(6)
		machine := machineKey(in.ID, "mch_1")
		machine.ParentID, machine.CreatedAt = "ws_1", at(7) // another kind with the same parent
		elsewhere := pat(other.ID, "pat_6", "usr_1", "ws_1", at(8))
		for _, c := range []credential.Credential{u1ws1, u2ws1, u1ws2, u1none, revoked, machine, elsewhere} {
			insertCredential(t, s, c)
		}

		tests := []struct {
			name      string
			q         authority.CredentialQuery
			want      []credential.Credential
			wantTotal int
		}{
			{"no parent matches every parent and none", authority.CredentialQuery{}, []credential.Credential{revoked, u1none, u1ws2, u2ws1, u1ws1}, 5},
			{"one parent, every subject", authority.CredentialQuery{ParentID: "ws_1"}, []credential.Credential{revoked, u2ws1, u1ws1}, 3},
			{"one parent and subject", authority.CredentialQuery{ParentID: "ws_1", Subject: "usr_1"}, []credential.Credential{u1ws1}, 1},
			{"one parent, unrevoked", authority.CredentialQuery{ParentID: "ws_1", Revoked: ptr(false)}, []credential.Credential{u2ws1, u1ws1}, 2},
			{"a page of one parent", authority.CredentialQuery{ParentID: "ws_1", Limit: 1, Offset: 1}, []credential.Credential{u2ws1}, 3},
			{"an unknown parent matches nothing", authority.CredentialQuery{ParentID: "ws_none"}, nil, 0},
			{"another kind with the parent", authority.CredentialQuery{Kind: credential.KindMachineKey, ParentID: "ws_1"}, []credential.Credential{machine}, 1},
			{"another instance sees only its own", authority.CredentialQuery{InstanceID: other.ID, ParentID: "ws_1"}, []credential.Credential{elsewhere}, 1},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if tc.q.InstanceID == "" {
					tc.q.InstanceID = in.ID
				}
				if tc.q.Kind == "" {
					tc.q.Kind = credential.KindPAT
				}
				got, total := pageCredentials(t, s, tc.q)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("PageCredentials (-want +got):\n%s", diff)
				}
				if total != tc.wantTotal {
					t.Errorf("total = %d, want %d", total, tc.wantTotal)
				}
			})
		}
	})
}

func TestRevokeMatching(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		// The same credentials (subjects, parents and kinds) in another
		// instance, which no case may touch. Ids are unique across instances,
		// so each instance's carry its id.
		other := newInstance(t, s, "other")
		seed := func(t *testing.T, instanceID string) map[string]credential.Credential {
			t.Helper()
			id := func(name string) string { return name + "_" + instanceID }
			already := pat(instanceID, id("pat_revoked"), "usr_1", "ws_1", at(1))
			already.RevokedAt, already.RevocationReason, already.UpdatedAt = at(2), "rotated", at(2)
			machine := machineKey(instanceID, "usr_1")
			machine.ID, machine.ParentID = id("msk_1"), "ws_1"
			cs := map[string]credential.Credential{
				"u1ws1":   pat(instanceID, id("pat_u1ws1"), "usr_1", "ws_1", at(1)),
				"u1ws2":   pat(instanceID, id("pat_u1ws2"), "usr_1", "ws_2", at(1)),
				"u1none":  pat(instanceID, id("pat_u1none"), "usr_1", "", at(1)),
				"u2ws1":   pat(instanceID, id("pat_u2ws1"), "usr_2", "ws_1", at(1)),
				"already": already,
				"machine": machine, // another kind, same subject and parent
			}
			for _, c := range cs {
				insertCredential(t, s, c)
			}
			return cs
		}
		seed(t, other.ID)
		otherBefore := takeSnapshot(t, s, other.ID)

		tests := []struct {
			name string
			q    authority.CredentialQuery
			want []string // keys of the credentials revoked
		}{
			{"by subject revokes the user's in every parent and none", authority.CredentialQuery{Subject: "usr_1"}, []string{"u1ws1", "u1ws2", "u1none"}},
			{"by parent revokes every user's in it", authority.CredentialQuery{ParentID: "ws_1"}, []string{"u1ws1", "u2ws1"}},
			{"by subject and parent revokes the user's in it", authority.CredentialQuery{Subject: "usr_1", ParentID: "ws_1"}, []string{"u1ws1"}},
			{"by kind alone revokes every unrevoked one of the kind", authority.CredentialQuery{}, []string{"u1ws1", "u1ws2", "u1none", "u2ws1"}},
			{"state and page fields do not narrow it", authority.CredentialQuery{Subject: "usr_1", Limit: 1, Revoked: ptr(true)}, []string{"u1ws1", "u1ws2", "u1none"}},
			{"another kind revokes only that kind", authority.CredentialQuery{Kind: credential.KindMachineKey, ParentID: "ws_1"}, []string{"machine"}},
			{"an unknown parent revokes nothing", authority.CredentialQuery{ParentID: "ws_none"}, nil},
			{"an unknown subject revokes nothing", authority.CredentialQuery{Subject: "usr_none"}, nil},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				in := newInstance(t, s, fmt.Sprintf("case %d", i))
				cs := seed(t, in.ID)
				tc.q.InstanceID = in.ID
				if tc.q.Kind == "" {
					tc.q.Kind = credential.KindPAT
				}

				var n int
				update(t, s, func(tx authority.Tx) (err error) {
					n, err = tx.RevokeMatching(ctx, tc.q, at(10), "workspace left")
					return err
				})
				if n != len(tc.want) {
					t.Errorf("revoked %d, want %d", n, len(tc.want))
				}
				want := make(map[string]credential.Credential, len(cs))
				for _, c := range cs {
					want[c.ID] = c
				}
				for _, key := range tc.want {
					c := cs[key]
					c.RevokedAt, c.RevocationReason, c.UpdatedAt = at(10), "workspace left", at(10)
					want[c.ID] = c
				}
				got := make(map[string]credential.Credential)
				for _, c := range takeSnapshot(t, s, in.ID).Credentials {
					got[c.ID] = c
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("credentials after RevokeMatching (-want +got):\n%s", diff)
				}

				// Never re-revokes: a second run finds nothing to do.
				update(t, s, func(tx authority.Tx) (err error) {
					n, err = tx.RevokeMatching(ctx, tc.q, at(20), "again")
					return err
				})
				if n != 0 {
					t.Errorf("second run revoked %d, want 0", n)
				}
				got = make(map[string]credential.Credential)
				for _, c := range takeSnapshot(t, s, in.ID).Credentials {
					got[c.ID] = c
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("credentials after the second run, first revocations kept (-want +got):\n%s", diff)
				}

				if diff := cmp.Diff(otherBefore, takeSnapshot(t, s, other.ID)); diff != "" {
					t.Errorf("another instance changed (-before +after):\n%s", diff)
				}
			})
		}

		for _, tc := range []struct {
			name string
			q    authority.CredentialQuery
		}{
			{"no kind is invalid", authority.CredentialQuery{InstanceID: other.ID, Subject: "usr_1"}},
			{"no instance is invalid", authority.CredentialQuery{Kind: credential.KindPAT, Subject: "usr_1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.Update(ctx, func(tx authority.Tx) error {
					_, err := tx.RevokeMatching(ctx, tc.q, at(30), "x")
					return err
				}), credential.CodeInvalid)
				if diff := cmp.Diff(otherBefore, takeSnapshot(t, s, other.ID)); diff != "" {
					t.Errorf("instance changed (-before +after):\n%s", diff)
				}
			})
		}
	})
}
