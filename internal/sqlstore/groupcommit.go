package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
)

// Group commit. On SQLite a durable commit costs an fsync, and a single
// writer connection does one commit at a time, so writes are bounded by
// fsyncs per second however many callers wait. On PostgreSQL every audited
// change locks its instance's audit chain head until it commits, so
// concurrent writes there also go one commit at a time. The committer instead runs
// every Update waiting at the start of a batch in one transaction and
// commits them with one fsync:
//
//   - a closure that fails is undone alone (the batch runs again with a
//     SAVEPOINT around each closure, see commit), and its
//     caller gets its own error (it wrote nothing) when the batch ends, so
//     what the error rests on (an earlier closure's row) is committed;
//   - a closure that succeeds is acknowledged only after COMMIT returns;
//     if COMMIT fails, every such caller in the batch gets that error
//     (never retried: nobody can know whether it took);
//   - batches hold at most maxCommitBatch closures, taken in arrival order
//     (the queue is one unbuffered channel, whose waiting senders are
//     served first come, first served), and the committer never waits to
//     fill a batch: a lone write commits at once, and under load a caller
//     waits for at most the batch in flight and its own.
//
// In the database the result is equivalent to running the closures one
// after another, each in its own transaction, and committing them
// together; what a closure does elsewhere (an audit log line, a refusal
// counted) goes through authority.RunHooks, which runs it for the run of
// the closure that counts.

// maxCommitBatch bounds the closures of one transaction, and so the time
// a caller waits behind the others of its batch.
const maxCommitBatch = 64

// errStoreClosed answers an Update after Close.
var errStoreClosed = credential.Errorf(credential.CodeUnavailable, "the store is closed")

type commitRequest struct {
	ctx  context.Context
	fn   func(authority.Tx) error
	done chan commitResult // buffered: the committer never blocks on it
	// retries counts the times the closure lost a deadlock and was run
	// again in the next batch.
	retries int
	// settled is the Settled work (authority.RunHooks) of the closure's
	// latest run, run when its caller is answered.
	settled []func()
}

// maxCommitRetries bounds how often one closure is run again after
// PostgreSQL chose it as a deadlock's (or a serialization failure's)
// victim. A batch holds its locks until its COMMIT, so two nodes' batches
// touching the same rows in different orders can deadlock where their
// closures alone would not; the victim wrote nothing (its savepoint, or
// its pass, was rolled back) and goes first in the next batch, once this
// one's locks are gone.
const maxCommitRetries = 3

type commitResult struct {
	err      error
	panicked any // a panic of fn, re-raised in the caller's goroutine
}

type groupCommitter struct {
	db       *sql.DB
	d        *dialect
	prepared map[string]*sql.Stmt
	// endpoints are the batches' reads of webhook endpoints, for later
	// batches to reuse (see ListWebhooks).
	endpoints endpointReads
	// watch, on PostgreSQL, cancels a batch during an outage (see
	// outage.go); nil on SQLite.
	watch *outageWatch
	// checkpoints, on SQLite, is told of each COMMIT that succeeded and
	// may checkpoint before a batch (checkpoint.go); nil on PostgreSQL.
	checkpoints *checkpointer
	queue       chan *commitRequest
	closing     chan struct{}
	stopped     chan struct{}
	once        sync.Once
	// waiting counts callers queued or in a batch, for tests.
	waiting atomic.Int64
	// batches and closures count committed transactions and the closures
	// they carried, for tests and benchmarks; careful counts the batches
	// run again under savepoints after a closure failed.
	batches, closures, careful atomic.Int64
}

