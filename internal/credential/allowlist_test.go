package credential

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseAllowlistNormalizes(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want []string
	}{
		{"nothing", nil, []string{}},
		{"ipv4", []string{"63.3.55.4"}, []string{"63.3.55.4"}},
		{"ipv4 cidr", []string{"63.3.56.0/24"}, []string{"63.3.56.0/24"}},
		{"ipv6 is lowercased and compressed", []string{"2001:DB8:0:0:0:0:0:1"}, []string{"2001:db8::1"}},
		{"ipv6 cidr", []string{"2001:db8:abcd::/48"}, []string{"2001:db8:abcd::/48"}},
		{"full-length v4 prefix is an address", []string{"10.1.2.3/32"}, []string{"10.1.2.3"}},
		{"full-length v6 prefix is an address", []string{"2001:db8::1/128"}, []string{"2001:db8::1"}},
		{"mapped address is unmapped", []string{"::ffff:10.1.2.3"}, []string{"10.1.2.3"}},
		{"mapped address in hex is unmapped", []string{"::ffff:a01:203"}, []string{"10.1.2.3"}},
		{"mapped cidr is unmapped", []string{"::ffff:10.0.0.0/104"}, []string{"10.0.0.0/8"}},
		{"mapped /96 is all of IPv4", []string{"::ffff:0.0.0.0/96"}, []string{"0.0.0.0/0"}},
		{"mapped /128 is an address", []string{"::ffff:10.1.2.3/128"}, []string{"10.1.2.3"}},
		{"everything", []string{"0.0.0.0/0", "::/0"}, []string{"0.0.0.0/0", "::/0"}},
		{"ipv4-compatible is left as IPv6", []string{"::10.1.2.3"}, []string{"::a01:203"}},
		{"duplicates kept once in first order", []string{"10.0.0.0/8", "10.1.2.3", "::ffff:10.1.2.3", "10.0.0.0/8", "10.1.2.3/32", "2001:db8::1", "2001:DB8::1"},
			[]string{"10.0.0.0/8", "10.1.2.3", "2001:db8::1"}},
		{"ten entries", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10"},
			[]string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, got, err := ParseAllowlist(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) || got == nil {
				t.Fatalf("normalized %q, want %q", got, c.want)
			}
			if a.Empty() != (len(c.want) == 0) {
				t.Fatalf("Empty() = %v", a.Empty())
			}
			_, again, err := ParseAllowlist(got)
			if err != nil || !slices.Equal(again, got) {
				t.Fatalf("reparse gave %q, %v", again, err)
			}
		})
	}
}

