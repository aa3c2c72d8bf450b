package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// actorToken returns an unsaved pending actor token with a fresh id and
// digest, expiring an hour after created.
func actorToken(instanceID, userID string, created time.Time) credential.ActorToken {
	var d credential.Digest
	rand.Read(d[:])
	return credential.ActorToken{
		ID:                 credential.NewID("act_", created),
		InstanceID:         instanceID,
		UserID:             userID,
		Actor:              json.RawMessage(`{"sub":"usr_admin"}`),
		Status:             credential.ActorPending,
		Digest:             d,
		ExpiresAt:          created.Add(time.Hour),
		SessionMaxDuration: 1800,
		CreatedAt:          created,
		UpdatedAt:          created,
	}
}

func insertActorToken(t *testing.T, s *sqlstore.Store, a credential.ActorToken) credential.ActorToken {
	t.Helper()
	update(t, s, func(tx authority.Tx) error { return tx.InsertActorToken(context.Background(), a) })
	return a
}

func getActorToken(t *testing.T, s *sqlstore.Store, instanceID, id string) credential.ActorToken {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (credential.ActorToken, error) {
		return tx.GetActorToken(context.Background(), instanceID, id)
	})
}

// transition runs TransitionActorToken in its own write transaction.
func transition(t *testing.T, s *sqlstore.Store, instanceID, id, from, to string, at, notExpiredAt time.Time) bool {
	t.Helper()
	var ok bool
	update(t, s, func(tx authority.Tx) error {
		var err error
		ok, err = tx.TransitionActorToken(context.Background(), instanceID, id, from, to, at, notExpiredAt)
		return err
	})
	return ok
}

func impersonationSession(a credential.ActorToken, started time.Time) credential.ImpersonationSession {
	return credential.ImpersonationSession{
		ID:           credential.NewID("sess_", started),
		InstanceID:   a.InstanceID,
		ActorTokenID: a.ID,
		UserID:       a.UserID,
		Actor:        a.Actor,
		StartedAt:    started,
		ExpiresAt:    started.Add(time.Duration(a.SessionMaxDuration) * time.Second),
	}
}

func getImpersonationSession(t *testing.T, s *sqlstore.Store, instanceID, id string) credential.ImpersonationSession {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (credential.ImpersonationSession, error) {
		return tx.GetImpersonationSession(context.Background(), instanceID, id)
	})
}

func actorTokenIDs(as []credential.ActorToken) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func TestActorTokenRoundTrip(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		a := actorToken(in.ID, "usr_1", at(1))
		// Spacing, key order, escapes and non-ASCII survive byte for byte.
		a.Actor = json.RawMessage(`{ "sub":"usr_admin",  "iss" : "https://ex.ample/ü", "n":[1,2.50],"s":"\u00e9\"" }`)
		a.Status = credential.ActorAccepted
		a.ExpiresAt, a.SessionMaxDuration, a.UpdatedAt = at(3601), 7200, at(2)
		insertActorToken(t, s, a)

		t.Run("every field comes back by id and by digest", func(t *testing.T) {
			if diff := cmp.Diff(a, getActorToken(t, s, in.ID, a.ID)); diff != "" {
				t.Errorf("GetActorToken (-want +got):\n%s", diff)
			}
			byDigest := view(t, s, func(tx authority.Tx) (credential.ActorToken, error) {
				return tx.ActorTokenByDigest(ctx, a.Digest)
			})
			if diff := cmp.Diff(a, byDigest); diff != "" {
				t.Errorf("ActorTokenByDigest (-want +got):\n%s", diff)
			}
		})

		t.Run("a nil actor is stored as the empty object", func(t *testing.T) {
			b := actorToken(in.ID, "usr_2", at(3))
			b.Actor = nil
			insertActorToken(t, s, b)
			if got := getActorToken(t, s, in.ID, b.ID).Actor; string(got) != `{}` {
				t.Errorf("Actor = %s, want {}", got)
			}
		})

		var missingDigest credential.Digest
		rand.Read(missingDigest[:])
		sameID := actorToken(in.ID, "usr_3", at(4))
		sameID.ID = a.ID
		sameDigest := actorToken(other.ID, "usr_3", at(4)) // digests are unique across instances
		sameDigest.Digest = a.Digest
		noInstance := actorToken("ins_missing", "usr_3", at(4))
		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
			want credential.Code
		}{
			{"get of a missing id is not found", func(tx authority.Tx) error {
				_, err := tx.GetActorToken(ctx, in.ID, credential.NewID("act_", at(5)))
				return err
			}, credential.CodeNotFound},
			{"lookup of a missing digest is not found", func(tx authority.Tx) error {
				_, err := tx.ActorTokenByDigest(ctx, missingDigest)
				return err
			}, credential.CodeNotFound},
			{"insert of a taken id conflicts", func(tx authority.Tx) error { return tx.InsertActorToken(ctx, sameID) }, credential.CodeConflict},
			{"insert of a taken digest conflicts", func(tx authority.Tx) error { return tx.InsertActorToken(ctx, sameDigest) }, credential.CodeConflict},
			{"insert into a missing instance is not found", func(tx authority.Tx) error { return tx.InsertActorToken(ctx, noInstance) }, credential.CodeNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.Update(ctx, tc.op), tc.want)
				if diff := cmp.Diff(a, getActorToken(t, s, in.ID, a.ID)); diff != "" {
					t.Errorf("token changed (-before +after):\n%s", diff)
				}
				for _, instanceID := range []string{in.ID, other.ID} {
					_, total := listActorTokens(t, s, instanceID, "usr_3", "", 0, 0)
					if total != 0 {
						t.Errorf("instance %s has %d tokens of usr_3, want none", instanceID, total)
					}
				}
			})
		}
	})
}

