package sqlstore_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// twoPostgresNodes opens two stores on the test database, as two nodes
// would; the second's sessions are named app, so CountLockWaiters tells
// them apart from every other test's.
func twoPostgresNodes(t *testing.T, app string) (node, named *sqlstore.Store) {
	t.Helper()
	url := testkit.PostgresURL(t)
	open := func(url string) *sqlstore.Store {
		s, err := sqlstore.OpenPostgres(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return open(url), open(url + sep + "application_name=" + app)
}

// awaitLockWait returns once a session named app waits on a lock, and
// fails the test if done (the waiting work's outcome) comes first.
func awaitLockWait(t *testing.T, s *sqlstore.Store, app string, done <-chan error, what string) {
	t.Helper()
	waiting := make(chan struct{})
	go func() {
		defer close(waiting)
		for {
			n, err := sqlstore.CountLockWaiters(context.Background(), s, app)
			if err != nil || n > 0 {
				return
			}
			runtime.Gosched()
		}
	}()
	select {
	case err := <-done:
		t.Fatalf("%s (%v) without waiting for the lock", what, err)
	case <-waiting:
	}
}
