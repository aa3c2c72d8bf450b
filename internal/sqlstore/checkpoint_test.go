package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/sqlstore"
)

// openSQLiteFile opens a SQLite store in a file of its own, closed when
// the test ends, and returns the file's path.
func openSQLiteFile(t *testing.T) (*sqlstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlstore.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// The checkpointer, not the COMMITs, copies the WAL back into the database
// file: once it has run after the last commit, that file alone (without
// its WAL) holds every committed write.
func TestTheCheckpointerCopiesEveryCommitIntoTheDatabaseFile(t *testing.T) {
	ctx := context.Background()
	s, path := openSQLiteFile(t)
	runs := sqlstore.WatchCheckpoints(s)
	in := newInstance(t, s, "a")
	// Concurrent writers, so some commits carry a batch.
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				insertCredential(t, s, machineKey(in.ID, fmt.Sprintf("m%d-%d", w, i)))
			}
		})
	}
	wg.Wait()

	last := sqlstore.CheckpointerCommits(s)
	timeout := time.After(time.Minute)
wait:
	for {
		select {
		case run := <-runs:
			if run.Err != nil {
				t.Fatalf("checkpoint: %v", run.Err)
			}
			if run.Commits >= last && run.Log == run.Checkpointed {
				break wait
			}
		case <-timeout:
			t.Fatal("no checkpoint copied the whole WAL after the last commit")
		}
	}

	// A copy of the database file, without the WAL beside it.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(copied, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", copied)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM credentials WHERE instance_id = ?", in.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != writers*each {
		t.Errorf("the database file holds %d of the %d committed credentials", n, writers*each)
	}
}

// A stream of batches never leaves the writer idle between a COMMIT and the
// next BEGIN, which is when SQLite starts the WAL over; the committer's
// checkpoint between batches still has it started over, long before the
// writer's backstop, however long the stream runs.
func TestTheWALStaysBoundedUnderAStreamOfWrites(t *testing.T) {
	ctx := context.Background()
	s, path := openSQLiteFile(t)
	in := newInstance(t, s, "a")
	const writers, each = 16, 1000
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		largest int64
	)
	// Readers all along, as cache misses are: each holds a snapshot, which
	// the WAL cannot start over under.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	probe := machineKey(in.ID, "probe")
	insertCredential(t, s, probe)
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.CredentialByDigest(ctx, probe.Digest); err != nil {
					t.Errorf("read: %v", err)
					return
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				insertCredential(t, s, machineKey(in.ID, fmt.Sprintf("m%d-%d", w, i)))
				if fi, err := os.Stat(path + "-wal"); err == nil {
					mu.Lock()
					largest = max(largest, fi.Size())
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	t.Logf("largest WAL %d bytes", largest)
	if bound := int64(sqlstore.WALSizeBound); largest > bound {
		t.Errorf("the WAL grew to %d bytes; want it started over before %d", largest, bound)
	}
}
