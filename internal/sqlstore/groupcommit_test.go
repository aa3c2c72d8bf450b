package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// holdWriter starts an Update that blocks until the returned release is
// called, so the Updates started meanwhile queue up behind it and, on
// SQLite, form one batch.
func holdWriter(t *testing.T, s *sqlstore.Store) (release func()) {
	t.Helper()
	entered, gate, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.Update(context.Background(), func(authority.Tx) error {
			close(entered)
			<-gate
			return nil
		})
	}()
	<-entered
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(gate)
			if err := <-done; err != nil {
				t.Errorf("the holding Update: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// waitQueued waits until n Updates are in the committer: one running (the
// holding Update) and n-1 parked on the queue, in the order they reached
// it. The waiting counter alone is not enough: it counts a caller a few
// instructions before it blocks on the queue, and a caller counted but
// not yet parked may miss the batch, or queue behind a later one.
func waitQueued(s *sqlstore.Store, n int64) {
	for sqlstore.WaitingUpdates(s) < n || parkedOnQueue() < n-1 {
		runtime.Gosched()
	}
}

// parkedOnQueue counts the goroutines blocked in the committer's queue
// send (the select in groupCommitter.update). No test here runs in
// parallel, so they are all this test's.
func parkedOnQueue() int64 {
	buf := make([]byte, 1<<20)
	for {
		if n := runtime.Stack(buf, true); n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var parked int64
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[select") && strings.Contains(g, "(*groupCommitter).update(") {
			parked++
		}
	}
	return parked
}

func auditEvent(id string) credential.AuditEvent {
	return credential.AuditEvent{ID: id, InstanceID: "ins_batch", At: t0, Outcome: credential.OutcomeSuccess}
}

func committedEvents(t *testing.T, s *sqlstore.Store) map[string]bool {
	t.Helper()
	events, _ := listAudit(t, s, authority.AuditFilter{InstanceID: "ins_batch"})
	got := make(map[string]bool, len(events))
	for _, e := range events {
		got[e.ID] = true
	}
	return got
}

func TestConcurrentUpdatesShareOneCommit(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		release := holdWriter(t, s)
		batches0, closures0 := sqlstore.CommitStats(s)
		const writers = 30
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				errs[i] = s.Update(ctx, func(tx authority.Tx) error {
					return insertEvent(tx, ctx, auditEvent(fmt.Sprintf("aud_%02d", i)))
				})
			})
		}
		waitQueued(s, writers+1)
		release()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}
		batches, closures := sqlstore.CommitStats(s)
		// The holding Update's batch, then one batch for the 30 queued behind it.
		if batches-batches0 != 2 || closures-closures0 != writers+1 {
			t.Errorf("%d commits carried %d closures; want 2 commits for %d", batches-batches0, closures-closures0, writers+1)
		}
		if got := committedEvents(t, s); len(got) != writers {
			t.Errorf("%d events committed, want %d", len(got), writers)
		}
	})
}

func TestAFailingUpdateRollsBackAloneAndKeepsItsOwnError(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		release := holdWriter(t, s)
		const writers = 30
		var wg sync.WaitGroup
		errs := make([]error, writers)
		mine := make([]error, writers)
		panics := make([]any, writers)
		for i := range writers {
			mine[i] = fmt.Errorf("closure %d refuses", i)
			wg.Go(func() {
				defer func() { panics[i] = recover() }()
				errs[i] = s.Update(ctx, func(tx authority.Tx) error {
					if err := insertEvent(tx, ctx, auditEvent(fmt.Sprintf("aud_%02d", i))); err != nil {
						return err
					}
					switch {
					case i == 7:
						panic("closure 7 panics")
					case i%3 == 0:
						return mine[i] // after writing: the write must go
					}
					return nil
				})
			})
		}
		waitQueued(s, writers+1)
		release()
		wg.Wait()

		got := committedEvents(t, s)
		for i := range writers {
			id := fmt.Sprintf("aud_%02d", i)
			switch {
			case i == 7:
				if panics[i] != "closure 7 panics" {
					t.Errorf("the panicking closure's caller recovered %v, want its panic", panics[i])
				}
				if got[id] {
					t.Errorf("the panicking closure's write was committed")
				}
			case i%3 == 0:
				if errs[i] != mine[i] {
					t.Errorf("writer %d got %v, want its own error", i, errs[i])
				}
				if got[id] {
					t.Errorf("writer %d failed but its write was committed", i)
				}
			default:
				if errs[i] != nil || panics[i] != nil {
					t.Errorf("writer %d got %v (panic %v), want success: another closure's failure leaked", i, errs[i], panics[i])
				}
				if !got[id] {
					t.Errorf("writer %d was acknowledged but its write is missing", i)
				}
			}
		}
		// The batch extends the chain head once, at its end: the closures
		// rolled back must leave no gap and no fork in it.
		rep, err := chainAuthority(t, s).VerifyAuditChain(ctx, "ins_batch")
		if err != nil || rep.Break != nil || rep.Events != int64(len(got)) {
			t.Errorf("VerifyAuditChain = %+v (break %+v), %v; want %d events in one unbroken chain", rep, rep.Break, err, len(got))
		}
	})
}

