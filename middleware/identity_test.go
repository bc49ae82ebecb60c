package middleware_test

import (
	"testing"

	"github.com/bulwark-go/bulwark/middleware"
)

func TestClientIdentity(t *testing.T) {
	cases := []struct {
		ip   string
		bits int
		want string
	}{
		{"203.0.113.7", 64, "203.0.113.7"},
		{"::ffff:203.0.113.7", 64, "203.0.113.7"}, // IPv4-mapped counts as IPv4
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", 64, "2001:db8:1:3::/64"},
		{"2001:db8:1:2::1", 0, "2001:db8:1:2::/64"}, // out of range: the default
		{"2001:db8:1:2::1", 129, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2::1", 128, "2001:db8:1:2::1/128"},
		{"fe80::1%eth0", 64, "fe80::/64"}, // the zone names a local interface, not a party
		{"not-an-ip", 64, "not-an-ip"},
		{"", 64, ""},
	}
	for _, c := range cases {
		if got := middleware.ClientIdentity(c.ip, c.bits); got != c.want {
			t.Errorf("ClientIdentity(%q, %d) = %q, want %q", c.ip, c.bits, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = middleware.ClientIdentity("203.0.113.7", 64) }); n != 0 {
		t.Errorf("IPv4 identity allocates %v times, want 0", n)
	}
}
