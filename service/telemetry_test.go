package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/telemetry"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// otelEnv is the API with OTel metrics on a ManualReader and spans on a
// recorder: everything the otel mode exports, read in-process.
type otelEnv struct {
	*env
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

func newOTelEnv(t *testing.T, limit int) *otelEnv {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	// As telemetry.Setup builds it in otel mode with TELEMETRY_SEMCONV=true.
	mp := sdkmetric.NewMeterProvider(append(telemetry.MeterProviderOptions(), sdkmetric.WithReader(reader))...)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	tel, err := telemetry.NewOTel(mp, telemetry.SemConvInstruments()...)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(logs, nil), middleware.RequestIDFromContext))
	store := memory.NewUsers()
	tokens := service.NewTokens(testSecret, time.Hour)
	srv := service.NewServer(service.Config{MaxBodyBytes: 4096, RateLimit: service.RateLimitConfig{Requests: limit, Window: time.Minute}, SemConvMetrics: true},
		service.Deps{
			Logger: logger, Users: panicky{store}, Tokens: tokens, Hasher: service.NewArgon2id(64, 1, 1),
			Telemetry: tel, TracerProvider: tp, Propagator: telemetry.NewPropagator(),
			RateStore: memory.NewRateStore(nil),
		})
	e := &env{t: t, h: srv, spec: newSpec(t), logs: logs, tokens: tokens}
	e.alice = e.signup("alice@example.com", "alicepassword")
	return &otelEnv{env: e, reader: reader, spans: spans, tp: tp}
}

type point struct {
	attrs map[string]string
	count uint64 // histogram count or counter value
}

func (o *otelEnv) collect(t *testing.T) map[string][]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := o.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]point{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[float64]:
				for _, dp := range d.DataPoints {
					out[m.Name+"|"+m.Unit] = append(out[m.Name+"|"+m.Unit], point{attrsOf(dp.Attributes), uint64(dp.Value)})
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					out[m.Name+"|"+m.Unit] = append(out[m.Name+"|"+m.Unit], point{attrsOf(dp.Attributes), dp.Count})
				}
			}
		}
	}
	return out
}