// A batch runs its closures without savepoints, and runs them again, each
// under its own, only when one fails after others ran: what each caller
// is told and what is committed stay those of the closures run one after
// another, and the batch still commits once.
func TestABatchSetsSavepointsOnlyWhenAClosureFailsAfterOthersRan(t *testing.T) {
	cases := []struct {
		name        string
		fails       []bool
		wantCareful int64
	}{
		{"every closure succeeds: no savepoints", []bool{false, false, false}, 0},
		{"the first fails: its rollback undoes it alone, no savepoints", []bool{true, false, false}, 0},
		{"a later one fails: the batch runs again under savepoints", []bool{false, true, false}, 1},
		{"the last fails: the batch runs again under savepoints", []bool{false, false, true}, 1},
	}
	for n, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
				ctx := context.Background()
				release := holdWriter(t, s)
				batches0, _ := sqlstore.CommitStats(s)
				careful0 := sqlstore.CarefulBatches(s)
				refusal := errors.New("refused")
				errs := make([]error, len(tc.fails))
				var wg sync.WaitGroup
				for i, fails := range tc.fails {
					wg.Go(func() {
						errs[i] = s.Update(ctx, func(tx authority.Tx) error {
							// A refusal comes before the write, as a use case's
							// checks do (one that fails after writing, on
							// PostgreSQL, always takes a careful pass: see
							// TestAFailingUpdateRollsBackAloneAndKeepsItsOwnError).
							if fails {
								return refusal
							}
							return insertEvent(tx, ctx, auditEvent(fmt.Sprintf("aud_%d_%d", n, i)))
						})
					})
					waitQueued(s, int64(i+2)) // in this order
				}
				release()
				wg.Wait()
				got := committedEvents(t, s)
				for i, fails := range tc.fails {
					id := fmt.Sprintf("aud_%d_%d", n, i)
					if fails && (errs[i] != refusal || got[id]) {
						t.Errorf("closure %d: %v, committed %v; want its own error and nothing written", i, errs[i], got[id])
					}
					if !fails && (errs[i] != nil || !got[id]) {
						t.Errorf("closure %d: %v, committed %v; want it acknowledged and written once", i, errs[i], got[id])
					}
				}
				if batches, _ := sqlstore.CommitStats(s); batches-batches0 != 2 {
					t.Errorf("%d commits; want the holding one and one for the batch", batches-batches0)
				}
				if careful := sqlstore.CarefulBatches(s) - careful0; careful != tc.wantCareful {
					t.Errorf("%d batches ran under savepoints, want %d", careful, tc.wantCareful)
				}
			})
		})
	}
}

// A batch may hold its audit rows back and write them together; every
// statement of the batch that reads or deletes audit events still sees
// the events written before it, its own closure's and earlier ones'.
func TestABatchSeesTheAuditEventsItWrote(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		release := holdWriter(t, s)
		seen := make([]int, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				errs[i] = s.Update(ctx, func(tx authority.Tx) error {
					if err := insertEvent(tx, ctx, auditEvent(fmt.Sprintf("aud_seen_%d", i))); err != nil {
						return err
					}
					events, total, err := tx.ListAuditEvents(ctx, authority.AuditFilter{InstanceID: "ins_batch"})
					seen[i] = total
					if err == nil && len(events) != total {
						err = fmt.Errorf("a page of %d events, of %d", len(events), total)
					}
					return err
				})
			})
			waitQueued(s, int64(i+2))
		}
		release()
		wg.Wait()
		for i := range 3 {
			if errs[i] != nil || seen[i] != i+1 {
				t.Errorf("closure %d: %v, saw %d events; want the %d written before its read, its own included", i, errs[i], seen[i], i+1)
			}
		}
		if got := committedEvents(t, s); len(got) != 3 {
			t.Errorf("%d events committed, want 3", len(got))
		}
		rep, err := chainAuthority(t, s).VerifyAuditChain(ctx, "ins_batch")
		if err != nil || rep.Break != nil || rep.Events != 3 {
			t.Errorf("VerifyAuditChain = %+v (break %+v), %v; want 3 events in one unbroken chain", rep, rep.Break, err)
		}
	})
}

