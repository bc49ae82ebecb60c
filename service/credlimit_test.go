package service_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/redis/redistest"
	"github.com/bulwark-go/bulwark/storage/storagetest"
)

type loginEnv struct {
	t    *testing.T
	srv  *service.Server
	logs *syncBuffer
	tel  *countTel
	sp   *spec
}

type loginSetup struct {
	cfg      service.Config
	store    service.CredentialRateStore
	fallback service.CredentialRateStore
}

// newLoginEnv is a server with the credential limiters on store (and
// fallback), memory users alice and bob (password "rightpassword"), and
// metrics counted.
func newLoginEnv(t *testing.T, ls loginSetup) *loginEnv {
	t.Helper()
	logs := &syncBuffer{}
	tel := newCountTel()
	srv := service.NewServer(ls.cfg, service.Deps{
		Logger:              slog.New(slog.NewJSONHandler(logs, nil)),
		Users:               memory.NewUsers(),
		Tokens:              service.NewTokens(testSecret, time.Hour),
		Hasher:              service.NewArgon2id(64, 1, 1),
		Telemetry:           tel,
		CredentialRateStore: ls.store,
		FallbackRateStore:   ls.fallback,
	})
	e := &loginEnv{t: t, srv: srv, logs: logs, tel: tel, sp: newSpec(t)}
	for i, email := range []string{"alice@example.com", "bob@example.com"} {
		// From addresses of their own, so the sign-up limit is not spent.
		rec := e.signup(fmt.Sprintf("192.0.2.%d", 200+i), email, "rightpassword")
		if rec.Code != 201 {
			t.Fatalf("sign-up: %d %s", rec.Code, rec.Body)
		}
	}
	return e
}

func (e *loginEnv) serve(ip, method, path, ctype, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", ctype)
	r.RemoteAddr = remoteOf(ip)
	return e.sp.serve(e.t, e.srv, r)
}

// remoteOf is the RemoteAddr of a socket peer at ip (IPv4 or IPv6).
func remoteOf(ip string) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:40000"
	}
	return ip + ":40000"
}

// login tries a form login from ip and returns the recorder.
func (e *loginEnv) login(ip, email, password string) *httptest.ResponseRecorder {
	return e.serve(ip, "POST", "/auth/login", "application/x-www-form-urlencoded", "username="+email+"&password="+password)
}

func (e *loginEnv) signup(ip, email, password string) *httptest.ResponseRecorder {
	return e.serve(ip, "POST", "/api/v1/users", "application/json", `{"email":"`+email+`","password":"`+password+`"}`)
}

// want asserts the status; a 429 must be the envelope with Retry-After,
// and X-RateLimit-Remaining 0 when it carries the X-RateLimit-* headers
// (sign-up and PATCH do, login does not: TestCredential429Headers).
func (e *loginEnv) want(rec *httptest.ResponseRecorder, status int) {
	e.t.Helper()
	if rec.Code != status {
		e.t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if status != 429 {
		return
	}
	checkEnvelope(e.t, rec, 429, "rate_limited")
	if ra := rec.Header().Get("Retry-After"); ra == "" || ra == "0" {
		e.t.Fatalf("Retry-After %q", ra)
	}
	if rec.Header().Get("X-RateLimit-Limit") != "" {
		if _, rem, _ := rlHeaders(e.t, rec); rem != 0 {
			e.t.Fatalf("429 with X-RateLimit-Remaining %d", rem)
		}
	}
}

// The login 429 carries Retry-After only; the sign-up 429, under /api/v1
// like every 429 there, also the X-RateLimit-* headers of the limit that
// refused.
func TestCredential429Headers(t *testing.T) {
	e := newLoginEnv(t, loginSetup{store: memory.NewRateStore(nil), cfg: service.Config{
		LoginLimit:  service.LoginLimitConfig{PerAccount: 1, Window: time.Minute},
		SignupLimit: service.SignupLimitConfig{PerIP: 1, Window: 2 * time.Minute}}})
	e.want(e.login("192.0.2.30", "alice@example.com", "wrongpassword"), 401)
	rec := e.login("192.0.2.30", "alice@example.com", "wrongpassword")
	e.want(rec, 429)
	for _, h := range rlHeaderNames {
		if v := rec.Header().Get(h); v != "" {
			t.Fatalf("login 429 carries %s: %q", h, v)
		}
	}
	e.want(e.signup("192.0.2.31", "n1@example.com", "rightpassword"), 201)
	before := time.Now()
	rec = e.signup("192.0.2.31", "n2@example.com", "rightpassword")
	e.want(rec, 429)
	limit, _, reset := rlHeaders(t, rec)
	if limit != 1 || reset < before.Unix() || reset > time.Now().Add(2*time.Minute).Unix()+1 {
		t.Fatalf("sign-up 429: X-RateLimit-Limit %d (want 1), -Reset %d (want within the 2m window)", limit, reset)
	}
}

// concurrentLogins sends n logins from ip at once (a barrier releases
// them together), the i-th with password(i), and counts the statuses.
func (e *loginEnv) concurrentLogins(n int, ip, email string, password func(i int) string) map[int]int {
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			codes[i] = e.login(ip, email, password(i)).Code
		})
	}
	close(start)
	wg.Wait()
	got := map[int]int{}
	for _, c := range codes {
		got[c]++
	}
	return got
}

