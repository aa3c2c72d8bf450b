package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// sharedSchema creates a fresh schema on the server named by
// KEYWARD_TEST_DATABASE_URL (skipping the test when it is unset) and
// returns n stores opened on it, as n nodes sharing one database would
// be, and a plain connection pool on it for looking at the rows.
func sharedSchema(t *testing.T, n int) ([]*sqlstore.Store, *sql.DB) {
	t.Helper()
	base := os.Getenv(testkit.DatabaseURLEnv)
	if base == "" {
		t.Skip(testkit.DatabaseURLEnv + " is not set; skipping the PostgreSQL limiter")
	}
	ctx := context.Background()
	b := make([]byte, 8)
	rand.Read(b)
	schema := "kw_lim_" + hex.EncodeToString(b)

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	stores := make([]*sqlstore.Store, n)
	for i := range stores {
		s, err := sqlstore.OpenPostgres(ctx, u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return stores, db
}

// limiterOn returns the PostgreSQL limiter of a fresh schema and a pool on
// that schema.
func limiterOn(t *testing.T) (authority.Limiter, *sql.DB) {
	t.Helper()
	stores, db := sharedSchema(t, 1)
	l := stores[0].Limiter()
	if l == nil {
		t.Fatal("Limiter() on PostgreSQL is nil")
	}
	return l, db
}

// storedCount is the stored count of key's window starting at start, or -1
// when there is no such row.
func storedCount(t *testing.T, db *sql.DB, key string, start time.Time) int {
	t.Helper()
	var n int
	err := db.QueryRow("SELECT count FROM rate_windows WHERE key = $1 AND window_start = $2",
		key, start.UnixMilli()).Scan(&n)
	if err == sql.ErrNoRows {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func take(t *testing.T, l authority.Limiter, key string, limit int, start, end time.Time) (bool, int) {
	t.Helper()
	ok, n, err := l.Take(context.Background(), key, limit, start, end)
	if err != nil {
		t.Fatalf("Take(%q): %v", key, err)
	}
	return ok, n
}

func TestLimiterIsNilOnSQLite(t *testing.T) {
	if l := testkit.OpenSQLite(t).Limiter(); l != nil {
		t.Fatalf("Limiter() on SQLite = %T, want nil", l)
	}
}

func TestLimiterAdmitsExactlyLimit(t *testing.T) {
	l, db := limiterOn(t)
	start, end := at(0), at(60)
	const limit = 10
	for i := 1; i <= limit+5; i++ {
		ok, n := take(t, l, "k", limit, start, end)
		switch {
		case i <= limit && (!ok || n != i):
			t.Fatalf("call %d: (%v, %d), want (true, %d)", i, ok, n, i)
		case i > limit && (ok || n != limit):
			t.Fatalf("call %d: (%v, %d), want (false, %d)", i, ok, n, limit)
		}
	}
	if n := storedCount(t, db, "k", start); n != limit {
		t.Fatalf("stored count %d, want %d: refused calls must not count", n, limit)
	}
}

func TestLimiterNoLimitAdmitsAndCounts(t *testing.T) {
	l, db := limiterOn(t)
	for i := 1; i <= 20; i++ {
		if ok, n := take(t, l, "free", 0, at(0), at(1)); !ok || n != i {
			t.Fatalf("call %d: (%v, %d), want (true, %d)", i, ok, n, i)
		}
	}
	if ok, n := take(t, l, "free", -1, at(0), at(1)); !ok || n != 21 {
		t.Fatalf("negative limit: (%v, %d), want (true, 21)", ok, n)
	}
	if n := storedCount(t, db, "free", at(0)); n != 21 {
		t.Fatalf("stored count %d, want 21", n)
	}
}

func TestLimiterConcurrentCallsNeverOverAdmit(t *testing.T) {
	l, db := limiterOn(t)
	const (
		limit   = 5000
		calls   = 5008
		workers = 32
	)
	start, end := at(0), at(3600)
	var (
		admitted, refused atomic.Int64
		next              atomic.Int64
		seen              [limit + 1]atomic.Int32 // how often each count was returned for an admitted call
		wg                sync.WaitGroup
		errs              = make(chan error, workers)
	)
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= calls {
				ok, n, err := l.Take(context.Background(), "hot", limit, start, end)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					admitted.Add(1)
					if n >= 1 && n <= limit {
						seen[n].Add(1)
					}
				} else {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if admitted.Load() != limit || refused.Load() != calls-limit {
		t.Fatalf("admitted %d, refused %d; want %d and %d", admitted.Load(), refused.Load(), limit, calls-limit)
	}
	for n := 1; n <= limit; n++ {
		if c := seen[n].Load(); c != 1 {
			t.Fatalf("count %d returned to %d admitted calls, want exactly 1", n, c)
		}
	}
	if n := storedCount(t, db, "hot", start); n != limit {
		t.Fatalf("stored count %d, want %d", n, limit)
	}
}

func TestLimiterTwoNodesShareTheCount(t *testing.T) {
	stores, db := sharedSchema(t, 2)
	a, b := stores[0].Limiter(), stores[1].Limiter()
	start, end := at(0), at(60)

	// Alternating nodes: the count is one, whichever node is asked.
	for i := 1; i <= 6; i++ {
		l := a
		if i%2 == 0 {
			l = b
		}
		ok, n := take(t, l, "shared", 5, start, end)
		if want := i <= 5; ok != want || n != min(i, 5) {
			t.Fatalf("call %d: (%v, %d), want (%v, %d)", i, ok, n, want, min(i, 5))
		}
	}

	// Both nodes at once, each with eight callers.
	const limit = 300
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		l := []authority.Limiter{a, b}[w%2]
		wg.Go(func() {
			for range 25 {
				ok, _, err := l.Take(context.Background(), "race", limit, start, end)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != limit {
		t.Fatalf("two nodes admitted %d of 400 calls, want %d", admitted.Load(), limit)
	}
	if n := storedCount(t, db, "race", start); n != limit {
		t.Fatalf("stored count %d, want %d", n, limit)
	}
}

func TestLimiterWindowsAndKeysAreIndependent(t *testing.T) {
	l, _ := limiterOn(t)
	for range 3 {
		take(t, l, "a", 3, at(0), at(60))
	}
	if ok, n := take(t, l, "a", 3, at(0), at(60)); ok || n != 3 {
		t.Fatalf("full window: (%v, %d), want (false, 3)", ok, n)
	}
	if ok, n := take(t, l, "a", 3, at(60), at(120)); !ok || n != 1 {
		t.Fatalf("next window: (%v, %d), want (true, 1)", ok, n)
	}
	if ok, n := take(t, l, "b", 3, at(0), at(60)); !ok || n != 1 {
		t.Fatalf("another key: (%v, %d), want (true, 1)", ok, n)
	}
	// A late call for the earlier window still counts against it.
	if ok, n := take(t, l, "a", 4, at(0), at(60)); !ok || n != 4 {
		t.Fatalf("late call, raised limit: (%v, %d), want (true, 4)", ok, n)
	}
	// Keys are compared exactly.
	if ok, n := take(t, l, "A", 3, at(0), at(60)); !ok || n != 1 {
		t.Fatalf("key differing in case: (%v, %d), want (true, 1)", ok, n)
	}
}

func TestLimiterDeletesExpiredWindows(t *testing.T) {
	l, db := limiterOn(t)
	minute := func(m int) time.Time { return at(60 * m) }
	take(t, l, "k1", 10, minute(0), minute(0).Add(time.Second)) // sweeps (nothing); next due at 1m

	take(t, l, "k2", 10, minute(2), minute(2).Add(time.Second)) // sweeps windows ended before 1m; next at 3m
	if n := storedCount(t, db, "k1", minute(0)); n != -1 {
		t.Fatalf("window ended over a minute ago still stored (count %d)", n)
	}
	if n := storedCount(t, db, "k2", minute(2)); n != 1 {
		t.Fatalf("current window: count %d, want 1", n)
	}

	// Within a minute of the last sweep nothing is swept, even a window
	// that has long ended (written late).
	take(t, l, "late", 10, minute(1), minute(1).Add(time.Second))
	take(t, l, "k3", 10, minute(2).Add(59*time.Second), minute(3))
	if n := storedCount(t, db, "late", minute(1)); n != 1 {
		t.Fatalf("a sweep ran within a minute of the last one")
	}

	take(t, l, "k4", 10, minute(3), minute(4)) // due: sweeps windows ended before 2m
	if n := storedCount(t, db, "late", minute(1)); n != -1 {
		t.Fatalf("expired late window still stored")
	}
	for _, k := range []struct {
		key   string
		start time.Time
	}{{"k2", minute(2)}, {"k3", minute(2).Add(59 * time.Second)}, {"k4", minute(3)}} {
		if n := storedCount(t, db, k.key, k.start); n != 1 {
			t.Fatalf("%s: count %d, want 1 (ended less than a minute ago)", k.key, n)
		}
	}
	var rows int
	if err := db.QueryRow("SELECT COUNT(*) FROM rate_windows").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 3 {
		t.Fatalf("%d windows stored, want 3", rows)
	}
}

func TestLimiterRejectsBadCalls(t *testing.T) {
	l, _ := limiterOn(t)
	if _, _, err := l.Take(context.Background(), "k", 1, at(1), at(1)); err == nil {
		t.Fatal("empty window accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := l.Take(ctx, "k", 1, at(0), at(1)); err == nil {
		t.Fatal("cancelled context accepted")
	}
}
