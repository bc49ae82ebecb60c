package middleware_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/middleware"
)

// requestIDPattern is CONTRACT §3's rule, written independently of
// ValidRequestID's byte loop.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// FuzzValidRequestID checks ValidRequestID against the contract's pattern,
// and RequestContext's use of it: a valid incoming ID is kept, anything else
// is replaced by 32 hex characters and never echoed. Seed corpus:
// testdata/fuzz/FuzzValidRequestID.
func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"", "abc-123_X.y:z", strings.Repeat("a", 128), strings.Repeat("a", 129),
		"has space", "<script>", "ünïcode", "a\r\nSet-Cookie: x=1", "\x00", "../../etc/passwd"} {
		f.Add(s)
	}
	h := middleware.RequestContext(nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	f.Fuzz(func(t *testing.T, id string) {
		valid := middleware.ValidRequestID(id)
		if want := requestIDPattern.MatchString(id); valid != want {
			t.Fatalf("ValidRequestID(%q) = %v, pattern says %v", id, valid, want)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header[http.CanonicalHeaderKey(middleware.HeaderRequestID)] = []string{id} // raw: no value checks
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		got := rec.Header().Get(middleware.HeaderRequestID)
		switch {
		case valid && got != id:
			t.Fatalf("valid id %q replaced by %q", id, got)
		case !valid && !hex32.MatchString(got):
			t.Fatalf("invalid id %q gave %q, want 32 hex", id, got)
		}
	})
}

// FuzzClientIP feeds arbitrary peers and X-Forwarded-For values to
// TrustedProxies.ClientIP: it never panics, always returns an IP address,
// ignores the header from an untrusted peer, and never invents an address
// that is neither the peer nor an entry of the header. Seed corpus:
// testdata/fuzz/FuzzClientIP.
func FuzzClientIP(f *testing.F) {
	f.Add("10.1.2.3:80", "6.6.6.6, 1.2.3.4, 10.9.9.9", "")
	f.Add("203.0.113.7:1234", "1.2.3.4", "")
	f.Add("10.1.2.3:80", "1.1.1.1, garbage, 10.0.0.2", "")
	f.Add("[::1]:80", "2001:db8::1", "10.0.0.1")
	f.Add("[::ffff:10.0.0.1]:80", "::ffff:1.2.3.4,,", " ")
	f.Add("10.0.0.1:1", "fe80::1%eth0", "1.2.3.4:80")
	f.Add("not an address", "1.2.3.4", "")
	trusted, err := middleware.ParseTrustedProxies("10.0.0.0/8, 192.168.1.1, ::1")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peer, xff1, xff2 string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header["X-Forwarded-For"] = []string{xff1, xff2}
		got := trusted.ClientIP(r)
		peerAddr, peerOK := parsePeer(peer)
		if !peerOK {
			if got != peer {
				t.Fatalf("unparseable peer %q gave %q", peer, got)
			}
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("ClientIP = %q, not an address (peer %q, xff %q %q)", got, peer, xff1, xff2)
		}
		if a.Unmap() == peerAddr.Unmap() {
			return
		}
		if !trustedAddr(trusted, peerAddr) {
			t.Fatalf("untrusted peer %q: header believed, got %q", peer, got)
		}
		if !inHeader(a, xff1, xff2) {
			t.Fatalf("ClientIP %q is neither the peer %q nor in %q %q", got, peer, xff1, xff2)
		}
	})
}

// parsePeer mirrors how net/http's RemoteAddr (always host:port) is read:
// an unparseable one is returned unchanged by ClientIP.
func parsePeer(remote string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr(), true
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

func trustedAddr(tp *middleware.TrustedProxies, a netip.Addr) bool {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = netip.AddrPortFrom(a, 1).String()
	r.Header.Set("X-Forwarded-For", "192.0.2.200")
	return tp.ClientIP(r) == "192.0.2.200"
}

func inHeader(a netip.Addr, values ...string) bool {
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			if b, err := netip.ParseAddr(strings.TrimSpace(e)); err == nil && b.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}
