package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strconv"
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
// the writer's own threshold is raised to a backstop.
//
// The writer still checkpoints now and then, for a reason: SQLite starts
// the WAL over only when a write begins with every frame already copied,
// and under a stream of batches the checkpointer never finishes between
// one batch's COMMIT and the next one's BEGIN, so the WAL would only grow.
// When a checkpoint has seen a WAL of restartFrames or more, the
// committer checkpoints once on the writer before its next batch: only the
// frames committed while the checkpointer ran are left to copy, and the
// batch's first write then starts the WAL over.
//
// Durability does not change: a COMMIT is durable once its WAL frames are
// fsynced (synchronous=FULL), and each checkpoint fsyncs the database file
// before SQLite may reuse the WAL.

// checkpointEvery bounds how often the checkpointer runs: at a burst's
// write rate that is about the WAL growth SQLite's own threshold let
// through between checkpoints; a lone write is checkpointed at most this
// long after it committed.
const checkpointEvery = 50 * time.Millisecond

// restartFrames is the WAL size, in frames (8 MiB at 4 KiB pages), at
// which the committer has the WAL started over. writerCheckpointPages is
// the writer's wal_autocheckpoint (SQLite's default is 1000): a backstop,
// past which a COMMIT checkpoints by itself, should the checkpointer be
// starved or failing. walSizeLimit is the size SQLite truncates the WAL
// file to when it starts over, so a burst's WAL does not stay on disk.
const (
	restartFrames         = 2000
	writerCheckpointPages = 10000
	walSizeLimit          = 16 << 20
)

type checkpointer struct {
	db *sql.DB // one connection, not query-only
	// kick is signalled (without blocking) after each commit, which
	// commits counts.
	kick    chan struct{}
	commits atomic.Int64
	// restart asks the committer to checkpoint on the writer before its
	// next batch (see the top of this file).
	restart atomic.Bool
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

func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{
		db:      db,
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
		if err == nil && res.log >= restartFrames {
			c.restart.Store(true)
		}
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

// beforeBatch runs on the committer, on the writer, between batches: when
// the checkpointer has asked for it, one checkpoint of what it left, so
// the next write can start the WAL over.
//
// It is a RESTART checkpoint: SQLite starts the WAL over only if no reader
// still reads an older snapshot from it, and under load one nearly always
// does, so it waits for them, but at most restartWait (readers here are
// point lookups, microseconds long), not the writer's busy timeout.
func (c *checkpointer) beforeBatch(writer *sql.DB) {
	if !c.restart.Swap(false) {
		return
	}
	ctx := context.Background()
	conn, err := writer.Conn(ctx) // the one writer connection, for all three
	if err != nil {
		return
	}
	defer conn.Close()
	// An error leaves the WAL as it was; the next large checkpoint asks
	// again.
	_, _ = conn.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.Itoa(int(restartWait/time.Millisecond)))
	_, _ = conn.ExecContext(ctx, "PRAGMA wal_checkpoint(RESTART)")
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.Itoa(sqliteBusyTimeoutMs)); err != nil {
		// Never leave the writer with the short timeout: a fresh
		// connection gets the DSN's.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// restartWait bounds how long the committer waits for readers so the WAL
// can start over; sqliteBusyTimeoutMs is every connection's busy timeout
// (the DSNs' busy_timeout).
const (
	restartWait         = 20 * time.Millisecond
	sqliteBusyTimeoutMs = 5000
)

// close stops the checkpointer after the checkpoint in flight and closes
// its connection.
func (c *checkpointer) close() error {
	c.once.Do(func() { close(c.closing) })
	<-c.stopped
	return c.db.Close()
}
