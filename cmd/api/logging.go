package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/telemetry"
)

// newLogger builds the process logger: JSON or text per LOG_JSON, level per
// LOG_LEVEL, and request_id, trace_id and span_id added to every line logged
// with a request context.
func newLogger(w io.Writer, cfg config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler
	if cfg.LogJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(telemetry.NewContextHandler(h, middleware.RequestIDFromContext))
}

// throttledLog returns a sink for library errors that logs one WARN line at
// most every 10 seconds, with the number of errors it held back meanwhile,
// so an unreachable collector or Redis cannot flood the log.
func throttledLog(logger *slog.Logger, msg string) func(error) {
	var mu sync.Mutex
	var last time.Time
	var held int
	return func(err error) {
		mu.Lock()
		now := time.Now()
		if now.Sub(last) < 10*time.Second {
			held++
			mu.Unlock()
			return
		}
		last = now
		suppressed := held
		held = 0
		mu.Unlock()
		logger.Warn(msg, "error", err.Error(), "suppressed_since_last", suppressed)
	}
}

// redisLogger routes go-redis' internal log lines (failed dials, pool
// events) through throttledLog.
type redisLogger struct{ sink func(error) }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.sink(fmt.Errorf(format, v...))
}
