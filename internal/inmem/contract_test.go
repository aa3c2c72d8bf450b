package inmem_test

import (
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/inmem"
	"github.com/keyward/keyward/internal/testkit/contract"
)

func TestLimiterContract(t *testing.T) {
	contract.TestLimiter(t, func(*testing.T) authority.Limiter { return inmem.NewLimiter() })
}

func TestBusContract(t *testing.T) {
	// One process: every node is the same Bus.
	contract.TestBus(t, func(_ *testing.T, n int) []authority.Bus {
		b := inmem.NewBus()
		buses := make([]authority.Bus, n)
		for i := range buses {
			buses[i] = b
		}
		return buses
	})
}
