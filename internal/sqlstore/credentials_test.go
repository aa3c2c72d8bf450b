package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func ptr[T any](v T) *T { return &v }

// storedKey returns an unsaved machine key with the given id, subject and
// times; zero times stay unset.
func storedKey(instanceID, id, subject string, created, expires, revoked time.Time) credential.Credential {
	c := machineKey(instanceID, subject)
	c.ID, c.CreatedAt, c.UpdatedAt, c.ExpiresAt = id, created, created, expires
	if !revoked.IsZero() {
		c.RevokedAt, c.RevocationReason, c.UpdatedAt = revoked, "rotated", revoked
	}
	return c
}

func pageCredentials(t *testing.T, s *sqlstore.Store, q authority.CredentialQuery) ([]credential.Credential, int) {
	t.Helper()
	var total int
	page := view(t, s, func(tx authority.Tx) (cs []credential.Credential, err error) {
		cs, total, err = tx.PageCredentials(context.Background(), q)
		return cs, err
	})
	return page, total
}

func TestPageCredentials(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		now := at(100)
		never := time.Time{}

		live := storedKey(in.ID, "msk_1", "mch_1", at(1), never, never)
		future := storedKey(in.ID, "msk_2", "mch_1", at(2), at(200), never)
		boundary := storedKey(in.ID, "msk_3", "mch_2", at(3), now, never) // expires exactly at now
		past := storedKey(in.ID, "msk_4", "mch_2", at(4), at(50), at(60))
		revokedLive := storedKey(in.ID, "msk_5", "mch_1", at(5), never, at(6))
		justAfter := storedKey(in.ID, "msk_6", "mch_2", at(5), now.Add(time.Millisecond), never) // same creation as revokedLive: id breaks the tie
		admin := storedKey(in.ID, "key_1", "mch_1", at(7), never, never)
		admin.Kind = credential.KindAdminKey
		elsewhere := storedKey(other.ID, "msk_7", "mch_1", at(8), never, never)
		for _, c := range []credential.Credential{revokedLive, justAfter, live, future, boundary, past, admin, elsewhere} {
			insertCredential(t, s, c)
		}
		all := []credential.Credential{justAfter, revokedLive, past, boundary, future, live}

		tests := []struct {
			name      string
			q         authority.CredentialQuery
			want      []credential.Credential
			wantTotal int
		}{
			{"every state of the kind, newest first, id breaking ties", authority.CredentialQuery{}, all, 6},
			{"revoked only", authority.CredentialQuery{Revoked: ptr(true)}, []credential.Credential{revokedLive, past}, 2},
			{"unrevoked only", authority.CredentialQuery{Revoked: ptr(false)}, []credential.Credential{justAfter, boundary, future, live}, 4},
			{"expired at now, expiring exactly at now included", authority.CredentialQuery{Expired: ptr(true), Now: now}, []credential.Credential{past, boundary}, 2},
			{"unexpired at now, no expiry included", authority.CredentialQuery{Expired: ptr(false), Now: now}, []credential.Credential{justAfter, revokedLive, future, live}, 4},
			{"now between milliseconds sees the same", authority.CredentialQuery{Expired: ptr(true), Now: now.Add(500 * time.Microsecond)}, []credential.Credential{past, boundary}, 2},
			{"expiring strictly after, no expiry excluded", authority.CredentialQuery{ExpiresAfter: now}, []credential.Credential{justAfter, future}, 2},
			{"expiring exactly at the bound excluded", authority.CredentialQuery{ExpiresAfter: now.Add(time.Millisecond)}, []credential.Credential{future}, 1},
			{"one subject", authority.CredentialQuery{Subject: "mch_2"}, []credential.Credential{justAfter, past, boundary}, 3},
			{"active: unrevoked and unexpired", authority.CredentialQuery{Revoked: ptr(false), Expired: ptr(false), Now: now}, []credential.Credential{justAfter, future, live}, 3},
			{"revoked and expired", authority.CredentialQuery{Revoked: ptr(true), Expired: ptr(true), Now: now}, []credential.Credential{past}, 1},
			{"active of one subject", authority.CredentialQuery{Subject: "mch_1", Revoked: ptr(false), Expired: ptr(false), Now: now}, []credential.Credential{future, live}, 2},
			{"unexpired and expiring after", authority.CredentialQuery{Expired: ptr(false), Now: now, ExpiresAfter: at(150)}, []credential.Credential{future}, 1},
			{"first page", authority.CredentialQuery{Limit: 2}, all[:2], 6},
			{"middle page", authority.CredentialQuery{Limit: 2, Offset: 2}, all[2:4], 6},
			{"page of a filter", authority.CredentialQuery{Revoked: ptr(false), Limit: 1, Offset: 1}, []credential.Credential{boundary}, 4},
			{"past the end", authority.CredentialQuery{Limit: 2, Offset: 10}, nil, 6},
			{"no match", authority.CredentialQuery{Subject: "mch_none"}, nil, 0},
			{"another kind", authority.CredentialQuery{Kind: credential.KindAdminKey}, []credential.Credential{admin}, 1},
			{"another instance sees only its own", authority.CredentialQuery{InstanceID: other.ID}, []credential.Credential{elsewhere}, 1},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if tc.q.InstanceID == "" {
					tc.q.InstanceID = in.ID
				}
				if tc.q.Kind == "" {
					tc.q.Kind = credential.KindMachineKey
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

		invalid := []struct {
			name string
			q    authority.CredentialQuery
		}{
			{"no kind is invalid", authority.CredentialQuery{InstanceID: in.ID}},
			{"expired without now is invalid", authority.CredentialQuery{InstanceID: in.ID, Kind: credential.KindMachineKey, Expired: ptr(false)}},
		}
		for _, tc := range invalid {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.View(ctx, func(tx authority.Tx) error {
					_, _, err := tx.PageCredentials(ctx, tc.q)
					return err
				}), credential.CodeInvalid)
			})
		}
	})
}