func listActorTokens(t *testing.T, s *sqlstore.Store, instanceID, userID, status string, limit, offset int) ([]credential.ActorToken, int) {
	t.Helper()
	var page []credential.ActorToken
	var total int
	err := s.View(context.Background(), func(tx authority.Tx) error {
		var err error
		page, total, err = tx.ListActorTokens(context.Background(), instanceID, userID, status, limit, offset)
		return err
	})
	if err != nil {
		t.Fatalf("ListActorTokens: %v", err)
	}
	return page, total
}

func TestListActorTokens(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		mk := func(userID, status string, created time.Time) credential.ActorToken {
			a := actorToken(in.ID, userID, created)
			a.Status = status
			return insertActorToken(t, s, a)
		}
		// NewID increases with each call, so of two tokens created in the
		// same millisecond the later one has the greater id and comes first.
		p1 := mk("usr_1", credential.ActorPending, at(1))
		a1 := mk("usr_1", credential.ActorAccepted, at(2))
		p2 := mk("usr_2", credential.ActorPending, at(2))
		r1 := mk("usr_1", credential.ActorRevoked, at(3))
		p1b := mk("usr_1", credential.ActorPending, at(4))
		insertActorToken(t, s, actorToken(other.ID, "usr_1", at(5)))

		for _, tc := range []struct {
			name           string
			userID, status string
			limit, offset  int
			want           []credential.ActorToken
			wantTotal      int
		}{
			{"everything comes newest first, ties by id descending", "", "", 0, 0, []credential.ActorToken{p1b, r1, p2, a1, p1}, 5},
			{"a user filter keeps that user's", "usr_1", "", 0, 0, []credential.ActorToken{p1b, r1, a1, p1}, 4},
			{"a status filter keeps that status", "", credential.ActorPending, 0, 0, []credential.ActorToken{p1b, p2, p1}, 3},
			{"both filters combine", "usr_1", credential.ActorPending, 0, 0, []credential.ActorToken{p1b, p1}, 2},
			{"a limit cuts the page, not the total", "", "", 2, 0, []credential.ActorToken{p1b, r1}, 5},
			{"an offset skips", "", "", 2, 2, []credential.ActorToken{p2, a1}, 5},
			{"an offset without a limit gives the rest", "", "", 0, 3, []credential.ActorToken{a1, p1}, 5},
			{"an offset past the end gives an empty page", "", "", 2, 9, nil, 5},
			{"an unknown user has none", "usr_9", "", 0, 0, nil, 0},
			{"an unknown status has none", "", "expired", 0, 0, nil, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				page, total := listActorTokens(t, s, in.ID, tc.userID, tc.status, tc.limit, tc.offset)
				if diff := cmp.Diff(tc.want, page); diff != "" {
					t.Errorf("page (-want +got):\n%s", diff)
				}
				if total != tc.wantTotal {
					t.Errorf("total = %d, want %d", total, tc.wantTotal)
				}
			})
		}
	})
}

