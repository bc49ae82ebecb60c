package middleware_test

import (
	"net/http/httptest"
	"testing"

	"github.com/bulwark-go/bulwark/middleware"
)

func TestClientIP(t *testing.T) {
	trusted, err := middleware.ParseTrustedProxies("10.0.0.0/8, 192.168.1.1, ::1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		proxies *middleware.TrustedProxies
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies: peer", nil, "203.0.113.7:1234", []string{"1.2.3.4"}, "203.0.113.7"},
		{"untrusted peer: XFF ignored", trusted, "203.0.113.7:1234", []string{"1.2.3.4"}, "203.0.113.7"},
		{"trusted peer: right-most untrusted", trusted, "10.1.2.3:80", []string{"6.6.6.6, 1.2.3.4, 10.9.9.9"}, "1.2.3.4"},
		{"several headers", trusted, "10.1.2.3:80", []string{"6.6.6.6", "1.2.3.4"}, "1.2.3.4"},
		{"all trusted: left-most", trusted, "10.1.2.3:80", []string{"10.0.0.1, 192.168.1.1"}, "10.0.0.1"},
		{"garbage stops the walk", trusted, "10.1.2.3:80", []string{"1.1.1.1, garbage, 10.0.0.2"}, "10.0.0.2"},
		{"no header: peer", trusted, "10.1.2.3:80", nil, "10.1.2.3"},
		{"ipv6 peer", trusted, "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"mapped ipv4", nil, "[::ffff:203.0.113.9]:80", nil, "203.0.113.9"},
		{"bracketed ipv4 (found by FuzzClientIP)", nil, "[203.0.113.9]:80", nil, "203.0.113.9"},
		{"ipv4 peer without port", nil, "203.0.113.9", nil, "203.0.113.9"},
		{"ipv6 peer, untrusted", nil, "[2001:db8:0:0::1]:80", nil, "2001:db8::1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = c.peer
			for _, v := range c.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := c.proxies.ClientIP(r); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseTrustedProxiesRejectsGarbage(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "nonsense", "1.2.3.4/8/9"} {
		if _, err := middleware.ParseTrustedProxies(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestValidRequestID(t *testing.T) {
	for id, want := range map[string]bool{"": false, "a": true, "A-z_0.9:x": true, "a b": false, "a\r\nb": false, "é": false} {
		if got := middleware.ValidRequestID(id); got != want {
			t.Errorf("ValidRequestID(%q) = %v", id, got)
		}
	}
}
