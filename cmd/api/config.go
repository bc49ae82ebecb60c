package main

import (
	"fmt"
	"github.com/bulwark-go/bulwark/middleware"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
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
	// RateLimitIPv6Prefix groups IPv6 clients in every limiter;
	// RateLimitMemoryMaxKeys bounds each in-process limiter store.
	RateLimitIPv6Prefix    int
	RateLimitMemoryMaxKeys int

	CacheEnabled    bool
	CacheDefaultTTL time.Duration

	LoginLimitEnabled  bool
	LoginLimitAccount  int
	LoginLimitIP       int
	LoginLimitAttempts int
	LoginLimitWindow   time.Duration

	SignupLimitIP     int
	SignupLimitWindow time.Duration

	HashConcurrency int
	HashQueue       int
	HashWait        time.Duration

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
		MaxBodyBytes:       int64(e.integer("MAX_BODY_BYTES", 1<<20, 1, 1<<30)),
		TrustedProxies:     e.proxies("TRUSTED_PROXIES"),
		LogJSON:            e.boolean("LOG_JSON", false),

		TelemetryMode:       e.oneOf("TELEMETRY_MODE", "noop", "noop", "log", "otel"),
		TelemetrySampleRate: e.ratio("TELEMETRY_SAMPLE_RATE", 1),

		RateLimitEnabled:  e.boolean("RATE_LIMIT_ENABLED", false),
		RateLimitRequests: e.integer("RATE_LIMIT_REQUESTS", 100, 1, 1<<30),
		RateLimitWindow:   time.Duration(e.integer("RATE_LIMIT_WINDOW_SECONDS", 60, 1, 86400)) * time.Second,
		RateLimitTimeout:  e.duration("RATE_LIMIT_TIMEOUT", 50*time.Millisecond),
		// /64: what one subscriber, VM or LAN is given; 128 keys each address.
		RateLimitIPv6Prefix:    e.integer("RATE_LIMIT_IPV6_PREFIX", 64, 16, 128),
		RateLimitMemoryMaxKeys: e.integer("RATE_LIMIT_MEMORY_MAX_KEYS", 100_000, 1000, 1<<26),

		CacheEnabled:    e.boolean("CACHE_ENABLED", false),
		CacheDefaultTTL: time.Duration(e.integer("CACHE_DEFAULT_TTL_SECONDS", 60, 1, 86400)) * time.Second,

		LoginLimitEnabled:  e.boolean("LOGIN_RATE_LIMIT_ENABLED", true),
		LoginLimitAccount:  e.integer("LOGIN_RATE_LIMIT_REQUESTS", 10, 1, 1<<30),
		LoginLimitIP:       e.integer("LOGIN_RATE_LIMIT_IP_REQUESTS", 50, 1, 1<<30),
		LoginLimitAttempts: e.integer("LOGIN_RATE_LIMIT_IP_ATTEMPTS", 300, 0, 1<<30),
		LoginLimitWindow:   time.Duration(e.integer("LOGIN_RATE_LIMIT_WINDOW_SECONDS", 300, 1, 86400)) * time.Second,

		SignupLimitIP:     e.integer("SIGNUP_RATE_LIMIT_IP_REQUESTS", 50, 0, 1<<30),
		SignupLimitWindow: time.Duration(e.integer("SIGNUP_RATE_LIMIT_WINDOW_SECONDS", 600, 1, 86400)) * time.Second,

		// 0: GOMAXPROCS-1 slots (at least 1), and a queue of 16 per slot.
		HashConcurrency: e.integer("PASSWORD_HASH_CONCURRENCY", 0, 0, 1024),
		HashQueue:       e.integer("PASSWORD_HASH_QUEUE", 0, 0, 1<<20),
		HashWait:        e.duration("PASSWORD_HASH_WAIT", time.Second),

		ReadHeaderTimeout: e.duration("HTTP_READ_HEADER_TIMEOUT", 5*time.Second),
		ReadTimeout:       e.duration("HTTP_READ_TIMEOUT", 30*time.Second),
		WriteTimeout:      e.duration("HTTP_WRITE_TIMEOUT", 30*time.Second),
		IdleTimeout:       e.duration("HTTP_IDLE_TIMEOUT", 120*time.Second),
		ShutdownTimeout:   e.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		ShutdownDelay:     e.duration("SHUTDOWN_DELAY", 0),
		StartupTimeout:    e.duration("STARTUP_TIMEOUT", 30*time.Second),
	}
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
