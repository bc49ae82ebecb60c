package telemetry_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/bulwark-go/bulwark/telemetry"
)

// Example shows the wiring a main function does: configuration from the
// environment, a logger whose lines carry request_id/trace_id/span_id, the
// telemetry stack, and the flush at exit.
func Example() {
	ctx := context.Background()
	logger := slog.New(telemetry.NewContextHandler(slog.NewJSONHandler(os.Stderr, nil), requestIDFrom))

	cfg, err := telemetry.ConfigFromEnv(os.Getenv)
	if err != nil {
		logger.Error("bad configuration", "err", err)
		return
	}
	cfg.ServiceVersion = "1.0.0"
	cfg.RequestID = requestIDFrom // the middleware's accessor
	tel, err := telemetry.Setup(ctx, cfg, logger)
	if err != nil {
		logger.Error("telemetry setup failed", "err", err)
		return
	}
	defer func() {
		// After the HTTP server has drained its requests.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			logger.Error("telemetry shutdown", "err", err)
		}
	}()

	// Per request, in the telemetry middleware (tags from a slice it owns):
	tags := []telemetry.Tag{{Key: "method", Value: "GET"}, {Key: "route", Value: "/health"}, {Key: "status_code", Value: "200"}}
	tel.Telemetry.Counter(ctx, telemetry.MetricHTTPRequestsTotal, 1, tags...)
	tel.Telemetry.Histogram(ctx, telemetry.MetricHTTPRequestDuration, 0.8, tags...)
}
