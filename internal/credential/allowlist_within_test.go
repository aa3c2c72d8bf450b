package credential

import (
	"fmt"
	"net/netip"
	"testing"

	"pgregory.net/rapid"
)

func TestWithin(t *testing.T) {
	cases := []struct {
		name         string
		inner, outer []string
		want         bool
	}{
		{"anything is within an empty allowlist", []string{"10.0.0.0/8"}, nil, true},
		{"empty is within empty", nil, nil, true},
		{"an empty allowlist widens a restricted one", nil, []string{"127.0.0.1"}, false},
		{"the same address", []string{"127.0.0.1"}, []string{"127.0.0.1/32"}, true},
		{"a narrower prefix", []string{"10.1.2.0/24"}, []string{"10.0.0.0/8"}, true},
		{"a wider prefix", []string{"10.0.0.0/8"}, []string{"10.1.2.0/24"}, false},
		{"every address of both families widens", []string{"0.0.0.0/0", "::/0"}, []string{"127.0.0.1"}, false},
		{"a prefix covered by two entries together", []string{"10.0.0.0/23"}, []string{"10.0.1.0/24", "10.0.0.0/24"}, true},
		{"a prefix covered only in part", []string{"10.0.0.0/22"}, []string{"10.0.1.0/24", "10.0.0.0/24"}, false},
		{"IPv4 is not within IPv6", []string{"10.0.0.1"}, []string{"::/0"}, false},
		{"a mapped address is its IPv4 address", []string{"::ffff:10.0.0.1"}, []string{"10.0.0.0/24"}, true},
		{"IPv6 inside IPv6", []string{"2001:db8::1"}, []string{"2001:db8::/32"}, true},
		{"IPv6 outside IPv6", []string{"2001:db9::1"}, []string{"2001:db8::/32"}, false},
		{"one entry of several outside", []string{"10.0.0.1", "192.168.0.1"}, []string{"10.0.0.0/8"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustAllowlist(t, tc.inner...).Within(mustAllowlist(t, tc.outer...)); got != tc.want {
				t.Errorf("%v within %v = %v, want %v", tc.inner, tc.outer, got, tc.want)
			}
		})
	}
}

// The universe the oracle enumerates: every address of 10.0.0.0/24 and
// of 2001:db8::/120, so the generated allowlists (made of prefixes inside
// them) can be compared address by address.
var (
	universe4 = netip.MustParsePrefix("10.0.0.0/24")
	universe6 = netip.MustParsePrefix("2001:db8::/120")
)

func universe() []netip.Addr {
	var out []netip.Addr
	for _, p := range []netip.Prefix{universe4, universe6} {
		for a := p.Addr(); p.Contains(a); a = a.Next() {
			out = append(out, a)
		}
	}
	return out
}

// genEntry draws one allowlist entry inside the universe, spelled as an
// address, a prefix or an IPv4-mapped IPv6 form.
func genEntry(t *rapid.T, label string) string {
	v6 := rapid.Bool().Draw(t, label+"v6")
	last := rapid.IntRange(0, 255).Draw(t, label+"last")
	if v6 {
		bits := rapid.IntRange(120, 128).Draw(t, label+"bits")
		p := netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", last)), bits).Masked()
		return p.String()
	}
	bits := rapid.IntRange(24, 32).Draw(t, label+"bits")
	p := netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", last)), bits).Masked()
	if rapid.Bool().Draw(t, label+"mapped") {
		return fmt.Sprintf("::ffff:%s/%d", p.Addr(), p.Bits()+96)
	}
	return p.String()
}

func genAllowlist(t *rapid.T, label string) ([]string, Allowlist) {
	n := rapid.IntRange(0, 4).Draw(t, label+"n")
	var entries []string
	for i := range n {
		entries = append(entries, genEntry(t, fmt.Sprintf("%s%d", label, i)))
	}
	a, _, err := ParseAllowlist(entries)
	if err != nil {
		t.Fatalf("generated entries %v do not parse: %v", entries, err)
	}
	return entries, a
}

func TestWithinMatchesBruteForce(t *testing.T) {
	addrs := universe()
	outside := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db9::1")}
	rapid.Check(t, func(t *rapid.T) {
		innerEntries, inner := genAllowlist(t, "inner")
		outerEntries, outer := genAllowlist(t, "outer")
		want := true
		for _, a := range append(addrs, outside...) {
			if inner.Allows(a) && !outer.Allows(a) {
				want = false
				break
			}
		}
		if got := inner.Within(outer); got != want {
			t.Fatalf("%v within %v = %v, the addresses say %v", innerEntries, outerEntries, got, want)
		}
	})
}