func newGroupCommitter(db *sql.DB, d *dialect, prepared map[string]*sql.Stmt, watch *outageWatch, checkpoints *checkpointer) *groupCommitter {
	g := &groupCommitter{
		db: db, d: d, prepared: prepared, watch: watch, checkpoints: checkpoints, endpoints: endpointReads{},
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
	var again []*commitRequest
	for {
		if len(again) > 0 {
			batch = append(batch[:0], again...)
		} else {
			select {
			case req := <-g.queue:
				batch = append(batch[:0], req)
			case <-g.closing:
				return
			}
		}
		// Let the writers that are already runnable reach the queue
		// first: on a busy core they are a request's last microseconds
		// away from it, and each one that makes this batch shares its
		// fsync instead of waiting for the next. This yields the
		// processor once; it never waits for a writer that is not there.
		runtime.Gosched()
	collect:
		for len(batch) < maxCommitBatch {
			select {
			case req := <-g.queue:
				batch = append(batch, req)
			default:
				break collect
			}
		}
		if g.checkpoints != nil {
			g.checkpoints.beforeBatch(g.db)
		}
		again = g.commit(batch)
		clear(batch)
	}
}

// commit runs one batch in one transaction and answers every caller but
// the deadlock victims it returns, to run again.
//
// It first runs the closures one after another with no savepoints: each
// savepoint and its release are two more statements per closure, and on
// PostgreSQL two more round trips in the one writer's way (and there the
// pass holds new credential and audit rows back, see held.go). When a
// closure fails, or what the pass left to its end does, the transaction
// is rolled back whole and the batch runs again with a savepoint around
// each closure, so the failure is undone alone. Closures are written to
// run again from nothing (a deadlock's victim does), and what they do
// outside the database goes through authority.RunHooks, which does not
// repeat it for runs undone: so running the ones that succeeded a second
// time is safe. A failure of the first closure needs no second run
// (unless it held rows back, whose own error would have come first): the
// rollback undid its work alone, as its savepoint would have, and the
// rest runs afresh.
func (g *groupCommitter) commit(batch []*commitRequest) (again []*commitRequest) {
	b := &batchRun{g: g}
	// A closure that failed is answered only once the batch has ended, as
	// if it had run after the closures before it had committed: its error
	// may rest on their writes ("already exists"), which its caller must
	// then be able to read.
	defer b.answerFailed()
	// The transaction belongs to no caller: one caller's cancellation must
	// not roll back the others' writes. Only an outage ends it early.
	b.ctx = context.Background()
	if g.watch != nil {
		bound, release, err := g.watch.bind(b.ctx)
		if err != nil {
			answer(batch, err)
			return nil
		}
		defer release()
		b.ctx = bound
	}
	live := make([]*commitRequest, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.reply(commitResult{err: translate(err, "transaction")})
			continue
		}
		live = append(live, r)
	}
	for len(live) > 0 {
		f, ok := b.run(live, false)
		if ok {
			break
		}
		if f.at != 0 {
			g.careful.Add(1)
			b.run(live, true) // a careful pass answers or retries every closure itself
			break
		}
		b.fail(live[0], f.err, f.panicked)
		live = live[1:]
	}
	return b.again
}

// batchRun is one batch's passes through the database.
type batchRun struct {
	g   *groupCommitter
	ctx context.Context
	// failed callers and their results, answered when the batch ends.
	failed   []*commitRequest
	failures []commitResult
	again    []*commitRequest
}

// closureFailure is the first closure that failed in a pass without
// savepoints, at its index in the batch; at -1, a failure only a careful
// pass can pin on a closure: writing held rows, or the work the pass left
// to its end, failed, or the first closure failed holding rows.
type closureFailure struct {
	at       int
	err      error
	panicked any
}

// reply answers the caller, once, after the Settled work of its closure's
// last run.
func (r *commitRequest) reply(res commitResult) {
	for _, f := range r.settled {
		runSettled(f)
	}
	r.settled = nil
	r.done <- res
}

// runSettled runs Settled work; a panic in it is dropped rather than take
// the committer, and every caller waiting on it, down.
func runSettled(f func()) {
	defer func() { _ = recover() }()
	f()
}

