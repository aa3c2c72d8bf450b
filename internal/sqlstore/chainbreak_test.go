package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// recordingSender accepts every delivery and keeps its body.
type recordingSender struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (s *recordingSender) Send(_ context.Context, _ string, _ map[string]string, body []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, slices.Clone(body))
	return 200, nil
}

// chainBrokenEvent is what an audit.chain_broken delivery carries.
type chainBrokenEvent struct {
	Type       string `json:"type"`
	InstanceID string `json:"instance_id"`
	OccurredAt string `json:"occurred_at"`
	Actor      struct{ Kind, ID string }
	Target     struct{ Kind, ID string }
	Detail     struct {
		InstanceID string `json:"instance_id"`
		Seq        int64  `json:"seq"`
		EventID    string `json:"event_id"`
		Reason     string `json:"reason"`
		FoundBy    string `json:"found_by"`
	}
}

// deliverChainBreaks runs the dispatcher until nothing is due and returns
// every delivery s received, decoded, and their raw bodies.
func deliverChainBreaks(t *testing.T, a *authority.Authority, s *recordingSender) ([]chainBrokenEvent, string) {
	t.Helper()
	testkit.DeliverAllWebhooks(t, a, s)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chainBrokenEvent
	var raw strings.Builder
	for _, b := range s.bodies {
		var e chainBrokenEvent
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
		raw.Write(b)
	}
	return out, raw.String()
}