// An event that collides with a committed one fails its own closure
// alone, however late the batch writes its rows: the others of the
// batch are acknowledged and committed, and the chain has no gap.
func TestAnAuditEventThatCollidesFailsOnlyItsOwnClosure(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		update(t, s, func(tx authority.Tx) error { return insertEvent(tx, ctx, auditEvent("aud_taken")) })
		release := holdWriter(t, s)
		ids := []string{"aud_before", "aud_taken", "aud_after"}
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() {
				errs[i] = s.Update(ctx, func(tx authority.Tx) error { return insertEvent(tx, ctx, auditEvent(id)) })
			})
			waitQueued(s, int64(i+2))
		}
		release()
		wg.Wait()
		if errs[0] != nil || errs[2] != nil {
			t.Errorf("the closures beside the collision: %v, %v; want both acknowledged", errs[0], errs[2])
		}
		wantCode(t, errs[1], credential.CodeConflict)
		got := committedEvents(t, s)
		if !got["aud_before"] || !got["aud_after"] || len(got) != 3 {
			t.Errorf("committed %v; want the taken event and the two beside the collision", got)
		}
		rep, err := chainAuthority(t, s).VerifyAuditChain(ctx, "ins_batch")
		if err != nil || rep.Break != nil || rep.Events != 3 {
			t.Errorf("VerifyAuditChain = %+v (break %+v), %v; want 3 events in one unbroken chain", rep, rep.Break, err)
		}
	})
}

// A batch may hold its new credentials back and write them together;
// every later statement of the batch still sees them as written, each
// column as it was given, whether read by digest or by id, by its own
// closure or a later one.
func TestABatchSeesTheCredentialsItWrote(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		update(t, s, func(tx authority.Tx) error {
			return tx.CreateInstance(ctx, credential.Instance{ID: "ins_held", Name: "held", CreatedAt: t0})
		})
		plain := machineKey("ins_held", "mch_plain")
		full := machineKey("ins_held", "mch_full")
		full.ParentID, full.Sealed, full.Attrs = "wks_1", []byte("sealed"), json.RawMessage(`{"name":"x"}`)
		full.ExpiresAt, full.LastUsedAt = t0.Add(time.Hour), t0.Add(time.Minute)
		rand.Read(full.SearchDigest[:])
		release := holdWriter(t, s)
		var wg sync.WaitGroup
		errs := make([]error, 3)
		read := make([][]credential.Credential, 3)
		for i, c := range []credential.Credential{plain, full} {
			wg.Go(func() {
				errs[i] = s.Update(ctx, func(tx authority.Tx) error {
					if err := tx.InsertCredential(ctx, c); err != nil {
						return err
					}
					byDigest, err := tx.CredentialByDigest(ctx, c.Digest)
					read[i] = []credential.Credential{byDigest}
					return err
				})
			})
			waitQueued(s, int64(i+2))
		}
		wg.Go(func() {
			errs[2] = s.Update(ctx, func(tx authority.Tx) error {
				read[2] = nil
				for _, c := range []credential.Credential{plain, full} {
					byID, err := tx.GetCredential(ctx, "ins_held", c.ID)
					if err != nil {
						return err
					}
					read[2] = append(read[2], byID)
				}
				return nil
			})
		})
		waitQueued(s, 4)
		release()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("closure %d: %v", i, err)
			}
		}
		for _, got := range [][2]credential.Credential{{read[0][0], plain}, {read[1][0], full}, {read[2][0], plain}, {read[2][1], full}} {
			if diff := cmp.Diff(got[1], got[0], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("credential %s as read in its batch (-written +read):\n%s", got[1].ID, diff)
			}
		}
	})
}