// verifies is the number of password verifications that ran.
func (e *loginEnv) verifies() float64 {
	return e.tel.get(service.MetricPasswordHashes, "op=verify,result=done")
}

func TestLoginLimitPerAccount(t *testing.T) {
	clock := storagetest.NewFakeClock(time.Unix(1_000_000, 0))
	e := newLoginEnv(t, loginSetup{store: memory.NewRateStore(clock.Now),
		cfg: service.Config{LoginLimit: service.LoginLimitConfig{PerAccount: 3, PerIP: 100, Window: time.Minute}}})
	for i := range 3 {
		// From a new IP each time: the account limit alone decides.
		e.want(e.login("198.51.100."+strconv.Itoa(i), "alice@example.com", "wrongpassword"), 401)
	}
	before := e.verifies()
	rec := e.login("198.51.100.50", "ALICE@example.com", "rightpassword")
	e.want(rec, 429) // locked: even the right password, in any case, from any IP
	if ra := rec.Header().Get("Retry-After"); ra != "60" {
		t.Fatalf("Retry-After %q, want 60", ra)
	}
	if e.verifies() != before {
		t.Fatal("a refused attempt reached the hash")
	}
	e.want(e.login("198.51.100.50", "bob@example.com", "rightpassword"), 200) // other accounts are not affected
	clock.Advance(time.Minute)
	e.want(e.login("198.51.100.50", "alice@example.com", "rightpassword"), 200) // the window passed
}

func TestLoginLimitPerIP(t *testing.T) {
	e := newLoginEnv(t, loginSetup{store: memory.NewRateStore(nil),
		cfg: service.Config{LoginLimit: service.LoginLimitConfig{PerAccount: 100, PerIP: 4, Window: time.Minute}}})
	// Password spraying from one address: failures on different (and
	// unknown) accounts add up.
	for i := range 4 {
		e.want(e.login("203.0.113.9", "user"+strconv.Itoa(i)+"@example.com", "guessguess"), 401)
	}
	e.want(e.login("203.0.113.9", "alice@example.com", "rightpassword"), 429)
	e.want(e.login("203.0.113.10", "alice@example.com", "rightpassword"), 200) // another address is not affected
}

func TestLoginLimitCountsOnlyFailures(t *testing.T) {
	e := newLoginEnv(t, loginSetup{store: memory.NewRateStore(nil),
		cfg: service.Config{LoginLimit: service.LoginLimitConfig{PerAccount: 2, PerIP: 2, Window: time.Minute}}})
	for range 10 {
		e.want(e.login("192.0.2.7", "alice@example.com", "rightpassword"), 200)
	}
	// Malformed attempts (422) hash nothing and count nothing either.
	for range 5 {
		e.want(e.login("192.0.2.7", "alice@example.com", ""), 422)
	}
	e.want(e.login("192.0.2.7", "alice@example.com", "wrongpassword"), 401)
	e.want(e.login("192.0.2.7", "alice@example.com", "rightpassword"), 200)
	// The success gave its reservation back: one failure is still allowed.
	e.want(e.login("192.0.2.7", "alice@example.com", "wrongpassword"), 401)
	e.want(e.login("192.0.2.7", "alice@example.com", "wrongpassword"), 429)
}

