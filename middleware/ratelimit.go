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
	Store RateStore
	// Fallback decides, with the same limit and window, for each request
	// the Store fails to answer (an error, a timeout, a full connection
	// pool): an in-process store, so limits hold per instance while Redis
	// is down or saturated. Nil: such requests fail open at once.
	Fallback RateStore
	Limit    int
	Window   time.Duration
	// Timeout bounds each Store (and Fallback) call. Default 50ms.
	Timeout time.Duration
	// Identify returns the user id of a valid bearer token on r, if any.
	// Requests without one are keyed by client identity: the client IP, or
	// for IPv6 its network of IPv6Prefix bits (ClientIdentity).
	Identify   func(r *http.Request) (userID string, ok bool)
	IPv6Prefix int

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
	tags     [4][]telemetry.Tag      // by dec*
	warn     *telemetry.WarnThrottle // fail-open
	degraded *telemetry.WarnThrottle // the fallback decides
}

const (
	decAllowed = iota
	decLimited
	decFallback
	decFailOpen
)

var decisionNames = [4]string{DecisionAllowed, DecisionLimited, DecisionFallback, DecisionFailOpen}

// hitResult is one Hit's answer.
type hitResult struct {
	count int64
	ttl   time.Duration
}

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
// bearer token, else ip:<client identity>) on in-scope paths. Every in-scope
// response carries X-RateLimit-Limit, -Remaining and -Reset (epoch seconds);
// over the limit it answers 429 with Retry-After. When the store fails or
// takes longer than Timeout, the Fallback store decides the same way
// (counted as decision fallback, a warning logged at most every 10
// seconds); only when that fails too (or there is none) does the request
// proceed without rate-limit headers (fail-open, counted and logged the
// same way). It must run inside RequestContext.
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
			failOpenLogEvery, cfg.Now),
		degraded: telemetry.NewWarnThrottle(cfg.Logger, "rate limiter store unavailable: in-process fallback decides",
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
		key = "ratelimit:ip:" + ClientIdentity(ClientIPFromContext(ctx), l.cfg.IPv6Prefix)
	}
	ctx, span := l.tracer.Start(ctx, SpanRateLimitCheck)
	defer span.End()
	// Attributes are built only for a recording span: with tracing off they
	// would be allocated for nothing on every request.
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(attribute.String("ratelimit.identity", kind))
	}

	var fallback func(context.Context) (hitResult, error)
	if l.cfg.Fallback != nil {
		fallback = func(ctx context.Context) (hitResult, error) { return l.hit(ctx, l.cfg.Fallback, key) }
	}
	res, src, err := WithFallback(ctx, l.cfg.Timeout,
		func(ctx context.Context) (hitResult, error) { return l.hit(ctx, l.cfg.Store, key) }, fallback)
	switch src {
	case SourceCanceled:
		return true // the client is gone: nothing to decide or count
	case SourceNone:
		span.SetAttributes(attribute.String("ratelimit.decision", DecisionFailOpen))
		span.SetStatus(codes.Error, "rate limit store and fallback failed; request let through")
		span.RecordError(err)
		l.cfg.Telemetry.Counter(ctx, MetricRateLimitDecisions, 1, l.tags[decFailOpen]...)
		l.warn.Warn(ctx, err)
		return true
	case SourceFallback:
		span.SetStatus(codes.Error, "rate limit store failed; in-process fallback decided")
		span.RecordError(err)
		l.degraded.Warn(ctx, err)
	}
	count, ttl := res.count, res.ttl
	if ttl <= 0 || ttl > l.cfg.Window {
		ttl = l.cfg.Window
	}
	remaining := int64(l.cfg.Limit) - count
	if remaining < 0 {
		remaining = 0
	}
	h := w.Header()
	SetRateLimitHeaders(h, l.limitStr, remaining, l.cfg.Now(), ttl)
	if recording {
		span.SetAttributes(attribute.Int64("ratelimit.remaining", remaining))
	}
	limited := count > int64(l.cfg.Limit)
	dec := decAllowed
	switch {
	case src == SourceFallback:
		dec = decFallback // limited or not: the figure operators watch in an outage
	case limited:
		dec = decLimited
	}
	if recording {
		span.SetAttributes(attribute.String("ratelimit.decision", decisionNames[dec]),
			attribute.Bool("ratelimit.limited", limited))
	}
	l.cfg.Telemetry.Counter(ctx, MetricRateLimitDecisions, 1, l.tags[dec]...)
	if limited {
		h.Set("Retry-After", RetryAfterSeconds(ttl))
		l.cfg.Respond(w, r, http.StatusTooManyRequests, "Rate limit exceeded, retry later")
		return false
	}
	return true
}

func (l *limiter) hit(ctx context.Context, s RateStore, key string) (hitResult, error) {
	n, ttl, err := s.Hit(ctx, key, l.cfg.Window)
	return hitResult{n, ttl}, err
}

// RetryAfterSeconds is d in whole seconds, rounded up, at least 1: the
// Retry-After value of every 429 and 503 the service answers.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}

// SetRateLimitHeaders writes X-RateLimit-Limit (limit), -Remaining and
// -Reset: the epoch second at which a window with ttl left at now has
// ended, rounded up (at that second the budget is whole again). Every
// limiter that reports its state uses it.
func SetRateLimitHeaders(h http.Header, limit string, remaining int64, now time.Time, ttl time.Duration) {
	reset := now.Add(ttl)
	resetSecs := reset.Unix()
	if reset.Nanosecond() > 0 {
		resetSecs++ // the window ends within this second: report the second after
	}
	// Header.Set with the canonical keys, without canonicalising (and
	// allocating) them on every request.
	h[hdrLimit] = []string{limit}
	h[hdrRemaining] = []string{strconv.FormatInt(remaining, 10)}
	h[hdrReset] = []string{strconv.FormatInt(resetSecs, 10)}
}
