package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
)

// config is everything the process reads from the environment (CONTRACT §7).
// Every variable is optional; a malformed one stops start-up with one line
// naming it.
type config struct {
	Port int

	DatabaseURL string
	RedisURL    string

	JWTSecret          string
	AccessTokenExpire  time.Duration
	FirstSuperEmail    string
	FirstSuperPassword string

	MaxBodyBytes   int64
	TrustedProxies *middleware.TrustedProxies

	LogJSON  bool
	LogLevel slog.Level

	TelemetryMode       string
	TelemetrySampleRate float64

	RateLimitEnabled  bool
	RateLimitRequests int
	RateLimitWindow   time.Duration
	RateLimitTimeout  time.Duration

	CacheEnabled    bool
	CacheDefaultTTL time.Duration

	LoginLimitEnabled bool
	LoginLimitAccount int
	LoginLimitIP      int
	LoginLimitWindow  time.Duration

	// CORS is nil unless CORS_ALLOWED_ORIGINS lists an origin;
	// CORSOrigins is that list, for the start-up log.
	CORS        *middleware.CORS
	CORSOrigins []string

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	ShutdownDelay     time.Duration
	StartupTimeout    time.Duration
}

// envReader parses variables one by one and keeps the first error.
type envReader struct {
	getenv func(string) string
	err    error
}

func (e *envReader) fail(name, value, why string) {
	if e.err == nil {
		e.err = fmt.Errorf("config: %s=%q: %s", name, value, why)
	}
}

