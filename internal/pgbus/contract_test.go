package pgbus_test

import (
	"testing"

	"github.com/keyward/keyward/internal/authority"
	"github.com/keyward/keyward/internal/testkit/contract"
)

func TestBusContract(t *testing.T) {
	contract.TestBus(t, func(t *testing.T, n int) []authority.Bus {
		url, channel := serverURL(t, ""), unique("kw_test_")
		buses := make([]authority.Bus, n)
		for i := range buses {
			buses[i] = newBus(t, url, channel) // a Bus per node
		}
		return buses
	})
}