func TestTransitionActorToken(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		expires := at(100)
		type call struct {
			instanceID   string // "" for the token's own
			from, to     string
			notExpiredAt time.Time
			want         bool
		}
		pending, accepted, revoked := credential.ActorPending, credential.ActorAccepted, credential.ActorRevoked
		for _, tc := range []struct {
			name       string
			status     string
			calls      []call
			wantStatus string
		}{
			{"a pending token is accepted once", pending, []call{
				{"", pending, accepted, at(50), true},
				{"", pending, accepted, at(50), false},
			}, accepted},
			{"a zero notExpiredAt ignores the expiry", pending, []call{{"", pending, accepted, time.Time{}, true}}, accepted},
			{"an expired ticket stays pending", pending, []call{{"", pending, accepted, at(150), false}}, pending},
			{"a ticket at its expiry instant is expired", pending, []call{{"", pending, accepted, expires, false}}, pending},
			{"a ticket a millisecond before its expiry is accepted", pending, []call{
				{"", pending, accepted, expires.Add(-time.Millisecond), true},
			}, accepted},
			{"a pending token is revoked", pending, []call{{"", pending, revoked, time.Time{}, true}}, revoked},
			{"a revoked token is not accepted", revoked, []call{{"", pending, accepted, at(50), false}}, revoked},
			{"an accepted token is not accepted again", accepted, []call{{"", pending, accepted, at(50), false}}, accepted},
			{"another instance's id is not moved", pending, []call{{other.ID, pending, accepted, at(50), false}}, pending},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := actorToken(in.ID, "usr_1", at(0))
				a.Status, a.ExpiresAt = tc.status, expires
				insertActorToken(t, s, a)
				want := a
				for i, c := range tc.calls {
					instanceID := c.instanceID
					if instanceID == "" {
						instanceID = in.ID
					}
					moveAt := at(60 + i)
					if got := transition(t, s, instanceID, a.ID, c.from, c.to, moveAt, c.notExpiredAt); got != c.want {
						t.Errorf("call %d: TransitionActorToken = %v, want %v", i, got, c.want)
					}
					if c.want {
						want.Status, want.UpdatedAt = c.to, moveAt
					}
				}
				if want.Status != tc.wantStatus {
					t.Fatalf("test case: status %q after the calls, want %q", want.Status, tc.wantStatus)
				}
				if diff := cmp.Diff(want, getActorToken(t, s, in.ID, a.ID)); diff != "" {
					t.Errorf("stored token (-want +got):\n%s", diff)
				}
			})
		}

		t.Run("a missing id is not moved", func(t *testing.T) {
			if transition(t, s, in.ID, credential.NewID("act_", at(1)), pending, accepted, at(60), at(50)) {
				t.Error("TransitionActorToken = true, want false")
			}
		})
	})
}

// TestTransitionActorTokenConcurrently redeems one ticket from many
// transactions at once: exactly one may win.
func TestTransitionActorTokenConcurrently(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		a := insertActorToken(t, s, actorToken(in.ID, "usr_1", at(0)))

		const n = 100
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			won   = make([]bool, n)
			errs  = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = s.Update(ctx, func(tx authority.Tx) error {
					var err error
					won[i], err = tx.TransitionActorToken(ctx, in.ID, a.ID, credential.ActorPending, credential.ActorAccepted, at(10+i), at(5))
					return err
				})
			})
		}
		close(start)
		wg.Wait()

		winners := 0
		winner := -1
		for i := range n {
			if errs[i] != nil {
				t.Errorf("goroutine %d: %v", i, errs[i])
			}
			if won[i] {
				winners++
				winner = i
			}
		}
		if winners != 1 {
			t.Fatalf("%d transactions moved the token, want exactly 1", winners)
		}
		got := getActorToken(t, s, in.ID, a.ID)
		if got.Status != credential.ActorAccepted || !got.UpdatedAt.Equal(at(10+winner)) {
			t.Errorf("stored token has status %q, updated_at %v; want %q, %v (the winner's)",
				got.Status, got.UpdatedAt, credential.ActorAccepted, at(10+winner))
		}
	})
}

