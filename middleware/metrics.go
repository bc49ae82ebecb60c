package middleware

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Metric names of the HTTP telemetry middleware (CONTRACT §4).
const (
	MetricRequests = telemetry.MetricHTTPRequestsTotal
	MetricDuration = telemetry.MetricHTTPRequestDuration
)

// TelemetryOption tunes Telemetry.
type TelemetryOption func(*telemetryOptions)

type telemetryOptions struct{ semConv bool }

// WithSemConv(true) makes Telemetry also record the stable OpenTelemetry
// http.server.request.duration (telemetry.MetricHTTPServerRequestDuration:
// seconds, attributes http.route, http.request.method,
// http.response.status_code, url.scheme and, for a 5xx, error.type), from
// the same measurement as the contract's histogram (TELEMETRY_SEMCONV).
func WithSemConv(on bool) TelemetryOption {
	return func(o *telemetryOptions) { o.semConv = on }
}

// Telemetry records http_requests_total and http_request_duration_ms for
// every request with the tags method, route (the pattern without the method,
// or "unmatched") and status_code, and names the active server span after the
// route ("GET /api/v1/users/{id}", plain "GET" when unmatched) with the
// http.route and request_id attributes. It must run inside RequestContext and
// outside Recover, so panics are recorded as the 500 they become.
func Telemetry(tel telemetry.Telemetry, opts ...TelemetryOption) func(http.Handler) http.Handler {
	var o telemetryOptions
	for _, opt := range opts {
		opt(&o)
	}
	var codes [600]string // status code strings, built once: no allocation per request
	for i := range codes {
		codes[i] = strconv.Itoa(i)
	}
	statusString := func(code int) string {
		if code >= 0 && code < len(codes) {
			return codes[code]
		}
		return strconv.Itoa(code)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			s := stateFrom(ctx)
			if s == nil {
				next.ServeHTTP(w, r)
				return
			}
			span := trace.SpanFromContext(ctx)
			recording := span.IsRecording()
			if recording {
				span.SetAttributes(attribute.String("request_id", s.requestID))
			}
			next.ServeHTTP(w, r)

			method := knownMethod(r.Method)
			status := s.rec.status
			if status == 0 {
				status = http.StatusOK // handler wrote nothing: net/http sends 200
			}
			if recording {
				if s.route != RouteUnmatched {
					span.SetName(method + " " + s.route)
					span.SetAttributes(attribute.String("http.route", s.route))
				} else {
					span.SetName(method)
				}
			}
			s.tags = [3]telemetry.Tag{
				{Key: "method", Value: method},
				{Key: "route", Value: s.route},
				{Key: "status_code", Value: statusString(status)},
			}
			elapsed := time.Since(s.start)
			ms := float64(elapsed.Nanoseconds()) / 1e6
			tel.Counter(ctx, MetricRequests, 1, s.tags[:]...)
			tel.Histogram(ctx, MetricDuration, ms, s.tags[:]...)
			if o.semConv {
				recordSemConv(ctx, tel, r, method, s.route, statusString(status), status, elapsed)
			}
		})
	}
}

// recordSemConv records telemetry.MetricHTTPServerRequestDuration. The tags
// live in a stack array; implementations never retain them.
func recordSemConv(ctx context.Context, tel telemetry.Telemetry, r *http.Request, method, route, status string, code int, elapsed time.Duration) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	var buf [5]telemetry.Tag
	tags := append(buf[:0],
		telemetry.Tag{Key: telemetry.SemConvAttrMethod, Value: method},
		telemetry.Tag{Key: telemetry.SemConvAttrStatusCode, Value: status},
		telemetry.Tag{Key: telemetry.SemConvAttrURLScheme, Value: scheme})
	if route != RouteUnmatched {
		tags = append(tags, telemetry.Tag{Key: telemetry.SemConvAttrRoute, Value: route})
	}
	if code >= 500 {
		tags = append(tags, telemetry.Tag{Key: telemetry.SemConvAttrErrorType, Value: status})
	}
	tel.Histogram(ctx, telemetry.MetricHTTPServerRequestDuration, elapsed.Seconds(), tags...)
}

// knownMethod keeps metric and span names low-cardinality: a method outside
// the standard set becomes "_OTHER" (as the OTel HTTP conventions do), so
// clients cannot mint series.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}
