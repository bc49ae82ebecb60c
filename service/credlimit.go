package service

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/middleware"
	"github.com/bulwark-go/bulwark/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// CredentialRateStore is what the credential limiters need from a rate
// store: Hit (as middleware.RateStore) and atomic reservations. Reserve
// counts an attempt only while the key's fixed window holds fewer than
// limit, in one step; Release gives one back. storage/memory's and
// storage/redis' RateStore implement it (storagetest.RunReserveSuite).
type CredentialRateStore interface {
	middleware.RateStore
	Reserve(ctx context.Context, key string, limit int64, window time.Duration) (ok bool, count int64, ttl time.Duration, err error)
	Release(ctx context.Context, key string) error
}

// LoginLimitConfig bounds password guessing: POST /auth/login and the
// current_password check of a PATCH of oneself. It applies when
// Deps.CredentialRateStore is set, whatever RATE_LIMIT_ENABLED says.
type LoginLimitConfig struct {
	// PerAccount is the number of failed attempts allowed per account (the
	// normalized email) per Window; PerIP the number allowed per client
	// identity (ClientIdentity: an IPv6 client's /64). AttemptsPerIP bounds
	// every attempt of a client identity, failed or not, per Window. Zero or
	// less turns that limit off.
	PerAccount    int
	PerIP         int
	AttemptsPerIP int
	Window        time.Duration
	// Timeout bounds each store call; past it the fallback store decides.
	// Default 50ms.
	Timeout time.Duration
}

// SignupLimitConfig bounds sign-ups per client identity: PerIP per Window
// (zero or less: off). It applies when Deps.CredentialRateStore is set,
// whatever RATE_LIMIT_ENABLED says.
type SignupLimitConfig struct {
	PerIP   int
	Window  time.Duration
	Timeout time.Duration
}

// Key prefixes of the credential limiters in the rate store.
const (
	loginKeyIP       = "ratelimit:login:ip:"
	loginKeyAccount  = "ratelimit:login:account:"
	loginKeyAttempts = "ratelimit:login:attempt:ip:"
	signupKeyIP      = "ratelimit:signup:ip:"
)

// credLimiter makes reservations against a shared store (Redis), falling
// back to an in-process store for the same window when the shared one fails
// and failing open only when both do; every decision is counted
// (ratelimit_decisions_total{limiter,decision}) and recorded on a
// ratelimit.check span.
type credLimiter struct {
	name            string // "login" | "signup"
	store, fallback CredentialRateStore
	timeout         time.Duration
	tel             telemetry.Telemetry
	tracer          trace.Tracer
	tags            map[string][]telemetry.Tag // by decision
	warn, degraded  *telemetry.WarnThrottle
}

func newCredLimiter(name string, store, fallback CredentialRateStore, timeout time.Duration,
	tel telemetry.Telemetry, tracer trace.Tracer, logger *slog.Logger) *credLimiter {
	if timeout <= 0 {
		timeout = 50 * time.Millisecond
	}
	c := &credLimiter{name: name, store: store, fallback: fallback, timeout: timeout, tel: tel, tracer: tracer,
		tags: map[string][]telemetry.Tag{},
		warn: telemetry.NewWarnThrottle(logger, name+" limiter unavailable: attempt allowed (fail-open)", 10*time.Second, nil),
		degraded: telemetry.NewWarnThrottle(logger, name+" limiter store unavailable: in-process fallback decides",
			10*time.Second, nil)}
	for _, d := range []string{middleware.DecisionAllowed, middleware.DecisionLimited, middleware.DecisionFallback, middleware.DecisionFailOpen} {
		c.tags[d] = []telemetry.Tag{{Key: "decision", Value: d}, {Key: "limiter", Value: name}}
	}
	return c
}

// reservation is one attempt counted against a key, in the store that
// counted it; the zero value holds nothing.
type reservation struct {
	store CredentialRateStore
	key   string
}

type reserveResult struct {
	ok  bool
	ttl time.Duration
}

// refusal says which limit refused an attempt, and for how long.
type refusal struct {
	limit int
	wait  time.Duration
}