func TestParseAllowlistRejects(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		code Code
		msg  string
	}{
		{"eleven entries", []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10", "10.0.0.11"},
			CodeTooMany, "at most 10"},
		{"eleven entries even if duplicates", slices.Repeat([]string{"10.0.0.1"}, 11), CodeTooMany, "at most 10"},
		{"empty entry", []string{"10.0.0.1", ""}, CodeInvalid, `src_ips[1]: "": empty entry`},
		{"zone", []string{"fe80::1%eth0"}, CodeInvalid, `"fe80::1%eth0": IPv6 zones are not allowed`},
		{"zone in a cidr", []string{"fe80::%eth0/64"}, CodeInvalid, "zones are not allowed"},
		{"zone with a slash in it", []string{"fe80::1%eth0/64x"}, CodeInvalid, "zones are not allowed"},
		{"v4 port", []string{"10.1.2.3:443"}, CodeInvalid, `"10.1.2.3:443": not an IP address`},
		{"v6 port", []string{"[2001:db8::1]:443"}, CodeInvalid, "not an IP address"},
		{"bracketed v6", []string{"[2001:db8::1]"}, CodeInvalid, "not an IP address"},
		{"leading zero", []string{"010.1.1.1"}, CodeInvalid, `"010.1.1.1": not an IP address`},
		{"leading zero in a cidr", []string{"10.01.0.0/16"}, CodeInvalid, "not an IP address"},
		{"leading zero in the bits", []string{"10.0.0.0/08"}, CodeInvalid, "not an IP address"},
		{"short v4", []string{"10.1"}, CodeInvalid, "not an IP address"},
		{"hex v4", []string{"0x0a.0.0.1"}, CodeInvalid, "not an IP address"},
		{"decimal v4", []string{"167772161"}, CodeInvalid, "not an IP address"},
		{"hostname", []string{"localhost"}, CodeInvalid, "not an IP address"},
		{"spaces", []string{" 10.0.0.1"}, CodeInvalid, "not an IP address"},
		{"trailing newline", []string{"10.0.0.1\n"}, CodeInvalid, `"10.0.0.1\n"`},
		{"bits out of range", []string{"10.0.0.0/33"}, CodeInvalid, "not an IP address"},
		{"negative bits", []string{"10.0.0.0/-1"}, CodeInvalid, "not an IP address"},
		{"no bits", []string{"10.0.0.0/"}, CodeInvalid, "not an IP address"},
		{"host bits v4", []string{"10.0.0.1/8"}, CodeInvalid, `"10.0.0.1/8": host bits set; did you mean 10.0.0.0/8?`},
		{"host bits v6", []string{"2001:db8::1/64"}, CodeInvalid, "host bits set; did you mean 2001:db8::/64?"},
		{"host bits in a mapped cidr", []string{"::ffff:10.1.2.3/104"}, CodeInvalid, "host bits set; did you mean 10.0.0.0/8?"},
		{"mapped cidr shorter than /96", []string{"::ffff:0.0.0.0/80"}, CodeInvalid, "host bits set; did you mean ::/80?"},
		{"long entry is capped", []string{strings.Repeat("1", 100)}, CodeInvalid, `"` + strings.Repeat("1", 64) + `"…: not`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, norm, err := ParseAllowlist(c.in)
			if err == nil {
				t.Fatalf("accepted as %q", norm)
			}
			if !a.Empty() || norm != nil {
				t.Fatalf("returned a list with an error: %q", norm)
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error %T, want *Error", err)
			}
			if e.Code != c.code || e.Param != "src_ips" {
				t.Fatalf("code %s param %q, want %s src_ips (%v)", e.Code, e.Param, c.code, err)
			}
			if !strings.Contains(e.Message, c.msg) {
				t.Fatalf("message %q does not contain %q", e.Message, c.msg)
			}
			if len(e.Message) > 200 {
				t.Fatalf("message is %d bytes long", len(e.Message))
			}
		})
	}
}

func mustAllowlist(t *testing.T, entries ...string) Allowlist {
	t.Helper()
	a, _, err := ParseAllowlist(entries)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAllows(t *testing.T) {
	v4 := mustAllowlist(t, "63.3.56.0/24", "63.3.55.4")
	v6 := mustAllowlist(t, "2001:db8:abcd::/48", "2001:db8::1")
	mapped := mustAllowlist(t, "::ffff:10.0.0.0/104")
	cases := []struct {
		name string
		list Allowlist
		ip   string // "" is the zero Addr
		want bool
	}{
		{"v4 address listed", v4, "63.3.55.4", true},
		{"v4 address next to the listed one", v4, "63.3.55.5", false},
		{"first address of the /24", v4, "63.3.56.0", true},
		{"last address of the /24", v4, "63.3.56.255", true},
		{"address just past the /24", v4, "63.3.57.0", false},
		{"address just before the /24", v4, "63.3.55.255", false},
		{"mapped peer against a v4 list", v4, "::ffff:63.3.56.7", true},
		{"mapped peer outside a v4 list", v4, "::ffff:63.3.57.7", false},
		{"v6 peer against a v4 list", v4, "2001:db8::1", false},
		{"ipv4-compatible peer against a v4 list", v4, "::63.3.56.7", false},
		{"nat64 peer against a v4 list", v4, "64:ff9b::3f03:3807", false},
		{"zero addr against a v4 list", v4, "", false},
		{"v6 address listed", v6, "2001:db8::1", true},
		{"v6 address not listed", v6, "2001:db8::2", false},
		{"first of the /48", v6, "2001:db8:abcd::", true},
		{"last of the /48", v6, "2001:db8:abcd:ffff:ffff:ffff:ffff:ffff", true},
		{"just past the /48", v6, "2001:db8:abce::", false},
		{"v4 peer against a v6 list", v6, "63.3.56.7", false},
		{"zoned peer", v6, "2001:db8::1%eth0", false},
		{"zero addr against a v6 list", v6, "", false},
		{"v4 peer against a mapped cidr entry", mapped, "10.200.1.1", true},
		{"mapped peer against a mapped cidr entry", mapped, "::ffff:10.200.1.1", true},
		{"outside a mapped cidr entry", mapped, "11.0.0.0", false},
		{"empty list allows v4", Allowlist{}, "192.0.2.1", true},
		{"empty list allows v6", Allowlist{}, "2001:db8::1", true},
		{"empty list allows the zero addr", Allowlist{}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ip netip.Addr
			if c.ip != "" {
				ip = netip.MustParseAddr(c.ip)
			}
			if got := c.list.Allows(ip); got != c.want {
				t.Fatalf("Allows(%s) = %v, want %v", c.ip, got, c.want)
			}
		})
	}
}

