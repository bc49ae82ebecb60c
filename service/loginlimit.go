package service

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/telemetry"
)

// LoginRateStore is what the login limiter needs from a rate store: Hit (as
// middleware.RateStore) and Peek, which reads a window's count and time left
// without counting. storage/memory's and storage/redis' RateStore have both.
type LoginRateStore interface {
	middleware.RateStore
	Peek(ctx context.Context, key string) (count int64, ttl time.Duration, err error)
}

// LoginLimitConfig bounds password guessing on POST /auth/login. It applies
// when Deps.LoginRateStore is set, whatever RATE_LIMIT_ENABLED says.
type LoginLimitConfig struct {
	// PerAccount is the number of failed logins allowed per account (the
	// normalized email) per Window; PerIP the number allowed per client IP.
	// Zero or less turns that limit off.
	PerAccount int
	PerIP      int
	Window     time.Duration
	// Timeout bounds each store call; past it the attempt proceeds
	// unlimited (fail-open). Default 50ms.
	Timeout time.Duration
}

// Key prefixes of the login limiter in the rate store.
const (
	loginKeyIP      = "ratelimit:login:ip:"
	loginKeyAccount = "ratelimit:login:account:"
)

// loginLimiter counts FAILED logins per client IP and per account in fixed
// windows. An attempt is refused with 429 before any password hashing when
// either count has reached its limit; successful logins count nothing, so
// an attacker who does not know the password cannot keep the owner out for
// longer than the failures they spend (see docs/RELIABILITY.md). Store
// errors and timeouts let the attempt through (fail-open), logged at most
// every 10 seconds.
type loginLimiter struct {
	store LoginRateStore
	cfg   LoginLimitConfig
	warn  *telemetry.WarnThrottle
}

func newLoginLimiter(store LoginRateStore, cfg LoginLimitConfig, logger *slog.Logger) *loginLimiter {
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	return &loginLimiter{store: store, cfg: cfg,
		warn: telemetry.NewWarnThrottle(logger, "login limiter unavailable: attempt allowed (fail-open)", 10*time.Second, nil)}
}

// keys returns the store keys for an attempt with their limits; an account
// key only for a username that is a valid email (others find no user).
func (l *loginLimiter) keys(ip, account string) (keys []string, limits []int) {
	if l.cfg.PerIP > 0 && ip != "" {
		keys, limits = append(keys, loginKeyIP+ip), append(limits, l.cfg.PerIP)
	}
	if l.cfg.PerAccount > 0 && account != "" {
		keys, limits = append(keys, loginKeyAccount+account), append(limits, l.cfg.PerAccount)
	}
	return keys, limits
}

// allow reports whether an attempt may proceed; when it may not, it returns
// how long until the blocking window ends.
func (l *loginLimiter) allow(ctx context.Context, ip, account string) (bool, time.Duration) {
	keys, limits := l.keys(ip, account)
	for i, key := range keys {
		callCtx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
		n, ttl, err := l.store.Peek(callCtx, key)
		cancel()
		if err != nil {
			l.warn.Warn(ctx, err)
			continue
		}
		if n >= int64(limits[i]) {
			if ttl <= 0 || ttl > l.cfg.Window {
				ttl = l.cfg.Window
			}
			return false, ttl
		}
	}
	return true, 0
}

// failed counts one failed attempt against the IP and the account.
func (l *loginLimiter) failed(ctx context.Context, ip, account string) {
	keys, _ := l.keys(ip, account)
	for _, key := range keys {
		callCtx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
		_, _, err := l.store.Hit(callCtx, key, l.cfg.Window)
		cancel()
		if err != nil {
			l.warn.Warn(ctx, err)
		}
	}
}

// refuseLogin answers 429 rate_limited with Retry-After.
func (s *Server) refuseLogin(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := int64((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	s.respondError(w, r, &Error{Status: http.StatusTooManyRequests, Message: "Too many failed login attempts, retry later"})
}
