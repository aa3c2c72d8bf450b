package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// client returns an unsaved client whose document carries its client_id
// and a fresh uuid.
func client(instanceID, userID, clientID string, created time.Time) credential.Client {
	return credential.Client{
		InstanceID: instanceID,
		UserID:     userID,
		ClientID:   clientID,
		Doc:        json.RawMessage(fmt.Sprintf(`{"client_id":%q,"uuid":%q}`, clientID, newUUID())),
		CreatedAt:  created,
	}
}

func insertClient(t *testing.T, s *sqlstore.Store, c credential.Client) credential.Client {
	t.Helper()
	update(t, s, func(tx authority.Tx) error { return tx.InsertClient(context.Background(), c) })
	return c
}

func getClient(t *testing.T, s *sqlstore.Store, instanceID, userID, clientID string) credential.Client {
	t.Helper()
	return view(t, s, func(tx authority.Tx) (credential.Client, error) {
		return tx.GetClient(context.Background(), instanceID, userID, clientID)
	})
}

func listClients(t *testing.T, s *sqlstore.Store, instanceID, userID string) []credential.Client {
	t.Helper()
	return view(t, s, func(tx authority.Tx) ([]credential.Client, error) {
		return tx.ListClients(context.Background(), instanceID, userID)
	})
}

func clientIDs(cs []credential.Client) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ClientID
	}
	return out
}

func TestClientRoundTrip(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		c := client(in.ID, "usr_1", "host-1", at(1).Add(123*time.Millisecond))
		// Spacing, key order, escapes and non-ASCII survive byte for byte.
		c.Doc = json.RawMessage(`{ "uuid":"3f1c",  "hostname" : "ü-host", "n":[1,2.50],"s":"\u00e9\"", "client_id":"host-1" }`)
		insertClient(t, s, c)

		t.Run("every field comes back, the document byte for byte", func(t *testing.T) {
			got := getClient(t, s, in.ID, "usr_1", "host-1")
			if diff := cmp.Diff(c, got); diff != "" {
				t.Errorf("GetClient (-want +got):\n%s", diff)
			}
			if string(got.Doc) != string(c.Doc) {
				t.Errorf("Doc = %s, want %s", got.Doc, c.Doc)
			}
			if !got.CreatedAt.Equal(at(1).Add(123 * time.Millisecond)) {
				t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, at(1).Add(123*time.Millisecond))
			}
		})

		t.Run("a nil document is stored as the empty object", func(t *testing.T) {
			n := client(in.ID, "usr_1", "host-nil", at(2))
			n.Doc = nil
			insertClient(t, s, n)
			if got := getClient(t, s, in.ID, "usr_1", "host-nil").Doc; string(got) != `{}` {
				t.Errorf("Doc = %s, want {}", got)
			}
		})

		t.Run("the same client_id for another user and another instance is fine", func(t *testing.T) {
			for _, want := range []credential.Client{
				client(in.ID, "usr_2", "host-1", at(3)),
				client(other.ID, "usr_1", "host-1", at(3)),
			} {
				insertClient(t, s, want)
				if diff := cmp.Diff(want, getClient(t, s, want.InstanceID, want.UserID, want.ClientID)); diff != "" {
					t.Errorf("GetClient (-want +got):\n%s", diff)
				}
			}
		})

		dup := client(in.ID, "usr_1", "host-1", at(4))
		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
			want credential.Code
		}{
			{"insert of a client_id the user has conflicts", func(tx authority.Tx) error { return tx.InsertClient(ctx, dup) }, credential.CodeConflict},
			{"insert into a missing instance is not found", func(tx authority.Tx) error {
				return tx.InsertClient(ctx, client("ins_missing", "usr_1", "host-9", at(4)))
			}, credential.CodeNotFound},
			{"get of a missing client_id is not found", func(tx authority.Tx) error {
				_, err := tx.GetClient(ctx, in.ID, "usr_1", "host-9")
				return err
			}, credential.CodeNotFound},
			{"delete of a missing client_id is not found", func(tx authority.Tx) error {
				return tx.DeleteClient(ctx, in.ID, "usr_1", "host-9")
			}, credential.CodeNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.Update(ctx, tc.op), tc.want)
				if diff := cmp.Diff(c, getClient(t, s, in.ID, "usr_1", "host-1")); diff != "" {
					t.Errorf("client changed (-before +after):\n%s", diff)
				}
				if got := clientIDs(listClients(t, s, in.ID, "usr_1")); !cmp.Equal(got, []string{"host-1", "host-nil"}) {
					t.Errorf("usr_1 has clients %v, want [host-1 host-nil]", got)
				}
			})
		}
	})
}