// containsByHand is an oracle for Prefix.Contains after unmapping, written
// on the 16-byte form so it shares no code with netip's matcher: both
// sides must be the same family and agree on the prefix's leading bits.
func containsByHand(p netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.Zone() != "" || ip.Is4() != p.Addr().Is4() {
		return false
	}
	a, b := p.Addr().As16(), ip.As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := 0; i < bits; i++ {
		mask := byte(0x80) >> (i % 8)
		if a[i/8]&mask != b[i/8]&mask {
			return false
		}
	}
	return true
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	first := 0
	if p.Addr().Is4() {
		first = 96
	}
	for i := first + p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		last = last.Unmap()
	}
	return last
}

func FuzzAllowlist(f *testing.F) {
	for _, seed := range []struct{ list, peer string }{
		{"63.3.55.4", "63.3.55.4"},
		{"63.3.56.0/24", "63.3.56.255"},
		{"63.3.56.0/24", "63.3.57.0"},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:db8:abcd::/48", "2001:db8:abcd::1"},
		{"::ffff:10.1.2.3", "10.1.2.3"},
		{"::ffff:10.0.0.0/104", "::ffff:10.9.9.9"},
		{"::ffff:0.0.0.0/80", "::1"},
		{"fe80::1%eth0", "fe80::1"},
		{"fe80::%eth0/64", "fe80::1%eth0"},
		{"10.1.2.3:443", "10.1.2.3"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"010.1.1.1", "10.1.1.1"},
		{"10.0.0.1/8", "10.0.0.1"},
		{"10.0.0.0/8,10.0.0.0/8,10.1.2.3,10.1.2.3/32", "10.1.2.3"},
		{"1,2,3,4,5,6,7,8,9,10,11", ""},
		{"10.0.0.1,,10.0.0.2", "10.0.0.2"},
		{"", ""},
		{"0.0.0.0/0,::/0", "64:ff9b::a01:203"},
	} {
		f.Add(seed.list, seed.peer)
	}
	f.Fuzz(func(t *testing.T, list, peerText string) {
		var entries []string
		if list != "" {
			entries = strings.Split(list, ",")
		}
		a, norm, err := ParseAllowlist(entries)
		if err != nil {
			if !a.Empty() || norm != nil {
				t.Fatalf("error %v with a list %q", err, norm)
			}
			if e, ok := err.(*Error); !ok || e.Param != "src_ips" || (e.Code != CodeInvalid && e.Code != CodeTooMany) {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if len(norm) > MaxSourceIPs || len(norm) > len(entries) || len(norm) != len(a.prefixes) {
			t.Fatalf("%d entries normalized to %d (%d prefixes)", len(entries), len(norm), len(a.prefixes))
		}
		// Idempotent: the stored form parses back to itself.
		b, again, err := ParseAllowlist(norm)
		if err != nil || !slices.Equal(again, norm) || !slices.Equal(b.prefixes, a.prefixes) {
			t.Fatalf("reparse of %q gave %q, %v", norm, again, err)
		}
		for i, p := range a.prefixes {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("stored prefix %v is not canonical", p)
			}
			if slices.Contains(a.prefixes[:i], p) {
				t.Fatalf("duplicate %v in %q", p, norm)
			}
			// Every prefix allows its own address, its last address, and
			// the mapped form of each.
			last := lastAddr(p)
			for _, ip := range []netip.Addr{p.Addr(), last} {
				if !a.Allows(ip) || !a.Allows(netip.AddrFrom16(ip.As16())) {
					t.Fatalf("%q does not allow %v, in its own prefix %v", norm, ip, p)
				}
			}
		}
		// Every entry given as a bare address allows that address.
		for _, e := range entries {
			if ip, err := netip.ParseAddr(e); err == nil && !a.Allows(ip) {
				t.Fatalf("%q does not allow its own entry %q", norm, e)
			}
		}
		// Differential: Allows agrees with a matcher written by hand.
		peer, _ := netip.ParseAddr(peerText) // the zero Addr if unparseable
		want := a.Empty()
		for _, p := range a.prefixes {
			want = want || containsByHand(p, peer)
		}
		if got := a.Allows(peer); got != want {
			t.Fatalf("%q Allows(%v) = %v, by hand %v", norm, peer, got, want)
		}
	})
}
