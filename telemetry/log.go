package telemetry

import (
	"context"
	"log/slog"
	"math"

	"go.opentelemetry.io/otel/trace"
)

// Messages of the log-mode lines.
const (
	MsgCounter   = "metric.counter"
	MsgHistogram = "metric.histogram"
)

// NewLog returns a Telemetry that writes each emission as one INFO line on
// logger (slog.Default() when nil): message MsgCounter or MsgHistogram, then
// the attributes name, value and one attribute per tag (key=value), in that
// order. request_id, trace_id and span_id are not added here: build logger
// on a handler from NewContextHandler and they are added to every line.
//
// sampleRate (0..1) is the share of requests whose lines are written; 1
// writes everything and 0 nothing (NaN counts as 1, values outside [0, 1] are
// clamped). The decision is deterministic per request, so every emission of
// one request is written or none is: it hashes (FNV-1a, then a 64-bit mixer)
// the request ID returned by requestID(ctx) and writes the line when the hash,
// as a fraction of 2^64, is below sampleRate. When requestID is nil or
// returns "", the trace ID of the span in ctx is hashed instead. An emission
// with neither (no request in ctx, e.g. a background job) is not part of any
// request and is written whenever sampleRate > 0.
//
// The decision does not depend on the trace sampler: the share of requests
// with metric lines and the share with recorded traces are independent.
func NewLog(logger *slog.Logger, sampleRate float64, requestID func(context.Context) string) Telemetry {
	if logger == nil {
		logger = slog.Default()
	}
	return &logTelemetry{logger: logger, rate: clampRate(sampleRate), requestID: requestID}
}

func clampRate(r float64) float64 {
	switch {
	case math.IsNaN(r), r > 1:
		return 1
	case r < 0:
		return 0
	}
	return r
}

type logTelemetry struct {
	logger    *slog.Logger
	rate      float64
	requestID func(context.Context) string
}

// Counter implements Telemetry.
func (l *logTelemetry) Counter(ctx context.Context, name string, value float64, tags ...Tag) {
	l.emit(ctx, MsgCounter, name, value, tags)
}

// Histogram implements Telemetry.
func (l *logTelemetry) Histogram(ctx context.Context, name string, value float64, tags ...Tag) {
	l.emit(ctx, MsgHistogram, name, value, tags)
}

func (l *logTelemetry) emit(ctx context.Context, msg, name string, value float64, tags []Tag) {
	if ctx == nil {
		ctx = context.Background()
	}
	if !l.sampled(ctx) || !l.logger.Enabled(ctx, slog.LevelInfo) {
		return
	}
	var buf [2 + maxStackTags]slog.Attr
	attrs := append(buf[:0], slog.String("name", name), slog.Float64("value", value))
	for _, t := range tags {
		attrs = append(attrs, slog.String(t.Key, t.Value))
	}
	l.logger.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
}

// sampled reports whether the request of ctx is in the sampled share.
func (l *logTelemetry) sampled(ctx context.Context) bool {
	switch l.rate {
	case 1:
		return true
	case 0:
		return false
	}
	var h uint64
	if id := l.lookupRequestID(ctx); id != "" {
		h = hashString(id)
	} else if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		tid := sc.TraceID()
		h = hashBytes(tid[:])
	} else {
		return true
	}
	return sampleFraction(h) < l.rate
}

func (l *logTelemetry) lookupRequestID(ctx context.Context) string {
	if l.requestID == nil {
		return ""
	}
	return l.requestID(ctx)
}

// sampleFraction maps a 64-bit hash to [0, 1).
func sampleFraction(h uint64) float64 {
	return float64(h>>11) / (1 << 53)
}

// InLogSample reports whether a request with this request ID is in the
// share rate of requests whose metric lines NewLog writes: the same
// decision, for callers that want to sample other per-request output alike.
func InLogSample(requestID string, rate float64) bool {
	rate = clampRate(rate)
	return rate == 1 || sampleFraction(hashString(requestID)) < rate
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func hashString(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return mix64(h)
}

func hashBytes(b []byte) uint64 {
	h := uint64(fnvOffset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return mix64(h)
}

// mix64 is the splitmix64 finalizer. FNV-1a alone spreads a change in the
// last byte of short, similar IDs (req-1, req-2, ...) poorly into the high
// bits that sampleFraction uses.
func mix64(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
