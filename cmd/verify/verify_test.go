package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
)

// The real API (memory store) behind httptest, in-process.
func apiHandler(t *testing.T) http.Handler {
	t.Helper()
	return service.NewServer(service.Config{}, service.Deps{
		Logger: slog.New(slog.DiscardHandler),
		Users:  memory.NewUsers(),
		Tokens: service.NewTokens([]byte("0123456789abcdef0123456789abcdef"), time.Hour),
		Hasher: service.NewArgon2id(64, 1, 1),
		Checks: []service.Check{{Name: "db", Func: func(context.Context) error { return nil }}, {Name: "redis"}},
	})
}

// fakeLimiter stands in for the rate limiter (not on this branch yet), for
// verify's own tests only: per identity (the Authorization header, else
// anonymous) it allows limit requests to the in-scope paths, adds the
// X-RateLimit-* headers, and answers the 429 envelope after that. never429
// keeps serving past the limit; noRetryAfter leaves Retry-After out.
type fakeLimiter struct {
	next         http.Handler
	limit        int
	never429     bool
	noRetryAfter bool

	mu    sync.Mutex
	count map[string]int
}

func (f *fakeLimiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/api/v1/") || p == "/api/v1/health/live" || p == "/api/v1/health/ready" {
		f.next.ServeHTTP(w, r)
		return
	}
	f.mu.Lock()
	if f.count == nil {
		f.count = map[string]int{}
	}
	key := r.Header.Get("Authorization")
	f.count[key]++
	n := f.count[key]
	f.mu.Unlock()
	h := w.Header()
	reset := time.Now().Add(time.Minute).Unix()
	h.Set("X-RateLimit-Limit", strconv.Itoa(f.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(f.limit-n, 0)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	if n <= f.limit || f.never429 {
		f.next.ServeHTTP(w, r)
		return
	}
	id := fmt.Sprintf("fake-limiter-%d", n)
	h.Set("X-Request-ID", id)
	h.Set("Content-Type", "application/json")
	if !f.noRetryAfter {
		h.Set("Retry-After", "60")
	}
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprintf(w, `{"error":{"code":"rate_limited","message":"Too Many Requests","request_id":%q,"details":null}}`, id)
}

// tamper changes /health answers: a different body, or no X-Request-ID.
type tamper struct {
	next    http.Handler
	body    string
	dropRID bool
}

type tamperWriter struct {
	http.ResponseWriter
	t *tamper
}

func (w tamperWriter) WriteHeader(code int) {
	if w.t.dropRID {
		w.Header().Del("X-Request-ID")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w tamperWriter) Write(b []byte) (int, error) {
	if w.t.body != "" {
		_, err := w.ResponseWriter.Write([]byte(w.t.body))
		return len(b), err
	}
	return w.ResponseWriter.Write(b)
}

func (t *tamper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		t.next.ServeHTTP(tamperWriter{w, t}, r)
		return
	}
	t.next.ServeHTTP(w, r)
}

func runVerify(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// lines matches out line by line against regexps.
func lines(t *testing.T, out string, want ...string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), out)
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w + "$").MatchString(got[i]) {
			t.Fatalf("line %d\n  %s\ndoes not match\n  %s\nin:\n%s", i+1, got[i], w, out)
		}
	}
}

const (
	hex32  = `[0-9a-f]{32}`
	uuidRe = `[0-9a-f-]{36}`
	email  = `verify\+[0-9a-f]{12}@example\.com`
)

// okHead matches the first four lines of a passing run.
func okHead() []string {
	return []string{
		`ok   health: 200 \{"status":"ok"\}, X-Request-ID ` + hex32,
		`ok   request id: X-Request-ID verify-[0-9a-f]{16} kept`,
		`ok   not found envelope: 404 not_found, request_id = X-Request-ID ` + hex32,
		`ok   readiness: 200 ok, db=ok redis=disabled`,
	}
}

func TestPassesRateLimitOff(t *testing.T) {
	srv := httptest.NewServer(apiHandler(t))
	defer srv.Close()
	code, out, errOut := runVerify(t, srv.URL)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	lines(t, out, append(okHead(),
		`SKIP rate limit headers: rate limiting is off \(no X-RateLimit-Limit on GET /api/v1/does-not-exist\); the 429 check is skipped too\. Start the service with RATE_LIMIT_ENABLED=true to check it`,
		`ok   create user: 201 `+email+`, Location /api/v1/users/`+uuidRe,
		`ok   login: 200 bearer token for user `+uuidRe,
		`ok   get user twice: 200 twice, same UserPublic`,
		`ok   credential change: 422 without current_password, 200 with it, then 401 for the old token, 200 login with the new password`,
		`SKIP rate limited: rate limiting is off`,
		`OK: prod hardening verification passed \(8 checks, 2 skipped, readiness db=ok redis=disabled, rate limiting off, user `+email+`\)`,
	)...)
}

func TestPassesWithRateLimit(t *testing.T) {
	srv := httptest.NewServer(&fakeLimiter{next: apiHandler(t), limit: 3})
	defer srv.Close()
	code, out, errOut := runVerify(t, srv.URL+"/") // a trailing slash is fine
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q\n%s", code, errOut, out)
	}
	// The user's bucket: two reads by "get user twice", the third request is
	// the last allowed, the fourth is refused.
	lines(t, out, append(okHead(),
		`ok   rate limit headers: X-RateLimit-Limit 3, X-RateLimit-Remaining 2, X-RateLimit-Reset in (59|60)s`,
		`ok   create user: 201 `+email+`, Location /api/v1/users/`+uuidRe,
		`ok   login: 200 bearer token for user `+uuidRe,
		`ok   get user twice: 200 twice, same UserPublic`,
		`ok   credential change: 422 without current_password, 200 with it, then 401 for the old token, 200 login with the new password`,
		`ok   rate limited: 429 rate_limited after 2 requests, Retry-After 60s`,
		`OK: prod hardening verification passed \(10 checks, readiness db=ok redis=disabled, user `+email+`, 429 after 2 requests\)`,
	)...)
}