func TestImpersonationSessions(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		a := insertActorToken(t, s, actorToken(in.ID, "usr_1", at(0)))
		sess := impersonationSession(a, at(1))
		sess.Actor = json.RawMessage(`{"sub":"usr_admin" , "x":"ü"}`)
		update(t, s, func(tx authority.Tx) error { return tx.InsertImpersonationSession(ctx, sess) })

		t.Run("every field comes back, revoked_at unset", func(t *testing.T) {
			if diff := cmp.Diff(sess, getImpersonationSession(t, s, in.ID, sess.ID)); diff != "" {
				t.Errorf("GetImpersonationSession (-want +got):\n%s", diff)
			}
		})

		t.Run("a session inserted revoked keeps its revoked_at", func(t *testing.T) {
			revoked := impersonationSession(a, at(2))
			revoked.RevokedAt = at(3)
			update(t, s, func(tx authority.Tx) error { return tx.InsertImpersonationSession(ctx, revoked) })
			if diff := cmp.Diff(revoked, getImpersonationSession(t, s, in.ID, revoked.ID)); diff != "" {
				t.Errorf("GetImpersonationSession (-want +got):\n%s", diff)
			}
		})

		noInstance := impersonationSession(a, at(2))
		noInstance.InstanceID = "ins_missing"
		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
			want credential.Code
		}{
			{"insert of a taken id conflicts", func(tx authority.Tx) error { return tx.InsertImpersonationSession(ctx, sess) }, credential.CodeConflict},
			{"insert into a missing instance is not found", func(tx authority.Tx) error { return tx.InsertImpersonationSession(ctx, noInstance) }, credential.CodeNotFound},
			{"get of a missing id is not found", func(tx authority.Tx) error {
				_, err := tx.GetImpersonationSession(ctx, in.ID, credential.NewID("sess_", at(2)))
				return err
			}, credential.CodeNotFound},
			{"revoke of a missing id is not found", func(tx authority.Tx) error {
				return tx.RevokeImpersonationSession(ctx, in.ID, credential.NewID("sess_", at(2)), at(3))
			}, credential.CodeNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.Update(ctx, tc.op), tc.want)
				if diff := cmp.Diff(sess, getImpersonationSession(t, s, in.ID, sess.ID)); diff != "" {
					t.Errorf("session changed (-before +after):\n%s", diff)
				}
			})
		}

		t.Run("a session is revoked once; the second revoke is not found", func(t *testing.T) {
			update(t, s, func(tx authority.Tx) error { return tx.RevokeImpersonationSession(ctx, in.ID, sess.ID, at(5)) })
			want := sess
			want.RevokedAt = at(5)
			if diff := cmp.Diff(want, getImpersonationSession(t, s, in.ID, sess.ID)); diff != "" {
				t.Errorf("after revoke (-want +got):\n%s", diff)
			}
			wantCode(t, s.Update(ctx, func(tx authority.Tx) error {
				return tx.RevokeImpersonationSession(ctx, in.ID, sess.ID, at(6))
			}), credential.CodeNotFound)
			if diff := cmp.Diff(want, getImpersonationSession(t, s, in.ID, sess.ID)); diff != "" {
				t.Errorf("the second revoke changed the session (-want +got):\n%s", diff)
			}
		})
	})
}

// TestActorTokenTenantIsolation shows that another instance's ids are not
// found, not moved and not revoked, and that nothing of the owner changes.
func TestActorTokenTenantIsolation(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := newInstance(t, s, "a")
		b := newInstance(t, s, "b")
		tok := insertActorToken(t, s, actorToken(a.ID, "usr_1", at(0)))
		tokB := insertActorToken(t, s, actorToken(b.ID, "usr_1", at(0)))
		sess := impersonationSession(tok, at(1))
		update(t, s, func(tx authority.Tx) error { return tx.InsertImpersonationSession(ctx, sess) })

		type state struct {
			Tokens  []credential.ActorToken
			Session credential.ImpersonationSession
		}
		snap := func() state {
			t.Helper()
			page, _ := listActorTokens(t, s, a.ID, "", "", 0, 0)
			return state{page, getImpersonationSession(t, s, a.ID, sess.ID)}
		}
		before := snap()

		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"get actor token", func(tx authority.Tx) error { _, err := tx.GetActorToken(ctx, b.ID, tok.ID); return err }},
			{"get impersonation session", func(tx authority.Tx) error { _, err := tx.GetImpersonationSession(ctx, b.ID, sess.ID); return err }},
			{"revoke impersonation session", func(tx authority.Tx) error { return tx.RevokeImpersonationSession(ctx, b.ID, sess.ID, at(9)) }},
		} {
			t.Run(tc.name+" is not found", func(t *testing.T) {
				wantCode(t, s.Update(ctx, tc.op), credential.CodeNotFound)
			})
		}

		t.Run("transitions and lists of another instance see nothing", func(t *testing.T) {
			for _, to := range []string{credential.ActorAccepted, credential.ActorRevoked} {
				if transition(t, s, b.ID, tok.ID, credential.ActorPending, to, at(9), time.Time{}) {
					t.Errorf("TransitionActorToken to %s through b = true, want false", to)
				}
			}
			page, total := listActorTokens(t, s, b.ID, "", "", 0, 0)
			if diff := cmp.Diff([]credential.ActorToken{tokB}, page); diff != "" || total != 1 {
				t.Errorf("ListActorTokens(b) = %v, %d; want only b's own (-want +got):\n%s", actorTokenIDs(page), total, diff)
			}
		})

		t.Run("a digest finds its token whatever the instance", func(t *testing.T) {
			for _, want := range []credential.ActorToken{tok, tokB} {
				got := view(t, s, func(tx authority.Tx) (credential.ActorToken, error) { return tx.ActorTokenByDigest(ctx, want.Digest) })
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ActorTokenByDigest (-want +got):\n%s", diff)
				}
			}
		})

		if diff := cmp.Diff(before, snap()); diff != "" {
			t.Errorf("instance a changed (-before +after):\n%s", diff)
		}
	})
}
