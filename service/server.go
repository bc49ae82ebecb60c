package service

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/docs"
	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service/user"
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
	// bounds each cache call (reads fail open; a write whose fence fails
	// answers 503). Used when Deps.Cache is set.
	CacheTTL     time.Duration
	CacheTimeout time.Duration
	// CacheFlightTimeout bounds the database read of a cache miss and
	// CacheWriteTimeout the database write of a fenced write (default 5s
	// each); tombstones outlive both (cache.go).
	CacheFlightTimeout time.Duration
	CacheWriteTimeout  time.Duration
	// LoginLimit bounds login attempts and failures per client identity
	// and per account, SignupLimit sign-ups per client identity; used when
	// Deps.CredentialRateStore is set.
	LoginLimit  LoginLimitConfig
	SignupLimit SignupLimitConfig
	// IPv6Prefix is the prefix length grouping IPv6 clients into one
	// identity in every limiter (middleware.ClientIdentity; default 64).
	IPv6Prefix int
	// HashGate bounds password hashing (hashgate.go).
	HashGate HashGateConfig
	// ReadyCacheTTL is how long a readiness result is reused (default 1s).
	ReadyCacheTTL time.Duration
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
	Users  user.Store
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
	// CredentialRateStore turns the login and sign-up limiters on; nil
	// leaves them off.
	CredentialRateStore CredentialRateStore
	// FallbackRateStore decides for every limiter while its store fails
	// (an in-process, bounded store: storage/memory). Nil: fail open.
	FallbackRateStore CredentialRateStore
	// Now is the clock (default time.Now); readiness caching reads it.
	Now func() time.Time
}

// Server is the HTTP API with its middleware chain. It is an http.Handler.
type Server struct {
	cfg      Config
	logger   *slog.Logger
	users    user.Store
	tokens   *Tokens
	hasher   *GatedHasher
	checks   []Check
	cache    *userCache
	login    *loginLimiter
	signup   *signupLimiter
	ready    *readiness
	now      func() time.Time
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
// at, before the limiter and the body limit), router. After routing, on
// every route and on the not-found catch-all: the route is recorded, the
// bearer token verified once (authn), the rate limiter decides (when a
// RateStore is given), then the body limit: a 429 or 413 is tagged with the
// route it was aimed at.
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
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{
		cfg:    cfg,
		logger: deps.Logger,
		users:  deps.Users,
		tokens: deps.Tokens,
		hasher: NewGatedHasher(deps.Hasher, cfg.HashGate, deps.Telemetry),
		checks: deps.Checks,
		ready:  newReadiness(cfg.ReadyCacheTTL, deps.Now, deps.Logger),
		now:    deps.Now,
	}
	s.openapi, s.openapiErr = docs.OpenAPIJSON()
	if s.openapiErr != nil {
		s.logger.Error("OpenAPI description unavailable", "error", s.openapiErr.Error())
	}
	if deps.CredentialRateStore != nil {
		if cfg.LoginLimit.Window <= 0 {
			cfg.LoginLimit.Window = 5 * time.Minute
		}
		if cfg.SignupLimit.Window <= 0 {
			cfg.SignupLimit.Window = 10 * time.Minute
		}
		s.cfg = cfg
		s.login = &loginLimiter{cfg: cfg.LoginLimit, credLimiter: newCredLimiter("login", deps.CredentialRateStore,
			deps.FallbackRateStore, cfg.LoginLimit.Timeout, deps.Telemetry, tracer, deps.Logger)}
		s.signup = &signupLimiter{cfg: cfg.SignupLimit, credLimiter: newCredLimiter("signup", deps.CredentialRateStore,
			deps.FallbackRateStore, cfg.SignupLimit.Timeout, deps.Telemetry, tracer, deps.Logger)}
	}
	if deps.Cache != nil {
		s.cache = newUserCache(deps.Cache, cfg.CacheTTL, cfg.CacheTimeout, cfg.CacheFlightTimeout, cfg.CacheWriteTimeout,
			deps.Telemetry, tracer)
	}
	limit := func(h http.Handler) http.Handler { return h }
	if deps.RateStore != nil {
		var fallback middleware.RateStore
		if deps.FallbackRateStore != nil {
			fallback = deps.FallbackRateStore
		}
		limit = middleware.RateLimit(middleware.RateLimitConfig{
			Store:          deps.RateStore,
			Fallback:       fallback,
			Limit:          cfg.RateLimit.Requests,
			Window:         cfg.RateLimit.Window,
			Timeout:        cfg.RateLimit.Timeout,
			Identify:       s.identify,
			IPv6Prefix:     cfg.IPv6Prefix,
			Telemetry:      deps.Telemetry,
			TracerProvider: tp,
			Logger:         s.logger,
			Respond:        s.respondStatus,
		})
	}
	bodyLimit := middleware.BodyLimit(cfg.MaxBodyBytes, s.respondStatus)
	h, routeOf := s.routes(func(h http.Handler) http.Handler { return s.authn(limit(h)) }, bodyLimit)
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
