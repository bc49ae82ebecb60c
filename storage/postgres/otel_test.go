package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/bulwark-go/bulwark/storage/postgres/pgtest"
	"github.com/google/uuid"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A real query through otelpgx: a child span of the caller's span, named by
// its operation (never the SQL text), and pool statistics as metrics.
func TestQuerySpansAndPoolMetrics(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	s := pgtest.NewStore(t, postgres.Options{TracerProvider: tp, MeterProvider: mp})
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	_, _ = s.ByID(ctx, uuid.New())
	parent.End()

	var query sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		if sp.Parent().SpanID() == parent.SpanContext().SpanID() && sp.Name() != "connect" && !strings.HasPrefix(sp.Name(), "acquire") {
			query = sp
		}
	}
	if query == nil {
		t.Fatalf("no query span under the parent; spans: %d", len(rec.Ended()))
	}
	if query.Name() != "SELECT" || strings.Contains(query.Name(), "users") {
		t.Fatalf("span name %q should be the operation only", query.Name())
	}
	var system bool
	for _, kv := range query.Attributes() {
		if kv.Key == "db.system.name" && kv.Value.AsString() == "postgresql" {
			system = true
		}
	}
	if !system {
		t.Fatalf("no db.system.name attribute: %v", query.Attributes())
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names[m.Name] = true
		}
	}
	if !names["pgxpool.total_connections"] || !names["pgxpool.acquires"] {
		t.Fatalf("pool statistics missing; metrics: %v", names)
	}
}