// runBeforeCommit runs BeforeCommit work, a panic in it becoming its error.
func runBeforeCommit(work []func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = credential.Errorf(credential.CodeInternal, "sqlstore: work before commit panicked: %v", p)
		}
	}()
	for _, f := range work {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func answer(reqs []*commitRequest, err error) {
	for _, r := range reqs {
		r.reply(commitResult{err: err})
	}
}

func (b *batchRun) answerFailed() {
	for i, r := range b.failed {
		r.reply(b.failures[i])
	}
}

// fail settles a closure that failed and was undone: it runs again in the
// next batch if it lost a deadlock (its run's Settled work dropped), else
// its caller gets its error.
func (b *batchRun) fail(r *commitRequest, err error, panicked any) {
	if panicked == nil && r.retries < maxCommitRetries && lostToAnother(err) {
		r.retries++
		r.settled = nil
		b.again = append(b.again, r)
		return
	}
	b.failed, b.failures = append(b.failed, r), append(b.failures, commitResult{err: b.settle(err), panicked: panicked})
}

// settle names an outage for what it is (see Store.outageOr).
func (b *batchRun) settle(err error) error {
	if err != nil && b.g.watch != nil && errors.Is(context.Cause(b.ctx), errNotAnswering) {
		return errOutage
	}
	return err
}

// run runs batch in one transaction and commits it. Careful, each closure
// runs under its own savepoint and one that fails is undone alone; else a
// closure that fails rolls the whole transaction back, and run returns it,
// having answered nobody (ok false). Every other outcome is answered.
//
// Each run of a closure leaves its Settled work on its request, replacing
// an earlier run's, to run when the caller is answered. BeforeCommit work
// runs after the closure's writes are all in: at the end of a pass without
// savepoints (after the deferred audit rows and chain heads, just before
// COMMIT), or as each closure ends in a careful pass, before its RELEASE.
func (b *batchRun) run(batch []*commitRequest, careful bool) (f closureFailure, ok bool) {
	g, ctx := b.g, b.ctx
	chains := &batchChains{heads: map[string]chainHeadState{}, endpoints: g.endpoints}
	hooks := &passHooks{}
	t := &tx{d: g.d, detached: true, prepared: g.prepared, chains: chains,
		hold: !careful && g.d.name == "postgres", hooks: hooks}
	if g.d.name == "postgres" {
		pg, err := newPGBatch(ctx, g.db, g.sawAnswer)
		if err != nil {
			answer(batch, b.settle(translate(err, "transaction")))
			return f, true
		}
		defer pg.close() // rolls back what did not commit
		t.pg, ctx = pg, pg.ctx
	} else {
		sqlTx, err := g.db.BeginTx(ctx, nil)
		if err != nil {
			answer(batch, b.settle(translate(err, "transaction")))
			return f, true
		}
		g.sawAnswer()
		defer sqlTx.Rollback() // a no-op after Commit
		t.sqlTx = sqlTx
	}
	if g.watch != nil || t.pg != nil {
		t.batchCtx = ctx
	}
	ran := make([]*commitRequest, 0, len(batch))
	for i, r := range batch {
		hooks.settled = nil
		if !careful {
			panicked, err := runClosure(r.fn, t)
			r.settled = hooks.settled
			if t.flushFailed || (err != nil || panicked != nil) && t.holds() {
				// The held rows it failed on may be an earlier closure's, and
				// the closure saw the failure where a careful pass would show it
				// another statement; or it failed holding rows whose own error
				// would have come first: only a careful pass can tell.
				return closureFailure{at: -1, err: err, panicked: panicked}, false
			}
			if err != nil || panicked != nil {
				return closureFailure{at: i, err: err, panicked: panicked}, false
			}
			ran = append(ran, r)
			continue
		}
		saved := chains.snapshot()
		if _, err := t.exec(ctx, savepointBatched); err != nil {
			answer(append(ran, batch[i:]...), b.settle(translate(err, "transaction")))
			return f, true
		}
		hooks.beforeCommit = nil
		panicked, err := runClosure(r.fn, t)
		r.settled = hooks.settled
		if err == nil && panicked == nil {
			err = runBeforeCommit(hooks.beforeCommit)
		}
		if err == nil && panicked == nil {
			if _, err := t.exec(ctx, releaseBatched); err != nil {
				// The transaction is gone (SQLite rolls back the whole of it
				// on some I/O errors): nothing of this batch will commit.
				answer(append(ran, batch[i:]...), b.settle(translate(err, "transaction")))
				return f, true
			}
			ran = append(ran, r)
			continue
		}
		// Undo this closure alone. If even that fails, the transaction is
		// unusable: fail what ran before, and what has not run yet.
		chains.restore(saved)
		if rbErr := rollbackTo(ctx, t); rbErr != nil {
			answer(append(ran, batch[i+1:]...), b.settle(translate(rbErr, "transaction")))
			b.failed, b.failures = append(b.failed, r), append(b.failures, commitResult{err: b.settle(err), panicked: panicked})
			return f, true
		}
		b.fail(r, err, panicked)
	}
	if len(ran) == 0 {
		return f, true // the deferred rollback ends the empty transaction
	}
	// A careful pass ran each closure's BeforeCommit work as it ended.
	if t.pg != nil && (careful || len(hooks.beforeCommit) == 0) {
		return b.commitPipelined(t, ran, careful)
	}
	if !careful {
		// Which closure's row or work failed only a careful pass can tell;
		// it runs them all again.
		if err := t.flushHeld(ctx, true); err != nil || t.flushFailed {
			return closureFailure{at: -1, err: err}, false
		}
	}
	if err := t.flushChains(ctx); err != nil {
		answer(ran, b.settle(err))
		return f, true
	}
	if !careful {
		if err := runBeforeCommit(hooks.beforeCommit); err != nil {
			return closureFailure{at: -1, err: err}, false
		}
	}
	var err error
	if t.pg != nil {
		err = t.pg.commit(t.stmtCtx(ctx))
	} else {
		err = t.sqlTx.Commit()
	}
	b.committed(ran, translate(err, "transaction"))
	return f, true
}

// commitPipelined ends a PostgreSQL pass with nothing left to run between
// its last write and COMMIT: both go in one round trip. A last write that
// fails is pinned on its closure by a careful pass, as in run.
func (b *batchRun) commitPipelined(t *tx, ran []*commitRequest, careful bool) (f closureFailure, ok bool) {
	if t.flushFailed {
		return closureFailure{at: -1}, false
	}
	stmtErr, commitErr := t.pg.commitWith(t.pg.ctx, t.finalStatements())
	if stmtErr != nil {
		err := translate(stmtErr, "credential, audit event or audit chain")
		if !careful {
			return closureFailure{at: -1, err: err}, false
		}
		answer(ran, b.settle(err))
		return f, true
	}
	b.committed(ran, translate(commitErr, "transaction"))
	return f, true
}

// committed answers the closures of a pass whose COMMIT returned err.
func (b *batchRun) committed(ran []*commitRequest, err error) {
	err = b.settle(err)
	if err == nil {
		b.g.batches.Add(1)
		b.g.closures.Add(int64(len(ran)))
		if b.g.checkpoints != nil {
			b.g.checkpoints.committed()
		}
	}
	answer(ran, err)
}

// lostToAnother reports whether PostgreSQL refused a statement to break a
// deadlock or a serialization conflict with another transaction.
func lostToAnother(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == pgDeadlockDetected || pgErr.Code == pgSerializationFailure)
}

