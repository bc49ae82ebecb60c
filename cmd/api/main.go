package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/postgres"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bulwark:", err)
		os.Exit(1)
	}
}

// run is the whole process: it returns when ctx is cancelled (a signal) and
// everything has been shut down, or on a start-up error.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stdout, cfg)
	logger.Info("starting", "version", version, "telemetry_mode", cfg.TelemetryMode)

	proxies, err := middleware.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("config: TRUSTED_PROXIES: %w", err)
	}

	secret := []byte(cfg.JWTSecret)
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		logger.Warn("JWT_SECRET is not set: using a random secret for this process; tokens will not survive a restart or work across instances")
	}

	var users service.UserStore
	checks := []service.Check{{Name: "db"}, {Name: "redis"}}
	if cfg.DatabaseURL == "" {
		logger.Warn("DATABASE_URL is not set: users are kept IN MEMORY and are lost when the process stops")
		users = memory.NewUsers()
	} else {
		store, err := openPostgres(ctx, cfg, logger)
		if err != nil {
			return err
		}
		defer store.Close()
		users = store
		checks[0].Func = store.Ping
	}

	srv := service.NewServer(service.Config{
		MaxBodyBytes:   cfg.MaxBodyBytes,
		TrustedProxies: proxies,
	}, service.Deps{
		Logger: logger,
		Users:  users,
		Tokens: service.NewTokens(secret, cfg.AccessTokenExpire),
		Hasher: service.DefaultArgon2id(),
		Checks: checks,
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
	logger.Info("listening", "addr", ln.Addr().String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}

	// Shutdown: readiness first, then stop accepting and let in-flight
	// requests finish, then flush and close what they used.
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	srv.Drain()
	time.Sleep(cfg.ShutdownDelay)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		_ = httpSrv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within SHUTDOWN_TIMEOUT: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// openPostgres opens the pool and applies the migrations, retrying while the
// database is not up yet for at most STARTUP_TIMEOUT.
func openPostgres(ctx context.Context, cfg config, logger *slog.Logger) (*postgres.Store, error) {
	store, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{})
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
		if !errors.Is(err, service.ErrUnavailable) || ctx.Err() != nil {
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
