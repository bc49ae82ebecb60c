// Command libprobe exports the metrics of the instrumentation libraries bulwark uses
// (otelpgx for pgx/v5 pools, redisotel for go-redis/v9) over OTLP, so their Prometheus names can
// be read off a running stack (otel-collector/e2e-stack.sh) for the Grafana dashboard.
//
//	go run ./cmd/libprobe -endpoint 127.0.0.1:4317 -pg postgres://u@127.0.0.1:1/db -redis 127.0.0.1:6379
//
// Neither database has to be up: the pool-statistics instruments are observed anyway, and
// failed operations still produce operation metrics and spans.
package main

import (
	"context"
	"flag"
	"log"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:4317", "collector OTLP/gRPC endpoint")
	pgURL := flag.String("pg", "postgres://bulwark:bulwark@127.0.0.1:1/bulwark?connect_timeout=1", "Postgres URL")
	redisAddr := flag.String("redis", "127.0.0.1:1", "Redis address")
	semconv := flag.Bool("redis-semconv", false, "redisotel.WithSemConvCompliantMetrics(true)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := resource.NewSchemaless(attribute.String("service.name", "bulwark"))
	mexp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(*endpoint), otlpmetricgrpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(time.Second))))
	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(*endpoint), otlptracegrpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(texp))
	otel.SetMeterProvider(mp)
	otel.SetTracerProvider(tp)

	cfg, err := pgxpool.ParseConfig(*pgURL)
	if err != nil {
		log.Fatal(err)
	}
	cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithMeterProvider(mp), otelpgx.WithTracerProvider(tp))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if err := otelpgx.RecordStats(pool, otelpgx.WithStatsMeterProvider(mp)); err != nil {
		log.Fatal(err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tp)); err != nil {
		log.Fatal(err)
	}
	if err := redisotel.InstrumentMetrics(rdb, redisotel.WithMeterProvider(mp), redisotel.WithSemConvCompliantMetrics(*semconv)); err != nil {
		log.Fatal(err)
	}

	tracer := tp.Tracer("libprobe")
	for i := 0; i < 5; i++ {
		sctx, span := tracer.Start(ctx, "libprobe")
		var one int
		qctx, qcancel := context.WithTimeout(sctx, 2*time.Second)
		log.Printf("pg: %v", pool.QueryRow(qctx, "SELECT 1").Scan(&one))
		qcancel()
		log.Printf("redis SET: %v", rdb.Set(sctx, "libprobe", i, time.Minute).Err())
		log.Printf("redis GET: %v", rdb.Get(sctx, "libprobe").Err())
		span.End()
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	for _, f := range []func(context.Context) error{mp.ForceFlush, tp.ForceFlush, mp.Shutdown, tp.Shutdown} {
		if err := f(ctx); err != nil {
			log.Printf("flush: %v", err)
		}
	}
}
