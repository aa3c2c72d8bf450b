package sqlstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/testkit/contract"
)

func namedTake(key string, limit, cost int64, alg authority.LimitAlgorithm) authority.LimitTake {
	return authority.LimitTake{Key: key, Limit: limit, Cost: cost, Window: time.Hour, Algorithm: alg}
}

// Three nodes sharing one database: 100 concurrent calls against limits
// of 50 and 70 admit exactly 50, and the table holds exactly 50 on each.
func TestTakeAllExactOnThreeNodes(t *testing.T) {
	stores, db := sharedSchema(t, 3)
	nodes := make([]authority.Limiter, len(stores))
	for i, s := range stores {
		nodes[i] = s.Limiter()
	}
	contract.TestTakeAllExact(t, nodes)
	rows, err := db.Query("SELECT count FROM limit_windows WHERE count > 0 ORDER BY key")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var counts []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts = append(counts, n)
	}
	if len(counts) != 2 || counts[0] != 50 || counts[1] != 50 {
		t.Fatalf("stored counts %v, want [50 50]", counts)
	}
}

// A refused call, and a call that only reads, roll back: no row is left,
// not even the empty rows the locking upsert made.
func TestTakeAllLeavesNoRowsWhenNothingCounts(t *testing.T) {
	l, db := limiterOn(t)
	now := at(0)
	full := namedTake("full", 1, 1, authority.LimitFixed)
	if ok, _, err := l.TakeAll(context.Background(), now, []authority.LimitTake{full}); err != nil || !ok {
		t.Fatalf("first call: (%v, %v)", ok, err)
	}
	for _, takes := range [][]authority.LimitTake{
		{namedTake("other", 5, 1, authority.LimitSliding), full},
		{namedTake("read", 5, 0, authority.LimitSliding), namedTake("read2", 5, 0, authority.LimitFixed)},
	} {
		if _, _, err := l.TakeAll(context.Background(), now, takes); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM limit_windows").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d rows, want 1 (full's window)", n)
	}
}

// Two nodes naming the same limits in opposite orders: the rows are
// locked in one order whatever the call's, so no call fails and the
// counts are exact.
func TestTakeAllOpposingOrdersOnTwoNodes(t *testing.T) {
	stores, _ := sharedSchema(t, 2)
	now := at(0)
	a, b, c := namedTake("a", 120, 1, authority.LimitSliding), namedTake("b", 1000, 1, authority.LimitFixed), namedTake("c", 1000, 2, authority.LimitSliding)
	orders := [][]authority.LimitTake{{a, b, c}, {c, b, a}, {b, a}, {c, a}}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for w := range 8 {
		l := stores[w%2].Limiter()
		takes := orders[w%len(orders)]
		wg.Go(func() {
			for range 20 {
				ok, _, err := l.TakeAll(context.Background(), now, takes)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if admitted != 120 {
		t.Fatalf("%d of 160 calls admitted, want 120 (a's limit)", admitted)
	}
	ok, states, err := stores[0].Limiter().TakeAll(context.Background(), now,
		[]authority.LimitTake{namedTake("a", 120, 0, authority.LimitSliding)})
	if err != nil || !ok || states[0].Remaining != 0 {
		t.Fatalf("a after the race: (%v, %+v, %v), want remaining 0", ok, states, err)
	}
}

// Windows are deleted once no call can need them (keep_until, a window
// after they end for a sliding previous window), a minute's grace on.
func TestTakeAllDeletesExpiredWindows(t *testing.T) {
	l, db := limiterOn(t)
	sec := func(key string) authority.LimitTake {
		return authority.LimitTake{Key: key, Limit: 5, Cost: 1, Window: time.Second, Algorithm: authority.LimitSliding}
	}
	take := func(now time.Time, key string) {
		t.Helper()
		if _, _, err := l.TakeAll(context.Background(), now, []authority.LimitTake{sec(key)}); err != nil {
			t.Fatal(err)
		}
	}
	keysStored := func() []string {
		t.Helper()
		rows, err := db.Query("SELECT DISTINCT key FROM limit_windows ORDER BY key")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var keys []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		return keys
	}
	take(at(0), "old")  // sweeps nothing; the next sweep is due at 60 s
	take(at(61), "mid") // due: old, kept until 2 s, is within the grace; next due at 121 s
	if got := keysStored(); len(got) != 2 || got[0] != "mid" || got[1] != "old" {
		t.Fatalf("keys stored at 61 s: %v, want [mid old]", got)
	}
	take(at(125), "new") // due: deletes what was kept until before 65 s
	if got := keysStored(); len(got) != 1 || got[0] != "new" {
		t.Fatalf("keys stored at 125 s: %v, want [new]", got)
	}
}
