package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints off the commit path. SQLite's automatic checkpoint runs
// inside the COMMIT that grows the WAL past its threshold (1000 pages):
// that COMMIT copies the WAL's pages back into the database file and
// fsyncs it before it returns, so the batch it ends waits for all of that
// before its callers are answered, and every write queued behind the batch
// waits too. Under a burst of creates that was an eighth of the server's
// CPU, all of it on the one writer's path.
//
// Instead a goroutine with a connection of its own runs a PASSIVE
// checkpoint, which never waits for the writer or a reader, once commits
// have happened since the last one, at most once per checkpointEvery, and
// the writer's threshold is raised to writerCheckpointPages. The writer
// still checkpoints at that threshold, for a reason: SQLite starts the WAL
// over only when a write begins with every frame already copied, and under
// a stream of batches the checkpointer never finishes between one batch's
// COMMIT and the next one's BEGIN, so without the writer's own the WAL
// would only grow. By then the checkpointer has copied all but its last
// few tens of milliseconds of frames, so the writer's checkpoint is a small
// part of what it was. Durability does not change: a COMMIT is durable
// once its WAL frames are fsynced (synchronous=FULL), and the checkpoint
// connection fsyncs the database file before SQLite may reuse the WAL.

// checkpointEvery bounds how often the checkpointer runs: at a burst's
// write rate that is about the WAL growth SQLite's own threshold let
// through between checkpoints; a lone write is checkpointed at most this
// long after it committed.
const checkpointEvery = 50 * time.Millisecond

// writerCheckpointPages is the writer's wal_autocheckpoint, in pages (16
// MiB of WAL at 4 KiB pages; SQLite's default is 1000): the COMMIT that
// grows the WAL past it copies what the checkpointer has not yet, so the
// next write starts the WAL over, and it bounds the WAL if the checkpointer
// is starved or failing. walSizeLimit is the size SQLite truncates the WAL
// file to when it starts over, so a burst's WAL does not stay on disk.
const (
	writerCheckpointPages = 4000
	walSizeLimit          = 16 << 20
)

type checkpointer struct {
	db *sql.DB // one connection, not query-only
	// kick is signalled (without blocking) after each commit, which
	// commits counts.
	kick    chan struct{}
	commits atomic.Int64
	closing chan struct{}
	stopped chan struct{}
	once    sync.Once
	// ran, if set (tests), is called after each checkpoint with its
	// result.
	ran func(checkpointResult, error)
}

// checkpointResult is what PRAGMA wal_checkpoint reports: whether it was
// blocked, the WAL's frames, and how many of them are now in the database
// file; commits is how many commits had told the checkpointer before it
// began.
type checkpointResult struct {
	busy, log, checkpointed int
	commits                 int64
}

func newCheckpointer(db *sql.DB, ran func(checkpointResult, error)) *checkpointer {
	c := &checkpointer{
		db: db, ran: ran,
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go c.loop()
	return c
}

// committed tells the checkpointer the WAL has grown.
func (c *checkpointer) committed() {
	c.commits.Add(1)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer close(c.stopped)
	for {
		select {
		case <-c.kick:
		case <-c.closing:
			return
		}
		res, err := c.checkpoint(context.Background())
		if c.ran != nil {
			c.ran(res, err)
		}
		// An error (the database busy with a backup, say) is retried at the
		// next commit; the writer's backstop bounds the WAL meanwhile.
		t := time.NewTimer(checkpointEvery)
		select {
		case <-t.C:
		case <-c.closing:
			t.Stop()
			return
		}
	}
}

// checkpoint copies what it can of the WAL into the database file.
func (c *checkpointer) checkpoint(ctx context.Context) (checkpointResult, error) {
	r := checkpointResult{commits: c.commits.Load()}
	err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&r.busy, &r.log, &r.checkpointed)
	return r, err
}

// close stops the checkpointer after the checkpoint in flight and closes
// its connection.
func (c *checkpointer) close() error {
	c.once.Do(func() { close(c.closing) })
	<-c.stopped
	return c.db.Close()
}
