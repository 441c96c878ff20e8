package udp

import "net/netip"

// allowList holds the networks whose datagrams a listener takes; an empty
// list takes every source. UDP has no authentication, so on a shared
// network it is the only say a listener has over who may write. It is
// never changed once built and is safe for concurrent use.
type allowList []netip.Prefix

// newAllowList normalizes prefixes so that they compare with the sources
// the kernel reports: an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104)
// becomes the IPv4 prefix it covers, as sources are unmapped before the
// check, and zones are dropped.
func newAllowList(prefixes []netip.Prefix) allowList {
	if len(prefixes) == 0 {
		return nil
	}
	a := make(allowList, 0, len(prefixes))
	for _, p := range prefixes {
		addr := p.Addr().WithZone("")
		bits := p.Bits()
		if addr.Is4In6() {
			if bits < 96 {
				// Wider than the mapped range: it covers IPv6 addresses
				// and every IPv4 address, so keep it and add 0.0.0.0/0.
				a = append(a, netip.PrefixFrom(addr, bits).Masked(), netip.PrefixFrom(netip.IPv4Unspecified(), 0))
				continue
			}
			addr, bits = addr.Unmap(), bits-96
		}
		a = append(a, netip.PrefixFrom(addr, bits).Masked())
	}
	return a
}

// allows reports whether a datagram from addr may be taken. An IPv4
// source reaching a dual-stack socket arrives as an IPv4-mapped IPv6
// address (::ffff:10.1.2.3): it is unmapped, so that it matches IPv4
// prefixes. A source the kernel did not report (the zero Addr) matches
// no prefix.
func (a allowList) allows(addr netip.Addr) bool {
	if len(a) == 0 {
		return true
	}
	// Prefix.Contains is false for an address with a zone (fe80::1%eth0).
	addr = addr.Unmap().WithZone("")
	for _, p := range a {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
