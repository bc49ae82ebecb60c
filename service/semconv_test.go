package service_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
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

// TestSemConvInLogMode: in log mode TELEMETRY_SEMCONV is one more
// metric.histogram line per request, in seconds, with the semconv attributes.
func TestSemConvInLogMode(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(&buf, nil), middleware.RequestIDFromContext))
	srv := service.NewServer(service.Config{SemConvMetrics: true}, service.Deps{
		Logger: logger, Users: memory.NewUsers(), Tokens: service.NewTokens(testSecret, time.Hour),
		Hasher: service.NewArgon2id(64, 1, 1), Telemetry: telemetry.NewLog(logger, 1, middleware.RequestIDFromContext),
	})
	srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/health", nil))
	var sem []map[string]any
	for _, line := range bytes.Split([]byte(buf.String()), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["name"] == telemetry.MetricHTTPServerRequestDuration {
			sem = append(sem, m)
		}
	}
	if len(sem) != 1 {
		t.Fatalf("%d %s lines in:\n%s", len(sem), telemetry.MetricHTTPServerRequestDuration, buf.String())
	}
	m := sem[0]
	if m["msg"] != telemetry.MsgHistogram || m["http.route"] != "/health" || m["http.request.method"] != "GET" ||
		m["http.response.status_code"] != "200" || m["url.scheme"] != "http" {
		t.Fatalf("line %v", m)
	}
	if v, ok := m["value"].(float64); !ok || v <= 0 || v > 10 {
		t.Fatalf("value %v: want seconds", m["value"])
	}
}