func TestRevokeCredentialsOf(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		never := time.Time{}

		first := storedKey(in.ID, "msk_1", "mch_1", at(1), at(500), never)
		second := storedKey(in.ID, "msk_2", "mch_1", at(2), never, never)
		already := storedKey(in.ID, "msk_3", "mch_1", at(3), never, at(4))
		otherSubject := storedKey(in.ID, "msk_4", "mch_2", at(4), never, never)
		otherKind := storedKey(in.ID, "mtk_1", "mch_1", at(5), never, never)
		otherKind.Kind = credential.KindM2MToken
		elsewhere := storedKey(other.ID, "msk_5", "mch_1", at(6), never, never)
		for _, c := range []credential.Credential{first, second, already, otherSubject, otherKind, elsewhere} {
			insertCredential(t, s, c)
		}

		steps := []struct {
			name       string
			instanceID string
			kind       credential.Kind
			subject    string
			at         time.Time
			want       int
		}{
			{"revokes the subject's unrevoked credentials of the kind", in.ID, credential.KindMachineKey, "mch_1", at(10), 2},
			{"revokes nothing the second time", in.ID, credential.KindMachineKey, "mch_1", at(11), 0},
			{"revokes nothing for an unknown subject", in.ID, credential.KindMachineKey, "mch_none", at(12), 0},
			{"revokes nothing of a subject only another instance has", other.ID, credential.KindMachineKey, "mch_2", at(13), 0},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				var n int
				update(t, s, func(tx authority.Tx) (err error) {
					n, err = tx.RevokeCredentialsOf(ctx, step.instanceID, step.kind, step.subject, step.at, "machine deleted")
					return err
				})
				if n != step.want {
					t.Errorf("revoked %d, want %d", n, step.want)
				}
			})
		}

		revoked := func(c credential.Credential) credential.Credential {
			c.RevokedAt, c.RevocationReason, c.UpdatedAt = at(10), "machine deleted", at(10)
			return c
		}
		wantIn := []credential.Credential{revoked(first), revoked(second), already, otherSubject, otherKind}
		gotIn := view(t, s, func(tx authority.Tx) ([]credential.Credential, error) {
			return tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: in.ID})
		})
		if diff := cmp.Diff(wantIn, gotIn); diff != "" {
			t.Errorf("credentials after revocation (-want +got):\n%s", diff)
		}
		gotOther := view(t, s, func(tx authority.Tx) ([]credential.Credential, error) {
			return tx.ListCredentials(ctx, authority.CredentialFilter{InstanceID: other.ID})
		})
		if diff := cmp.Diff([]credential.Credential{elsewhere}, gotOther); diff != "" {
			t.Errorf("another instance's credentials (-want +got):\n%s", diff)
		}
	})
}

