package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	sdklog "go.opentelemetry.io/otel/sdk/log"
)

// BenchmarkAccessLogLine is the cost of one access-log line written to a
// file, as the process does with stdout redirected: straight to the file
// (one write system call per line, under the handler's lock) or through
// logBuffer, and through logBuffer plus the OTLP fan-out of otel mode (the
// otelslog bridge into the SDK's batch processor, with an exporter that
// discards). Parallel, as requests are.
func BenchmarkAccessLogLine(b *testing.B) {
	line := func(b *testing.B, logger *slog.Logger) {
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				logger.LogAttrs(ctx, slog.LevelInfo, "http.request",
					slog.String("method", "GET"), slog.String("path", "/health"), slog.String("route", "/health"),
					slog.Int("status", 200), slog.Float64("duration_ms", 0.012), slog.Int64("bytes", 15),
					slog.String("client_ip", "127.0.0.1"), slog.String("request_id", "9e4a864abfa9cdc2fb70a1734a04e7cf"))
			}
		})
	}
	open := func(b *testing.B) *os.File {
		f, err := os.Create(filepath.Join(b.TempDir(), "out.log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = f.Close() })
		return f
	}
	cfg := config{LogJSON: true, LogLevel: slog.LevelInfo}
	b.Run("file", func(b *testing.B) { line(b, newLogger(open(b), cfg, nil)) })
	b.Run("buffered", func(b *testing.B) {
		buf := newLogBuffer(open(b), logFlushEvery)
		b.Cleanup(func() { _ = buf.Close() })
		line(b, slog.New(flushOnWarn{newLogger(buf, cfg, nil).Handler(), buf}))
	})
	b.Run("buffered+otlp", func(b *testing.B) {
		buf := newLogBuffer(open(b), logFlushEvery)
		lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(discardLogs{})))
		b.Cleanup(func() { _ = lp.Shutdown(context.Background()); _ = buf.Close() })
		otlp := otelslog.NewHandler("bench", otelslog.WithLoggerProvider(lp))
		line(b, slog.New(flushOnWarn{newLogger(buf, cfg, otlp).Handler(), buf}))
	})
}

// discardLogs is a log exporter that drops everything.
type discardLogs struct{}

func (discardLogs) Export(context.Context, []sdklog.Record) error { return nil }
func (discardLogs) Shutdown(context.Context) error                { return nil }
func (discardLogs) ForceFlush(context.Context) error              { return nil }