// reserve counts one attempt against key unless its window already holds
// limit of them. It returns the reservation (to give back with release),
// or ok=false and the refusal. When no store can answer the attempt is
// allowed and nothing is reserved.
func (c *credLimiter) reserve(ctx context.Context, key string, limit int, window time.Duration) (reservation, bool, refusal) {
	ctx, span := c.tracer.Start(ctx, middleware.SpanRateLimitCheck,
		trace.WithAttributes(attribute.String("ratelimit.limiter", c.name)))
	defer span.End()
	reserveIn := func(s CredentialRateStore) func(context.Context) (reserveResult, error) {
		if s == nil {
			return nil
		}
		return func(ctx context.Context) (reserveResult, error) {
			ok, _, ttl, err := s.Reserve(ctx, key, int64(limit), window)
			return reserveResult{ok, ttl}, err
		}
	}
	res, src, err := middleware.WithFallback(ctx, c.timeout, reserveIn(c.store), reserveIn(c.fallback))
	decision := middleware.DecisionAllowed
	var held reservation
	switch src {
	case middleware.SourceCanceled:
		return reservation{}, true, refusal{} // the client is gone; the handler ends as 499
	case middleware.SourceNone:
		decision = middleware.DecisionFailOpen
		span.SetStatus(codes.Error, "limiter store and fallback failed; attempt let through")
		span.RecordError(err)
		c.warn.Warn(ctx, err)
		res.ok = true
	case middleware.SourceFallback:
		decision = middleware.DecisionFallback
		span.SetStatus(codes.Error, "limiter store failed; in-process fallback decided")
		span.RecordError(err)
		c.degraded.Warn(ctx, err)
		held = reservation{c.fallback, key}
	default:
		held = reservation{c.store, key}
		if !res.ok {
			decision = middleware.DecisionLimited
		}
	}
	span.SetAttributes(attribute.String("ratelimit.decision", decision), attribute.Bool("ratelimit.limited", !res.ok))
	c.tel.Counter(ctx, middleware.MetricRateLimitDecisions, 1, c.tags[decision]...)
	if !res.ok {
		wait := res.ttl
		if wait <= 0 || wait > window {
			wait = window
		}
		return reservation{}, false, refusal{limit: limit, wait: wait}
	}
	return held, true, refusal{}
}

// release gives back the reservations held (a success, or an attempt that
// evaluated no password), each in the store that counted it. It runs on a
// context detached from the client's, so a hang-up does not keep a
// reservation.
func (c *credLimiter) release(ctx context.Context, held ...reservation) {
	for _, r := range held {
		if r.store == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		err := r.store.Release(rctx, r.key)
		cancel()
		if err != nil {
			c.warn.Warn(ctx, err)
		}
	}
}

// loginLimiter bounds password guessing per account and per client
// identity, counting FAILED attempts, and bounds every attempt per client
// identity. Each attempt is reserved before any hashing, so N concurrent
// wrong guesses against a limit of L let exactly L reach the hash, and
// given back when the password was right (or never checked): an attacker
// who does not know the password cannot keep the owner out for longer than
// the failures they spend (see docs/RELIABILITY.md).
type loginLimiter struct {
	*credLimiter
	cfg LoginLimitConfig
}

// admit reserves one attempt of a client identity on an account ("" when
// the login names no valid email). On refusal it returns ok=false and the
// refusal; otherwise the failure reservations, to give back (release) on
// success or when no password was checked, and to keep on failure.
func (l *loginLimiter) admit(ctx context.Context, identity, account string) (held []reservation, ok bool, ref refusal) {
	if l.cfg.AttemptsPerIP > 0 && identity != "" {
		// Every attempt counts here; never given back.
		if _, ok, ref := l.reserve(ctx, loginKeyAttempts+identity, l.cfg.AttemptsPerIP, l.cfg.Window); !ok {
			return nil, false, ref
		}
	}
	if l.cfg.PerIP > 0 && identity != "" {
		r, ok, ref := l.reserve(ctx, loginKeyIP+identity, l.cfg.PerIP, l.cfg.Window)
		if !ok {
			return nil, false, ref
		}
		held = append(held, r)
	}
	if l.cfg.PerAccount > 0 && account != "" {
		r, ok, ref := l.reserve(ctx, loginKeyAccount+account, l.cfg.PerAccount, l.cfg.Window)
		if !ok {
			l.release(ctx, held...) // the account refused: the IP's reservation goes back
			return nil, false, ref
		}
		held = append(held, r)
	}
	return held, true, refusal{}
}

// signupLimiter bounds sign-ups per client identity.
type signupLimiter struct {
	*credLimiter
	cfg SignupLimitConfig
}

// admit reserves one sign-up of a client identity; the reservation is given
// back when no account was created for want of a hashing slot.
func (l *signupLimiter) admit(ctx context.Context, identity string) (reservation, bool, refusal) {
	if l.cfg.PerIP <= 0 || identity == "" {
		return reservation{}, true, refusal{}
	}
	return l.reserve(ctx, signupKeyIP+identity, l.cfg.PerIP, l.cfg.Window)
}

// clientIdentity is the request's client as every limiter keys it.
func (s *Server) clientIdentity(r *http.Request) string {
	return middleware.ClientIdentity(middleware.ClientIPFromContext(r.Context()), s.cfg.IPv6Prefix)
}

// tooManyAttempts is the 429 of the credential limiters: rate_limited with
// Retry-After. Under /api/v1 (sign-up, PATCH) it also carries the
// X-RateLimit-* headers of the limit that refused, as every 429 there does;
// login's carries none (docs/openapi.yaml).
func (s *Server) tooManyAttempts(message string, ref refusal, rateHeaders bool) error {
	e := &Error{Status: http.StatusTooManyRequests, Message: message, RetryAfter: ref.wait}
	if rateHeaders {
		e.Header = http.Header{}
		middleware.SetRateLimitHeaders(e.Header, strconv.Itoa(ref.limit), 0, s.now(), ref.wait)
	}
	return e
}
