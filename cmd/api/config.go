package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/bulwark-go/bulwark/storage/redis"
	"github.com/bulwark-go/bulwark/telemetry"
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

	// Telemetry is TELEMETRY_* parsed and the OTEL_* variables validated
	// by telemetry.ConfigFromEnv (its Getenv reads them at Setup).
	Telemetry telemetry.Config

	// DebugAddr is where the debug listener (pprof, build info, effective
	// configuration) listens; empty: no debug listener.
	DebugAddr string

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

	// Effective is every variable read, with the value in effect (defaults
	// applied), secrets redacted: what the debug listener shows.
	Effective map[string]string
}

// redacted stands in for a secret's value in Effective.
const redacted = "[redacted]"

// envReader parses variables one by one, keeps the first error and notes
// the value in effect of each variable it reads.
type envReader struct {
	getenv    func(string) string
	err       error
	effective map[string]string
}

// note records the value in effect of name (already redacted if secret).
func (e *envReader) note(name, value string) {
	if e.effective == nil {
		e.effective = map[string]string{}
	}
	e.effective[name] = value
}

func (e *envReader) fail(name, value, why string) {
	if e.err == nil {
		e.err = fmt.Errorf("config: %s=%q: %s", name, value, why)
	}
}

func (e *envReader) str(name, def string) string {
	v := e.getenv(name)
	if v == "" {
		v = def
	}
	e.note(name, v)
	return v
}

// secret is str for a value that must never be shown: Effective says only
// whether it is set.
func (e *envReader) secret(name string) string {
	v := e.getenv(name)
	if v != "" {
		e.note(name, redacted)
	} else {
		e.note(name, "")
	}
	return v
}

func (e *envReader) integer(name string, def, lo, hi int) int {
	n := def
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < lo || i > hi {
			e.fail(name, v, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		} else {
			n = i
		}
	}
	e.note(name, strconv.Itoa(n))
	return n
}

// seconds reads a whole number of seconds from 1 to max.
func (e *envReader) seconds(name string, def int, max time.Duration) time.Duration {
	return time.Duration(e.integer(name, def, 1, int(max/time.Second))) * time.Second
}

func (e *envReader) boolean(name string, def bool) bool {
	b := def
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			b = true
		case "0", "false", "no", "off":
			b = false
		default:
			e.fail(name, v, "must be true or false")
		}
	}
	e.note(name, strconv.FormatBool(b))
	return b
}

// duration accepts a Go duration ("15s", "250ms") or a plain number of
// seconds ("15").
func (e *envReader) duration(name string, def time.Duration) time.Duration {
	d := def
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 && n < 1e6 {
			d = time.Duration(n * float64(time.Second))
		} else if p, err := time.ParseDuration(v); err == nil && p >= 0 {
			d = p
		} else {
			e.fail(name, v, `must be a duration like "15s" or a number of seconds`)
		}
	}
	e.note(name, d.String())
	return d
}

func (e *envReader) oneOf(name, def string, allowed ...string) string {
	out := def
	if v := strings.ToLower(strings.TrimSpace(e.getenv(name))); v != "" {
		found := false
		for _, a := range allowed {
			found = found || v == a
		}
		if found {
			out = v
		} else {
			e.fail(name, v, "must be one of "+strings.Join(allowed, ", "))
		}
	}
	e.note(name, out)
	return out
}

// url reads a URL whose password, if any, is a secret: errors and
// Effective show it redacted.
func (e *envReader) url(name string, schemes ...string) string {
	v := strings.TrimSpace(e.getenv(name))
	e.note(name, redactURL(v))
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

// hostPort reads a listen address (host:port, host may be empty).
func (e *envReader) hostPort(name string) string {
	v := strings.TrimSpace(e.getenv(name))
	e.note(name, v)
	if v == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		e.fail(name, v, `must be host:port, e.g. "127.0.0.1:6060"`)
		return ""
	}
	return v
}

func (e *envReader) proxies(name string) *middleware.TrustedProxies {
	v := e.getenv(name)
	e.note(name, v)
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
	e.note(name, strings.Join(out, ","))
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

// telemetry parses TELEMETRY_* and validates the OTEL_* variables in
// telemetry.ConfigFromEnv, the same function telemetry.Setup runs at
// start-up, so -check-config cannot accept what start-up refuses.
func (e *envReader) telemetry() telemetry.Config {
	cfg, err := telemetry.ConfigFromEnv(e.getenv)
	for _, k := range telemetry.EnvVars() {
		e.note(k, redactURL(strings.TrimSpace(e.getenv(k))))
	}
	if err != nil {
		if e.err == nil {
			e.err = fmt.Errorf("config: %w", err)
		}
		return telemetry.Config{Mode: telemetry.ModeNoop}
	}
	e.note(telemetry.EnvMode, cfg.Mode)
	e.note(telemetry.EnvSampleRate, strconv.FormatFloat(cfg.SampleRate, 'g', -1, 64))
	e.note(telemetry.EnvSemConv, strconv.FormatBool(cfg.SemConv))
	return cfg
}

// redactURL hides a password in a URL before it is printed; a value that
// is not a URL with user information is returned as it is.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return "<unparseable>"
	}
	if u.User == nil {
		return v
	}
	return u.Redacted()
}

