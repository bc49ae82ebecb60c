package middleware

import (
	"log/slog"
	"net/http"
	"time"
)

// AccessLog writes one line per request when the request is done: method,
// path, route, status, duration_ms, bytes, client_ip and request_id (the
// trace IDs come from the logger's context handler; request_id is written
// here, last, where that handler would put it, so it does not have to copy
// the record to add it). 5xx lines are WARN (the
// error itself is logged at ERROR where it happened), everything else INFO.
// It must run inside RequestContext.
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			s := stateFrom(r.Context())
			if s == nil {
				return
			}
			level := slog.LevelInfo
			if s.rec.status >= 500 {
				level = slog.LevelWarn
			}
			ctx := r.Context()
			if !logger.Enabled(ctx, level) {
				return
			}
			logger.LogAttrs(ctx, level, "http.request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", s.route),
				slog.Int("status", s.rec.status),
				slog.Float64("duration_ms", float64(time.Since(s.start).Microseconds())/1000),
				slog.Int64("bytes", s.rec.bytes),
				slog.String("client_ip", s.clientIP),
				slog.String("request_id", s.requestID),
			)
		})
	}
}
