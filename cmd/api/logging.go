package main

import (
	"bufio"
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
// with a request context. otlp, when not nil (otel mode with a logs
// endpoint), receives every record at or above LOG_LEVEL as well, request_id
// included; it takes the trace and span IDs from the context itself.
func newLogger(w io.Writer, cfg config, otlp slog.Handler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler
	if cfg.LogJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	if otlp != nil {
		h = slog.NewMultiHandler(h, minLevel{otlp, cfg.LogLevel})
	}
	return slog.New(telemetry.NewContextHandler(h, middleware.RequestIDFromContext))
}

// minLevel drops records below level before they reach the handler.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}

// throttledLog returns a sink for library errors (OTel exporters, go-redis)
// that logs msg at WARN at most every 10 seconds, with the number of errors
// it held back meanwhile, so an unreachable collector or Redis cannot flood
// the log.
func throttledLog(logger *slog.Logger, msg string) func(error) {
	t := telemetry.NewWarnThrottle(logger, msg, 10*time.Second, nil)
	return func(err error) { t.Warn(context.Background(), err) }
}

// redisLogger routes go-redis' internal log lines (failed dials, pool
// events) through throttledLog.
type redisLogger struct{ sink func(error) }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.sink(fmt.Errorf(format, v...))
}

// logFlushEvery bounds how long an INFO line (the access log, log-mode
// metric lines) waits in the log buffer.
const logFlushEvery = 100 * time.Millisecond

// logBuffer batches the process's stdout writes. Writing every access-log
// line with its own write system call, under the log handler's lock, cost
// about a third of the throughput of GET /health under load
// (docs/PERFORMANCE.md); batched, the lines are the same and in the same
// order. They reach stdout when 64 KiB have gathered, within logFlushEvery
// otherwise, at once together with everything before them when a WARN or
// ERROR line is logged (see flushOnWarn), and on Close at exit. Only a crash
// of the process itself (not a handler panic, which is recovered and logged
// at ERROR) can lose the INFO lines of the last 100 ms.
type logBuffer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLogBuffer(w io.Writer, every time.Duration) *logBuffer {
	b := &logBuffer{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				_ = b.Flush()
			}
		}
	}()
	return b
}

// Write implements io.Writer.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes out everything buffered.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the periodic flush and flushes. Call it once, last.
func (b *logBuffer) Close() error {
	close(b.stop)
	<-b.done
	return b.Flush()
}

// flushOnWarn flushes buf after every record at WARN or above, so warnings
// and errors (and every line before them) are out at once.
type flushOnWarn struct {
	slog.Handler
	buf *logBuffer
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		_ = h.buf.Flush()
	}
	return err
}

func (h flushOnWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushOnWarn{h.Handler.WithAttrs(attrs), h.buf}
}

func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{h.Handler.WithGroup(name), h.buf}
}
