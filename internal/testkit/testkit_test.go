package testkit_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func TestClock(t *testing.T) {
	c := testkit.NewClock()
	if got := c.Now(); !got.Equal(testkit.ClockStart) || !got.Equal(got.Truncate(time.Millisecond)) {
		t.Fatalf("NewClock().Now() = %v, want %v on a whole millisecond", got, testkit.ClockStart)
	}
	if got, want := c.Advance(90*time.Second), testkit.ClockStart.Add(90*time.Second); !got.Equal(want) || !c.Now().Equal(want) {
		t.Errorf("after Advance: %v and Now() %v, want %v", got, c.Now(), want)
	}
	later := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Set(later)
	if !c.Now().Equal(later) {
		t.Errorf("after Set: Now() = %v, want %v", c.Now(), later)
	}

	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { c.Advance(time.Millisecond); c.Now() })
	}
	wg.Wait()
	if got, want := c.Now(), later.Add(100*time.Millisecond); !got.Equal(want) {
		t.Errorf("after concurrent Advance: %v, want %v", got, want)
	}
}

func TestOpenSQLiteAt(t *testing.T) {
	s, path := testkit.OpenSQLiteAt(t)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestOpenPostgresSkipsWithoutURL(t *testing.T) {
	t.Setenv(testkit.DatabaseURLEnv, "")
	var skipped bool
	t.Run("postgres", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		testkit.OpenPostgres(t)
	})
	if !skipped {
		t.Error("OpenPostgres did not skip without " + testkit.DatabaseURLEnv)
	}
}

func TestEachStoreRunsEveryEngine(t *testing.T) {
	var ran []string
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) { ran = append(ran, s.Dialect()) })
	want := 1
	if os.Getenv(testkit.DatabaseURLEnv) != "" {
		want = 2
	}
	if len(ran) != want || ran[0] != "sqlite" {
		t.Errorf("EachStore ran %v, want sqlite first and %d engine(s)", ran, want)
	}
	if got := len(testkit.Stores()); got != 2 {
		t.Errorf("Stores() has %d engines, want 2", got)
	}
}
