package service_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/telemetry"
)

// TestFloodMintsNoSeries sends a flood of random paths, random (also
// non-standard) methods and random request IDs, from random client
// addresses, through the real chain in otel mode with TELEMETRY_SEMCONV on,
// and reads the SDK's reader before and after: the flood adds requests to
// existing series and no series of its own, in the contract's metrics and in
// http.server.request.duration alike. (The SDK's cardinality limit is the
// backstop behind this; TestCardinalityLimitFoldsIntoOverflow in telemetry
// tests it.)
func TestFloodMintsNoSeries(t *testing.T) {
	o := newOTelEnv(t, 1<<30) // no 429s: the limiter's verdict is not what this is about
	rnd := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	send := func(method, path, requestID, remote string) {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("X-Request-ID", requestID)
		r.RemoteAddr = remote
		o.h.ServeHTTP(httptest.NewRecorder(), r)
	}
	shapes := []func(method string) string{
		func(string) string { return "/flood/" + rnd(8) + "/" + rnd(20) },
		func(string) string { return "/api/v1/" + rnd(6) },
		func(string) string { return "/api/v1/users/" + rnd(16) + "/" + rnd(4) },
		func(string) string { return "/" + rnd(1) + "?q=" + rnd(30) },
	}
	methods := func(i int) string {
		switch i % 4 {
		case 0:
			return "GET"
		case 1:
			return "X" + strings.ToUpper(rnd(3)) // a token no server knows
		case 2:
			return "get" // methods are case-sensitive: not GET
		default:
			return "PROPFIND"
		}
	}
	// Warm-up: one request of each shape and method kind.
	for s, shape := range shapes {
		for m := range 4 {
			send(methods(m), shape(methods(m)), "warm-"+rnd(4), fmt.Sprintf("192.0.2.%d:1234", s*4+m))
		}
	}
	before, beforeTotal := seriesOf(t, o)

	const flood = 4000
	for i := range flood {
		ip := fmt.Sprintf("198.51.%d.%d:%d", i/250, i%250, 1024+i)
		id := rnd(16)
		if i%3 == 0 {
			id = "bad id " + rnd(40) // refused and replaced by the service
		}
		send(methods(i), shapes[i%len(shapes)](""), id, ip)
	}
	after, afterTotal := seriesOf(t, o)

	if afterTotal-beforeTotal != flood {
		t.Fatalf("http_requests_total grew by %d, want %d: the flood was not recorded", afterTotal-beforeTotal, flood)
	}
	var added []string
	for s := range after {
		if !before[s] {
			added = append(added, s)
		}
	}
	sort.Strings(added)
	if len(added) > 0 {
		t.Fatalf("the flood minted %d new series:\n%s", len(added), strings.Join(added, "\n"))
	}
	semconv := 0
	for s := range after {
		if strings.HasPrefix(s, telemetry.MetricHTTPServerRequestDuration+" ") {
			semconv++
		}
	}
	if semconv == 0 {
		t.Fatalf("no %s series: TELEMETRY_SEMCONV not in effect", telemetry.MetricHTTPServerRequestDuration)
	}
	t.Logf("%d requests, %d series before and after (%d of them %s)", flood, len(after), semconv, telemetry.MetricHTTPServerRequestDuration)
}

// seriesOf returns every series of the HTTP instruments as "name attrs" and
// the sum of http_requests_total.
func seriesOf(t *testing.T, o *otelEnv) (map[string]bool, uint64) {
	t.Helper()
	set := map[string]bool{}
	var total uint64
	for key, points := range o.collect(t) {
		name, _, _ := strings.Cut(key, "|")
		if name != telemetry.MetricHTTPRequestsTotal && name != telemetry.MetricHTTPRequestDuration && name != telemetry.MetricHTTPServerRequestDuration {
			continue
		}
		for _, p := range points {
			kv := make([]string, 0, len(p.attrs))
			for k, v := range p.attrs {
				kv = append(kv, k+"="+v)
			}
			sort.Strings(kv)
			set[name+" "+strings.Join(kv, ",")] = true
			if name == telemetry.MetricHTTPRequestsTotal {
				total += p.count
			}
		}
	}
	return set, total
}
