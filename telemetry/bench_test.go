package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/bulwark-go/bulwark/telemetry"
)

func TestNoopZeroAllocs(t *testing.T) {
	tel := telemetry.Noop()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags3...)
		tel.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 12.5, tags3...)
	})
	if allocs != 0 {
		t.Errorf("Noop allocates %v per Counter+Histogram, want 0", allocs)
	}
}

// TestLogZeroRateAllocs checks that an unsampled request costs no
// allocation in log mode.
func TestLogZeroRateAllocs(t *testing.T) {
	tel := telemetry.NewLog(slog.New(slog.NewJSONHandler(io.Discard, nil)), 0.5, requestIDFrom)
	ctx := withRequestID(context.Background(), "")
	for i := 0; ; i++ { // find a request ID outside the sample
		id := "req-" + string(rune('a'+i))
		if !telemetry.InLogSample(id, 0.5) {
			ctx = withRequestID(context.Background(), id)
			break
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags3...)
		tel.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 12.5, tags3...)
	})
	if allocs != 0 {
		t.Errorf("unsampled log emission allocates %v, want 0", allocs)
	}
}

func benchTelemetry(b *testing.B, tel telemetry.Telemetry, ctx context.Context) {
	b.ReportAllocs()
	for b.Loop() {
		tel.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags3...)
		tel.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 12.5, tags3...)
	}
}

func BenchmarkNoop(b *testing.B) {
	benchTelemetry(b, telemetry.Noop(), context.Background())
}

func BenchmarkLog(b *testing.B) {
	ctx := withRequestID(context.Background(), "0123456789abcdef0123456789abcdef")
	newLogger := func() *slog.Logger {
		return slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(io.Discard, nil), requestIDFrom))
	}
	b.Run("rate=1", func(b *testing.B) {
		benchTelemetry(b, telemetry.NewLog(newLogger(), 1, requestIDFrom), ctx)
	})
	b.Run("rate=0", func(b *testing.B) {
		benchTelemetry(b, telemetry.NewLog(newLogger(), 0, requestIDFrom), ctx)
	})
	// rate 0.5, a request outside the sample: the cost of the hash.
	out := "req-0"
	for i := 1; telemetry.InLogSample(out, 0.5); i++ {
		out = "req-" + strconv.Itoa(i)
	}
	b.Run("rate=0.5/unsampled", func(b *testing.B) {
		benchTelemetry(b, telemetry.NewLog(newLogger(), 0.5, requestIDFrom), withRequestID(context.Background(), out))
	})
}

func BenchmarkOTel(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	tel, err := telemetry.NewOTel(mp)
	if err != nil {
		b.Fatal(err)
	}
	benchTelemetry(b, tel, context.Background())
}
