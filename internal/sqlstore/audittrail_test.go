package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func chainAuthority(t *testing.T, s *sqlstore.Store) *authority.Authority {
	t.Helper()
	return authority.New(authority.Config{Store: s, Keyring: chainKeyring(t), Clock: testkit.NewClock(), Limiter: inmem.NewLimiter()})
}

// chainKeyring is the keyring chainAuthority runs with.
func chainKeyring(t *testing.T) *keyring.Keyring {
	t.Helper()
	keys, err := keyring.New(bytes.Repeat([]byte{9}, keyring.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// seedChain makes an instance and a few audited changes in it, and returns
// the instance id and its events, oldest first.
func seedChain(t *testing.T, s *sqlstore.Store, a *authority.Authority) (string, []credential.AuditEvent) {
	t.Helper()
	ctx := context.Background()
	in, _, err := a.CreateInstance(ctx, "chained")
	if err != nil {
		t.Fatal(err)
	}
	op := authority.Operator(in.ID)
	for i := range 3 {
		name := fmt.Sprintf("m%d", i)
		if _, _, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	var events []credential.AuditEvent
	update(t, s, func(tx authority.Tx) error {
		var err error
		events, err = tx.ChainEvents(ctx, in.ID, 0, 100)
		return err
	})
	if len(events) < 4 {
		t.Fatalf("%d chained events, want at least 4", len(events))
	}
	return in.ID, events
}

func TestAuditChainLinksEveryEventToItsPredecessor(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		a := chainAuthority(t, s)
		id, events := seedChain(t, s, a)
		prev := ""
		for i, e := range events {
			if e.Seq != int64(i+1) || e.PrevHash != prev || e.Hash != e.ChainHash(prev) || len(e.Hash) != 64 {
				t.Fatalf("event %d: seq %d prev %q hash %q, want seq %d chained to %q", i, e.Seq, e.PrevHash, e.Hash, i+1, prev)
			}
			prev = e.Hash
		}
		rep, err := a.VerifyAuditChain(context.Background(), id)
		if err != nil || rep.Break != nil || rep.Events != int64(len(events)) {
			t.Fatalf("VerifyAuditChain = %+v, %v; want %d events and no break", rep, err, len(events))
		}
	})
}

func TestAuditChainVerifyNamesTheFirstBrokenLink(t *testing.T) {
	tamper := []struct {
		name    string
		edit    string // SQL with one ? for the event id
		victim  int    // index of the edited event
		wantAt  int    // index of the event reported (-1: the head)
		wantMsg string
	}{
		{"an edited field", `UPDATE audit_events SET actor_id = 'someone_else' WHERE id = ?`, 1, 1, "hash does not match"},
		{"an edited detail", `UPDATE audit_events SET detail = '{"name":"innocent"}' WHERE id = ?`, 2, 2, "hash does not match"},
		{"an edited hash", `UPDATE audit_events SET hash = '` + fmt.Sprintf("%064d", 0) + `' WHERE id = ?`, 1, 1, "hash does not match"},
		// An editor who recomputes the edited event's own hash still breaks
		// the next event's link.
		{"an edit with its hash recomputed", "recompute", 1, 2, "prev_hash"},
		{"a deleted event", `DELETE FROM audit_events WHERE id = ?`, 1, 2, "missing"},
		{"a deleted tail", `DELETE FROM audit_events WHERE id = ?`, -1, -1, "chain head"},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
				ctx := context.Background()
				a := chainAuthority(t, s)
				id, events := seedChain(t, s, a)
				victim := tc.victim
				if victim < 0 {
					victim = len(events) - 1
				}
				query, args := tc.edit, []any{events[victim].ID}
				if query == "recompute" {
					e := events[victim]
					e.ActorID = "someone_else"
					query, args = `UPDATE audit_events SET actor_id = ?, hash = ? WHERE id = ?`, []any{e.ActorID, e.ChainHash(e.PrevHash), e.ID}
				}
				if err := sqlstore.Exec(ctx, s, query, args...); err != nil {
					t.Fatal(err)
				}
				rep, err := a.VerifyAuditChain(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Break == nil {
					t.Fatalf("VerifyAuditChain found no break after %s", tc.name)
				}
				wantID := ""
				if tc.wantAt >= 0 {
					wantID = events[tc.wantAt].ID
				}
				if rep.Break.EventID != wantID || !bytes.Contains([]byte(rep.Break.Reason), []byte(tc.wantMsg)) {
					t.Errorf("break = %+v, want event %q and a reason with %q", rep.Break, wantID, tc.wantMsg)
				}
			})
		})
	}
}