// A credential whose digest collides with a committed one fails its own
// closure alone, however late the batch writes its rows.
func TestACredentialThatCollidesFailsOnlyItsOwnClosure(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		update(t, s, func(tx authority.Tx) error {
			return tx.CreateInstance(ctx, credential.Instance{ID: "ins_held", Name: "held", CreatedAt: t0})
		})
		taken := machineKey("ins_held", "mch_taken")
		update(t, s, func(tx authority.Tx) error { return tx.InsertCredential(ctx, taken) })
		twin := machineKey("ins_held", "mch_twin")
		twin.Digest = taken.Digest
		creds := []credential.Credential{machineKey("ins_held", "mch_before"), twin, machineKey("ins_held", "mch_after")}
		release := holdWriter(t, s)
		errs := make([]error, len(creds))
		var wg sync.WaitGroup
		for i, c := range creds {
			wg.Go(func() {
				errs[i] = s.Update(ctx, func(tx authority.Tx) error {
					if err := tx.InsertCredential(ctx, c); err != nil {
						return err
					}
					return insertEvent(tx, ctx, auditEvent("aud_"+c.Subject))
				})
			})
			waitQueued(s, int64(i+2))
		}
		release()
		wg.Wait()
		if errs[0] != nil || errs[2] != nil {
			t.Errorf("the closures beside the collision: %v, %v; want both acknowledged", errs[0], errs[2])
		}
		wantCode(t, errs[1], credential.CodeConflict)
		view(t, s, func(tx authority.Tx) (struct{}, error) {
			for i, c := range creds {
				_, err := tx.GetCredential(ctx, "ins_held", c.ID)
				if (err == nil) != (i != 1) {
					t.Errorf("credential %s: %v; want only the two beside the collision committed", c.Subject, err)
				}
			}
			return struct{}{}, nil
		})
		if got := committedEvents(t, s); len(got) != 2 || got["aud_mch_twin"] {
			t.Errorf("events committed: %v; want those of the two beside the collision", got)
		}
	})
}

// A closure whose write would have failed at once, and which then fails
// on its own, is told of the write's failure, as it would have been had
// the write not been held back.
func TestAHeldWritesErrorComesBeforeTheClosuresOwn(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		update(t, s, func(tx authority.Tx) error {
			return tx.CreateInstance(ctx, credential.Instance{ID: "ins_held", Name: "held", CreatedAt: t0})
		})
		taken := machineKey("ins_held", "mch_taken")
		update(t, s, func(tx authority.Tx) error { return tx.InsertCredential(ctx, taken) })
		twin := machineKey("ins_held", "mch_twin")
		twin.Digest = taken.Digest
		err := s.Update(ctx, func(tx authority.Tx) error {
			if err := tx.InsertCredential(ctx, twin); err != nil {
				return err
			}
			return errors.New("a later check fails")
		})
		wantCode(t, err, credential.CodeConflict)
	})
}

func TestAFailedCommitFailsEveryCallerOfTheBatch(t *testing.T) {
	s := testkit.OpenSQLite(t)
	ctx := context.Background()
	release := holdWriter(t, s)
	const writers = 10
	var wg sync.WaitGroup
	errs := make([]error, writers)
	// The closures of one batch share its transaction: which one each ran
	// in tells the batch of writer 4 (a writer counted as queued may still
	// be on its way to the queue, and land in the next batch).
	batchOf := make([]authority.Tx, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = s.Update(ctx, func(tx authority.Tx) error {
				batchOf[i] = tx
				if i == 4 {
					// A foreign key checked only at COMMIT, and broken: the
					// batch's COMMIT fails, so no caller may be told it took.
					if err := sqlstore.ExecInTx(ctx, tx, "PRAGMA defer_foreign_keys = ON"); err != nil {
						return err
					}
					c := machineKey("ins_missing", "m")
					if err := tx.InsertCredential(ctx, c); err != nil {
						return err
					}
				}
				return insertEvent(tx, ctx, auditEvent(fmt.Sprintf("aud_%02d", i)))
			})
		})
	}
	waitQueued(s, writers+1)
	release()
	wg.Wait()
	committed := committedEvents(t, s)
	inBatch := 0
	for i, err := range errs {
		if batchOf[i] != batchOf[4] {
			continue
		}
		inBatch++
		if err == nil {
			t.Errorf("writer %d was acknowledged although its batch's COMMIT failed", i)
		}
		if committed[fmt.Sprintf("aud_%02d", i)] {
			t.Errorf("writer %d's write, of the failed batch, is in the database", i)
		}
	}
	if inBatch < 2 {
		t.Fatalf("writer 4's batch held %d closures; the test needs it to share one", inBatch)
	}
	// The writer is usable again, and the deferral ended with the batch.
	update(t, s, func(tx authority.Tx) error { return insertEvent(tx, ctx, auditEvent("aud_after")) })
	err := s.Update(ctx, func(tx authority.Tx) error { return tx.InsertCredential(ctx, machineKey("ins_missing", "m")) })
	wantCode(t, err, credential.CodeNotFound)
}

