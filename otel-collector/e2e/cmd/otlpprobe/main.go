// Command otlpprobe sends a few OTLP metrics and traces shaped like bulwark's to a collector,
// so the names that come out of the collector's Prometheus exporter (and the traces that reach
// Jaeger) can be checked without the service itself.
//
//	go run ./cmd/otlpprobe -endpoint 127.0.0.1:4317 -request-id probe-1 -variants
//
// With -variants it also emits copies of the instruments under prefixed names with other units
// (ha_ unit "ms", hb_ unit "", hc_ unit "{ms}", hd_ unit "1"; cb_ counter with unit "{request}";
// with -counter-without-total also ca_, a counter named without _total), which is how the
// naming rules were worked out (see otel-collector/NAMING.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:4317", "collector OTLP/gRPC endpoint (host:port)")
	requestID := flag.String("request-id", "probe", "request_id attribute prefix put on server spans")
	n := flag.Int("n", 20, "number of simulated requests")
	histUnit := flag.String("hist-unit", "ms", "unit of the http_request_duration_ms histogram")
	variants := flag.Bool("variants", false, "also emit prefixed naming-experiment instruments")
	noTotal := flag.Bool("counter-without-total", false, "with -variants, also emit ca_http_requests (a counter without _total)")
	flag.Parse()
	if err := run(*endpoint, *requestID, *n, *histUnit, *variants, *noTotal); err != nil {
		log.Fatal(err)
	}
}

func run(endpoint, requestID string, n int, histUnit string, variants, noTotal bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res := resource.NewSchemaless(attribute.String("service.name", "bulwark"))

	mexp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(endpoint), otlpmetricgrpc.WithInsecure())
	if err != nil {
		return fmt.Errorf("metric exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Second))))
	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		return fmt.Errorf("trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(texp, sdktrace.WithBatchTimeout(200*time.Millisecond)))

	meter := mp.Meter("github.com/bulwark-go/bulwark/otel-collector/e2e/otlpprobe")
	tracer := tp.Tracer("github.com/bulwark-go/bulwark/otel-collector/e2e/otlpprobe")

	mustC := func(name, unit string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit))
		if err != nil {
			log.Fatalf("counter %s: %v", name, err)
		}
		return c
	}
	mustH := func(name, unit string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit(unit))
		if err != nil {
			log.Fatalf("histogram %s: %v", name, err)
		}
		return h
	}
	requests := mustC("http_requests_total", "")
	duration := mustH("http_request_duration_ms", histUnit)
	decisions := mustC("ratelimit_decisions_total", "")
	cacheReqs := mustC("cache_requests_total", "")
	var extraC []metric.Int64Counter
	var extraH []metric.Float64Histogram
	if variants {
		extraC = []metric.Int64Counter{mustC("cb_http_requests_total", "{request}")}
		if noTotal {
			extraC = append(extraC, mustC("ca_http_requests", ""))
		}
		extraH = []metric.Float64Histogram{
			mustH("ha_http_request_duration_ms", "ms"), mustH("hb_http_request_duration_ms", ""),
			mustH("hc_http_request_duration_ms", "{ms}"), mustH("hd_http_request_duration_ms", "1"),
		}
	}

	statuses := []string{"200", "200", "200", "404", "429", "500"}
	for i := 0; i < n; i++ {
		status := statuses[i%len(statuses)]
		rid := fmt.Sprintf("%s-%d", requestID, i)
		sctx, span := tracer.Start(ctx, "GET /api/v1/users/{id}", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("request_id", rid), attribute.String("http.route", "/api/v1/users/{id}")))
		_, rl := tracer.Start(sctx, "ratelimit.check")
		decision := "allowed"
		if status == "429" {
			decision = "limited"
		}
		rl.SetAttributes(attribute.String("ratelimit.decision", decision))
		decisions.Add(sctx, 1, metric.WithAttributes(attribute.String("decision", decision)))
		rl.End()
		_, cg := tracer.Start(sctx, "cache.get")
		result := []string{"hit", "miss"}[i%2]
		cg.SetAttributes(attribute.String("cache.result", result))
		cacheReqs.Add(sctx, 1, metric.WithAttributes(attribute.String("cache", "users"), attribute.String("result", result)))
		cg.End()

		ms := float64(3 + 7*(i%5))
		attrs := metric.WithAttributes(attribute.String("method", "GET"),
			attribute.String("route", "/api/v1/users/{id}"), attribute.String("status_code", status))
		requests.Add(sctx, 1, attrs)
		duration.Record(sctx, ms, attrs)
		for _, c := range extraC {
			c.Add(sctx, 1, attrs)
		}
		for _, h := range extraH {
			h.Record(sctx, ms, attrs)
		}
		span.End()
		fmt.Printf("request_id=%s trace_id=%s\n", rid, span.SpanContext().TraceID())
		time.Sleep(50 * time.Millisecond)
	}

	var errs []error
	for _, f := range []func(context.Context) error{mp.ForceFlush, tp.ForceFlush, mp.Shutdown, tp.Shutdown} {
		if err := f(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		fmt.Fprintln(os.Stderr, "flush/shutdown errors:", errs)
		os.Exit(1)
	}
	return nil
}