// appendConcurrently appends event(i) for i in [0, n), each in an Update
// of its own, all at once, and fails on any error.
func appendConcurrently(t *testing.T, s *sqlstore.Store, n int, event func(i int) credential.AuditEvent) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.Update(ctx, func(tx authority.Tx) error {
				_, err := tx.InsertAuditEvent(ctx, event(i))
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Concurrent appends to one instance's chain must serialize: every event
// gets its own seq and links to the one before, never a fork.
func TestAuditChainConcurrentWritersDoNotFork(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		const writers = 16
		appendConcurrently(t, s, writers, func(i int) credential.AuditEvent {
			return credential.AuditEvent{ID: fmt.Sprintf("aud_c%02d", i), InstanceID: "ins_concurrent", At: at(i), Action: "x"}
		})
		a := chainAuthority(t, s)
		rep, err := a.VerifyAuditChain(ctx, "ins_concurrent")
		if err != nil || rep.Break != nil || rep.Events != writers {
			t.Fatalf("VerifyAuditChain = %+v (break %+v), %v; want %d events in one chain", rep, rep.Break, err, writers)
		}
	})
}

// Batches whose closures append to two instances' chains write both heads
// back with their rows (on PostgreSQL in the statement that writes the
// held rows): the next wave of writers continues each chain where the
// last ended, with no fork and no event left out.
func TestAuditChainHeadsOfABatchAcrossInstancesAreWrittenBack(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		const writers, waves = 16, 3
		instances := []string{"ins_wave_a", "ins_wave_b"}
		for wave := range waves {
			appendConcurrently(t, s, writers, func(i int) credential.AuditEvent {
				return credential.AuditEvent{ID: fmt.Sprintf("aud_w%d_%02d", wave, i),
					InstanceID: instances[i%len(instances)], At: at(wave*writers + i), Action: "x"}
			})
		}
		a := chainAuthority(t, s)
		for _, id := range instances {
			rep, err := a.VerifyAuditChain(ctx, id)
			if want := int64(waves * writers / len(instances)); err != nil || rep.Break != nil || rep.Events != want {
				t.Errorf("VerifyAuditChain(%s) = %+v (break %+v), %v; want %d events in one chain", id, rep, rep.Break, err, want)
			}
		}
	})
}

// A credential made before search digests existed gets its digest on its
// next successful authentication, and from then on its secret's SHA-256
// finds its events.
func TestSearchDigestIsFilledOnFirstUse(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := chainAuthority(t, s)
		in, adminKey, err := a.CreateInstance(ctx, "legacy")
		if err != nil {
			t.Fatal(err)
		}
		admin := authority.Operator(in.ID)
		if err := sqlstore.Exec(ctx, s, `UPDATE credentials SET search_digest = NULL`); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(adminKey.Reveal()))
		search := authority.ListAuditEventsInput{CredentialSHA256: hex.EncodeToString(sum[:])}

		fresh := chainAuthority(t, s) // a node with nothing cached
		if events, _, err := fresh.ListAuditEvents(ctx, admin, search); err != nil || len(events) != 0 {
			t.Fatalf("before first use: %d events, %v; want none (no digest yet)", len(events), err)
		}
		caller, err := fresh.Authenticate(ctx, adminKey.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		name := "after"
		if _, _, err := fresh.CreateMachine(ctx, caller, authority.CreateMachineInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		events, _, err := fresh.ListAuditEvents(ctx, admin, search)
		// What the key did, and what was done to it.
		if err != nil || len(events) != 2 || events[0].Action != "machine.create" || events[0].CredentialID != caller.CredentialID ||
			events[1].Action != "admin_key.create" || events[1].TargetID != caller.CredentialID {
			t.Fatalf("after first use: %+v, %v; want the machine.create the key did and the admin_key.create that made it", events, err)
		}
	})
}

// A credential that has its search digest is verified without a write:
// the cache must remember that the row has one, or every cold verify would
// queue a no-op UPDATE behind the writer.
func TestVerifyingACredentialThatHasItsSearchDigestWritesNothing(t *testing.T) {
	s := testkit.OpenSQLite(t)
	ctx := context.Background()
	a := chainAuthority(t, s)
	in, adminKey, err := a.CreateInstance(ctx, "digested")
	if err != nil {
		t.Fatal(err)
	}
	name := "m"
	_, machineKey, err := a.CreateMachine(ctx, authority.Operator(in.ID), authority.CreateMachineInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	fresh := chainAuthority(t, s) // a node with nothing cached
	mc, err := fresh.Authenticate(ctx, machineKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := fresh.CreateM2MToken(ctx, mc, authority.CreateM2MTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	cold := chainAuthority(t, s)
	admin, err := cold.Authenticate(ctx, adminKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	before, _ := sqlstore.CommitStats(s)
	for range 3 {
		r, err := cold.Verify(ctx, admin, authority.VerifyInput{Token: tok.Token})
		if err != nil || !r.Valid {
			t.Fatalf("Verify = %+v, %v; want valid", r, err)
		}
	}
	if after, _ := sqlstore.CommitStats(s); after != before {
		t.Errorf("verifying wrote %d transactions, want none", after-before)
	}
}