func TestACancelledCallerDoesNotUndoTheOthers(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		release := holdWriter(t, s)
		queuedCtx, cancelQueued := context.WithCancel(ctx)
		const writers = 12
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				switch i {
				case 3: // cancelled while it waits its turn: never runs
					errs[i] = s.Update(queuedCtx, func(tx authority.Tx) error {
						return insertEvent(tx, ctx, auditEvent(fmt.Sprintf("aud_%02d", i)))
					})
				case 5: // cancelled while its closure runs, between two writes
					own, cancel := context.WithCancel(ctx)
					errs[i] = s.Update(own, func(tx authority.Tx) error {
						if err := insertEvent(tx, own, auditEvent(fmt.Sprintf("aud_%02d", i))); err != nil {
							return err
						}
						cancel()
						return insertEvent(tx, own, auditEvent(fmt.Sprintf("aud_%02d_b", i)))
					})
				default:
					errs[i] = s.Update(ctx, func(tx authority.Tx) error {
						return insertEvent(tx, ctx, auditEvent(fmt.Sprintf("aud_%02d", i)))
					})
				}
			})
		}
		waitQueued(s, writers+1)
		cancelQueued()
		release()
		wg.Wait()
		got := committedEvents(t, s)
		for i := range writers {
			id := fmt.Sprintf("aud_%02d", i)
			switch {
			case i == 3 && s.Dialect() == "sqlite":
				// Only the committer's queue makes "cancelled while queued"
				// deterministic.
				if errs[i] == nil || got[id] {
					t.Errorf("the caller cancelled in the queue got %v and its write committed: %v", errs[i], got[id])
				}
			case i == 3:
			case i == 5:
				// Either outcome is honest, as long as the answer matches
				// the database: both writes or neither.
				if (errs[i] == nil) != (got[id] && got[id+"_b"]) || got[id] != got[id+"_b"] {
					t.Errorf("the caller cancelled mid-closure got %v, but its writes committed: %v, %v", errs[i], got[id], got[id+"_b"])
				}
			default:
				if errs[i] != nil || !got[id] {
					t.Errorf("writer %d: %v, committed %v; another caller's cancellation reached it", i, errs[i], got[id])
				}
			}
		}
	})
}