func TestListClients(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		in := newInstance(t, s, "acme")
		other := newInstance(t, s, "other")
		// Inserted out of order; at(1) is shared by three, whose client_ids
		// sort in byte order: upper case before lower case.
		late := insertClient(t, s, client(in.ID, "usr_1", "A-late", at(2)))
		lower := insertClient(t, s, client(in.ID, "usr_1", "a-host", at(1)))
		under := insertClient(t, s, client(in.ID, "usr_1", "_host", at(1)))
		upper := insertClient(t, s, client(in.ID, "usr_1", "B-host", at(1)))
		early := insertClient(t, s, client(in.ID, "usr_1", "z-early", at(0)))
		insertClient(t, s, client(in.ID, "usr_2", "a-host", at(1)))
		elsewhere := insertClient(t, s, client(other.ID, "usr_1", "a-host", at(1)))

		for _, tc := range []struct {
			name       string
			instanceID string
			userID     string
			want       []credential.Client
		}{
			{"one user's come by created_at, ties by client_id in byte order", in.ID, "usr_1",
				[]credential.Client{early, upper, under, lower, late}},
			{"an unknown user has none", in.ID, "usr_9", nil},
			{"another instance's user of the same id has only their own", other.ID, "usr_1",
				[]credential.Client{elsewhere}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, listClients(t, s, tc.instanceID, tc.userID)); diff != "" {
					t.Errorf("ListClients (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestDeleteClient(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		in := newInstance(t, s, "acme")
		gone := insertClient(t, s, client(in.ID, "usr_1", "host-1", at(1)))
		kept := insertClient(t, s, client(in.ID, "usr_1", "host-2", at(2)))
		same := insertClient(t, s, client(in.ID, "usr_2", "host-1", at(1)))

		update(t, s, func(tx authority.Tx) error { return tx.DeleteClient(ctx, in.ID, "usr_1", gone.ClientID) })

		for _, tc := range []struct {
			name string
			op   func(tx authority.Tx) error
		}{
			{"get of the deleted client is not found", func(tx authority.Tx) error {
				_, err := tx.GetClient(ctx, in.ID, "usr_1", gone.ClientID)
				return err
			}},
			{"a second delete is not found", func(tx authority.Tx) error {
				return tx.DeleteClient(ctx, in.ID, "usr_1", gone.ClientID)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantCode(t, s.Update(ctx, tc.op), credential.CodeNotFound)
			})
		}

		t.Run("the user's others and another user's of the same id stay", func(t *testing.T) {
			if diff := cmp.Diff([]credential.Client{kept}, listClients(t, s, in.ID, "usr_1")); diff != "" {
				t.Errorf("ListClients(usr_1) (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]credential.Client{same}, listClients(t, s, in.ID, "usr_2")); diff != "" {
				t.Errorf("ListClients(usr_2) (-want +got):\n%s", diff)
			}
		})

		t.Run("the deleted client_id can be registered again", func(t *testing.T) {
			again := insertClient(t, s, client(in.ID, "usr_1", gone.ClientID, at(3)))
			if diff := cmp.Diff(again, getClient(t, s, in.ID, "usr_1", gone.ClientID)); diff != "" {
				t.Errorf("GetClient (-want +got):\n%s", diff)
			}
		})
	})
}

// TestClientIsolation shows that another user's or instance's client is
// not found and not deleted, and that nothing of the owner changes.
func TestClientIsolation(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a := newInstance(t, s, "a")
		b := newInstance(t, s, "b")
		c := insertClient(t, s, client(a.ID, "usr_1", "host-1", at(1)))
		before := listClients(t, s, a.ID, "usr_1")

		for _, tc := range []struct {
			name               string
			instanceID, userID string
		}{
			{"another user", a.ID, "usr_2"},
			{"another instance", b.ID, "usr_1"},
			{"a user id differing in case", a.ID, "USR_1"},
		} {
			t.Run("get through "+tc.name+" is not found", func(t *testing.T) {
				wantCode(t, s.View(ctx, func(tx authority.Tx) error {
					_, err := tx.GetClient(ctx, tc.instanceID, tc.userID, c.ClientID)
					return err
				}), credential.CodeNotFound)
			})
			t.Run("delete through "+tc.name+" is not found", func(t *testing.T) {
				wantNotFoundAndCommit(t, s, func(tx authority.Tx) error {
					return tx.DeleteClient(ctx, tc.instanceID, tc.userID, c.ClientID)
				})
			})
			t.Run("list through "+tc.name+" is empty", func(t *testing.T) {
				if got := listClients(t, s, tc.instanceID, tc.userID); len(got) != 0 {
					t.Errorf("ListClients = %v, want none", clientIDs(got))
				}
			})
		}

		if diff := cmp.Diff(before, listClients(t, s, a.ID, "usr_1")); diff != "" {
			t.Errorf("the owner's clients changed (-before +after):\n%s", diff)
		}
		if n := rowCount(t, s, "clients"); n != 1 {
			t.Errorf("clients has %d rows, want 1", n)
		}
	})
}
