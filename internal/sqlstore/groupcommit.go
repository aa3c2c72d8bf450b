package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// Group commit on SQLite. A durable commit costs an fsync, and a single
// writer connection does one commit at a time, so writes are bounded by
// fsyncs per second however many callers wait. The committer instead runs
// every Update waiting at the start of a batch in one transaction, each
// closure under its own SAVEPOINT, and commits them with one fsync:
//
//   - a closure that fails is rolled back to its savepoint alone, and its
//     caller gets its own error at once (it wrote nothing);
//   - a closure that succeeds is acknowledged only after COMMIT returns;
//     if COMMIT fails, every such caller in the batch gets that error
//     (never retried: nobody can know whether it took);
//   - batches hold at most maxCommitBatch closures, taken in arrival order
//     (the queue is one unbuffered channel, whose waiting senders are
//     served first come, first served), and the committer never waits to
//     fill a batch: a lone write commits at once, and under load a caller
//     waits for at most the batch in flight and its own.
//
// The result is equivalent to running the closures one after another, each
// in its own transaction, and committing them together.

// maxCommitBatch bounds the closures of one transaction, and so the time
// a caller waits behind the others of its batch.
const maxCommitBatch = 64

// errStoreClosed answers an Update after Close.
var errStoreClosed = credential.Errorf(credential.CodeUnavailable, "the store is closed")

type commitRequest struct {
	ctx  context.Context
	fn   func(authority.Tx) error
	done chan commitResult // buffered: the committer never blocks on it
}

type commitResult struct {
	err      error
	panicked any // a panic of fn, re-raised in the caller's goroutine
}

type groupCommitter struct {
	db       *sql.DB
	d        *dialect
	prepared map[string]*sql.Stmt
	queue    chan *commitRequest
	closing  chan struct{}
	stopped  chan struct{}
	once     sync.Once
	// waiting counts callers queued or in a batch, for tests.
	waiting atomic.Int64
	// batches and closures count committed transactions and the closures
	// they carried, for tests and benchmarks.
	batches, closures atomic.Int64
}

func newGroupCommitter(db *sql.DB, d *dialect, prepared map[string]*sql.Stmt) *groupCommitter {
	g := &groupCommitter{
		db: db, d: d, prepared: prepared,
		queue:   make(chan *commitRequest),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go g.run()
	return g
}

// update queues fn and waits for its batch. Once queued, it waits for the
// answer even if ctx ends: the write may be committing, and only the
// committer knows.
func (g *groupCommitter) update(ctx context.Context, fn func(authority.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return translate(err, "transaction")
	}
	req := &commitRequest{ctx: ctx, fn: fn, done: make(chan commitResult, 1)}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case g.queue <- req:
	case <-ctx.Done():
		return translate(ctx.Err(), "transaction")
	case <-g.closing:
		return errStoreClosed
	}
	res := <-req.done
	if res.panicked != nil {
		panic(res.panicked)
	}
	return res.err
}

// close stops the committer after the batch in flight.
func (g *groupCommitter) close() {
	g.once.Do(func() { close(g.closing) })
	<-g.stopped
}

func (g *groupCommitter) run() {
	defer close(g.stopped)
	batch := make([]*commitRequest, 0, maxCommitBatch)
	for {
		select {
		case req := <-g.queue:
			batch = append(batch[:0], req)
		case <-g.closing:
			return
		}
	collect:
		for len(batch) < maxCommitBatch {
			select {
			case req := <-g.queue:
				batch = append(batch, req)
			default:
				break collect
			}
		}
		g.commit(batch)
		clear(batch)
	}
}

// commit runs one batch in one transaction and answers every caller.
func (g *groupCommitter) commit(batch []*commitRequest) {
	answer := func(reqs []*commitRequest, err error) {
		for _, r := range reqs {
			r.done <- commitResult{err: err}
		}
	}
	// The transaction belongs to no caller: one caller's cancellation must
	// not roll back the others' writes.
	sqlTx, err := g.db.BeginTx(context.Background(), nil)
	if err != nil {
		answer(batch, translate(err, "transaction"))
		return
	}
	defer sqlTx.Rollback() // a no-op after Commit
	// A closure that failed is answered only once the batch is over: it
	// may have failed on what an earlier closure of the batch wrote (a
	// conflict), and a caller that then reads must see that write
	// committed.
	var failed []*commitRequest
	var failures []commitResult
	defer func() {
		for i, r := range failed {
			r.done <- failures[i]
		}
	}()
	t := &tx{sqlTx: sqlTx, d: g.d, detached: true, prepared: g.prepared}
	ran := make([]*commitRequest, 0, len(batch))
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- commitResult{err: translate(err, "transaction")}
			continue
		}
		if _, err := sqlTx.Exec("SAVEPOINT batched"); err != nil {
			answer(append(ran, batch[i:]...), translate(err, "transaction"))
			return
		}
		panicked, err := runClosure(r.fn, t)
		if err == nil && panicked == nil {
			if _, err := sqlTx.Exec("RELEASE batched"); err != nil {
				// The transaction is gone (SQLite rolls back the whole of it
				// on some I/O errors): nothing of this batch will commit.
				answer(append(ran, batch[i:]...), translate(err, "transaction"))
				return
			}
			ran = append(ran, r)
			continue
		}
		// Undo this closure alone. If even that fails, the transaction is
		// unusable: fail what ran before, and what has not run yet.
		if rbErr := rollbackTo(sqlTx); rbErr != nil {
			answer(append(ran, batch[i+1:]...), translate(rbErr, "transaction"))
			r.done <- commitResult{err: err, panicked: panicked}
			return
		}
		failed, failures = append(failed, r), append(failures, commitResult{err: err, panicked: panicked})
	}
	if len(ran) == 0 {
		return // the deferred rollback ends the empty transaction
	}
	err = translate(sqlTx.Commit(), "transaction")
	if err == nil {
		g.batches.Add(1)
		g.closures.Add(int64(len(ran)))
	}
	answer(ran, err)
}

// runClosure runs fn, turning a panic into a value so the committer
// survives it and the caller re-raises it.
func runClosure(fn func(authority.Tx) error, t *tx) (panicked any, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
			if err == nil {
				err = fmt.Errorf("sqlstore: update panicked: %v", p)
			}
		}
	}()
	return nil, fn(t)
}

// rollbackTo undoes the work since the savepoint and drops it.
func rollbackTo(sqlTx *sql.Tx) error {
	if _, err := sqlTx.Exec("ROLLBACK TO batched"); err != nil {
		return err
	}
	_, err := sqlTx.Exec("RELEASE batched")
	return err
}
