package service_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/storagetest"
)

type loginEnv struct {
	t    *testing.T
	srv  *service.Server
	logs *syncBuffer
}

func newLoginEnv(t *testing.T, store service.LoginRateStore, cfg service.LoginLimitConfig) *loginEnv {
	t.Helper()
	logs := &syncBuffer{}
	srv := service.NewServer(service.Config{LoginLimit: cfg}, service.Deps{
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		Users:          memory.NewUsers(),
		Tokens:         service.NewTokens(testSecret, time.Hour),
		Hasher:         service.NewArgon2id(64, 1, 1),
		LoginRateStore: store,
	})
	for _, email := range []string{"alice@example.com", "bob@example.com"} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/api/v1/users", strings.NewReader(`{"email":"`+email+`","password":"rightpassword"}`))
		r.Header.Set("Content-Type", "application/json")
		srv.ServeHTTP(rec, r)
		if rec.Code != 201 {
			t.Fatalf("sign-up: %d %s", rec.Code, rec.Body)
		}
	}
	return &loginEnv{t: t, srv: srv, logs: logs}
}

// login tries a form login from ip and returns the recorder.
func (e *loginEnv) login(ip, email, password string) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/auth/login", strings.NewReader("username="+email+"&password="+password))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = ip + ":40000"
	e.srv.ServeHTTP(rec, r)
	return rec
}

func (e *loginEnv) want(rec *httptest.ResponseRecorder, status int) {
	e.t.Helper()
	if rec.Code != status {
		e.t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if status == 429 {
		checkEnvelope(e.t, rec, 429, "rate_limited")
		if ra := rec.Header().Get("Retry-After"); ra == "" || ra == "0" {
			e.t.Fatalf("Retry-After %q", ra)
		}
	}
}

func TestLoginLimitPerAccount(t *testing.T) {
	clock := storagetest.NewFakeClock(time.Unix(1_000_000, 0))
	e := newLoginEnv(t, memory.NewRateStore(clock.Now), service.LoginLimitConfig{PerAccount: 3, PerIP: 100, Window: time.Minute})
	for i := range 3 {
		// From a new IP each time: the account limit alone decides.
		e.want(e.login("198.51.100."+strconv.Itoa(i), "alice@example.com", "wrongpassword"), 401)
	}
	rec := e.login("198.51.100.50", "ALICE@example.com", "rightpassword")
	e.want(rec, 429) // locked: even the right password, in any case, from any IP
	if ra := rec.Header().Get("Retry-After"); ra != "60" {
		t.Fatalf("Retry-After %q, want 60", ra)
	}
	e.want(e.login("198.51.100.50", "bob@example.com", "rightpassword"), 200) // other accounts are not affected
	clock.Advance(time.Minute)
	e.want(e.login("198.51.100.50", "alice@example.com", "rightpassword"), 200) // the window passed
}

func TestLoginLimitPerIP(t *testing.T) {
	e := newLoginEnv(t, memory.NewRateStore(nil), service.LoginLimitConfig{PerAccount: 100, PerIP: 4, Window: time.Minute})
	// Password spraying from one address: failures on different (and
	// unknown) accounts add up.
	for i := range 4 {
		e.want(e.login("203.0.113.9", "user"+strconv.Itoa(i)+"@example.com", "guessguess"), 401)
	}
	e.want(e.login("203.0.113.9", "alice@example.com", "rightpassword"), 429)
	e.want(e.login("203.0.113.10", "alice@example.com", "rightpassword"), 200) // another address is not affected
}

func TestLoginLimitCountsOnlyFailures(t *testing.T) {
	e := newLoginEnv(t, memory.NewRateStore(nil), service.LoginLimitConfig{PerAccount: 2, PerIP: 2, Window: time.Minute})
	for range 10 {
		e.want(e.login("192.0.2.7", "alice@example.com", "rightpassword"), 200)
	}
	// Malformed attempts (422) hash nothing and count nothing either.
	for range 5 {
		e.want(e.login("192.0.2.7", "alice@example.com", ""), 422)
	}
	e.want(e.login("192.0.2.7", "alice@example.com", "wrongpassword"), 401)
	e.want(e.login("192.0.2.7", "alice@example.com", "rightpassword"), 200)
}

// failingStore errors (or hangs until its deadline) on every call.
type failingStore struct{ hang bool }

func (f failingStore) Hit(ctx context.Context, _ string, _ time.Duration) (int64, time.Duration, error) {
	return f.Peek(ctx, "")
}

func (f failingStore) Peek(ctx context.Context, _ string) (int64, time.Duration, error) {
	if f.hang {
		<-ctx.Done()
		return 0, 0, ctx.Err()
	}
	return 0, 0, errors.New("store down")
}

func TestLoginLimitFailsOpen(t *testing.T) {
	for name, store := range map[string]failingStore{"error": {}, "hang": {hang: true}} {
		t.Run(name, func(t *testing.T) {
			e := newLoginEnv(t, store, service.LoginLimitConfig{PerAccount: 1, PerIP: 1, Window: time.Minute, Timeout: 20 * time.Millisecond})
			for range 3 {
				start := time.Now()
				e.want(e.login("192.0.2.8", "alice@example.com", "wrongpassword"), 401)
				if took := time.Since(start); took > 2*time.Second {
					t.Fatalf("a failing store made login take %v", took)
				}
			}
			e.want(e.login("192.0.2.8", "alice@example.com", "rightpassword"), 200)
			if n := strings.Count(e.logs.String(), "login limiter unavailable"); n != 1 {
				t.Fatalf("%d fail-open warnings, want 1 (throttled):\n%s", n, e.logs)
			}
		})
	}
}
