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
// TrustedProxies.ClientIP and compares its answer with wantClientIP, a model
// of CONTRACT §5's rule written from the rule, not from ClientIP: it never
// panics, ignores the header from an untrusted peer, and otherwise picks the
// right-most untrusted entry. Seed corpus: testdata/fuzz/FuzzClientIP.
func FuzzClientIP(f *testing.F) {
	f.Add("10.1.2.3:80", "6.6.6.6, 1.2.3.4, 10.9.9.9", "")
	f.Add("203.0.113.7:1234", "1.2.3.4", "")
	f.Add("10.1.2.3:80", "1.1.1.1, garbage, 10.0.0.2", "")
	f.Add("[::1]:80", "2001:db8::1", "10.0.0.1")
	f.Add("[::ffff:10.0.0.1]:80", "::ffff:1.2.3.4,,", " ")
	f.Add("10.0.0.1:1", "fe80::1%eth0", "1.2.3.4:80")
	f.Add("not an address", "1.2.3.4", "")
	const list = "10.0.0.0/8, 192.168.1.1, ::1"
	trusted, err := middleware.ParseTrustedProxies(list)
	if err != nil {
		f.Fatal(err)
	}
	model := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, peer, xff1, xff2 string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header["X-Forwarded-For"] = []string{xff1, xff2}
		got := trusted.ClientIP(r)
		if want := wantClientIP(model, peer, []string{xff1, xff2}); got != want {
			t.Fatalf("ClientIP(peer %q, xff %q %q) = %q, want %q (trusted %s)", peer, xff1, xff2, got, want, list)
		}
	})
}

// wantClientIP is the rule of CONTRACT §5, from scratch: an unparseable peer
// is returned as it is; an untrusted peer is the client; behind a trusted
// peer, the X-Forwarded-For entries (all header lines in order, an empty line
// ignored) are read from the right: each trusted entry is a further hop, the
// first untrusted one is the client, and an unparseable entry stops the walk
// at the last hop read (a forged list cannot pick an identity further left).
// IPv4-mapped IPv6 addresses count as IPv4.
func wantClientIP(trusted []netip.Prefix, peer string, values []string) string {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	p, ok := parsePeer(peer)
	if !ok {
		return peer
	}
	if !isTrusted(p) {
		return p.Unmap().String()
	}
	var entries []string
	for _, v := range values {
		if v != "" {
			entries = append(entries, strings.Split(v, ",")...)
		}
	}
	client := p
	for i := len(entries) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(entries[i]))
		if err != nil {
			break
		}
		client = a
		if !isTrusted(a) {
			break
		}
	}
	return client.Unmap().String()
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
