package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// A series over several credentials sums their counts per bucket and
// outcome, in (start, outcome) order, whether the ids fit one statement or
// span several (more than 500 ids); nil is every credential, empty none.
func TestVerificationSeriesOfSeveralCredentials(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		const n = 1200
		var counts []authority.VerificationCount
		var ids []string
		for i := range n {
			id := fmt.Sprintf("ak_%04d", i)
			ids = append(ids, id)
			counts = append(counts,
				authority.VerificationCount{InstanceID: in.ID, CredentialID: id, Outcome: authority.ReasonValid, Minute: 0, Count: 1},
				authority.VerificationCount{InstanceID: in.ID, CredentialID: id, Outcome: authority.ReasonRevoked, Minute: 3_600_000, Count: 2})
		}
		counts = append(counts, authority.VerificationCount{InstanceID: in.ID, CredentialID: "", Outcome: authority.ReasonNotFound, Minute: 0, Count: 7})
		if err := s.Update(ctx, func(tx authority.Tx) error { return tx.AddVerificationCounts(ctx, counts) }); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			ids  []string
			want []authority.VerificationBucket
		}{
			{"one_credential", ids[:1], []authority.VerificationBucket{{Start: 0, Outcome: authority.ReasonValid, Count: 1}, {Start: 3_600_000, Outcome: authority.ReasonRevoked, Count: 2}}},
			{"ids_in_one_statement", ids[:300], []authority.VerificationBucket{{Start: 0, Outcome: authority.ReasonValid, Count: 300}, {Start: 3_600_000, Outcome: authority.ReasonRevoked, Count: 600}}},
			{"ids_over_several_statements", ids, []authority.VerificationBucket{{Start: 0, Outcome: authority.ReasonValid, Count: n}, {Start: 3_600_000, Outcome: authority.ReasonRevoked, Count: 2 * n}}},
			{"nil_is_every_credential", nil, []authority.VerificationBucket{{Start: 0, Outcome: authority.ReasonNotFound, Count: 7}, {Start: 0, Outcome: authority.ReasonValid, Count: n}, {Start: 3_600_000, Outcome: authority.ReasonRevoked, Count: 2 * n}}},
			{"empty_is_none", []string{}, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				var got []authority.VerificationBucket
				err := s.View(ctx, func(tx authority.Tx) error {
					var err error
					got, err = tx.VerificationSeries(ctx, authority.VerificationQuery{InstanceID: in.ID, CredentialIDs: c.ids, From: 0, To: 7_200_000, Width: 3_600_000})
					return err
				})
				if err != nil || !slices.Equal(got, c.want) {
					t.Fatalf("%v %v, want %v", got, err, c.want)
				}
			})
		}
	})
}