func (g *groupCommitter) sawAnswer() {
	if g.watch != nil {
		g.watch.sawAnswer()
	}
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
func rollbackTo(ctx context.Context, t *tx) error {
	if _, err := t.exec(ctx, rollbackToBatched); err != nil {
		return err
	}
	_, err := t.exec(ctx, releaseBatched)
	return err
}

// The savepoint statements, prepared once with the other hot writes.
const (
	savepointBatched  = "SAVEPOINT batched"
	releaseBatched    = "RELEASE batched"
	rollbackToBatched = "ROLLBACK TO batched"
)

// bulkRowsPerYield is how many rows a background bulk write (last-used
// times, verification counts) executes before it lets other goroutines
// run. SQLite here is Go code: a 256-row flush holds its processor for
// milliseconds at a stretch, and on a server with one core every request
// that arrives meanwhile waits that long; this was the cache-miss tail.
//
// runtime.Gosched alone lets only goroutines that are already runnable
// go first: the yielding one goes straight back on the run queue, so the
// scheduler never runs out of work and never polls the network, and a
// request whose bytes have arrived stays unknown to it until the runtime's
// monitor polls (every 10 ms when nothing else wakes it). A trace of the
// cache-miss load showed the committer holding the processor for 10 to 13
// ms at a time, yields and all. So every bulkRowsPerPoll-th row on SQLite
// the write sleeps for a moment instead: with nothing runnable the
// scheduler polls the network, runs what it finds, and comes back. On an
// idle server that sleep lasts up to a millisecond (the poller's
// resolution): three per 256-row chunk, which a write batched with the
// chunk waits for too, as it waits for the chunk's rows.
const (
	bulkRowsPerYield = 16
	bulkRowsPerPoll  = 64
)

// yieldEvery lets other goroutines run after every bulkRowsPerYield-th row
// i of a bulk write of n rows but the last, and on SQLite has the
// scheduler poll the network after every bulkRowsPerPoll-th. PostgreSQL
// waits on the network for every row anyway.
func (t *tx) yieldEvery(i, n int) {
	switch {
	case i == n-1: // nothing left to let others in ahead of
	case t.d.name == "sqlite" && i%bulkRowsPerPoll == bulkRowsPerPoll-1:
		time.Sleep(time.Microsecond)
	case i%bulkRowsPerYield == bulkRowsPerYield-1:
		runtime.Gosched()
	}
}