func loadConfig(getenv func(string) string) (config, error) {
	e := &envReader{getenv: getenv}
	c := config{
		Port:               e.integer("PORT", 8000, 0, 65535),
		DatabaseURL:        e.url("DATABASE_URL", "postgres", "postgresql"),
		RedisURL:           e.url("REDIS_URL", "redis", "rediss", "unix"),
		JWTSecret:          e.secret("JWT_SECRET"),
		AccessTokenExpire:  time.Duration(e.integer("ACCESS_TOKEN_EXPIRE_MINUTES", 60, 1, 60*24*365)) * time.Minute,
		FirstSuperEmail:    e.str("FIRST_SUPERUSER_EMAIL", ""),
		FirstSuperPassword: e.secret("FIRST_SUPERUSER_PASSWORD"),
		MaxBodyBytes:       int64(e.integer("MAX_BODY_BYTES", service.DefaultMaxBodyBytes, 1, 1<<30)),
		TrustedProxies:     e.proxies("TRUSTED_PROXIES"),
		LogJSON:            e.boolean("LOG_JSON", false),

		Telemetry: e.telemetry(),
		DebugAddr: e.hostPort("DEBUG_ADDR"),

		RateLimitEnabled:  e.boolean("RATE_LIMIT_ENABLED", false),
		RateLimitRequests: e.integer("RATE_LIMIT_REQUESTS", 100, 1, middleware.MaxRateLimit),
		RateLimitWindow:   e.seconds("RATE_LIMIT_WINDOW_SECONDS", 60, middleware.MaxRateLimitWindow),
		RateLimitTimeout:  e.duration("RATE_LIMIT_TIMEOUT", 50*time.Millisecond),
		// /64: what one subscriber, VM or LAN is given; 128 keys each address.
		RateLimitIPv6Prefix:    e.integer("RATE_LIMIT_IPV6_PREFIX", 64, 16, 128),
		RateLimitMemoryMaxKeys: e.integer("RATE_LIMIT_MEMORY_MAX_KEYS", 100_000, 1000, 1<<26),

		CacheEnabled:    e.boolean("CACHE_ENABLED", false),
		CacheDefaultTTL: e.seconds("CACHE_DEFAULT_TTL_SECONDS", 60, 24*time.Hour),

		LoginLimitEnabled:  e.boolean("LOGIN_RATE_LIMIT_ENABLED", true),
		LoginLimitAccount:  e.integer("LOGIN_RATE_LIMIT_REQUESTS", 10, 1, middleware.MaxRateLimit),
		LoginLimitIP:       e.integer("LOGIN_RATE_LIMIT_IP_REQUESTS", 50, 1, middleware.MaxRateLimit),
		LoginLimitAttempts: e.integer("LOGIN_RATE_LIMIT_IP_ATTEMPTS", 300, 0, middleware.MaxRateLimit),
		LoginLimitWindow:   e.seconds("LOGIN_RATE_LIMIT_WINDOW_SECONDS", 300, middleware.MaxRateLimitWindow),

		SignupLimitIP:     e.integer("SIGNUP_RATE_LIMIT_IP_REQUESTS", 50, 0, middleware.MaxRateLimit),
		SignupLimitWindow: e.seconds("SIGNUP_RATE_LIMIT_WINDOW_SECONDS", 600, middleware.MaxRateLimitWindow),

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
	// What the storage constructors and the superuser seed would refuse at
	// start-up, checked here without connecting, so that -check-config
	// (which runs only loadConfig) refuses it too.
	if e.err == nil && c.DatabaseURL != "" {
		if err := postgres.CheckURL(c.DatabaseURL); err != nil {
			e.fail("DATABASE_URL", redactURL(c.DatabaseURL), err.Error())
		}
	}
	if e.err == nil && c.RedisURL != "" {
		if err := redis.CheckURL(c.RedisURL); err != nil {
			e.fail("REDIS_URL", redactURL(c.RedisURL), err.Error())
		}
	}
	if e.err == nil && c.FirstSuperEmail != "" {
		if err := service.CheckSuperuser(c.FirstSuperEmail, c.FirstSuperPassword); err != nil {
			e.err = fmt.Errorf("config: %w", err)
		}
	}
	c.Effective = e.effective
	return c, e.err
}