// AttemptsPerIP bounds every login attempt of a client, successful ones too:
// one client with the right password in a loop still gets 429s.
func TestLoginLimitAttemptsPerIP(t *testing.T) {
	e := newLoginEnv(t, loginSetup{store: memory.NewRateStore(nil),
		cfg: service.Config{LoginLimit: service.LoginLimitConfig{PerAccount: 100, PerIP: 100, AttemptsPerIP: 5, Window: time.Minute}}})
	for range 5 {
		e.want(e.login("192.0.2.9", "alice@example.com", "rightpassword"), 200)
	}
	before := e.verifies()
	e.want(e.login("192.0.2.9", "alice@example.com", "rightpassword"), 429)
	if e.verifies() != before {
		t.Fatal("a refused attempt reached the hash")
	}
	e.want(e.login("192.0.2.10", "alice@example.com", "rightpassword"), 200)
}

// N concurrent wrong guesses against an account limit of L: exactly L reach
// the hash and answer 401, the other N-L answer 429, on the memory store and
// on a real Redis. A barrier releases all N at once.
func TestLoginLimitExactUnderConcurrency(t *testing.T) {
	const n, limit = 40, 10
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.new(t)
			store := b.rate.(loggedRate).RateStore.(service.CredentialRateStore)
			// Generous timeouts and gate: this is about the count, not speed.
			e := newLoginEnv(t, loginSetup{store: loggedCred{store, b.keys},
				cfg: service.Config{
					LoginLimit: service.LoginLimitConfig{PerAccount: limit, PerIP: 1000, AttemptsPerIP: 1000,
						Window: time.Minute, Timeout: semanticTimeout},
					HashGate: service.HashGateConfig{Queue: n, Wait: time.Minute},
				}})
			// A fresh account per run, so the shared Redis holds no count of it.
			email := "victim-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.com"
			if rec := e.signup(randomIP().String(), email, "rightpassword"); rec.Code != 201 {
				t.Fatalf("sign-up: %d %s", rec.Code, rec.Body)
			}
			ip := randomIP().String()
			before := e.verifies()
			got := e.concurrentLogins(n, ip, email, func(i int) string { return "wrongpassword" + strconv.Itoa(i) })
			if got[401] != limit || got[429] != n-limit || len(got) != 2 {
				t.Fatalf("%d concurrent wrong guesses against a limit of %d: %v; want %d×401 and %d×429", n, limit, got, limit, n-limit)
			}
			if v := e.verifies() - before; v != limit {
				t.Fatalf("%v password verifications ran, want exactly %d", v, limit)
			}
		})
	}
}

// loggedCred records the keys the limiters use (so the shared Redis is
// cleaned up) and passes every call on.
type loggedCred struct {
	service.CredentialRateStore
	log *keyLog
}

func (l loggedCred) Hit(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	l.log.add(key)
	return l.CredentialRateStore.Hit(ctx, key, window)
}

func (l loggedCred) Reserve(ctx context.Context, key string, limit int64, window time.Duration) (bool, int64, time.Duration, error) {
	l.log.add(key)
	return l.CredentialRateStore.Reserve(ctx, key, limit, window)
}

// failingStore errors (or hangs until its deadline) on every call.
type failingStore struct{ hang bool }

func (f failingStore) fail(ctx context.Context) error {
	if f.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return errors.New("store down")
}

func (f failingStore) Hit(ctx context.Context, _ string, _ time.Duration) (int64, time.Duration, error) {
	return 0, 0, f.fail(ctx)
}

func (f failingStore) Reserve(ctx context.Context, _ string, _ int64, _ time.Duration) (bool, int64, time.Duration, error) {
	return false, 0, 0, f.fail(ctx)
}

func (f failingStore) Release(ctx context.Context, _ string) error { return f.fail(ctx) }

