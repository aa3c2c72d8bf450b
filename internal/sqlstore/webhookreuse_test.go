package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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
	// A closure that succeeds goes first: the first closure's failure is
	// undone by rolling the whole transaction back, so only a later one's
	// runs the batch under savepoints, which this is about.
	errFirst := make(chan error, 1)
	go func() {
		errFirst <- s.Update(ctx, func(tx authority.Tx) error {
			return insertEvent(tx, ctx, credential.AuditEvent{ID: "aud_first", InstanceID: "ins_hooks", At: t0, Action: "x"})
		})
	}()
	waitQueued(s, 2)
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
	waitQueued(s, 3)
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
	waitQueued(s, 4)
	release()
	if err := <-errFirst; err != nil {
		t.Fatal(err)
	}
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

// An import writes webhook rows without an audited change; on PostgreSQL
// it must still wait for a batch on another node that holds the
// instance's audit chain (and may reuse its read of the endpoints) to
// commit, or that batch's later changes would miss the new endpoint.
func TestAnImportedWebhookWaitsForABatchHoldingItsInstancesChain(t *testing.T) {
	ctx := context.Background()
	keys := newKeyring(t)
	from := testkit.OpenSQLite(t)
	a := authorityOver(from, keys)
	in, _, err := a.CreateInstance(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.CreateWebhook(ctx, authority.Operator(in.ID), authority.CreateWebhookInput{URL: "https://hooks.example/x", Events: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	if _, err := from.Export(ctx, &dump, keys.ExportCheck()); err != nil {
		t.Fatal(err)
	}
	// The importer's sessions are told apart from every other test's.
	app := "kw_import_" + in.ID
	node, importer := twoPostgresNodes(t, app)
	// Everything but the endpoint is there already.
	if _, _, err := node.Import(ctx, bytes.NewReader(dump.Bytes()), keys.ExportCheck()); err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Exec(ctx, node, "DELETE FROM webhooks"); err != nil {
		t.Fatal(err)
	}

	locked, release, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before the stores close, which waits for the batch
	go func() {
		held <- node.Update(ctx, func(tx authority.Tx) error {
			if err := insertEvent(tx, ctx, credential.AuditEvent{ID: "aud_hold", InstanceID: in.ID, At: t0, Action: "x"}); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	imported := make(chan error, 1)
	go func() {
		inserted, _, err := importer.Import(ctx, bytes.NewReader(dump.Bytes()), keys.ExportCheck())
		if err == nil && inserted != 1 {
			err = fmt.Errorf("inserted %d rows, want the one endpoint", inserted)
		}
		imported <- err
	}()
	awaitLockWait(t, node, app, imported, "the import committed an endpoint while another batch held the instance's chain")
	letGo()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-imported; err != nil {
		t.Fatal(err)
	}
}

// twoNodes opens two stores over one database, as two keyward nodes (or a
// node and a second process on the SQLite file) would.
func twoNodes(t *testing.T, engine string) (a, b *sqlstore.Store) {
	t.Helper()
	if engine == "postgres" {
		return twoPostgresNodes(t, "kw_nodes")
	}
	a, path := testkit.OpenSQLiteAt(t)
	b, err := sqlstore.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// A node's batches reuse an earlier batch's read of an instance's
// endpoints while the instance's webhook generation is unchanged. Every
// write to the endpoints changes it, on any node, an import's and a
// hand-written statement's included: the next batch reads them afresh and
// sees the change.
func TestALaterBatchSeesEveryEndpointChangeOfAnotherNode(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			if engine == "postgres" {
				testkit.PostgresURL(t) // skips without a server
			}
			ctx := context.Background()
			keys := newKeyring(t)
			source := testkit.OpenSQLite(t)
			in, _, err := authorityOver(source, keys).CreateInstance(ctx, "prod")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := authorityOver(source, keys).CreateWebhook(ctx, authority.Operator(in.ID),
				authority.CreateWebhookInput{URL: "https://hooks.example/imported", Events: []string{"*"}}); err != nil {
				t.Fatal(err)
			}
			var dump bytes.Buffer
			if _, err := source.Export(ctx, &dump, keys.ExportCheck()); err != nil {
				t.Fatal(err)
			}

			node, other := twoNodes(t, engine)
			var importedID string
			seen := func(step string, want ...string) {
				t.Helper()
				var got []string
				update(t, node, func(tx authority.Tx) error {
					if err := insertEvent(tx, ctx, credential.AuditEvent{ID: "aud_" + step, InstanceID: in.ID, At: t0, Action: "x"}); err != nil {
						return err
					}
					hooks, err := tx.ListWebhooks(ctx, in.ID)
					for _, w := range hooks {
						got = append(got, w.URL)
						if w.URL == "https://hooks.example/imported" {
							importedID = w.ID
						}
					}
					return err
				})
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: the node's batch read endpoints %v, want %v", step, got, want)
				}
			}
			if _, _, err := node.Import(ctx, bytes.NewReader(dump.Bytes()), keys.ExportCheck()); err != nil {
				t.Fatal(err)
			}
			seen("imported", "https://hooks.example/imported")
			seen("imported_again", "https://hooks.example/imported") // reused

			w := credential.Webhook{ID: "whk_other", InstanceID: in.ID, URL: "https://hooks.example/a", Events: []string{"*"},
				Sealed: []byte("sealed"), CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)}
			update(t, other, func(tx authority.Tx) error { return tx.InsertWebhook(ctx, w) })
			seen("inserted", "https://hooks.example/imported", "https://hooks.example/a")
			w.URL = "https://hooks.example/b"
			update(t, other, func(tx authority.Tx) error { return tx.UpdateWebhook(ctx, w) })
			seen("updated", "https://hooks.example/imported", "https://hooks.example/b")
			update(t, other, func(tx authority.Tx) error { return tx.DeleteWebhook(ctx, in.ID, w.ID) })
			seen("deleted", "https://hooks.example/imported")

			// An import brings back an endpoint the node saw deleted.
			update(t, other, func(tx authority.Tx) error { return tx.DeleteWebhook(ctx, in.ID, importedID) })
			seen("deleted_imported")
			if _, _, err := other.Import(ctx, bytes.NewReader(dump.Bytes()), keys.ExportCheck()); err != nil {
				t.Fatal(err)
			}
			seen("reimported", "https://hooks.example/imported")
			// So does a write no keyward code made (an older node's, a
			// hand-written one): the generation changes by trigger.
			if err := sqlstore.Exec(ctx, other, "UPDATE webhooks SET url = ? WHERE id = ?", "https://hooks.example/by-hand", importedID); err != nil {
				t.Fatal(err)
			}
			seen("by_hand", "https://hooks.example/by-hand")
			if err := sqlstore.Exec(ctx, other, "DELETE FROM webhooks WHERE id = ?", importedID); err != nil {
				t.Fatal(err)
			}
			seen("deleted_by_hand")
		})
	}
}
