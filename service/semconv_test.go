package service_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/telemetry"
)

// TestSemConvHTTPServerDuration: with TELEMETRY_SEMCONV on, every response
// is also recorded in http.server.request.duration (unit s) with the
// semantic conventions' attributes, from the same measurement as
// http_request_duration_ms: same count per request.
func TestSemConvHTTPServerDuration(t *testing.T) {
	o := newOTelEnv(t, 100)
	reqs := []struct {
		r     req
		attrs map[string]string
	}{
		{req{method: "GET", path: "/api/v1/users/" + o.alice.id, token: o.alice.token},
			map[string]string{"http.route": "/api/v1/users/{id}", "http.request.method": "GET", "http.response.status_code": "200", "url.scheme": "http"}},
		{req{method: "GET", path: "/api/v1/no/such/thing"}, // unmatched: no http.route
			map[string]string{"http.request.method": "GET", "http.response.status_code": "404", "url.scheme": "http"}},
		{req{method: "POST", path: "/auth/login", body: `{"username":"boom@example.com","password":"whatever123"}`}, // 500: error.type
			map[string]string{"http.route": "/auth/login", "http.request.method": "POST", "http.response.status_code": "500", "url.scheme": "http", "error.type": "500"}},
	}
	for _, c := range reqs {
		o.do(c.r)
	}
	m := o.collect(t)
	sem := m[telemetry.MetricHTTPServerRequestDuration+"|s"]
	if len(sem) == 0 {
		t.Fatalf("no %s with unit s; have %v", telemetry.MetricHTTPServerRequestDuration, keys(m))
	}
	var semTotal, msTotal uint64
	for _, p := range sem {
		semTotal += p.count
		if strings.Contains(p.attrs["http.route"], o.alice.id) {
			t.Fatalf("raw path in http.route: %v", p.attrs)
		}
	}
	for _, p := range m[telemetry.MetricHTTPRequestDuration+"|"] {
		msTotal += p.count
	}
	if semTotal != msTotal {
		t.Errorf("%d observations in %s, %d in %s: want one each per request", semTotal, telemetry.MetricHTTPServerRequestDuration, msTotal, telemetry.MetricHTTPRequestDuration)
	}
	for _, c := range reqs {
		found := false
		for _, p := range sem {
			found = found || maps.Equal(p.attrs, c.attrs)
		}
		if !found {
			t.Errorf("%s %s: no series with exactly %v; have %v", c.r.method, c.r.path, c.attrs, sem)
		}
	}
}