// With its store failing and no fallback, the login limiter lets attempts
// through (fail-open), counted and logged once.
func TestLoginLimitFailsOpen(t *testing.T) {
	for name, store := range map[string]failingStore{"error": {}, "hang": {hang: true}} {
		t.Run(name, func(t *testing.T) {
			e := newLoginEnv(t, loginSetup{store: store,
				cfg: service.Config{LoginLimit: service.LoginLimitConfig{PerAccount: 1, PerIP: 1, Window: time.Minute, Timeout: 20 * time.Millisecond}}})
			for range 3 {
				start := time.Now()
				e.want(e.login("192.0.2.8", "alice@example.com", "wrongpassword"), 401)
				if took := time.Since(start); took > 2*time.Second {
					t.Fatalf("a failing store made login take %v", took)
				}
			}
			e.want(e.login("192.0.2.8", "alice@example.com", "rightpassword"), 200)
			if n := strings.Count(e.logs.String(), "login limiter unavailable: attempt allowed (fail-open)"); n != 1 {
				t.Fatalf("%d fail-open warnings, want 1 (throttled):\n%s", n, e.logs)
			}
			// 4 attempts, two reservations each (IP, account).
			if got := e.tel.get("ratelimit_decisions_total", "decision=fail_open,limiter=login"); got != 8 {
				t.Fatalf("fail_open decisions %v, want 8", got)
			}
		})
	}
}

// With its store failing, the fallback store decides for the same window:
// the limits hold (exactly, under concurrency), counted as fallback; only
// when the fallback is full does an attempt fail open.
func TestLoginLimitFallback(t *testing.T) {
	for name, store := range map[string]failingStore{"error": {}, "hang": {hang: true}} {
		t.Run(name, func(t *testing.T) {
			const n, limit = 20, 5
			e := newLoginEnv(t, loginSetup{store: store, fallback: memory.NewRateStore(nil),
				cfg: service.Config{
					LoginLimit: service.LoginLimitConfig{PerAccount: limit, PerIP: 1000, Window: time.Minute, Timeout: 20 * time.Millisecond},
					HashGate:   service.HashGateConfig{Queue: n, Wait: time.Minute},
				}})
			got := e.concurrentLogins(n, "192.0.2.11", "alice@example.com", func(int) string { return "wrongpassword" })
			if got[401] != limit || got[429] != n-limit {
				t.Fatalf("store down, fallback on: %v; want %d×401 %d×429; decisions %v", got, limit, n-limit, e.tel.n)
			}
			if fb := e.tel.get("ratelimit_decisions_total", "decision=fallback,limiter=login"); fb < n {
				t.Fatalf("fallback decisions %v, want at least %d", fb, n)
			}
			if fo := e.tel.get("ratelimit_decisions_total", "decision=fail_open,limiter=login"); fo != 0 {
				t.Fatalf("fail_open decisions %v with a working fallback", fo)
			}
			if n := strings.Count(e.logs.String(), "login limiter store unavailable: in-process fallback decides"); n != 1 {
				t.Fatalf("%d fallback warnings, want 1 (throttled)", n)
			}
			// Another account is not affected, and its success gives its
			// fallback reservations back.
			e.want(e.login("192.0.2.12", "bob@example.com", "rightpassword"), 200)
		})
	}
	t.Run("fallback full: fail open, counted", func(t *testing.T) {
		full := memory.NewBoundedRateStore(nil, 32) // one window per shard
		for i := range 10_000 {
			_, _, _ = full.Hit(context.Background(), "filler:"+strconv.Itoa(i), time.Hour)
		}
		e := newLoginEnv(t, loginSetup{store: failingStore{}, fallback: full,
			cfg: service.Config{LoginLimit: service.LoginLimitConfig{PerAccount: 1, Window: time.Minute}}})
		for range 3 {
			e.want(e.login("192.0.2.13", "alice@example.com", "wrongpassword"), 401)
		}
		if got := e.tel.get("ratelimit_decisions_total", "decision=fail_open,limiter=login"); got != 3 {
			t.Fatalf("fail_open decisions %v, want 3", got)
		}
	})
}

