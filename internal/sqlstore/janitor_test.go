package sqlstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

const day = 24 * time.Hour

func janitorAuthority(t *testing.T, s *sqlstore.Store, clock *testkit.Clock) *authority.Authority {
	t.Helper()
	return authority.New(authority.Config{Store: s, Keyring: chainKeyring(t), Clock: clock, Limiter: inmem.NewLimiter()})
}

func lapsedCredential(t *testing.T, instanceID, id string, expires, revoked time.Time) credential.Credential {
	t.Helper()
	c := credential.Credential{ID: id, InstanceID: instanceID, Kind: credential.KindM2MToken, DisplayPrefix: "mt_x",
		ExpiresAt: expires, RevokedAt: revoked, CreatedAt: testkit.ClockStart, UpdatedAt: testkit.ClockStart}
	if _, err := rand.Read(c.Digest[:]); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestJanitorDeletesExactlyTheCredentialsPastRetention(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := janitorAuthority(t, s, clock)
		in, _, err := a.CreateInstance(ctx, "janitor")
		if err != nil {
			t.Fatal(err)
		}
		now := clock.Advance(100 * day)
		var none time.Time
		cases := []struct {
			id               string
			expires, revoked time.Time
			gone             bool
		}{
			{"mt_expired_31d", now.Add(-31 * day), none, true},
			{"mt_expired_30d_exactly", now.Add(-30 * day), none, true},
			{"mt_expired_29d", now.Add(-29 * day), none, false},
			{"mt_revoked_31d", none, now.Add(-31 * day), true},
			{"mt_revoked_29d_expires_later", now.Add(day), now.Add(-29 * day), false},
			{"mt_revoked_1d_expired_40d", now.Add(-40 * day), now.Add(-day), true},
			{"mt_live_forever", none, none, false},
			{"mt_live_expires_later", now.Add(day), none, false},
		}
		update(t, s, func(tx authority.Tx) error {
			for _, c := range cases {
				if err := tx.InsertCredential(ctx, lapsedCredential(t, in.ID, c.id, c.expires, c.revoked)); err != nil {
					return err
				}
			}
			return nil
		})
		before, _ := sqlstore.RowCount(ctx, s, "credentials")
		rep, err := a.RunJanitor(ctx, authority.Retention{Credentials: 30 * day, Batch: 2})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, c := range cases {
			got := s.View(ctx, func(tx authority.Tx) error {
				_, err := tx.GetCredential(ctx, in.ID, c.id)
				return err
			})
			if gone := credential.IsCode(got, credential.CodeNotFound); gone != c.gone {
				t.Errorf("%s: gone = %v, want %v", c.id, gone, c.gone)
			}
			if c.gone {
				want++
			}
		}
		after, _ := sqlstore.RowCount(ctx, s, "credentials")
		if rep.Credentials != want || before-after != want {
			t.Fatalf("reported %d deleted, %d rows went; want %d", rep.Credentials, before-after, want)
		}
		if rep, err := a.RunJanitor(ctx, authority.Retention{Credentials: 30 * day}); err != nil || rep.Credentials != 0 {
			t.Fatalf("a second pass: %+v, %v; want nothing more to delete", rep, err)
		}
	})
}