func TestExistingUser(t *testing.T) {
	srv := httptest.NewServer(apiHandler(t))
	defer srv.Close()
	args := []string{"--email", "Ops@Example.com", "--password", "opspassword1", srv.URL}
	if code, out, errOut := runVerify(t, args...); code != 0 || !strings.Contains(out, "ok   create user: 201 Ops@Example.com,") {
		t.Fatalf("first run: exit %d %s %s", code, out, errOut)
	}
	code, out, errOut := runVerify(t, args...)
	if code != 0 || !strings.Contains(out, "ok   create user: 409 conflict: Ops@Example.com exists, logging in\n") ||
		!strings.Contains(out, "user Ops@Example.com (existing))\n") {
		t.Fatalf("second run: exit %d %s %s", code, out, errOut)
	}
}

// Broken services: the failure names the check, what was wanted and what
// came, on one stderr line, and the exit status is 1.
func TestFailures(t *testing.T) {
	cases := []struct {
		name string
		h    func(http.Handler) http.Handler
		args []string
		want string
	}{
		{"wrong health body", func(h http.Handler) http.Handler { return &tamper{next: h, body: `{"status":"OK"}`} }, nil,
			`FAIL health: want 200 with body {"status":"ok"} (15 bytes); got 200 "{\"status\":\"OK\"}"`},
		{"no X-Request-ID", func(h http.Handler) http.Handler { return &tamper{next: h, dropRID: true} }, nil,
			`FAIL health: want an X-Request-ID header; got none (200 "{\"status\":\"ok\"}")`},
		{"no 429", func(h http.Handler) http.Handler { return &fakeLimiter{next: h, limit: 3, never429: true} }, nil,
			`FAIL rate limited: want a 429 within 6 requests of GET /api/v1/users/me (1 + X-RateLimit-Remaining 0 + 5; X-RateLimit-Limit 3); got none, the last was 200 with X-RateLimit-Remaining "0"`},
		{"429 without Retry-After", func(h http.Handler) http.Handler { return &fakeLimiter{next: h, limit: 3, noRetryAfter: true} }, nil,
			`FAIL rate limited: want Retry-After in seconds on the 429; got ""`},
		{"limit too low for the checks", func(h http.Handler) http.Handler { return &fakeLimiter{next: h, limit: 1} }, nil,
			`FAIL create user: want 201 for POST /api/v1/users verify+[0-9a-f]{12}@example.com; got 429 "{\"error\":{\"code\":\"rate_limited\",\"message\":\"Too Many Requests\",\"request_id\":\"fake-limiter-2\",\"details\":null}}" (rate limited: X-RateLimit-Limit "1" is too low for verify, which needs about 5 requests per window per client; wait Retry-After "60"s or raise RATE_LIMIT_REQUESTS)`},
		{"--max-requests below the limit", func(h http.Handler) http.Handler { return &fakeLimiter{next: h, limit: 50} }, []string{"--max-requests", "10"},
			`FAIL rate limited: want X-RateLimit-Remaining below --max-requests 10 to search for a 429; got 47 (raise --max-requests or lower RATE_LIMIT_REQUESTS)`},
		{"rate limiting required", func(h http.Handler) http.Handler { return h }, []string{"--require-rate-limit"},
			`FAIL rate limit headers: want X-RateLimit-Limit on GET /api/v1/does-not-exist (--require-rate-limit); got no rate-limit headers`},
		{"deps required", func(h http.Handler) http.Handler { return h }, []string{"--require-deps"},
			`FAIL readiness: want every check "ok" (--require-deps); got redis="disabled"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.h(apiHandler(t)))
			defer srv.Close()
			code, out, errOut := runVerify(t, append(c.args, srv.URL)...)
			if code != exitFail {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
			}
			want := regexp.QuoteMeta(c.want)
			if c.name == "limit too low for the checks" {
				want = strings.ReplaceAll(want, regexp.QuoteMeta("[0-9a-f]{12}"), "[0-9a-f]{12}")
			}
			lines(t, errOut, want)
			if strings.Contains(out, "OK:") {
				t.Fatalf("OK line on failure:\n%s", out)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	code, _, errOut := runVerify(t, "--timeout", "2s", url)
	if code != exitFail || !strings.HasPrefix(errOut, "FAIL health: want a response to GET "+url+"/health; got dial tcp ") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	code, _, errOut := runVerify(t, "--timeout", "100ms", srv.URL)
	if code != exitFail || !strings.HasPrefix(errOut, "FAIL health: want a response to GET "+srv.URL+"/health; got ") ||
		!strings.HasSuffix(errOut, "(--timeout 100ms)\n") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
	code, _, errOut = runVerify(t, "--total-timeout", "100ms", srv.URL)
	if code != exitFail || !strings.HasSuffix(errOut, "(--total-timeout 100ms reached)\n") {
		t.Fatalf("exit %d: %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"ftp://x"}, {"localhost:8000"}, {"http://a", "http://b"},
		{"--email", "a@example.com"}, {"--timeout", "0s"}, {"--max-requests", "0"}, {"--nope"},
	} {
		code, out, errOut := runVerify(t, args...)
		if code != exitUsage || out != "" || errOut == "" {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if code, _, errOut := runVerify(t, "-h"); code != 0 || !strings.Contains(errOut, "-max-requests") {
		t.Fatalf("-h: %d %q", code, errOut)
	}
}