// brokenChainFixture is an instance whose one endpoint subscribes to
// audit.chain_broken, with a few audited changes a year and a half ago
// and a few now (so the janitor prunes the old ones at 365d), and its
// chained events, oldest first. It returns the secrets handed out too.
func brokenChainFixture(t *testing.T, s *sqlstore.Store, clock *testkit.Clock) (*authority.Authority, string, []credential.AuditEvent, []string) {
	t.Helper()
	ctx := context.Background()
	a := janitorAuthority(t, s, clock)
	in, adminKey, err := a.CreateInstance(ctx, "chained")
	if err != nil {
		t.Fatal(err)
	}
	op := authority.Operator(in.ID)
	_, hookSecret, err := a.CreateWebhook(ctx, op, authority.CreateWebhookInput{URL: "https://hooks.example.com/audit", Events: []string{credential.EventAuditChainBroken}})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{adminKey.Reveal(), hookSecret.Reveal()}
	machines := func(tag string, n int) {
		for i := range n {
			name := fmt.Sprintf("%s%d", tag, i)
			_, key, err := a.CreateMachine(ctx, op, authority.CreateMachineInput{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, key.Reveal())
		}
	}
	machines("old", 3)
	clock.Advance(500 * day)
	machines("new", 2)
	var events []credential.AuditEvent
	update(t, s, func(tx authority.Tx) error {
		var err error
		events, err = tx.ChainEvents(ctx, in.ID, 0, 100)
		return err
	})
	return a, in.ID, events, secrets
}

// eventNamed is the chained event of the given action and target name.
func eventNamed(t *testing.T, events []credential.AuditEvent, name string) credential.AuditEvent {
	t.Helper()
	for _, e := range events {
		if e.Action == "machine.create" && strings.Contains(string(e.Detail), `"`+name+`"`) {
			return e
		}
	}
	t.Fatalf("no machine.create of %s among %d events", name, len(events))
	return credential.AuditEvent{}
}

// Whoever finds a broken chain (audit verify, the janitor, the scheduled
// check), and however often, on this node or another after a restart,
// the instance's endpoint hears of the break exactly once, with the
// instance, the seq and the time, and no secret.
func TestABrokenChainIsSentOnceAsAuditChainBroken(t *testing.T) {
	ctx := context.Background()
	verify := func(a *authority.Authority, id string) error { _, err := a.VerifyAuditChain(ctx, id); return err }
	janitor := func(a *authority.Authority, _ string) error {
		_, err := a.RunJanitor(ctx, authority.Retention{Audit: 365 * day})
		if err == nil || !strings.Contains(err.Error(), "not pruning past it") {
			return fmt.Errorf("RunJanitor = %v, want a refusal to prune past the break", err)
		}
		return nil
	}
	check := func(a *authority.Authority, _ string) error {
		broken, err := a.CheckAuditChains(ctx)
		if len(broken) != 1 {
			return fmt.Errorf("CheckAuditChains found %d broken chains, want 1", len(broken))
		}
		return err
	}
	finders := []struct {
		name    string
		runs    []func(*authority.Authority, string) error
		foundBy string
	}{
		{"audit verify twice", []func(*authority.Authority, string) error{verify, verify}, "audit_verify"},
		{"the janitor twice", []func(*authority.Authority, string) error{janitor, janitor}, "janitor"},
		{"the scheduled check twice", []func(*authority.Authority, string) error{check, check}, "scheduled_check"},
		{"the janitor, then audit verify, then the check", []func(*authority.Authority, string) error{janitor, verify, check}, "janitor"},
	}
	for _, tc := range finders {
		t.Run(tc.name, func(t *testing.T) {
			testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
				clock := testkit.NewClock()
				a, id, events, secrets := brokenChainFixture(t, s, clock)
				victim := eventNamed(t, events, "old1")
				if err := sqlstore.Exec(ctx, s, `UPDATE audit_events SET actor_id = 'someone_else' WHERE id = ?`, victim.ID); err != nil {
					t.Fatal(err)
				}
				for i, run := range tc.runs {
					node := a
					if i > 0 {
						node = janitorAuthority(t, s, clock) // a restart, or another node
					}
					if err := run(node, id); err != nil {
						t.Fatalf("run %d: %v", i+1, err)
					}
					clock.Advance(day)
				}
				if ev, _, err := s.OutboxCounts(ctx); err != nil || ev != 1 {
					t.Fatalf("outbox holds %d events (%v), want the one audit.chain_broken", ev, err)
				}
				got, raw := deliverChainBreaks(t, a, &recordingSender{})
				if len(got) != 1 {
					t.Fatalf("delivered %d events, want 1: %s", len(got), raw)
				}
				e := got[0]
				if e.Type != credential.EventAuditChainBroken || e.InstanceID != id || e.Detail.InstanceID != id ||
					e.Detail.Seq != victim.Seq || e.Detail.EventID != victim.ID || !strings.Contains(e.Detail.Reason, "hash does not match") ||
					e.Detail.FoundBy != tc.foundBy || e.Actor.Kind != "system" || e.Target.Kind != "audit_chain" || e.Target.ID != id {
					t.Errorf("event %s\nwant type %s of %s at seq %d (%s), found by %s", raw, credential.EventAuditChainBroken, id, victim.Seq, victim.ID, tc.foundBy)
				}
				if want := testkit.ClockStart.Add(500 * day).UTC().Format("2006-01-02T15:04:05"); !strings.HasPrefix(e.OccurredAt, want) {
					t.Errorf("occurred_at %s, want the first finding's time %s", e.OccurredAt, want)
				}
				for _, secret := range secrets {
					if strings.Contains(raw, secret) {
						t.Error("the event carries a secret")
					}
				}
			})
		})
	}
}

// A second break, at another seq, is news; the first is not sent again.
func TestANewBreakAtAnotherSeqIsSentAgain(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a, id, events, _ := brokenChainFixture(t, s, clock)
		later, earlier := eventNamed(t, events, "new1"), eventNamed(t, events, "old0")
		for _, victim := range []credential.AuditEvent{later, earlier} {
			if err := sqlstore.Exec(ctx, s, `UPDATE audit_events SET actor_id = 'someone_else' WHERE id = ?`, victim.ID); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := a.VerifyAuditChain(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, raw := deliverChainBreaks(t, a, &recordingSender{})
		if len(got) != 2 || got[0].Detail.Seq != later.Seq || got[1].Detail.Seq != earlier.Seq {
			t.Fatalf("delivered %s\nwant one event at seq %d, then one at seq %d", raw, later.Seq, earlier.Seq)
		}
	})
}

