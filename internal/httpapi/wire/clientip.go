package wire

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address the request came from: the TCP peer, unless
// the peer is a trusted proxy, in which case X-Forwarded-For is walked from
// the right, skipping trusted hops, and the first untrusted hop is the
// client. Addresses are unmapped (IPv4-mapped IPv6 → IPv4).
//
// With no trusted proxies (the default) X-Forwarded-For is ignored
// entirely. Every X-Forwarded-For header line counts, in order, as one list;
// empty elements are skipped. A hop may be an address, addr:port or
// [v6]:port. A hop to the left of an untrusted one is never believed: a
// client can write anything to the left of what its proxy appends. If a hop
// does not parse (or carries an IPv6 zone), the walk stops there and the
// last trusted hop seen, the leftmost address a trusted proxy vouched for,
// is returned; if every hop is trusted, the leftmost one is. The peer's
// IPv6 zone is dropped so link-local proxies can be trusted by prefix. If
// RemoteAddr does not parse, the result is the zero Addr.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parsePeer(r.RemoteAddr)
	if len(trusted) == 0 || !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	client := peer
	lines := r.Header.Values("X-Forwarded-For")
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for rest != "" {
			var hop string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				rest, hop = rest[:j], rest[j+1:]
			} else {
				rest, hop = "", rest
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			a, ok := parseHop(hop)
			if !ok {
				return client
			}
			client = a
			if !isTrusted(a, trusted) {
				return a
			}
		}
	}
	return client
}

// ParseTrustedProxies parses a comma-separated list of CIDRs or addresses
// (for --trusted-proxies). An empty or blank string is nil. A bare address
// becomes a /32 or /128 prefix; IPv4-mapped addresses and prefixes are
// unmapped. An entry that is empty, is not an address or CIDR (a port, an
// IPv4 leading zero), carries a zone or has bits set past its prefix length
// is an error naming it.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	entries := strings.Split(s, ",")
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		e = strings.TrimSpace(e)
		p, err := parseTrustedEntry(e)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", e, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseTrustedEntry(e string) (netip.Prefix, error) {
	if e == "" {
		return netip.Prefix{}, fmt.Errorf("empty entry")
	}
	if strings.Contains(e, "%") {
		return netip.Prefix{}, fmt.Errorf("zones are not allowed")
	}
	if !strings.Contains(e, "/") {
		a, err := netip.ParseAddr(e)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an address or CIDR")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(e)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an address or CIDR")
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("bits set past the prefix length (did you mean %s?)", p.Masked())
	}
	// A masked prefix with an IPv4-mapped address is /96 or longer: a
	// shorter one would have cleared some of the ::ffff: bits.
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

// parsePeer parses RemoteAddr as addr:port, or failing that as a bare
// address, unmapped and without a zone.
func parsePeer(s string) netip.Addr {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(s); err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// parseHop parses one X-Forwarded-For hop: an address, addr:port or
// [v6]:port, unmapped. A hop with an IPv6 zone does not parse.
func parseHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// isTrusted reports whether the unmapped address a lies in one of the
// trusted prefixes. IPv4-mapped prefixes are matched as their IPv4 form, so
// a list not built by ParseTrustedProxies still works.
func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}