// seedTimedChain appends old events a year and a half ago and recent ones
// now, in one chain, and returns its instance id.
func seedTimedChain(t *testing.T, s *sqlstore.Store, clock *testkit.Clock, old, recent int) string {
	t.Helper()
	ctx := context.Background()
	const instanceID = "ins_pruned"
	add := func(n int, at time.Time, tag string) {
		update(t, s, func(tx authority.Tx) error {
			for i := range n {
				if _, err := tx.InsertAuditEvent(ctx, credential.AuditEvent{ID: fmt.Sprintf("aud_%s_%03d", tag, i), InstanceID: instanceID,
					At: at.Add(time.Duration(i) * time.Millisecond), Action: "machine.create", Outcome: credential.OutcomeSuccess}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	add(old, clock.Now(), "old")
	add(recent, clock.Advance(500*day), "new")
	return instanceID
}

func TestJanitorPrunesTheOldestAuditEventsAndTheChainStillVerifies(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := janitorAuthority(t, s, clock)
		const old, recent = 7, 4
		id := seedTimedChain(t, s, clock, old, recent)
		rep, err := a.RunJanitor(ctx, authority.Retention{Audit: 365 * day, Batch: 3})
		if err != nil {
			t.Fatal(err)
		}
		if rep.AuditEvents != old {
			t.Fatalf("pruned %d events, want the %d older than a year", rep.AuditEvents, old)
		}
		left, _ := sqlstore.RowCount(ctx, s, "audit_events")
		if left != recent {
			t.Fatalf("%d events left, want %d", left, recent)
		}
		chain, err := a.VerifyAuditChain(ctx, id)
		if err != nil || chain.Break != nil || chain.Events != recent || chain.PrunedThrough != old {
			t.Fatalf("VerifyAuditChain = %+v (break %+v), %v; want %d events after a checkpoint at seq %d", chain, chain.Break, err, recent, old)
		}
		// Appending goes on from the head, after the checkpoint.
		update(t, s, func(tx authority.Tx) error {
			_, err := tx.InsertAuditEvent(ctx, credential.AuditEvent{ID: "aud_after", InstanceID: id, At: clock.Now(), Action: "x"})
			return err
		})
		if chain, err := a.VerifyAuditChain(ctx, id); err != nil || chain.Break != nil || chain.Events != recent+1 {
			t.Fatalf("after one more event: %+v (break %+v), %v", chain, chain.Break, err)
		}
		if rep, err := a.RunJanitor(ctx, authority.Retention{Audit: 365 * day}); err != nil || rep.AuditEvents != 0 {
			t.Fatalf("a second pass: %+v, %v; want nothing more to prune", rep, err)
		}
		// Everything past retention: the chain is empty but still verifies,
		// from its checkpoint to its head.
		clock.Advance(1000 * day)
		if _, err := a.RunJanitor(ctx, authority.Retention{Audit: 365 * day}); err != nil {
			t.Fatal(err)
		}
		if chain, err := a.VerifyAuditChain(ctx, id); err != nil || chain.Break != nil || chain.Events != 0 || chain.PrunedThrough != old+recent+1 {
			t.Fatalf("fully pruned: %+v (break %+v), %v", chain, chain.Break, err)
		}
	})
}

func TestJanitorsOnSeveralNodesPruneOnceAndKeepOneCheckpoint(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		const old, recent = 40, 5
		id := seedTimedChain(t, s, clock, old, recent)
		const nodes = 4
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			pruned int
		)
		for range nodes {
			node := janitorAuthority(t, s, clock)
			wg.Go(func() {
				rep, err := node.RunJanitor(ctx, authority.Retention{Audit: 365 * day, Batch: 3})
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				pruned += rep.AuditEvents
				mu.Unlock()
			})
		}
		wg.Wait()
		if pruned != old {
			t.Fatalf("%d nodes pruned %d events between them, want %d", nodes, pruned, old)
		}
		chain, err := janitorAuthority(t, s, clock).VerifyAuditChain(ctx, id)
		if err != nil || chain.Break != nil || chain.Events != recent || chain.PrunedThrough != old {
			t.Fatalf("VerifyAuditChain = %+v (break %+v), %v", chain, chain.Break, err)
		}
	})
}

