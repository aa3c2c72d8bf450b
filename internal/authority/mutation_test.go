package authority_test

import (
	"context"
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// A change that forgets its audit event is not committed: no write
// without its record.
func TestAChangeWithoutItsAuditEventIsNotCommitted(t *testing.T) {
	testkit.EachStore(t, func(t *testing.T, store *sqlstore.Store) {
		ctx := context.Background()
		a := newAuthority(t, store)
		in, _, err := a.CreateInstance(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		op := authority.Operator(in.ID)
		m := credential.Machine{ID: "mch_unaudited", InstanceID: in.ID, Name: "ghost", DefaultTokenTTL: 60}
		err = authority.InsertMachineUnaudited(ctx, a, op, m)
		if credential.CodeOf(err) != credential.CodeInternal {
			t.Fatalf("unaudited change: %v, want CodeInternal", err)
		}
		if _, err := a.GetMachine(ctx, op, m.ID); credential.CodeOf(err) != credential.CodeNotFound {
			t.Fatalf("the unaudited machine: %v, want CodeNotFound (nothing written)", err)
		}
	})
}
