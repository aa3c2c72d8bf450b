package credential

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// MaxSourceIPs is the most entries a source-IP allowlist may hold (Mist's
// src_ips limit).
const MaxSourceIPs = 10

// Allowlist is a credential's source-IP allowlist (Mist's src_ips): the
// addresses and prefixes a request may come from. The zero Allowlist is
// empty and allows every address.
//
// It is keyward's one matcher for source addresses: ParseAllowlist
// validates and canonicalises at creation, and the verify path calls
// Allows on the peer (and on any X-Forwarded-For hop it trusts) with no
// other parsing in between (threats T20, T21).
type Allowlist struct {
	prefixes []netip.Prefix // canonical: unmapped, masked; an address is a full-length prefix
}

// ParseAllowlist validates src_ips entries and returns the allowlist and
// the normalized strings to store.
//
// Each entry is an IPv4 or IPv6 address or CIDR prefix, parsed by
// net/netip. Zones, ports, surrounding spaces, leading zeros and prefixes
// with host bits set (10.0.0.1/8) are refused. IPv4-mapped IPv6 forms are
// unmapped (::ffff:10.1.2.3 → 10.1.2.3, ::ffff:10.0.0.0/104 → 10.0.0.0/8).
// A single address, and a full-length prefix such as 10.1.2.3/32, is stored
// as the bare address; any other prefix as its Prefix.String(). Entries
// that normalize alike are kept once, in first-seen order.
//
// More than MaxSourceIPs entries is CodeTooMany; a bad entry is
// CodeInvalid. Both have Param "src_ips". Reparsing the normalized strings
// gives them back unchanged.
func ParseAllowlist(entries []string) (Allowlist, []string, error) {
	const param = "src_ips"
	if len(entries) > MaxSourceIPs {
		return Allowlist{}, nil, ParamError(CodeTooMany, param,
			fmt.Sprintf("at most %d source IPs are allowed, got %d", MaxSourceIPs, len(entries)))
	}
	var a Allowlist
	normalized := make([]string, 0, len(entries))
	for i, e := range entries {
		p, err := parseAllowEntry(e)
		if err != "" {
			return Allowlist{}, nil, ParamError(CodeInvalid, param,
				fmt.Sprintf("src_ips[%d]: %s: %s", i, quoteCapped(e), err))
		}
		if slices.Contains(a.prefixes, p) {
			continue
		}
		a.prefixes = append(a.prefixes, p)
		normalized = append(normalized, formatAllowEntry(p))
	}
	return a, normalized, nil
}

// parseAllowEntry parses one entry into its canonical prefix, or returns
// why it is refused.
func parseAllowEntry(e string) (netip.Prefix, string) {
	if e == "" {
		return netip.Prefix{}, "empty entry"
	}
	if !strings.Contains(e, "/") {
		addr, err := netip.ParseAddr(e)
		if err != nil {
			return netip.Prefix{}, "not an IP address or CIDR prefix"
		}
		if addr.Zone() != "" {
			return netip.Prefix{}, "IPv6 zones are not allowed"
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), ""
	}
	p, err := netip.ParsePrefix(e)
	if err != nil {
		if strings.Contains(e, "%") {
			return netip.Prefix{}, "IPv6 zones are not allowed"
		}
		return netip.Prefix{}, "not an IP address or CIDR prefix"
	}
	// Unmap ::ffff:a.b.c.d/n (n ≥ 96) to a.b.c.d/(n-96). A shorter mapped
	// prefix always has host bits set (the ffff group straddles the
	// boundary), which the check below reports.
	if addr := p.Addr(); addr.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(addr.Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, "host bits set; did you mean " + m.String() + "?"
	}
	return p, ""
}

// formatAllowEntry is the stored form of a canonical prefix.
func formatAllowEntry(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// Allows reports whether a request from ip may use the credential. An
// empty allowlist allows every address. Otherwise ip is unmapped first, so
// ::ffff:10.1.2.3 matches 10.0.0.0/8 and 10.1.2.3; an invalid (zero)
// address, or one with an IPv6 zone, matches nothing. No other
// translation is done: NAT64 (64:ff9b::/96) and 6to4 forms of an IPv4
// address are IPv6 addresses and match only IPv6 entries.
func (a Allowlist) Allows(ip netip.Addr) bool {
	if a.Empty() {
		return true
	}
	ip = ip.Unmap()
	if !ip.IsValid() || ip.Zone() != "" {
		return false
	}
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Empty reports whether the allowlist has no entries (and so allows every
// address).
func (a Allowlist) Empty() bool { return len(a.prefixes) == 0 }

// Within reports whether every address a allows, outer allows too: the
// rule for a credential creating or changing another, whose allowlist may
// narrow its creator's but never widen it. An empty outer allows every
// address, so anything is within it; an empty a allows every address, so
// it is within only an empty outer. A prefix may be covered by several of
// outer's entries together (10.0.0.0/23 is within 10.0.0.0/24 and
// 10.0.1.0/24).
func (a Allowlist) Within(outer Allowlist) bool {
	if outer.Empty() {
		return true
	}
	if a.Empty() {
		return false
	}
	for _, p := range a.prefixes {
		if !coveredBy(p, outer.prefixes) {
			return false
		}
	}
	return true
}

// coveredBy reports whether the union of outer contains every address of
// p. It splits p only where an entry of outer lies strictly inside it, so
// the work is bounded by the entries times the address length.
func coveredBy(p netip.Prefix, outer []netip.Prefix) bool {
	overlapped := false
	for _, q := range outer {
		if !p.Overlaps(q) {
			continue
		}
		if q.Bits() <= p.Bits() {
			return true // q contains p
		}
		overlapped = true
	}
	if !overlapped || p.IsSingleIP() {
		return false
	}
	lo, hi := halves(p)
	return coveredBy(lo, outer) && coveredBy(hi, outer)
}

// halves splits a prefix into its two sub-prefixes one bit longer.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	b[p.Bits()/8] |= 0x80 >> (p.Bits() % 8)
	hiAddr, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(hiAddr, bits)
}

// Strings returns the allowlist's entries in their stored form.
func (a Allowlist) Strings() []string {
	out := make([]string, len(a.prefixes))
	for i, p := range a.prefixes {
		out[i] = formatAllowEntry(p)
	}
	return out
}
