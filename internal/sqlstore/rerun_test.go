package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// recordingSink keeps the audit log lines it is handed; fail, when set,
// decides which it refuses (or panics on).
type recordingSink struct {
	mu    sync.Mutex
	lines []credential.AuditEvent
	fail  func(credential.AuditEvent) error
}

func (r *recordingSink) WriteAuditEvent(e credential.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(e); err != nil {
			return err
		}
	}
	r.lines = append(r.lines, e)
	return nil
}

func (r *recordingSink) take() []credential.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	lines := r.lines
	r.lines = nil
	return lines
}

// sinkAuthority is an authority over s with cfg's audit sink, an
// instance, and a caller holding its first admin key.
func sinkAuthority(t *testing.T, s *sqlstore.Store, cfg authority.Config) (*authority.Authority, credential.Instance, authority.Caller) {
	t.Helper()
	cfg.Store, cfg.Keyring, cfg.Clock, cfg.Limiter = s, chainKeyring(t), testkit.NewClock(), inmem.NewLimiter()
	a := authority.New(cfg)
	ctx := context.Background()
	in, rootKey, err := a.CreateInstance(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	root, err := a.Authenticate(ctx, rootKey.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	return a, in, root
}

// A refused change batched behind a change that succeeds makes the batch
// run its closures again; what they do outside the database must still
// happen once: one audit log line for each committed event and none for
// any other, and one refusal counted.
func TestAClosureRunAgainWritesItsLogLinesAndCountsItsRefusalsOnce(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		sink := &recordingSink{}
		a, in, root := sinkAuthority(t, s, authority.Config{AuditSink: sink})
		name := "limited"
		_, limitedKey, err := a.CreateAdminKey(ctx, root, authority.CreateAdminKeyInput{Name: &name, Permissions: []string{string(credential.AdminKeys.Write())}})
		if err != nil {
			t.Fatal(err)
		}
		limited, err := a.Authenticate(ctx, limitedKey.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		before, _ := listAudit(t, s, authority.AuditFilter{InstanceID: in.ID})
		sink.take()

		release := holdWriter(t, s)
		var wg sync.WaitGroup
		var createErr, refusedErr, afterErr error
		machine := func(n string) (err error) {
			_, _, err = a.CreateMachine(ctx, root, authority.CreateMachineInput{Name: &n})
			return err
		}
		wg.Go(func() { createErr = machine("first") })
		waitQueued(s, 2)
		wg.Go(func() {
			// The limited key may not revoke the key that holds every
			// permission: refused inside its transaction.
			_, refusedErr = a.RevokeAdminKey(ctx, limited, root.CredentialID)
		})
		waitQueued(s, 3)
		wg.Go(func() { afterErr = machine("after") })
		waitQueued(s, 4)
		release()
		wg.Wait()
		if createErr != nil || afterErr != nil {
			t.Fatalf("the changes beside the refusal: %v, %v", createErr, afterErr)
		}
		wantCode(t, refusedErr, credential.CodeForbidden)

		earlier := map[string]bool{}
		for _, e := range before {
			earlier[e.ID] = true
		}
		after, _ := listAudit(t, s, authority.AuditFilter{InstanceID: in.ID})
		committed := map[string]bool{}
		for _, e := range after {
			if !earlier[e.ID] {
				committed[e.ID] = true
			}
		}
		lines := sink.take()
		seqs := map[int64]bool{}
		for _, e := range lines {
			if !committed[e.ID] {
				t.Errorf("a log line for event %s (%s, seq %d), which was not committed", e.ID, e.Action, e.Seq)
			}
			if seqs[e.Seq] {
				t.Errorf("two log lines at seq %d", e.Seq)
			}
			seqs[e.Seq] = true
		}
		if len(lines) != len(committed) || len(committed) != 2 {
			t.Errorf("%d log lines for %d committed events; want one for each of the 2 machines made", len(lines), len(committed))
		}

		if err := a.FlushRefusals(ctx, true); err != nil {
			t.Fatal(err)
		}
		refusals, _ := listAudit(t, s, authority.AuditFilter{InstanceID: in.ID, Action: authority.ActionAuthzRefused})
		if len(refusals) != 1 || refusals[0].Count != 1 {
			t.Fatalf("refusals recorded: %+v; want one, counted once", refusals)
		}
	})
}

// With a required audit log, a change whose line cannot be written fails
// alone and is not committed, while the changes batched beside it commit,
// each with its line; a sink that panics fails its change the same way
// instead of taking the server down.
func TestARequiredLogLineThatFailsFailsOnlyItsOwnChange(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func() error
	}{
		{"the sink refuses", func() error { return errors.New("disk full") }},
		{"the sink panics", func() error { panic("sink bug") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
				ctx := context.Background()
				sink := &recordingSink{}
				a, in, root := sinkAuthority(t, s, authority.Config{AuditSink: sink, AuditSinkRequired: true, OnAuditSinkError: func(error) {}})
				sink.take()
				sink.fail = func(e credential.AuditEvent) error {
					if e.Action == "machine.create" && strings.Contains(string(e.Detail), "refused-line") {
						return tc.fail()
					}
					return nil
				}
				release := holdWriter(t, s)
				names := []string{"before", "refused-line", "after"}
				errs := make([]error, len(names))
				var wg sync.WaitGroup
				for i, n := range names {
					wg.Go(func() {
						_, _, errs[i] = a.CreateMachine(ctx, root, authority.CreateMachineInput{Name: &n})
					})
					waitQueued(s, int64(i+2))
				}
				release()
				wg.Wait()
				if errs[0] != nil || errs[2] != nil {
					t.Fatalf("the changes beside the failing line: %v, %v", errs[0], errs[2])
				}
				if errs[1] == nil {
					t.Fatal("the change whose line failed was acknowledged")
				}
				events, _ := listAudit(t, s, authority.AuditFilter{InstanceID: in.ID, Action: "machine.create"})
				lined := map[string]bool{}
				for _, e := range sink.take() {
					lined[e.ID] = true
				}
				for _, e := range events {
					if !lined[e.ID] {
						t.Errorf("committed event %s has no log line", e.ID)
					}
				}
				if len(events) != 2 {
					t.Errorf("%d machine.create events committed, want the 2 beside the failing line", len(events))
				}
			})
		})
	}
}
