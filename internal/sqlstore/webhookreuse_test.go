package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

func reuseInstance(t *testing.T, s *sqlstore.Store, id string) {
	t.Helper()
	in := credential.Instance{ID: id, Name: id, CreatedAt: t0}
	update(t, s, func(tx authority.Tx) error { return tx.CreateInstance(context.Background(), in) })
}

func hookIDs(t *testing.T, tx authority.Tx, ins string) []string {
	t.Helper()
	hooks, err := tx.ListWebhooks(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, w := range hooks {
		ids = append(ids, w.ID+":"+w.URL)
	}
	return ids
}

// A batch reads an instance's endpoints once while it holds the audit
// chain; what it writes to them itself it must still see, at once.
func TestABatchSeesEveryWebhookChangeItMakes(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		reuseInstance(t, s, "ins_hooks")
		w := credential.Webhook{ID: "whk_1", InstanceID: "ins_hooks", URL: "https://a.example/h", Events: []string{"*"},
			Sealed: []byte("sealed"), CreatedAt: t0, UpdatedAt: t0}
		update(t, s, func(tx authority.Tx) error {
			if err := insertEvent(tx, ctx, credential.AuditEvent{ID: "aud_h1", InstanceID: "ins_hooks", At: t0, Action: "x"}); err != nil {
				return err
			}
			if got := hookIDs(t, tx, "ins_hooks"); len(got) != 0 {
				t.Fatalf("before: %v", got)
			}
			if err := tx.InsertWebhook(ctx, w); err != nil {
				return err
			}
			if got := hookIDs(t, tx, "ins_hooks"); len(got) != 1 || got[0] != "whk_1:https://a.example/h" {
				t.Fatalf("after insert: %v", got)
			}
			// A caller may clear what it was given; the next read is whole.
			hooks, _ := tx.ListWebhooks(ctx, "ins_hooks")
			hooks[0].Sealed = nil
			if again, _ := tx.ListWebhooks(ctx, "ins_hooks"); string(again[0].Sealed) != "sealed" {
				t.Fatalf("a caller's change to its copy reached the next read: %+v", again[0])
			}
			w.URL = "https://b.example/h"
			if err := tx.UpdateWebhook(ctx, w); err != nil {
				return err
			}
			if got := hookIDs(t, tx, "ins_hooks"); len(got) != 1 || got[0] != "whk_1:https://b.example/h" {
				t.Fatalf("after update: %v", got)
			}
			if err := tx.DeleteWebhook(ctx, "ins_hooks", "whk_1"); err != nil {
				return err
			}
			if got := hookIDs(t, tx, "ins_hooks"); len(got) != 0 {
				t.Fatalf("after delete: %v", got)
			}
			return nil
		})
	})
}

// An endpoint written by a closure that then fails is rolled back with
// it: the next closure of the same batch must not be shown it.
func TestAFailedClosuresWebhookIsNotShownToTheRestOfItsBatch(t *testing.T) {
	s := testkit.OpenSQLite(t)
	ctx := context.Background()
	reuseInstance(t, s, "ins_hooks")
	release := holdWriter(t, s)
	errA, errB := make(chan error, 1), make(chan error, 1)
	var seenByB []string
	var txA, txB authority.Tx
	go func() {
		errA <- s.Update(ctx, func(tx authority.Tx) error {
			txA = tx
			if err := insertEvent(tx, ctx, credential.AuditEvent{ID: "aud_a", InstanceID: "ins_hooks", At: t0, Action: "x"}); err != nil {
				return err
			}
			w := credential.Webhook{ID: "whk_a", InstanceID: "ins_hooks", URL: "https://a.example/h", Events: []string{"*"}, Sealed: []byte("s"), CreatedAt: t0, UpdatedAt: t0}
			if err := tx.InsertWebhook(ctx, w); err != nil {
				return err
			}
			if got := hookIDs(t, tx, "ins_hooks"); len(got) != 1 {
				t.Errorf("closure A sees %v", got)
			}
			return errors.New("closure A fails")
		})
	}()
	waitQueued(s, 2)
	go func() {
		errB <- s.Update(ctx, func(tx authority.Tx) error {
			txB = tx
			if err := insertEvent(tx, ctx, credential.AuditEvent{ID: "aud_b", InstanceID: "ins_hooks", At: t0, Action: "x"}); err != nil {
				return err
			}
			seenByB = hookIDs(t, tx, "ins_hooks")
			return nil
		})
	}()
	waitQueued(s, 3)
	release()
	if err := <-errA; err == nil || err.Error() != "closure A fails" {
		t.Fatalf("closure A: %v", err)
	}
	if err := <-errB; err != nil {
		t.Fatal(err)
	}
	if txA != txB {
		t.Fatal("the two closures ran in different batches; the test proves nothing")
	}
	if len(seenByB) != 0 {
		t.Fatalf("closure B, after A was rolled back, was shown %v", seenByB)
	}
}
