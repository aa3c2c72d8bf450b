package wire

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:f::/48"),
	}
	cases := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no trusted proxies: the peer, a spoofed XFF ignored", "198.51.100.9:5000", []string{"6.6.6.6"}, nil, "198.51.100.9"},
		{"no trusted proxies: a trusted-looking XFF ignored", "198.51.100.9:5000", []string{"10.0.0.1"}, nil, "198.51.100.9"},
		{"trusted peer with one client hop: the client", "10.0.0.1:443", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"spoofed leftmost hop behind a real client: the real client", "10.0.0.1:443", []string{"6.6.6.6, 203.0.113.7"}, proxies, "203.0.113.7"},
		{"chain of two trusted proxies: the client before them", "10.0.0.1:443", []string{"6.6.6.6, 203.0.113.7, 10.1.2.3"}, proxies, "203.0.113.7"},
		{"multiple XFF lines: one list, walked from the last line", "10.0.0.1:443", []string{"6.6.6.6, 203.0.113.7", "10.1.2.3"}, proxies, "203.0.113.7"},
		{"multiple XFF lines: the last line's untrusted hop wins", "10.0.0.1:443", []string{"203.0.113.7", "198.51.100.4"}, proxies, "198.51.100.4"},
		{"IPv6 peer and hops: the IPv6 client", "[2001:db8:f::1]:443", []string{"2001:db8:bad::6, 2001:db8:c::7, 2001:db8:f:1::2"}, proxies, "2001:db8:c::7"},
		{"IPv4-mapped peer is trusted by its IPv4 prefix", "[::ffff:10.0.0.1]:443", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"IPv4-mapped untrusted peer: unmapped", "[::ffff:198.51.100.9]:443", []string{"203.0.113.7"}, proxies, "198.51.100.9"},
		{"IPv4-mapped hops: unmapped and matched as IPv4", "10.0.0.1:443", []string{"::ffff:203.0.113.7, ::ffff:10.9.9.9"}, proxies, "203.0.113.7"},
		{"hops with ports: the client's address", "10.0.0.1:443", []string{"6.6.6.6:1, [2001:db8:c::7]:8080, 10.1.1.1:80"}, proxies, "2001:db8:c::7"},
		{"IPv4 hop with a port: the client's address", "10.0.0.1:443", []string{"203.0.113.7:51234"}, proxies, "203.0.113.7"},
		{"garbage rightmost hop: the peer", "10.0.0.1:443", []string{"203.0.113.7, garbage"}, proxies, "10.0.0.1"},
		{"garbage hop behind a trusted hop: that trusted hop", "10.0.0.1:443", []string{"203.0.113.7, not-an-ip, 10.2.2.2"}, proxies, "10.2.2.2"},
		{"octal-looking hop is garbage: the peer", "10.0.0.1:443", []string{"010.0.0.1"}, proxies, "10.0.0.1"},
		{"hop with a zone is garbage: the peer", "10.0.0.1:443", []string{"fe80::1%eth0"}, proxies, "10.0.0.1"},
		{"all hops trusted: the leftmost", "10.0.0.1:443", []string{"10.3.3.3, 10.2.2.2"}, proxies, "10.3.3.3"},
		{"trusted peer without XFF: the peer", "10.0.0.1:443", nil, proxies, "10.0.0.1"},
		{"empty elements are skipped", "10.0.0.1:443", []string{"203.0.113.7, ,", ""}, proxies, "203.0.113.7"},
		{"untrusted peer sending a trusted-looking XFF: still the peer", "198.51.100.9:5000", []string{"10.0.0.2"}, proxies, "198.51.100.9"},
		{"untrusted peer sending a client XFF: still the peer", "198.51.100.9:5000", []string{"203.0.113.7"}, proxies, "198.51.100.9"},
		{"bare RemoteAddr: parsed as an address", "198.51.100.9", nil, proxies, "198.51.100.9"},
		{"link-local peer with a zone: the zone dropped", "[fe80::1%eth0]:443", nil, nil, "fe80::1"},
		{"unparseable RemoteAddr: the zero address", "@", []string{"203.0.113.7"}, proxies, "invalid IP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, tc.trusted).String(); got != tc.want {
				t.Fatalf("ClientIP(%s, XFF %q) = %s, want %s", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
}

func TestClientIPMatchesMappedPrefixes(t *testing.T) {
	// A list not built by ParseTrustedProxies may hold a mapped prefix.
	trusted := []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}
	r := &http.Request{RemoteAddr: "10.0.0.1:443", Header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}}
	if got := ClientIP(r, trusted).String(); got != "203.0.113.7" {
		t.Fatalf("ClientIP = %s, want 203.0.113.7", got)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want string // the prefixes joined by spaces, or the error's substring
		err  bool
	}{
		{"empty string is none", "", "", false},
		{"blank string is none", "  ", "", false},
		{"one CIDR", "10.0.0.0/8", "10.0.0.0/8", false},
		{"a list with spaces", "10.0.0.0/8, 192.168.1.1 ,2001:db8::/32", "10.0.0.0/8 192.168.1.1/32 2001:db8::/32", false},
		{"bare IPv4 becomes /32", "192.0.2.1", "192.0.2.1/32", false},
		{"bare IPv6 becomes /128", "2001:db8::1", "2001:db8::1/128", false},
		{"mapped address is unmapped", "::ffff:10.0.0.1", "10.0.0.1/32", false},
		{"mapped prefix is unmapped", "::ffff:10.0.0.0/104", "10.0.0.0/8", false},
		{"rejects garbage, naming it", "10.0.0.0/8,proxy.local", `"proxy.local"`, true},
		{"rejects an empty entry", "10.0.0.0/8,,10.1.0.0/16", `""`, true},
		{"rejects a trailing comma", "10.0.0.0/8,", `""`, true},
		{"rejects host bits past the prefix", "10.0.0.1/8", `"10.0.0.1/8"`, true},
		{"rejects a port", "10.0.0.1:80", `"10.0.0.1:80"`, true},
		{"rejects a zone", "fe80::1%eth0", `"fe80::1%eth0"`, true},
		{"rejects leading zeros", "010.0.0.1", `"010.0.0.1"`, true},
		{"rejects a bad prefix length", "10.0.0.0/33", `"10.0.0.0/33"`, true},
		{"rejects a mapped prefix shorter than /96", "::ffff:0:0/80", `"::ffff:0:0/80"`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTrustedProxies(tc.in)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("ParseTrustedProxies(%q) = %v, %v; want an error naming %s", tc.in, got, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTrustedProxies(%q) = %v", tc.in, err)
			}
			if tc.want == "" && got != nil {
				t.Fatalf("ParseTrustedProxies(%q) = %v, want nil", tc.in, got)
			}
			parts := make([]string, len(got))
			for i, p := range got {
				parts[i] = p.String()
			}
			if s := strings.Join(parts, " "); s != tc.want {
				t.Fatalf("ParseTrustedProxies(%q) = %s, want %s", tc.in, s, tc.want)
			}
		})
	}
}
