package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/credential"
	"github.com/keyward/keyward/internal/sqlstore"
	"github.com/keyward/keyward/internal/testkit"
)

// TestAHungPostgresAnswersUnavailableAndRecovers freezes a private cluster
// under a store: a call in flight and new calls end in CodeUnavailable
// within a bound instead of hanging, and once the server answers again the
// store serves again by itself.
func TestAHungPostgresAnswersUnavailableAndRecovers(t *testing.T) {
	cluster := testkit.StartPostgresCluster(t)
	ctx := context.Background()
	s, err := sqlstore.OpenPostgres(ctx, cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	list := func() error {
		return s.View(ctx, func(tx authority.Tx) error { _, err := tx.ListInstances(ctx); return err })
	}
	if err := list(); err != nil {
		t.Fatal(err)
	}

	cluster.Freeze()
	const bound = 15 * time.Second
	for i := range 3 {
		start := time.Now()
		err := list()
		if !credential.IsCode(err, credential.CodeUnavailable) {
			t.Fatalf("call %d with the server hung: %v, want CodeUnavailable", i, err)
		}
		if took := time.Since(start); took > bound {
			t.Fatalf("call %d took %s with the server hung, want at most %s", i, took, bound)
		}
	}
	if err := s.Ping(ctx); !credential.IsCode(err, credential.CodeUnavailable) {
		t.Fatalf("Ping with the server hung: %v", err)
	}

	cluster.Thaw()
	deadline := time.Now().Add(30 * time.Second)
	for list() != nil || s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still failing 30 s after the server answers again: %v", list())
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not an assertion
	}
}
