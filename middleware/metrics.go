package middleware

import (
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

// Telemetry records http_requests_total and http_request_duration_ms for
// every request with the tags method, route (the pattern without the method,
// or "unmatched") and status_code, and names the active server span after the
// route ("GET /api/v1/users/{id}", plain "GET" when unmatched) with the
// http.route and request_id attributes. It must run inside RequestContext and
// outside Recover, so panics are recorded as the 500 they become.
func Telemetry(tel telemetry.Telemetry) func(http.Handler) http.Handler {
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
			ms := float64(time.Since(s.start).Nanoseconds()) / 1e6
			tel.Counter(ctx, MetricRequests, 1, s.tags[:]...)
			tel.Histogram(ctx, MetricDuration, ms, s.tags[:]...)
		})
	}
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
