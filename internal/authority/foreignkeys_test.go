package authority_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	. "github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/testkit"
)

// Imported keys must not cost a store read for presented garbage: only a
// token under an imported prefix is looked up, and its miss is cached like
// any other.
func TestGarbageTokensStayOffTheStoreWithForeignKeys(t *testing.T) {
	e := newCacheEnv(t, testkit.OpenSQLite(t), 0)
	ctx := context.Background()
	verifyAll := func(tokens ...string) int64 {
		t.Helper()
		before := e.store.reads.Load()
		for _, tok := range tokens {
			r, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: tok})
			if err != nil || r.Valid {
				t.Fatalf("Verify(garbage) = %+v, %v", r, err)
			}
		}
		return e.store.reads.Load() - before
	}
	garbage := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%sgarbage%020d", prefix, i)
		}
		return out
	}
	if err := e.a.RefreshForeignPrefixes(ctx); err != nil {
		t.Fatal(err)
	}
	if reads := verifyAll(garbage("xk_", 50)...); reads != 0 {
		t.Fatalf("with nothing imported, 50 garbage tokens cost %d store reads, want none", reads)
	}
	sum := sha256.Sum256([]byte("sk_live_theirs_0123456789"))
	if _, err := e.a.ImportForeignKeys(ctx, ImportForeignKeysInput{InstanceID: e.admin.InstanceID, Prefixes: map[string]string{"sk_live_": "live"},
		Keys: []ForeignKey{{Line: 1, Format: ForeignSHA256, Hash: hex.EncodeToString(sum[:]), Subject: "user_" + strings.Repeat("a", 27)}}}); err != nil {
		t.Fatal(err)
	}
	if reads := verifyAll(garbage("xk_", 50)...); reads != 0 {
		t.Fatalf("50 garbage tokens of another prefix cost %d store reads, want none", reads)
	}
	// Under the imported prefix a token is looked up once; its miss is cached.
	once := garbage("sk_live_", 1)
	verifyAll(once...)
	if reads := verifyAll(once[0], once[0], once[0]); reads != 0 {
		t.Fatalf("a repeated miss cost %d store reads, want none", reads)
	}
	if r, err := e.a.Verify(ctx, e.admin, VerifyInput{Token: "sk_live_theirs_0123456789"}); err != nil || !r.Valid {
		t.Fatalf("the imported key: %+v, %v", r, err)
	}
}
