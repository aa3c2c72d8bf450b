package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/sqlstore"
)

// The checkpointer, not the COMMITs, copies the WAL back into the database
// file: once it has run after the last commit, that file alone (without
// its WAL) holds every committed write.
func TestTheCheckpointerCopiesEveryCommitIntoTheDatabaseFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
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
	for run := range runs {
		if run.Err != nil {
			t.Fatalf("checkpoint: %v", run.Err)
		}
		if run.Commits >= last && run.Log == run.Checkpointed {
			break
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
