package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// signingKey returns an unsaved, unretired signing key.
func signingKey(instanceID, kid string, created time.Time) credential.SigningKey {
	return credential.SigningKey{
		ID:         kid,
		InstanceID: instanceID,
		Algorithm:  "EdDSA",
		PublicKey:  []byte("public " + kid),
		Sealed:     []byte{0, 1, 0xfe, 0xff},
		CreatedAt:  created,
	}
}

func insertSigningKey(t *testing.T, s *sqlstore.Store, k credential.SigningKey) {
	t.Helper()
	update(t, s, func(tx authority.Tx) error { return tx.InsertSigningKey(context.Background(), k) })
}

func getSigningKey(t *testing.T, s *sqlstore.Store, instanceID, kid string) credential.SigningKey {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (credential.SigningKey, error) {
		return tx.GetSigningKey(context.Background(), instanceID, kid)
	})
}

func listSigningKeys(t *testing.T, s *sqlstore.Store, instanceID string) []credential.SigningKey {
	t.Helper()
	return view(t, s, func(tx authority.Tx) ([]credential.SigningKey, error) {
		return tx.ListSigningKeys(context.Background(), instanceID)
	})
}

func TestSigningKeyRoundTrip(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")

		everyField := signingKey(in.ID, "kid_every", at(1))
		everyField.Algorithm = "RS256"
		everyField.RetiredAt = at(2)
		everyField.TokensExpireAt = at(3)
		unset := signingKey(in.ID, "kid_unset", at(4))

		tests := []struct {
			name string
			key  credential.SigningKey
		}{
			{"every field comes back", everyField},
			{"zero times come back unset", unset},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				insertSigningKey(t, s, tc.key)
				if diff := cmp.Diff(tc.key, getSigningKey(t, s, in.ID, tc.key.ID)); diff != "" {
					t.Errorf("GetSigningKey (-want +got):\n%s", diff)
				}
			})
		}

		insertErrors := []struct {
			name string
			key  credential.SigningKey
			want credential.Code
		}{
			{"a duplicate kid conflicts", signingKey(in.ID, everyField.ID, at(9)), credential.CodeConflict},
			{"a kid taken by another instance conflicts", signingKey(other.ID, everyField.ID, at(9)), credential.CodeConflict},
			{"a missing instance is not found", signingKey("ins_missing", "kid_orphan", at(9)), credential.CodeNotFound},
		}
		for _, tc := range insertErrors {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.Update(ctx, func(tx authority.Tx) error { return tx.InsertSigningKey(ctx, tc.key) }), tc.want)
			})
		}

		getErrors := []struct {
			name, instanceID, kid string
		}{
			{"an unknown kid is not found", in.ID, "kid_missing"},
			{"another instance's kid is not found", other.ID, everyField.ID},
		}
		for _, tc := range getErrors {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.View(ctx, func(tx authority.Tx) error {
					_, err := tx.GetSigningKey(ctx, tc.instanceID, tc.kid)
					return err
				}), credential.CodeNotFound)
			})
		}
	})
}