func (e *envReader) str(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func (e *envReader) integer(name string, def, lo, hi int) int {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.fail(name, v, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

// seconds reads a whole number of seconds from 1 to max.
func (e *envReader) seconds(name string, def int, max time.Duration) time.Duration {
	return time.Duration(e.integer(name, def, 1, int(max/time.Second))) * time.Second
}

func (e *envReader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	e.fail(name, v, "must be true or false")
	return def
}

func (e *envReader) ratio(name string, def float64) float64 {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 || f != f {
		e.fail(name, v, "must be a number from 0 to 1")
		return def
	}
	return f
}

// duration accepts a Go duration ("15s", "250ms") or a plain number of
// seconds ("15").
func (e *envReader) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return def
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 && n < 1e6 {
		return time.Duration(n * float64(time.Second))
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.fail(name, v, `must be a duration like "15s" or a number of seconds`)
		return def
	}
	return d
}

func (e *envReader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(strings.TrimSpace(e.getenv(name)))
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	e.fail(name, v, "must be one of "+strings.Join(allowed, ", "))
	return def
}

func (e *envReader) url(name string, schemes ...string) string {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" && u.Path == "" {
		e.fail(name, redactURL(v), "must be a URL")
		return ""
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	e.fail(name, redactURL(v), "scheme must be one of "+strings.Join(schemes, ", "))
	return ""
}

func (e *envReader) proxies(name string) *middleware.TrustedProxies {
	v := e.getenv(name)
	tp, err := middleware.ParseTrustedProxies(v)
	if err != nil {
		e.fail(name, v, err.Error())
		return &middleware.TrustedProxies{}
	}
	return tp
}

// list parses a comma-separated variable with parse; an unset or empty
// variable parses def.
func (e *envReader) list(name, def string, parse func(string) ([]string, error)) []string {
	v := e.getenv(name)
	if strings.TrimSpace(v) == "" {
		v = def
	}
	out, err := parse(v)
	if err != nil {
		e.fail(name, v, err.Error())
		return nil
	}
	return out
}

// cors reads the CORS_* variables (all validated even while CORS is off)
// and builds the middleware when CORS_ALLOWED_ORIGINS lists an origin.
func (e *envReader) cors() (*middleware.CORS, []string) {
	origins := e.list("CORS_ALLOWED_ORIGINS", "", middleware.ParseCORSOrigins)
	opts := middleware.CORSOptions{
		AllowedOrigins:   origins,
		AllowedMethods:   e.list("CORS_ALLOWED_METHODS", middleware.DefaultCORSMethods, middleware.ParseCORSMethods),
		AllowedHeaders:   e.list("CORS_ALLOWED_HEADERS", middleware.DefaultCORSHeaders, middleware.ParseCORSHeaders),
		AllowCredentials: e.boolean("CORS_ALLOW_CREDENTIALS", false),
		MaxAge: time.Duration(e.integer("CORS_MAX_AGE_SECONDS", int(middleware.DefaultCORSMaxAge/time.Second),
			0, int(middleware.MaxCORSMaxAge/time.Second))) * time.Second,
	}
	switch {
	case e.err != nil:
		return nil, nil
	case len(opts.AllowedMethods) == 0:
		e.fail("CORS_ALLOWED_METHODS", e.getenv("CORS_ALLOWED_METHODS"), "must list at least one method")
	case len(opts.AllowedHeaders) == 0:
		e.fail("CORS_ALLOWED_HEADERS", e.getenv("CORS_ALLOWED_HEADERS"), "must list at least one header")
	case len(origins) == 0:
		return nil, nil
	case origins[0] == "*" && opts.AllowCredentials:
		e.fail("CORS_ALLOW_CREDENTIALS", "true", `must be false with CORS_ALLOWED_ORIGINS="*" (list the origins instead)`)
	}
	if e.err != nil {
		return nil, nil
	}
	c, err := middleware.NewCORS(opts)
	if err != nil {
		e.fail("CORS_ALLOWED_ORIGINS", e.getenv("CORS_ALLOWED_ORIGINS"), err.Error())
		return nil, nil
	}
	return c, origins
}

// redactURL hides a password in a URL before it is printed.
func redactURL(v string) string {
	if u, err := url.Parse(v); err == nil {
		return u.Redacted()
	}
	return "<unparseable>"
}

func loadConfig(getenv func(string) string) (config, error) {
	e := &envReader{getenv: getenv}
	c := config{
		Port:               e.integer("PORT", 8000, 0, 65535),
		DatabaseURL:        e.url("DATABASE_URL", "postgres", "postgresql"),
		RedisURL:           e.url("REDIS_URL", "redis", "rediss", "unix"),
		JWTSecret:          e.str("JWT_SECRET", ""),
		AccessTokenExpire:  time.Duration(e.integer("ACCESS_TOKEN_EXPIRE_MINUTES", 60, 1, 60*24*365)) * time.Minute,
		FirstSuperEmail:    e.str("FIRST_SUPERUSER_EMAIL", ""),
		FirstSuperPassword: e.str("FIRST_SUPERUSER_PASSWORD", ""),
		MaxBodyBytes:       int64(e.integer("MAX_BODY_BYTES", service.DefaultMaxBodyBytes, 1, 1<<30)),
		TrustedProxies:     e.proxies("TRUSTED_PROXIES"),
		LogJSON:            e.boolean("LOG_JSON", false),

		TelemetryMode:       e.oneOf("TELEMETRY_MODE", "noop", "noop", "log", "otel"),
		TelemetrySampleRate: e.ratio("TELEMETRY_SAMPLE_RATE", 1),

		RateLimitEnabled:  e.boolean("RATE_LIMIT_ENABLED", false),
		RateLimitRequests: e.integer("RATE_LIMIT_REQUESTS", 100, 1, middleware.MaxRateLimit),
		RateLimitWindow:   e.seconds("RATE_LIMIT_WINDOW_SECONDS", 60, middleware.MaxRateLimitWindow),
		RateLimitTimeout:  e.duration("RATE_LIMIT_TIMEOUT", 50*time.Millisecond),

		CacheEnabled:    e.boolean("CACHE_ENABLED", false),
		CacheDefaultTTL: e.seconds("CACHE_DEFAULT_TTL_SECONDS", 60, 24*time.Hour),

		LoginLimitEnabled: e.boolean("LOGIN_RATE_LIMIT_ENABLED", true),
		LoginLimitAccount: e.integer("LOGIN_RATE_LIMIT_REQUESTS", 10, 1, middleware.MaxRateLimit),
		LoginLimitIP:      e.integer("LOGIN_RATE_LIMIT_IP_REQUESTS", 50, 1, middleware.MaxRateLimit),
		LoginLimitWindow:  e.seconds("LOGIN_RATE_LIMIT_WINDOW_SECONDS", 300, middleware.MaxRateLimitWindow),

		ReadHeaderTimeout: e.duration("HTTP_READ_HEADER_TIMEOUT", 5*time.Second),
		ReadTimeout:       e.duration("HTTP_READ_TIMEOUT", 30*time.Second),
		WriteTimeout:      e.duration("HTTP_WRITE_TIMEOUT", 30*time.Second),
		IdleTimeout:       e.duration("HTTP_IDLE_TIMEOUT", 120*time.Second),
		ShutdownTimeout:   e.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		ShutdownDelay:     e.duration("SHUTDOWN_DELAY", 0),
		StartupTimeout:    e.duration("STARTUP_TIMEOUT", 30*time.Second),
	}
	c.CORS, c.CORSOrigins = e.cors()
	switch lvl := e.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "warning", "error"); lvl {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		c.LogLevel = slog.LevelInfo
	}
	if e.err == nil && (c.FirstSuperEmail == "") != (c.FirstSuperPassword == "") {
		e.fail("FIRST_SUPERUSER_PASSWORD", "<hidden>", "FIRST_SUPERUSER_EMAIL and FIRST_SUPERUSER_PASSWORD must be set together")
	}
	if e.err == nil && c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		e.fail("JWT_SECRET", "<hidden>", "must be at least 32 bytes")
	}
	return c, e.err
}