func TestTouchCredentials(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		use := func(c credential.Credential, at time.Time) authority.Usage {
			return authority.Usage{InstanceID: c.InstanceID, CredentialID: c.ID, At: at}
		}

		tests := []struct {
			name    string
			initial time.Time // last_used_at before
			batches func(c credential.Credential) [][]authority.Usage
			want    time.Time
		}{
			{"an unset time is set", time.Time{}, func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{use(c, at(10))}}
			}, at(10)},
			{"a newer time raises it", at(50), func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{use(c, at(60))}}
			}, at(60)},
			{"an older time leaves the newer one", at(50), func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{use(c, at(20))}}
			}, at(50)},
			{"the same time leaves it", at(50), func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{use(c, at(50))}}
			}, at(50)},
			{"two batches newest first end at the max", time.Time{}, func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{use(c, at(30))}, {use(c, at(20))}}
			}, at(30)},
			{"two batches oldest first end at the max", time.Time{}, func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{use(c, at(20))}, {use(c, at(30))}}
			}, at(30)},
			{"repeats in one batch end at the max", time.Time{}, func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{use(c, at(30)), use(c, at(40)), use(c, at(20))}}
			}, at(40)},
			{"an unknown id is ignored and the rest applied", time.Time{}, func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{{InstanceID: in.ID, CredentialID: "msk_missing", At: at(9)}, use(c, at(5))}}
			}, at(5)},
			{"the id under another instance is untouched", at(50), func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{{InstanceID: other.ID, CredentialID: c.ID, At: at(90)}}}
			}, at(50)},
			{"a zero time is skipped", at(50), func(c credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{{use(c, time.Time{})}}
			}, at(50)},
			{"an empty batch does nothing", at(50), func(credential.Credential) [][]authority.Usage {
				return [][]authority.Usage{nil, {}}
			}, at(50)},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := storedKey(in.ID, fmt.Sprintf("msk_%02d", i), "mch_1", at(1), time.Time{}, time.Time{})
				c.LastUsedAt = tc.initial
				insertCredential(t, s, c)
				for _, batch := range tc.batches(c) {
					update(t, s, func(tx authority.Tx) error { return tx.TouchCredentials(ctx, batch) })
				}
				want := c
				want.LastUsedAt = tc.want // and updated_at unchanged
				got := view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.GetCredential(ctx, in.ID, c.ID) })
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("credential after touching (-want +got):\n%s", diff)
				}
			})
		}

		t.Run("concurrent batches in opposite orders all commit and end at the max", func(t *testing.T) {
			const rows, writers = 20, 16
			keys := make([]credential.Credential, rows)
			for r := range keys {
				keys[r] = storedKey(in.ID, fmt.Sprintf("msk_concurrent_%02d", r), "mch_1", at(1), time.Time{}, time.Time{})
				insertCredential(t, s, keys[r])
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for i := range writers {
				batch := make([]authority.Usage, rows)
				for r, k := range keys {
					batch[r] = use(k, at(100+i))
				}
				if i%2 == 1 { // half the writers lock rows in the opposite order, if the store lets them
					slices.Reverse(batch)
				}
				wg.Go(func() { errs <- s.Update(ctx, func(tx authority.Tx) error { return tx.TouchCredentials(ctx, batch) }) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			for _, k := range keys {
				got := view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.GetCredential(ctx, in.ID, k.ID) })
				if want := at(100 + writers - 1); !got.LastUsedAt.Equal(want) {
					t.Errorf("%s last used %v, want %v", k.ID, got.LastUsedAt, want)
				}
			}
		})
	})
}

func TestSetCredentialSubject(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		c := storedKey(in.ID, "ak_1", "user_a", at(1), time.Time{}, time.Time{})
		c.Kind = credential.KindAPIKey
		insertCredential(t, s, c)

		if err := s.Update(ctx, func(tx authority.Tx) error {
			return tx.SetCredentialSubject(ctx, in.ID, c.ID, "org_b", at(5))
		}); err != nil {
			t.Fatal(err)
		}
		got := view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.GetCredential(ctx, in.ID, c.ID) })
		if got.Subject != "org_b" || !got.UpdatedAt.Equal(at(5)) || !got.CreatedAt.Equal(c.CreatedAt) {
			t.Fatalf("after the move: subject %q, updated %v", got.Subject, got.UpdatedAt)
		}
		if page, total := pageCredentials(t, s, authority.CredentialQuery{InstanceID: in.ID, Kind: credential.KindAPIKey, Subject: "org_b"}); total != 1 || page[0].ID != c.ID {
			t.Fatalf("the new subject lists %v", page)
		}
		for name, instanceID := range map[string]string{"an unknown id": in.ID, "another instance's credential": other.ID} {
			t.Run(name, func(t *testing.T) {
				id := c.ID
				if instanceID == in.ID {
					id = "ak_none"
				}
				wantCode(t, s.Update(ctx, func(tx authority.Tx) error {
					return tx.SetCredentialSubject(ctx, instanceID, id, "user_x", at(6))
				}), credential.CodeNotFound)
			})
		}
		if got := view(t, s, func(tx authority.Tx) (credential.Credential, error) { return tx.GetCredential(ctx, in.ID, c.ID) }); got.Subject != "org_b" {
			t.Fatalf("a refused move changed the subject to %q", got.Subject)
		}
	})
}

// A credential locked by one node's change makes another node's lock of
// it wait until that change commits, so two read-modify-writes of one
// credential's controls cannot lose either's update.
func TestALockedCredentialMakesAnotherNodesLockWait(t *testing.T) {
	ctx := context.Background()
	app := "kw_lock_" + credential.NewID("t", t0)
	node, other := twoPostgresNodes(t, app)
	update(t, node, func(tx authority.Tx) error {
		return tx.CreateInstance(ctx, credential.Instance{ID: "ins_lock", Name: "lock", CreatedAt: t0})
	})
	c := machineKey("ins_lock", "mch_lock")
	update(t, node, func(tx authority.Tx) error { return tx.InsertCredential(ctx, c) })

	locked, release, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the stores close, which waits for the batch
	go func() {
		held <- node.Update(ctx, func(tx authority.Tx) error {
			if _, err := tx.LockCredential(ctx, "ins_lock", c.ID); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	second := make(chan error, 1)
	go func() {
		second <- other.Update(ctx, func(tx authority.Tx) error {
			_, err := tx.LockCredential(ctx, "ins_lock", c.ID)
			return err
		})
	}()
	awaitLockWait(t, node, app, second, "the other node locked the credential while a change held it")
	letGo()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
}