func TestListSigningKeys(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		oldest := signingKey(in.ID, "kid_1", at(1))
		tiedLow := signingKey(in.ID, "kid_2", at(2))
		tiedHigh := signingKey(in.ID, "kid_3", at(2)) // same creation: id breaks the tie
		newest := signingKey(in.ID, "kid_4", at(3))
		for _, k := range []credential.SigningKey{tiedLow, newest, oldest, tiedHigh, signingKey(other.ID, "kid_5", at(4))} {
			insertSigningKey(t, s, k)
		}

		tests := []struct {
			name       string
			instanceID string
			want       []credential.SigningKey
		}{
			{"newest first, id breaking ties, only the instance's", in.ID, []credential.SigningKey{newest, tiedHigh, tiedLow, oldest}},
			{"an instance without keys has none", newInstance(t, s, "empty").ID, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, listSigningKeys(t, s, tc.instanceID)); diff != "" {
					t.Errorf("ListSigningKeys (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestRetireSigningKeys(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		retiredBefore := signingKey(in.ID, "kid_1", at(1))
		retiredBefore.RetiredAt = at(5)
		signing := signingKey(in.ID, "kid_2", at(2))
		alsoSigning := signingKey(in.ID, "kid_3", at(3))
		elsewhere := signingKey(other.ID, "kid_4", at(4))
		for _, k := range []credential.SigningKey{retiredBefore, signing, alsoSigning, elsewhere} {
			insertSigningKey(t, s, k)
		}

		update(t, s, func(tx authority.Tx) error { return tx.RetireSigningKeys(ctx, in.ID, at(10)) })
		retired := func(k credential.SigningKey) credential.SigningKey {
			k.RetiredAt = at(10)
			return k
		}

		tests := []struct {
			name       string
			instanceID string
			want       []credential.SigningKey
		}{
			{"unretired keys retire, a retired one keeps its time", in.ID, []credential.SigningKey{retired(alsoSigning), retired(signing), retiredBefore}},
			{"another instance's keys are untouched", other.ID, []credential.SigningKey{elsewhere}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, listSigningKeys(t, s, tc.instanceID)); diff != "" {
					t.Errorf("ListSigningKeys (-want +got):\n%s", diff)
				}
			})
		}

		t.Run("retiring when none is left to retire is no error", func(t *testing.T) {
			empty := newInstance(t, s, "empty")
			update(t, s, func(tx authority.Tx) error {
				return errors.Join(tx.RetireSigningKeys(ctx, in.ID, at(11)), tx.RetireSigningKeys(ctx, empty.ID, at(11)))
			})
			if diff := cmp.Diff(tests[0].want, listSigningKeys(t, s, in.ID)); diff != "" {
				t.Errorf("a second retirement changed keys (-want +got):\n%s", diff)
			}
		})
	})
}

func TestExtendSigningKey(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")

		tests := []struct {
			name     string
			initial  time.Time // tokens_expire_at before
			extendTo []time.Time
			want     time.Time
		}{
			{"an unset expiry is set", time.Time{}, []time.Time{at(10)}, at(10)},
			{"a later expiry raises it", at(10), []time.Time{at(20)}, at(20)},
			{"an earlier expiry leaves the later one", at(20), []time.Time{at(10)}, at(20)},
			{"the same expiry leaves it", at(20), []time.Time{at(20)}, at(20)},
			{"a zero expiry leaves it", at(20), []time.Time{{}}, at(20)},
			{"a zero expiry leaves an unset one unset", time.Time{}, []time.Time{{}}, time.Time{}},
			{"extensions in any order end at the max", time.Time{}, []time.Time{at(30), at(10), at(40), at(20)}, at(40)},
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				k := signingKey(in.ID, "kid_"+string(rune('a'+i)), at(1))
				k.RetiredAt, k.TokensExpireAt = at(2), tc.initial
				insertSigningKey(t, s, k)
				for _, expiresAt := range tc.extendTo {
					update(t, s, func(tx authority.Tx) error { return tx.ExtendSigningKey(ctx, in.ID, k.ID, expiresAt) })
				}
				want := k
				want.TokensExpireAt = tc.want
				if diff := cmp.Diff(want, getSigningKey(t, s, in.ID, k.ID)); diff != "" {
					t.Errorf("key after extending (-want +got):\n%s", diff)
				}
			})
		}

		mine := signingKey(in.ID, "kid_mine", at(1))
		mine.TokensExpireAt = at(5)
		insertSigningKey(t, s, mine)
		notFound := []struct {
			name, instanceID, kid string
		}{
			{"an unknown kid is not found", in.ID, "kid_missing"},
			{"another instance's kid is not found", other.ID, mine.ID},
		}
		for _, tc := range notFound {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.Update(ctx, func(tx authority.Tx) error {
					return tx.ExtendSigningKey(ctx, tc.instanceID, tc.kid, at(99))
				}), credential.CodeNotFound)
			})
		}
		if diff := cmp.Diff(mine, getSigningKey(t, s, in.ID, mine.ID)); diff != "" {
			t.Errorf("key after another instance tried to extend it (-want +got):\n%s", diff)
		}
	})
}
