package middleware

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies is the set of networks whose X-Forwarded-For is believed.
// The zero value and nil trust nobody: the client IP is the socket peer.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrustedProxies parses a comma-separated list of CIDRs or bare IPs
// (TRUSTED_PROXIES). An empty string trusts nobody.
func ParseTrustedProxies(list string) (*TrustedProxies, error) {
	tp := &TrustedProxies{}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR or IP address", f)
			}
			tp.prefixes = append(tp.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR or IP address", f)
		}
		tp.prefixes = append(tp.prefixes, p.Masked())
	}
	return tp, nil
}

func (tp *TrustedProxies) trusts(a netip.Addr) bool {
	if tp == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range tp.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client address of r: the socket peer, unless the peer
// is a trusted proxy, in which case it is the right-most X-Forwarded-For entry
// that is not itself a trusted proxy. Unparseable entries stop the walk: the
// last trusted hop is then the client, so a forged list cannot pick an
// identity further left.
func (tp *TrustedProxies) ClientIP(r *http.Request) string {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if !tp.trusts(peer) {
		return peerString(r.RemoteAddr, peer)
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var entry string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				entry, v = v[j+1:], v[:j]
			} else {
				entry, v = v, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(entry))
			if err != nil {
				return client.Unmap().String()
			}
			client = a
			if !tp.trusts(a) {
				return a.Unmap().String()
			}
		}
	}
	return client.Unmap().String()
}

// peerString is peer.Unmap().String(), taken from remote without an
// allocation when remote is "a.b.c.d:port" (what net/http gives for IPv4):
// ParseAddr accepts exactly one spelling of an IPv4 address, which is the
// one String produces.
func peerString(remote string, peer netip.Addr) string {
	if peer.Is4() && remote[0] != '[' { // "[1.2.3.4]:80" parses too, but is not the plain form
		if i := strings.LastIndexByte(remote, ':'); i > 0 && !strings.Contains(remote[:i], ":") {
			return remote[:i]
		}
	}
	return peer.Unmap().String()
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a
}
