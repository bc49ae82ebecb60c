package middleware

import (
	"net/netip"
	"strings"
)

// DefaultIPv6Prefix is the prefix length that groups IPv6 clients into one
// rate-limit identity when none is configured: a /64 is what one subscriber
// line, one cloud VM or one LAN segment is normally given, so every address
// in it belongs to the same party.
const DefaultIPv6Prefix = 64

// ClientIdentity returns the identity under which every limiter counts a
// client address (as ClientIPFromContext gives it): an IPv4 address,
// including an IPv4-mapped IPv6 one, is itself ("203.0.113.7"); an IPv6
// address is the network of its first v6Bits bits ("2001:db8:1:2::/64"),
// so that one party holding a whole /64 cannot mint a fresh budget per
// address. v6Bits outside 1..128 means DefaultIPv6Prefix; 128 keys each
// address alone. A string that is not an address is returned unchanged.
// IPv4 costs no allocation.
func ClientIdentity(ip string, v6Bits int) string {
	if !strings.Contains(ip, ":") {
		return ip
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a.Is4In6() {
		return a.Unmap().String()
	}
	if v6Bits < 1 || v6Bits > 128 {
		v6Bits = DefaultIPv6Prefix
	}
	p, err := a.WithZone("").Prefix(v6Bits)
	if err != nil {
		return ip
	}
	return p.String()
}
