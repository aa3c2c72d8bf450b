package sqlstore_test

import (
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/testkit"
	"github.com/keyward/keyward/internal/testkit/contract"
)

// The store's Limiter exists on PostgreSQL only (SQLite counts in memory,
// see TestLimiterIsNilOnSQLite); the suite skips without a server.
func TestLimiterContract(t *testing.T) {
	contract.TestLimiter(t, func(t *testing.T) authority.Limiter { return testkit.OpenPostgres(t).Limiter() })
}
