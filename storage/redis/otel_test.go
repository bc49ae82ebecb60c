package redis

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bulwark-go/bulwark/storage/redis/redistest"
)

func TestTracingAndMetrics(t *testing.T) {
	srv := redistest.Start(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	c := newTestClient(t, srv.URL(), Options{TracerProvider: tp, MeterProvider: mp})

	ctx, parent := tp.Tracer("test").Start(context.Background(), "GET /api/v1/users/{id}")
	// Twice: the first run on a fresh server goes EVALSHA (NOSCRIPT), EVAL.
	for range 2 {
		if _, _, err := c.RateStore().Hit(ctx, "ratelimit:user:42", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Cache().Get(ctx, "cache:users:42"); err != nil {
		t.Fatal(err)
	}
	parent.End()

	names := map[string]int{}
	for _, s := range rec.Ended() {
		if s.Name() == parent.(sdktrace.ReadOnlySpan).Name() {
			continue
		}
		names[s.Name()]++
		// Connection set-up (redis.dial and the handshake under it) is not
		// tied to one request; the commands are children of the request.
		switch s.Name() {
		case "evalsha", "eval", "get":
		default:
			continue
		}
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span %q is not in the request's trace", s.Name())
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %q: parent %v, want the request span %v", s.Name(), s.Parent().SpanID(), parent.SpanContext().SpanID())
		}
		for _, kv := range s.Attributes() {
			if kv.Key == "db.statement" {
				t.Errorf("span %q records db.statement %q; arguments must not be traced", s.Name(), kv.Value.String())
			}
		}
	}
	t.Logf("redis spans: %v", names)
	if names["evalsha"] < 2 {
		t.Errorf("evalsha spans = %d, want 2 (spans: %v)", names["evalsha"], names)
	}
	if names["eval"] != 1 {
		t.Errorf("eval spans = %d, want 1: the NOSCRIPT fallback (spans: %v)", names["eval"], names)
	}
	if names["get"] != 1 {
		t.Errorf("get spans = %d, want 1 (spans: %v)", names["get"], names)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	metrics := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			metrics[m.Name] = true
		}
	}
	for _, want := range []string{"db.client.connections.use_time", "db.client.connections.usage"} {
		if !metrics[want] {
			t.Errorf("metric %s not recorded (have %v)", want, metrics)
		}
	}
}