// A cut tail is one break, whatever is appended after it: the event names
// the first missing seq, not the head or the next event found.
func TestACutTailIsOneBreakAsTheChainGrows(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a, id, events, _ := brokenChainFixture(t, s, clock)
		last := events[len(events)-1]
		if err := sqlstore.Exec(ctx, s, `DELETE FROM audit_events WHERE id = ?`, last.ID); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			rep, err := a.VerifyAuditChain(ctx, id)
			if err != nil || rep.Break == nil || rep.Break.BrokenAt != last.Seq {
				t.Fatalf("pass %d: %+v, %v; want a break at the cut seq %d", i+1, rep.Break, err, last.Seq)
			}
			name := fmt.Sprintf("after%d", i)
			if _, _, err := a.CreateMachine(ctx, authority.Operator(id), authority.CreateMachineInput{Name: &name}); err != nil {
				t.Fatal(err)
			}
		}
		got, raw := deliverChainBreaks(t, a, &recordingSender{})
		if len(got) != 1 || got[0].Detail.Seq != last.Seq || !strings.Contains(got[0].Detail.Reason, "chain head") {
			t.Fatalf("delivered %s\nwant one event at seq %d naming the chain head", raw, last.Seq)
		}
	})
}

// An intact chain, checked every way, sends nothing; a break in an
// instance no endpoint listens to writes nothing at all.
func TestNoAuditChainBrokenWithoutABreakOrASubscriber(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		clock := testkit.NewClock()
		a, id, _, _ := brokenChainFixture(t, s, clock)
		if rep, err := a.VerifyAuditChain(ctx, id); err != nil || rep.Break != nil {
			t.Fatalf("VerifyAuditChain = %+v, %v", rep.Break, err)
		}
		if broken, err := a.CheckAuditChains(ctx); err != nil || len(broken) != 0 {
			t.Fatalf("CheckAuditChains = %v, %v", broken, err)
		}
		if _, err := a.RunJanitor(ctx, authority.Retention{Audit: 365 * day}); err != nil {
			t.Fatal(err)
		}
		if ev, _, err := s.OutboxCounts(ctx); err != nil || ev != 0 {
			t.Fatalf("an intact chain queued %d events (%v)", ev, err)
		}

		// Another instance, with no endpoint, breaks.
		other, events := seedChain(t, s, a)
		if err := sqlstore.Exec(ctx, s, `UPDATE audit_events SET actor_id = 'someone_else' WHERE id = ?`, events[1].ID); err != nil {
			t.Fatal(err)
		}
		before, _ := sqlstore.CommitStats(s)
		if rep, err := a.VerifyAuditChain(ctx, other); err != nil || rep.Break == nil {
			t.Fatalf("VerifyAuditChain = %+v, %v; want a break", rep.Break, err)
		}
		if after, _ := sqlstore.CommitStats(s); after != before {
			t.Errorf("a break nobody subscribes to wrote %d transactions", after-before)
		}
		if n, _ := s.NoticeCount(ctx); n != 0 {
			t.Errorf("%d notices recorded, want none", n)
		}
	})
}

// appendingStore appends an audit event to the chain right after every
// read transaction, as a busy server does while VerifyAuditChain walks.
type appendingStore struct {
	*sqlstore.Store
	t          *testing.T
	instanceID string
	n          int
}

func (s *appendingStore) View(ctx context.Context, fn func(authority.Tx) error) error {
	err := s.Store.View(ctx, fn)
	s.n++
	update(s.t, s.Store, func(tx authority.Tx) error {
		_, err := tx.InsertAuditEvent(ctx, credential.AuditEvent{ID: fmt.Sprintf("aud_busy_%03d", s.n), InstanceID: s.instanceID, At: at(s.n), Action: "x"})
		return err
	})
	return err
}

// Events appended while the walk goes on are not a cut tail: the head is
// read in the same snapshot as the events, so a scheduled check on a busy
// server sends no false alarm.
func TestAppendsDuringTheWalkAreNotABreak(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		id, _ := seedChain(t, s, chainAuthority(t, s))
		busy := &appendingStore{Store: s, t: t, instanceID: id}
		a := authority.New(authority.Config{Store: busy, Keyring: chainKeyring(t), Clock: testkit.NewClock(), Limiter: inmem.NewLimiter()})
		for range 3 {
			if rep, err := a.VerifyAuditChain(ctx, id); err != nil || rep.Break != nil {
				t.Fatalf("VerifyAuditChain during appends = %+v (break %+v), %v; want no break", rep, rep.Break, err)
			}
		}
	})
}
