package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bulwark-go/bulwark/cmd/internal/debugserver"
	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/bulwark-go/bulwark/storage/redis"
	"github.com/bulwark-go/bulwark/telemetry"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	checkOnly := flag.Bool("check-config", false, "validate the environment's configuration, print it is ok, and exit (0 ok, 1 not)")
	flag.Parse()
	if *checkOnly {
		if err := checkConfig(os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, "bulwark:", err)
			os.Exit(1)
		}
		fmt.Println("bulwark: configuration ok")
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bulwark:", err)
		os.Exit(1)
	}
}

// checkConfig runs every check start-up makes on the environment alone
// (no connection is opened): what -check-config reports, e.g. for a compose
// file or a deployment manifest before it ships.
func checkConfig(getenv func(string) string) error {
	_, err := loadConfig(getenv)
	return err
}

// run is the whole process: it returns when ctx is cancelled (a signal) and
// everything has been shut down, or on a start-up error.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	// Everything written to stdout (logs, and stdoutmetric in otel mode
	// without OTLP) goes through one buffer, flushed on exit.
	logBuf := newLogBuffer(stdout, logFlushEvery)
	defer logBuf.Close()
	stdout = logBuf
	logger := slog.New(flushOnWarn{newLogger(stdout, cfg, nil).Handler(), logBuf})
	logger.Info("starting", "version", version, "telemetry_mode", cfg.Telemetry.Mode)

	tcfg := cfg.Telemetry
	tcfg.ServiceVersion = version
	tcfg.Stdout = stdout
	tcfg.RequestID = middleware.RequestIDFromContext
	tel, err := telemetry.Setup(ctx, tcfg, logger)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	if tel.LogHandler != nil {
		// From here on every record also goes over OTLP (stdout unchanged).
		logger = slog.New(flushOnWarn{newLogger(stdout, cfg, tel.LogHandler).Handler(), logBuf})
	}
	// Exporter and go-redis errors go to the log, at most one line per 10s
	// each, however often they happen.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(throttledLog(logger, "telemetry export failed")))
	goredis.SetLogger(redisLogger{throttledLog(logger, "redis client")})
	// Nil unless otel mode: then otelhttp, otelpgx and redisotel are not
	// installed at all, rather than installed and recording into no-ops.
	var tp trace.TracerProvider
	var mp metric.MeterProvider
	if tel.Mode == telemetry.ModeOTel {
		tp, mp = tel.TracerProvider, tel.MeterProvider
	}

	secret := []byte(cfg.JWTSecret)
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		logger.Warn("JWT_SECRET is not set: using a random secret for this process; tokens will not survive a restart or work across instances")
	}

	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer closeAll()

	var users user.Store
	checks := []service.Check{{Name: "db"}, {Name: "redis"}}
	if cfg.DatabaseURL == "" {
		logger.Warn("DATABASE_URL is not set: users are kept IN MEMORY and are lost when the process stops")
		users = memory.NewUsers()
	} else {
		store, err := openPostgres(ctx, cfg, logger, postgres.Options{TracerProvider: tp, MeterProvider: mp})
		if err != nil {
			return err
		}
		closers = append(closers, store.Close)
		users = store
		checks[0].Func = store.Ping
	}

	// Stores of the limiters and the cache. The credential limiters
	// (login, sign-up) always run, whatever RATE_LIMIT_ENABLED says. With
	// Redis, an in-process store decides for every limiter while Redis
	// fails; without it, the in-process store is the only one. Both are
	// bounded by RATE_LIMIT_MEMORY_MAX_KEYS.
	var rateStore middleware.RateStore
	var cache service.Cache
	var credStore, fallback service.CredentialRateStore
	local := memory.NewBoundedRateStore(nil, cfg.RateLimitMemoryMaxKeys)
	if cfg.RedisURL != "" {
		rc, err := redis.New(ctx, cfg.RedisURL, redis.Options{
			OpTimeout:      cfg.RateLimitTimeout,
			TracerProvider: tp,
			MeterProvider:  mp,
		})
		if err != nil {
			return fmt.Errorf("config: REDIS_URL: %w", err)
		}
		closers = append(closers, func() { _ = rc.Close() })
		checks[1].Func = rc.Ping
		if cfg.RateLimitEnabled {
			rateStore = rc.RateStore()
		}
		if cfg.CacheEnabled {
			cache = rc.Cache()
		}
		credStore, fallback = rc.RateStore(), local
	} else {
		if cfg.RateLimitEnabled || cfg.CacheEnabled {
			logger.Warn("REDIS_URL is not set: rate limiting and cache live in process memory; limits are per instance")
		}
		if cfg.RateLimitEnabled {
			rateStore = local
		}
		if cfg.CacheEnabled {
			cache = memory.NewCache(nil)
		}
		credStore = local
	}
	loginLimit := service.LoginLimitConfig{Window: cfg.LoginLimitWindow, Timeout: cfg.RateLimitTimeout}
	if cfg.LoginLimitEnabled {
		loginLimit.PerAccount, loginLimit.PerIP, loginLimit.AttemptsPerIP = cfg.LoginLimitAccount, cfg.LoginLimitIP, cfg.LoginLimitAttempts
	}

	srv := service.NewServer(service.Config{
		MaxBodyBytes:   cfg.MaxBodyBytes,
		TrustedProxies: cfg.TrustedProxies,
		RateLimit: service.RateLimitConfig{
			Requests: cfg.RateLimitRequests,
			Window:   cfg.RateLimitWindow,
			Timeout:  cfg.RateLimitTimeout,
		},
		CacheTTL:     cfg.CacheDefaultTTL,
		CacheTimeout: cfg.RateLimitTimeout,
		LoginLimit:   loginLimit,
		SignupLimit: service.SignupLimitConfig{
			PerIP:   cfg.SignupLimitIP,
			Window:  cfg.SignupLimitWindow,
			Timeout: cfg.RateLimitTimeout,
		},
		IPv6Prefix: cfg.RateLimitIPv6Prefix,
		HashGate: service.HashGateConfig{
			Slots: cfg.HashConcurrency,
			Queue: cfg.HashQueue,
			Wait:  cfg.HashWait,
		},
		CORS:           cfg.CORS,
		SemConvMetrics: tel.SemConv,
	}, service.Deps{
		Logger:              logger,
		Users:               users,
		Tokens:              service.NewTokens(secret, cfg.AccessTokenExpire),
		Hasher:              service.DefaultArgon2id(),
		Checks:              checks,
		Telemetry:           tel.Telemetry,
		TracerProvider:      tp,
		Propagator:          tel.Propagator,
		RateStore:           rateStore,
		Cache:               cache,
		CredentialRateStore: credStore,
		FallbackRateStore:   fallback,
	})

	if cfg.FirstSuperEmail != "" {
		seedCtx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
		err := srv.EnsureSuperuser(seedCtx, cfg.FirstSuperEmail, cfg.FirstSuperPassword)
		cancel()
		if err != nil {
			return fmt.Errorf("first superuser: %w", err)
		}
	}

	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	logger.Info("listening", "addr", ln.Addr().String(),
		"rate_limit", rateStore != nil, "login_limit", cfg.LoginLimitEnabled, "signup_limit", cfg.SignupLimitIP > 0, "cache", cache != nil, "database", cfg.DatabaseURL != "", "redis", cfg.RedisURL != "",
		"cors_origins", strings.Join(cfg.CORSOrigins, ","))

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	if cfg.DebugAddr != "" {
		stopDebug, err := startDebug(cfg, logger)
		if err != nil {
			_ = httpSrv.Close()
			_ = tel.Shutdown(context.Background())
			return err
		}
		defer stopDebug()
	}

	select {
	case err := <-serveErr:
		_ = tel.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}

	// Shutdown: readiness first, then stop accepting and let in-flight
	// requests finish, then flush telemetry, then close the pools they used.
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	srv.Drain()
	time.Sleep(cfg.ShutdownDelay)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	shutdownErr := httpSrv.Shutdown(shutdownCtx)
	if shutdownErr != nil {
		_ = httpSrv.Close()
	}
	if err := tel.Shutdown(shutdownCtx); err != nil {
		logger.Error("telemetry flush failed", "error", err.Error())
	}
	closeAll()
	closers = nil
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: in-flight requests did not finish within SHUTDOWN_TIMEOUT: %w", shutdownErr)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// startDebug serves the debug listener (DEBUG_ADDR) on its own server and
// mux; the returned func closes it at once (profiles in progress are cut:
// nothing there is worth delaying shutdown for).
func startDebug(cfg config, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", cfg.DebugAddr)
	if err != nil {
		return nil, fmt.Errorf("config: DEBUG_ADDR: %w", err)
	}
	srv := debugserver.New(debugserver.Handler(debugserver.Info{Version: version, Config: cfg.Effective}),
		slog.NewLogLogger(logger.Handler(), slog.LevelWarn))
	go func() { _ = srv.Serve(ln) }()
	addr := ln.Addr().(*net.TCPAddr)
	logger.Info("debug listener", "addr", addr.String(), "paths", []string{debugserver.PathPprof, debugserver.PathBuildInfo, debugserver.PathConfig})
	if !addr.IP.IsLoopback() {
		logger.Warn("DEBUG_ADDR is not a loopback address: profiles and the configuration are reachable from the network", "addr", addr.String())
	}
	return func() { _ = srv.Close() }, nil
}

// openPostgres opens the pool and applies the migrations, retrying while the
// database is not up yet for at most STARTUP_TIMEOUT.
func openPostgres(ctx context.Context, cfg config, logger *slog.Logger, opts postgres.Options) (*postgres.Store, error) {
	store, err := postgres.Open(ctx, cfg.DatabaseURL, opts)
	if err != nil {
		return nil, fmt.Errorf("config: DATABASE_URL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartupTimeout)
	defer cancel()
	for {
		err = store.Migrate(ctx)
		if err == nil {
			return store, nil
		}
		if !errors.Is(err, user.ErrUnavailable) || ctx.Err() != nil {
			store.Close()
			return nil, fmt.Errorf("database migrations: %w", err)
		}
		logger.Warn("database not reachable yet, retrying", "error", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