// A real Redis killed, then paused: login limits keep holding on the
// fallback, and resume on Redis once it is back.
func TestLoginLimitFallbackOnRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := newRedisClient(t, srv.URL(), failTimeout)
	e := newLoginEnv(t, loginSetup{store: c.RateStore(), fallback: memory.NewRateStore(nil),
		cfg: service.Config{LoginLimit: service.LoginLimitConfig{PerAccount: 2, PerIP: 1000, Window: time.Minute, Timeout: failTimeout}}})
	guessUntil429 := func(what, email string) {
		t.Helper()
		for i := range 2 {
			e.want(e.login("192.0.2.20", email, "wrong"+strconv.Itoa(i)), 401)
		}
		e.want(e.login("192.0.2.20", email, "rightpassword"), 429)
	}
	srv.Kill()
	guessUntil429("killed", "alice@example.com")
	srv.Restart()
	eventually(t, 10*time.Second, "limiter back on Redis", func() error {
		before := e.tel.get("ratelimit_decisions_total", "decision=allowed,limiter=login")
		e.want(e.login("192.0.2.21", "bob@example.com", "rightpassword"), 200)
		if e.tel.get("ratelimit_decisions_total", "decision=allowed,limiter=login") == before {
			return errNotYet
		}
		return nil
	})
	srv.Pause()
	defer srv.Resume()
	guessUntil429("paused", "bob@example.com")
	if fb := e.tel.get("ratelimit_decisions_total", "decision=fallback,limiter=login"); fb == 0 {
		t.Fatal("no fallback decision counted")
	}
}

// Sign-ups are limited per client identity, whatever RATE_LIMIT_ENABLED
// says; an IPv6 client's whole /64 is one identity, an IPv4-mapped address
// counts as its IPv4 address.
func TestSignupLimitPerIP(t *testing.T) {
	e := newLoginEnv(t, loginSetup{store: memory.NewRateStore(nil),
		cfg: service.Config{SignupLimit: service.SignupLimitConfig{PerIP: 3, Window: time.Minute}}})
	n := 0
	next := func() string { n++; return fmt.Sprintf("new%d@example.com", n) }
	for range 3 {
		e.want(e.signup("203.0.113.50", next(), "rightpassword"), 201)
	}
	before := e.tel.get(service.MetricPasswordHashes, "op=hash,result=done")
	e.want(e.signup("203.0.113.50", next(), "rightpassword"), 429)
	if e.tel.get(service.MetricPasswordHashes, "op=hash,result=done") != before {
		t.Fatal("a refused sign-up was hashed")
	}
	e.want(e.signup("::ffff:203.0.113.50", next(), "rightpassword"), 429) // mapped: the same client
	e.want(e.signup("203.0.113.51", next(), "rightpassword"), 201)

	// IPv6: every address of 2001:db8:5:6::/64 shares one budget.
	for i := range 3 {
		e.want(e.signup(fmt.Sprintf("2001:db8:5:6::%x", i+1), next(), "rightpassword"), 201)
	}
	e.want(e.signup("2001:db8:5:6:ffff:ffff:ffff:ffff", next(), "rightpassword"), 429)
	e.want(e.signup("2001:db8:5:7::1", next(), "rightpassword"), 201) // the next /64 is another client
	// Invalid sign-ups (422) spend nothing.
	for range 5 {
		e.want(e.serve("203.0.113.52", "POST", "/api/v1/users", "application/json", `{"email":"bad","password":"x"}`), 422)
	}
	e.want(e.signup("203.0.113.52", next(), "rightpassword"), 201)
}

// The login limiter keys IPv6 clients by /64 as well (configurable).
func TestLoginLimitIPv6Prefix(t *testing.T) {
	for _, tc := range []struct {
		prefix      int
		sameNetwork bool
	}{{64, true}, {128, false}} {
		t.Run(strconv.Itoa(tc.prefix), func(t *testing.T) {
			e := newLoginEnv(t, loginSetup{store: memory.NewRateStore(nil),
				cfg: service.Config{IPv6Prefix: tc.prefix, LoginLimit: service.LoginLimitConfig{PerAccount: 100, PerIP: 2, Window: time.Minute}}})
			e.want(e.login("2001:db8:9:9::1", "alice@example.com", "wrong1"), 401)
			e.want(e.login("2001:db8:9:9::2", "alice@example.com", "wrong2"), 401)
			rec := e.login("2001:db8:9:9::3", "alice@example.com", "rightpassword")
			if tc.sameNetwork {
				e.want(rec, 429)
			} else {
				e.want(rec, 200)
			}
		})
	}
}
