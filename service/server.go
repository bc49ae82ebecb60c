package service

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/docs"
	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/telemetry"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Check is one readiness check (CONTRACT §1 /api/v1/health/ready). A nil Func
// reports "disabled".
type Check struct {
	Name    string
	Func    func(ctx context.Context) error
	Timeout time.Duration
}

// Config holds the API's own settings.
type Config struct {
	// MaxBodyBytes caps request bodies (413 above it); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// TrustedProxies decides whose X-Forwarded-For is believed.
	TrustedProxies *middleware.TrustedProxies
	// RateLimit applies when Deps.RateStore is set.
	RateLimit RateLimitConfig
	// CacheTTL is the user entries' lifetime (capped at 60s); CacheTimeout
	// bounds each cache call (fail-open). Used when Deps.Cache is set.
	CacheTTL     time.Duration
	CacheTimeout time.Duration
	// LoginLimit bounds failed logins per IP and per account; used when
	// Deps.LoginRateStore is set.
	LoginLimit LoginLimitConfig
	// CORS answers preflights and adds the CORS headers to every response
	// (middleware.NewCORS); nil leaves CORS off.
	CORS *middleware.CORS
	// SemConvMetrics also records the OpenTelemetry
	// http.server.request.duration (TELEMETRY_SEMCONV; middleware.WithSemConv).
	SemConvMetrics bool
}

// RateLimitConfig is CONTRACT §5's knobs.
type RateLimitConfig struct {
	Requests int
	Window   time.Duration
	// Timeout bounds each limiter call before the request proceeds unlimited.
	Timeout time.Duration
}

// Deps are the collaborators the API consumes. Logger, Users, Tokens and
// Hasher are required.
type Deps struct {
	Logger *slog.Logger
	Users  UserStore
	Tokens *Tokens
	Hasher PasswordHasher
	// Checks are run by the readiness route, in order.
	Checks []Check

	// Telemetry records metrics (default telemetry.Noop()).
	Telemetry telemetry.Telemetry
	// TracerProvider and Propagator turn on server spans (otelhttp) and the
	// rate-limit and cache spans. Nil: no tracing, no otelhttp in the chain.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator

	// RateStore turns rate limiting on; nil leaves it off.
	RateStore middleware.RateStore
	// Cache turns the user cache on; nil leaves it off.
	Cache Cache
	// LoginRateStore turns the login limiter on; nil leaves it off.
	LoginRateStore LoginRateStore
}

// Server is the HTTP API with its middleware chain. It is an http.Handler.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	users    UserStore
	tokens   *Tokens
	hasher   PasswordHasher
	checks   []Check
	cache    *userCache
	login    *loginLimiter
	draining atomic.Bool
	handler  http.Handler
	// openapi is docs/openapi.yaml as JSON; openapiErr is why it could
	// not be converted (the route then answers 500).
	openapi    []byte
	openapiErr error
}

// NewServer builds the API: the route table of routes.go behind the
// middleware chain (outermost first): server span (otelhttp, when tracing),
// request context, telemetry, access log, panic recovery, CORS (when
// configured: preflights are answered there, tagged with the route they aim
// at, before the limiter and the body limit), router. The rate
// limiter (when a RateStore is given) runs right after routing, on every
// route and on the not-found catch-all, then the body limit: a 429 or 413 is
// tagged with the route it was aimed at.
func NewServer(cfg Config, deps Deps) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if deps.Telemetry == nil {
		deps.Telemetry = telemetry.Noop()
	}
	tp := deps.TracerProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	tracer := tp.Tracer("github.com/bulwark-go/bulwark/service")
	s := &Server{
		cfg:    cfg,
		logger: deps.Logger,
		users:  deps.Users,
		tokens: deps.Tokens,
		hasher: deps.Hasher,
		checks: deps.Checks,
	}
	s.openapi, s.openapiErr = docs.OpenAPIJSON()
	if s.openapiErr != nil {
		s.logger.Error("OpenAPI description unavailable", "error", s.openapiErr.Error())
	}
	if deps.LoginRateStore != nil {
		s.login = newLoginLimiter(deps.LoginRateStore, cfg.LoginLimit, deps.Logger)
	}
	if deps.Cache != nil {
		s.cache = newUserCache(deps.Cache, cfg.CacheTTL, cfg.CacheTimeout, deps.Telemetry, tracer)
	}
	limit := func(h http.Handler) http.Handler { return h }
	if deps.RateStore != nil {
		limit = middleware.RateLimit(middleware.RateLimitConfig{
			Store:          deps.RateStore,
			Limit:          cfg.RateLimit.Requests,
			Window:         cfg.RateLimit.Window,
			Timeout:        cfg.RateLimit.Timeout,
			Identify:       s.identify,
			Telemetry:      deps.Telemetry,
			TracerProvider: tp,
			Logger:         s.logger,
			Respond:        s.respondStatus,
		})
	}
	h, routeOf := s.routes(limit, middleware.BodyLimit(cfg.MaxBodyBytes, s.respondStatus))
	if cfg.CORS != nil {
		h = cfg.CORS.Middleware(routeOf)(h)
	}
	h = middleware.Recover(s.logger, s.respondStatus)(h)
	h = middleware.AccessLog(s.logger)(h)
	h = middleware.Telemetry(deps.Telemetry, middleware.WithSemConv(cfg.SemConvMetrics))(h)
	h = middleware.RequestContext(cfg.TrustedProxies)(h)
	if deps.TracerProvider != nil {
		prop := deps.Propagator
		if prop == nil {
			prop = telemetry.NewPropagator()
		}
		// otelhttp makes the server span and continues an incoming
		// traceparent. Its own http.server.* metrics are switched off: the
		// Telemetry middleware's histogram is the one series (see
		// docs/TELEMETRY.md).
		h = otelhttp.NewHandler(h, "http.server",
			otelhttp.WithTracerProvider(deps.TracerProvider),
			otelhttp.WithPropagators(prop),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
		)
	}
	s.handler = h
	return s
}

// ServeHTTP serves one request through the whole chain.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain makes readiness answer 503 from now on; call it first on shutdown so
// load balancers stop sending traffic while in-flight requests finish.
func (s *Server) Drain() { s.draining.Store(true) }
