package sqlstore

import (
	"context"

	"github.com/keyward/keyward/internal/authority"
)

// RowCount counts every row of table, whatever its instance, so tests can
// see what a cascade left behind where no Tx method reads.
func RowCount(ctx context.Context, s *Store, table string) (int, error) {
	var n int
	err := s.reader.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n)
	return n, err
}

// CommitStats returns how many group-commit transactions committed and
// how many Update closures they carried.
func CommitStats(s *Store) (batches, closures int64) { return s.CommitCounts() }

// CarefulBatches returns how many batches ran again with a savepoint
// around each closure, after one of them failed.
func CarefulBatches(s *Store) int64 { return s.committer.careful.Load() }

// WaitingUpdates returns how many Update calls are queued or running in
// the group committer.
func WaitingUpdates(s *Store) int64 {
	if s.committer == nil {
		return 0
	}
	return s.committer.waiting.Load()
}

// ExecInTx runs raw SQL inside an Update closure's transaction, for tests
// that need what no Tx method does (a deferred constraint).
func ExecInTx(ctx context.Context, t authority.Tx, query string, args ...any) error {
	_, err := t.(*tx).exec(ctx, query, args...)
	return err
}

// Exec runs a statement on the writer outside any Tx, as someone editing
// the database behind keyward's back would.
func Exec(ctx context.Context, s *Store, query string, args ...any) error {
	_, err := s.writer.ExecContext(ctx, s.d.rebind(query), args...)
	return err
}

// ReaderCacheKiB is the page cache budget of a SQLite read connection, in
// KiB (SQLite reports a KiB budget as a negative cache_size).
func ReaderCacheKiB(ctx context.Context, s *Store) (int, error) {
	var n int
	err := s.reader.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&n)
	return -n, err
}

// CountLockWaiters counts the PostgreSQL sessions named application
// (application_name) waiting for a lock.
func CountLockWaiters(ctx context.Context, s *Store, application string) (int, error) {
	var n int
	err := s.writer.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
		WHERE application_name = $1 AND wait_event_type = 'Lock'`, application).Scan(&n)
	return n, err
}

// Checkpoint is one run of a SQLite store's checkpointer: how many commits
// had told it before it began, the WAL's frames and how many of them were
// in the database file when it ended.
type Checkpoint struct {
	Commits           int64
	Log, Checkpointed int
	Err               error
}

// WatchCheckpoints reports each run of s's checkpointer from now on (runs
// beyond 64 unread are dropped). Call it before s's first Update: the
// committer's queue orders it before the checkpointer reads it.
func WatchCheckpoints(s *Store) <-chan Checkpoint {
	runs := make(chan Checkpoint, 64)
	s.checkpoints.ran = func(r checkpointResult, err error) {
		select {
		case runs <- Checkpoint{Commits: r.commits, Log: r.log, Checkpointed: r.checkpointed, Err: err}:
		default:
		}
	}
	return runs
}

// CheckpointerCommits is how many commits have told s's checkpointer.
func CheckpointerCommits(s *Store) int64 { return s.checkpoints.commits.Load() }

// WALSizeBound is the most the WAL file should hold: three times the size
// at which the committer has it started over, well before the writer's
// backstop (writerCheckpointPages).
const WALSizeBound = 3 * restartFrames * (4096 + 24)