func TestUpdateAfterCloseIsRefused(t *testing.T) {
	s, err := sqlstore.OpenSQLite(context.Background(), t.TempDir()+"/k.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err = s.Update(context.Background(), func(authority.Tx) error { return errors.New("ran") })
	wantCode(t, err, credential.CodeUnavailable)
}

// insertEvent appends an audit event, keeping only the error.
func insertEvent(tx authority.Tx, ctx context.Context, e credential.AuditEvent) error {
	_, err := tx.InsertAuditEvent(ctx, e)
	return err
}

// Two nodes' batches that lock the same rows in opposite orders deadlock;
// PostgreSQL refuses one statement to break it. The victim's closure wrote
// nothing and runs again in its node's next batch, so both callers
// succeed.
func TestADeadlockVictimRunsAgainInTheNextBatch(t *testing.T) {
	url := testkit.PostgresURL(t)
	ctx := context.Background()
	open := func() *sqlstore.Store {
		s, err := sqlstore.OpenPostgres(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	node1, node2 := open(), open()
	for _, id := range []string{"ins_x", "ins_y"} {
		in := credential.Instance{ID: id, Name: id, CreatedAt: t0}
		update(t, node1, func(tx authority.Tx) error { return tx.CreateInstance(ctx, in) })
	}
	lockedX, lockedY := make(chan struct{}), make(chan struct{})
	var onceX, onceY sync.Once
	var attempts [2]int
	rename := func(tx authority.Tx, id, name string) error {
		return sqlstore.ExecInTx(ctx, tx, `UPDATE instances SET name = ? WHERE id = ?`, name, id)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() {
		errs[0] = node1.Update(ctx, func(tx authority.Tx) error {
			attempts[0]++
			if err := rename(tx, "ins_x", "one"); err != nil {
				return err
			}
			onceX.Do(func() { close(lockedX); <-lockedY })
			err := rename(tx, "ins_y", "one")
			t.Logf("node1 attempt %d: %v", attempts[0], err)
			return err
		})
	})
	wg.Go(func() {
		errs[1] = node2.Update(ctx, func(tx authority.Tx) error {
			attempts[1]++
			if err := rename(tx, "ins_y", "two"); err != nil {
				return err
			}
			onceY.Do(func() { close(lockedY); <-lockedX })
			err := rename(tx, "ins_x", "two")
			t.Logf("node2 attempt %d: %v", attempts[1], err)
			return err
		})
	})
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("Update errors: %v, %v; want both to succeed, the deadlock's victim run again", errs[0], errs[1])
	}
	if attempts[0]+attempts[1] < 3 {
		t.Errorf("the closures ran %v times; want a victim run again", attempts)
	}
}

// A closure that fails because of an earlier closure's write in the same
// batch ("already exists") is answered after that write has committed, so
// its caller can read what it conflicted with, as it could had the two
// run one after the other.
func TestAFailedClosuresCallerSeesWhatItConflictedWith(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		for round := range 20 {
			release := holdWriter(t, s)
			id := fmt.Sprintf("aud_conflict_%02d", round)
			var wg sync.WaitGroup
			var firstErr, secondErr error
			wg.Go(func() {
				firstErr = s.Update(ctx, func(tx authority.Tx) error { return insertEvent(tx, ctx, auditEvent(id)) })
			})
			waitQueued(s, 2)
			wg.Go(func() {
				secondErr = s.Update(ctx, func(tx authority.Tx) error { return insertEvent(tx, ctx, auditEvent(id)) })
				if !credential.IsCode(secondErr, credential.CodeConflict) {
					return
				}
				if !committedEvents(t, s)[id] {
					t.Errorf("round %d: told the event already exists, but it cannot be read", round)
				}
			})
			waitQueued(s, 3)
			release()
			wg.Wait()
			if firstErr != nil || !credential.IsCode(secondErr, credential.CodeConflict) {
				t.Fatalf("round %d: first %v, second %v; want success, then a conflict", round, firstErr, secondErr)
			}
		}
	})
}

// PostgreSQL answers the COMMIT of a transaction in which a statement
// failed with ROLLBACK, and no error: a caller whose closure swallowed such
// a failure must not be told its write took, whether the batch wrote more
// after it or nothing. The connection goes back to the pool clean.
func TestAPostgresBatchThatFailedIsNotAcknowledged(t *testing.T) {
	s := testkit.OpenPostgres(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		after func(tx authority.Tx) error
	}{
		{"nothing after the failed statement", func(authority.Tx) error { return nil }},
		{"an audit event after it", func(tx authority.Tx) error { return insertEvent(tx, ctx, auditEvent("aud_swallowed")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(ctx, func(tx authority.Tx) error {
				_ = sqlstore.ExecInTx(ctx, tx, "SELECT 1/0") // fails, and the closure ignores it
				return tc.after(tx)
			})
			if err == nil {
				t.Fatal("Update = nil for a transaction PostgreSQL had failed")
			}
			if committedEvents(t, s)["aud_swallowed"] {
				t.Error("the failed transaction's audit event is in the database")
			}
		})
	}
	// More batches than the pool has connections: none was left in a
	// transaction.
	for i := range 20 {
		update(t, s, func(tx authority.Tx) error { return insertEvent(tx, ctx, auditEvent(fmt.Sprintf("aud_after_%02d", i))) })
	}
	if got := committedEvents(t, s); !got["aud_after_00"] || !got["aud_after_19"] {
		t.Errorf("events after the failures: %v; want aud_after_00 … aud_after_19", got)
	}
}