func attrsOf(s attribute.Set) map[string]string {
	m := map[string]string{}
	for _, kv := range s.ToSlice() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func find(points []point, method, route, status string) uint64 {
	var n uint64
	for _, p := range points {
		if p.attrs["method"] == method && p.attrs["route"] == route && p.attrs["status_code"] == status && len(p.attrs) == 3 {
			n += p.count
		}
	}
	return n
}

func TestREDMetricsForEveryResponse(t *testing.T) {
	o := newOTelEnv(t, 2)
	alice := o.alice
	reqs := []struct {
		r      req
		route  string
		status string
	}{
		{req{method: "GET", path: "/api/v1/users/" + alice.id, token: alice.token}, "/api/v1/users/{id}", "200"},
		{req{method: "GET", path: "/api/v1/users/not-a-uuid", token: alice.token}, "/api/v1/users/{id}", "422"},
		{req{method: "GET", path: "/api/v1/no/such/" + alice.id}, "unmatched", "404"},
		{req{method: "DELETE", path: "/health"}, "unmatched", "405"},
		{req{method: "POST", path: "/auth/login", body: strings.Repeat("x", 5000)}, "/auth/login", "413"},
		{req{method: "POST", path: "/auth/login", body: `{"username":"boom@example.com","password":"whatever123"}`}, "/auth/login", "500"},
		{req{method: "GET", path: "/api/v1/users/" + alice.id, token: alice.token}, "/api/v1/users/{id}", "429"},
		{req{method: "GET", path: "/health"}, "/health", "200"},
	}
	for _, c := range reqs {
		rec := o.do(c.r)
		if got := rec.Code; got != atoi(c.status) {
			t.Fatalf("%s %s: %d, want %s: %s", c.r.method, c.r.path, got, c.status, rec.Body)
		}
	}
	m := o.collect(t)
	counts, durations := m["http_requests_total|{request}"], m["http_request_duration_ms|"]
	if len(counts) == 0 || len(durations) == 0 {
		t.Fatalf("metrics missing; have %v", keys(m))
	}
	for _, c := range reqs {
		method := c.r.method
		if find(counts, method, c.route, c.status) == 0 || find(durations, method, c.route, c.status) == 0 {
			t.Errorf("no series method=%s route=%s status_code=%s", method, c.route, c.status)
		}
	}
	for _, p := range counts {
		if strings.Contains(p.attrs["route"], alice.id) || strings.Contains(p.attrs["route"], "no/such") {
			t.Fatalf("raw path leaked into the route tag: %v", p.attrs)
		}
	}
	if m["ratelimit_decisions_total|{request}"] == nil {
		t.Errorf("no rate-limit decision counter; have %v", keys(m))
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func serverSpans(o *otelEnv) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range o.spans.Ended() {
		if s.SpanKind().String() == "server" {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func TestServerSpansAndRequestIDs(t *testing.T) {
	o := newOTelEnv(t, 100)
	o.spans = tracetest.NewSpanRecorder()
	o.tp.RegisterSpanProcessor(o.spans)

	rec := o.do(req{method: "GET", path: "/api/v1/users/" + o.alice.id, token: o.alice.token})
	if rec.Code != 200 {
		t.Fatalf("%d", rec.Code)
	}
	rid := rec.Header().Get("X-Request-ID")
	spans := serverSpans(o)
	if len(spans) != 1 {
		t.Fatalf("%d server spans", len(spans))
	}
	s := spans[0]
	if s.Name() != "GET /api/v1/users/{id}" || attr(s, "http.route") != "/api/v1/users/{id}" || attr(s, "request_id") != rid {
		t.Fatalf("span %q http.route=%q request_id=%q (header %q)", s.Name(), attr(s, "http.route"), attr(s, "request_id"), rid)
	}
	if rid != s.SpanContext().TraceID().String() {
		t.Fatalf("generated request ID %s is not the trace ID %s", rid, s.SpanContext().TraceID())
	}
	var rl bool
	for _, c := range o.spans.Ended() {
		if c.Name() == middleware.SpanRateLimitCheck {
			rl = c.Parent().SpanID() == s.SpanContext().SpanID() && attr(c, "ratelimit.decision") == "allowed"
		}
	}
	if !rl {
		t.Fatal("no ratelimit.check child span with decision=allowed")
	}

	// An error response's request_id finds its trace; unmatched spans are named by method only.
	rec = o.do(req{method: "GET", path: "/api/v1/does-not-exist"})
	var env envelope
	_ = json.Unmarshal(rec.Body.Bytes(), &env)
	var found bool
	for _, s := range serverSpans(o) {
		if s.SpanContext().TraceID().String() == env.Error.RequestID {
			found = s.Name() == "GET" && attr(s, "http.route") == "" && attr(s, "request_id") == env.Error.RequestID
		}
	}
	if !found {
		t.Fatal("the 404's request_id does not lead to a server span named GET")
	}

	// A caller's traceparent is continued; its own X-Request-ID is kept.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	rec = o.do(req{method: "GET", path: "/health", header: map[string]string{
		"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01", "X-Request-ID": "caller-id-1"}})
	if rec.Header().Get("X-Request-ID") != "caller-id-1" {
		t.Fatalf("caller's request id replaced: %q", rec.Header().Get("X-Request-ID"))
	}
	found = false
	for _, s := range serverSpans(o) {
		if s.SpanContext().TraceID().String() == traceID {
			found = s.Parent().SpanID().String() == "00f067aa0ba902b7" && attr(s, "request_id") == "caller-id-1"
		}
	}
	if !found {
		t.Fatal("traceparent not continued")
	}
	rec = o.do(req{method: "GET", path: "/health", header: map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"}})
	if rec.Header().Get("X-Request-ID") != traceID {
		t.Fatalf("generated id %q is not the continued trace id", rec.Header().Get("X-Request-ID"))
	}
}

func TestLogLinesCarryIDs(t *testing.T) {
	o := newOTelEnv(t, 100)
	rec := o.do(req{method: "GET", path: "/api/v1/does-not-exist"})
	rid := rec.Header().Get("X-Request-ID")
	var lines int
	for _, line := range strings.Split(o.logs.String(), "\n") {
		if !strings.Contains(line, rid) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m["request_id"] != rid || m["trace_id"] != rid || len(m["span_id"].(string)) != 16 {
			t.Fatalf("line without the IDs: %s", line)
		}
		lines++
	}
	if lines < 2 { // the 404's error line and the access line
		t.Fatalf("%d request lines carry the ids:\n%s", lines, o.logs.String())
	}
}

func TestLogModeEmitsRouteTaggedMetricLines(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(&buf, nil), middleware.RequestIDFromContext))
	srv := service.NewServer(service.Config{}, service.Deps{
		Logger: logger, Users: memory.NewUsers(), Tokens: service.NewTokens(testSecret, time.Hour),
		Hasher: service.NewArgon2id(64, 1, 1), Telemetry: telemetry.NewLog(logger, 1, middleware.RequestIDFromContext),
	})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/users/"+"0190a0a0-0000-7000-8000-000000000000", nil))
	rid := rec.Header().Get("X-Request-ID")
	var seen []string
	for _, line := range bytes.Split([]byte(buf.String()), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil || !strings.HasPrefix(m["msg"].(string), "metric.") {
			continue
		}
		if m["route"] != "/api/v1/users/{id}" || m["request_id"] != rid || m["status_code"] != "401" || m["method"] != "GET" {
			t.Fatalf("metric line %s", line)
		}
		seen = append(seen, m["msg"].(string)+" "+m["name"].(string))
	}
	if strings.Join(seen, ",") != "metric.counter http_requests_total,metric.histogram http_request_duration_ms" {
		t.Fatalf("metric lines: %v", seen)
	}
}

// The noop chain adds no allocation for telemetry: the middleware with
// telemetry.Noop() costs the same allocations as without it.
func TestNoopTelemetryAllocatesNothing(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	base := middleware.RequestContext(nil)(ok)
	withTel := middleware.RequestContext(nil)(middleware.Telemetry(telemetry.Noop())(ok))
	r := httptest.NewRequest("GET", "/health", nil)
	w := httptest.NewRecorder()
	a := testing.AllocsPerRun(200, func() { base.ServeHTTP(w, r) })
	b := testing.AllocsPerRun(200, func() { withTel.ServeHTTP(w, r) })
	if b > a {
		t.Fatalf("telemetry middleware in noop mode allocates %.1f per request (chain %.1f → %.1f)", b-a, a, b)
	}
}
