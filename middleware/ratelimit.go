package middleware

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// RateStore counts hits in fixed windows. Hit counts one request against key
// and returns the count in the current window (this hit included) and the
// time left until the window ends. storage/redis and storage/memory
// implement it.
type RateStore interface {
	Hit(ctx context.Context, key string, window time.Duration) (count int64, ttl time.Duration, err error)
}

// RateLimitConfig configures RateLimit.
type RateLimitConfig struct {
	Store  RateStore
	Limit  int
	Window time.Duration
	// Timeout bounds each Store call; past it the request proceeds unlimited
	// (fail-open). Default 50ms.
	Timeout time.Duration
	// Identify returns the user id of a valid bearer token on r, if any.
	// Requests without one are keyed by client IP.
	Identify func(r *http.Request) (userID string, ok bool)

	Telemetry      telemetry.Telemetry
	TracerProvider trace.TracerProvider
	Logger         *slog.Logger
	Respond        ErrorResponder
	// Now is the clock (for tests); default time.Now.
	Now func() time.Time
}

// Bounds of the rate-limit settings (RATE_LIMIT_* and LOGIN_RATE_LIMIT_*),
// so of the X-RateLimit-Limit, X-RateLimit-Remaining and Retry-After values:
// docs/openapi.yaml states the same maxima.
const (
	MaxRateLimit       = 1 << 30
	MaxRateLimitWindow = 24 * time.Hour
)

// Metric and span names of the limiter.
const (
	MetricRateLimitDecisions = telemetry.MetricRateLimitDecisions
	SpanRateLimitCheck       = "ratelimit.check"
)

// RateLimitInScope reports whether path is rate limited (CONTRACT §5):
// /api/v1 and everything under it except the two health probes.
func RateLimitInScope(path string) bool {
	if path != "/api/v1" && !strings.HasPrefix(path, "/api/v1/") {
		return false
	}
	return path != "/api/v1/health/live" && path != "/api/v1/health/ready"
}

type limiter struct {
	cfg      RateLimitConfig
	tracer   trace.Tracer
	limitStr string
	tags     [3][]telemetry.Tag // allowed, limited, fail_open
	warn     *telemetry.WarnThrottle
}

const (
	decAllowed = iota
	decLimited
	decFailOpen
)

var decisionNames = [3]string{"allowed", "limited", "fail_open"}

// The rate-limit headers (X-RateLimit-Limit, -Remaining, -Reset) in the
// canonical form Header.Set would give them.
const (
	hdrLimit     = "X-Ratelimit-Limit"
	hdrRemaining = "X-Ratelimit-Remaining"
	hdrReset     = "X-Ratelimit-Reset"
)

// failOpenLogEvery is the least time between two fail-open warnings; the
// ones in between are counted and reported with the next warning.
const failOpenLogEvery = 10 * time.Second

// RateLimit enforces a fixed-window limit per identity (user:<id> for a valid
// bearer token, else ip:<client ip>) on in-scope paths. Every in-scope
// response carries X-RateLimit-Limit, -Remaining and -Reset (epoch seconds);
// over the limit it answers 429 with Retry-After. When the store fails or
// takes longer than Timeout, the request proceeds without rate-limit headers
// (fail-open), a fail_open decision is counted, and a warning is logged at
// most every 10 seconds. It must run inside RequestContext.
func RateLimit(cfg RateLimitConfig) func(http.Handler) http.Handler {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Telemetry == nil {
		cfg.Telemetry = telemetry.Noop()
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = noop.NewTracerProvider()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &limiter{cfg: cfg, tracer: cfg.TracerProvider.Tracer("github.com/bulwark-go/bulwark/middleware"),
		limitStr: strconv.Itoa(cfg.Limit),
		warn: telemetry.NewWarnThrottle(cfg.Logger, "rate limiter unavailable: request allowed (fail-open)",
			failOpenLogEvery, cfg.Now)}
	for i, d := range decisionNames {
		l.tags[i] = []telemetry.Tag{{Key: "decision", Value: d}}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !RateLimitInScope(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			if l.check(w, r) {
				next.ServeHTTP(w, r)
			}
		})
	}
}

// check decides for one request; it returns false when it has answered 429.
func (l *limiter) check(w http.ResponseWriter, r *http.Request) bool {
	ctx := r.Context()
	kind, key := "ip", ""
	if id, ok := l.cfg.Identify(r); ok {
		kind, key = "user", "ratelimit:user:"+id
	} else {
		key = "ratelimit:ip:" + ClientIPFromContext(ctx)
	}
	ctx, span := l.tracer.Start(ctx, SpanRateLimitCheck)
	defer span.End()
	// Attributes are built only for a recording span: with tracing off they
	// would be allocated for nothing on every request.
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(attribute.String("ratelimit.identity", kind))
	}

	callCtx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	count, ttl, err := l.cfg.Store.Hit(callCtx, key, l.cfg.Window)
	cancel()
	if err != nil {
		span.SetAttributes(attribute.String("ratelimit.decision", decisionNames[decFailOpen]))
		span.SetStatus(codes.Error, "rate limit store failed; request let through")
		span.RecordError(err)
		l.cfg.Telemetry.Counter(ctx, MetricRateLimitDecisions, 1, l.tags[decFailOpen]...)
		l.warn.Warn(ctx, err)
		return true
	}
	if ttl <= 0 || ttl > l.cfg.Window {
		ttl = l.cfg.Window
	}
	remaining := int64(l.cfg.Limit) - count
	if remaining < 0 {
		remaining = 0
	}
	reset := l.cfg.Now().Add(ttl)
	resetSecs := reset.Unix()
	if reset.Nanosecond() > 0 {
		resetSecs++ // the window ends within this second: report the second after
	}
	// Header.Set with the canonical keys, without canonicalising (and
	// allocating) them on every request.
	h := w.Header()
	h[hdrLimit] = []string{l.limitStr}
	h[hdrRemaining] = []string{strconv.FormatInt(remaining, 10)}
	h[hdrReset] = []string{strconv.FormatInt(resetSecs, 10)}
	if recording {
		span.SetAttributes(attribute.Int64("ratelimit.remaining", remaining))
	}
	if count > int64(l.cfg.Limit) {
		if recording {
			span.SetAttributes(attribute.String("ratelimit.decision", decisionNames[decLimited]))
		}
		l.cfg.Telemetry.Counter(ctx, MetricRateLimitDecisions, 1, l.tags[decLimited]...)
		retry := int64((ttl + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(max(retry, 1), 10))
		l.cfg.Respond(w, r, http.StatusTooManyRequests, "Rate limit exceeded, retry later")
		return false
	}
	if recording {
		span.SetAttributes(attribute.String("ratelimit.decision", decisionNames[decAllowed]))
	}
	l.cfg.Telemetry.Counter(ctx, MetricRateLimitDecisions, 1, l.tags[decAllowed]...)
	return true
}