func TestTamperingAfterPruningIsStillDetected(t *testing.T) {
	tamper := []struct {
		name, edit, want string
	}{
		{"an edited event", `UPDATE audit_events SET actor_id = 'someone_else' WHERE id = 'aud_new_001'`, "hash does not match"},
		{"the first event after the checkpoint deleted", `DELETE FROM audit_events WHERE id = 'aud_new_000'`, "missing"},
		{"the checkpoint moved forward over a deleted event", `UPDATE audit_chain_heads SET checkpoint_seq = checkpoint_seq + 1`, "checkpoint does not authenticate"},
		{"the checkpoint's hash edited", `UPDATE audit_chain_heads SET checkpoint_hash = '` + strings.Repeat("0", 64) + `'`, "checkpoint does not authenticate"},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
				ctx := context.Background()
				clock := testkit.NewClock()
				a := janitorAuthority(t, s, clock)
				id := seedTimedChain(t, s, clock, 5, 3)
				if _, err := a.RunJanitor(ctx, authority.Retention{Audit: 365 * day}); err != nil {
					t.Fatal(err)
				}
				if tc.name == "the checkpoint moved forward over a deleted event" {
					if err := sqlstore.Exec(ctx, s, `DELETE FROM audit_events WHERE id = 'aud_new_000'`); err != nil {
						t.Fatal(err)
					}
				}
				if err := sqlstore.Exec(ctx, s, tc.edit); err != nil {
					t.Fatal(err)
				}
				chain, err := a.VerifyAuditChain(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if chain.Break == nil || !strings.Contains(chain.Break.Reason, tc.want) {
					t.Fatalf("break = %+v, want one with %q", chain.Break, tc.want)
				}
			})
		})
	}
}

// Pruning checks each link it deletes: it must not erase the evidence of
// an edit.
func TestJanitorRefusesToPrunePastABrokenLink(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := janitorAuthority(t, s, clock)
		id := seedTimedChain(t, s, clock, 5, 3)
		if err := sqlstore.Exec(ctx, s, `UPDATE audit_events SET actor_id = 'someone_else' WHERE id = 'aud_old_002'`); err != nil {
			t.Fatal(err)
		}
		if _, err := a.RunJanitor(ctx, authority.Retention{Audit: 365 * day}); err == nil || !strings.Contains(err.Error(), "broken at seq 3") {
			t.Fatalf("RunJanitor = %v, want a refusal naming seq 3", err)
		}
		if chain, _ := a.VerifyAuditChain(ctx, id); chain.Break == nil || chain.Break.EventID != "aud_old_002" {
			t.Fatalf("the edited event is no longer reported: %+v", chain.Break)
		}
	})
}

// The checkpoint travels with audit_chain_heads, and imported keys not
// yet re-keyed with their foreign hashes: after an export and an import
// the pruned chain verifies and the keys still verify.
func TestPrunedChainsAndForeignKeysSurviveExportAndImport(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a := janitorAuthority(t, s, clock)
		c, instanceID := adminCaller(t, a)
		keys := importForeign(t, a, instanceID, 3, 3)
		id := seedTimedChain(t, s, clock, 5, 2)
		if _, err := a.RunJanitor(ctx, authority.Retention{Audit: 365 * day}); err != nil {
			t.Fatal(err)
		}
		var dump strings.Builder
		if _, err := s.Export(ctx, &dump, chainKeyring(t).ExportCheck()); err != nil {
			t.Fatal(err)
		}
		target := testkit.OpenSQLite(t)
		if _, _, err := target.Import(ctx, strings.NewReader(dump.String()), chainKeyring(t).ExportCheck()); err != nil {
			t.Fatal(err)
		}
		b := janitorAuthority(t, target, clock)
		if err := b.RefreshForeignPrefixes(ctx); err != nil {
			t.Fatal(err)
		}
		chain, err := b.VerifyAuditChain(ctx, id)
		if err != nil || chain.Break != nil || chain.PrunedThrough != 5 || chain.Events != 2 {
			t.Fatalf("imported chain: %+v (break %+v), %v", chain, chain.Break, err)
		}
		for _, k := range keys {
			if r := verifyKey(t, b, c, k.key); !r.Valid {
				t.Fatalf("imported %s key: %+v", k.format, r)
			}
		}
	})
}
