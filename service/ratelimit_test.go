package service_test

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/memory"
	bredis "github.com/bulwark-go/bulwark/storage/redis"
	"github.com/bulwark-go/bulwark/storage/redis/redistest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// burst sends m copies of r at once and returns the responses.
func burst(e *env, m int, r req) []*httptest.ResponseRecorder {
	recs := make([]*httptest.ResponseRecorder, m)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range m {
		wg.Go(func() {
			<-start
			recs[i] = e.do(r)
		})
	}
	close(start)
	wg.Wait()
	return recs
}

// rateEnv is an env with rate limiting on b (n per window), memory users,
// and set-up requests from an address of their own.
func rateEnv(t *testing.T, b *backend, n int, window time.Duration, opts ...envOption) *env {
	t.Helper()
	opts = append([]envOption{withRemote(remote(randomIP())), withRateLimit(b.rate, n, window, semanticTimeout)}, opts...)
	return newEnv(t, failingUpdates{memory.NewUsers()}, opts...)
}

// failingUpdates fails a PATCH on demand: full_name "panic" panics,
// "unavailable" is a store outage (503).
type failingUpdates struct {
	user.Store
}

func (f failingUpdates) Update(ctx context.Context, id uuid.UUID, upd user.Update) (user.User, error) {
	if upd.FullName != nil {
		switch *upd.FullName {
		case "panic":
			panic("store exploded")
		case "unavailable":
			return user.User{}, user.ErrUnavailable
		}
	}
	return f.Store.Update(ctx, id, upd)
}

// TestRateLimit proves CONTRACT §5 through the whole handler chain, on the
// memory backend and on a real Redis.
func TestRateLimit(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			runRateLimit(t, bk.new)
		})
	}
}

func runRateLimit(t *testing.T, newBackend func(*testing.T) *backend) {
	t.Run("exactly N of M concurrent requests pass", func(t *testing.T) {
		const n, m = 5, 30
		const window = time.Minute
		b := newBackend(t)
		e := rateEnv(t, b, n, window)
		ip := randomIP()
		for _, tc := range []struct {
			name   string
			r      req
			status int
			key    string
		}{
			{"anonymous, by ip", req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(ip)}, 404, ipKey(ip)},
			{"bearer, by user", req{method: "GET", path: "/api/v1/users/me", token: e.alice.token, remote: remote(ip)}, 200, userKey(e.alice.id)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var passed []int64 // their X-RateLimit-Remaining
				for _, rec := range burst(e, m, tc.r) {
					if rec.Code == 429 {
						check429(t, rec, n, window)
						continue
					}
					if rec.Code != tc.status {
						t.Fatalf("status %d, want %d or 429: %s", rec.Code, tc.status, rec.Body)
					}
					l, rem, _ := rlHeaders(t, rec)
					if l != n {
						t.Fatalf("X-RateLimit-Limit %d, want %d", l, n)
					}
					passed = append(passed, rem)
				}
				if len(passed) != n {
					t.Fatalf("%d of %d concurrent requests passed, want exactly %d", len(passed), m, n)
				}
				// Each count 1..n was handed out once: remaining n-1..0.
				slices.Sort(passed)
				for i, rem := range passed {
					if rem != int64(i) {
						t.Fatalf("remaining values %v, want 0..%d once each", passed, n-1)
					}
				}
				if got := b.keys.count(tc.key); got != m {
					t.Fatalf("key %s hit %d times, want %d", tc.key, got, m)
				}
				if b.raw != nil {
					ttl := b.raw.PTTL(context.Background(), tc.key).Val()
					if ttl <= 0 || ttl > window {
						t.Fatalf("PTTL %s = %v, want in (0, %v]", tc.key, ttl, window)
					}
				}
			})
		}
	})

	t.Run("the window resets", func(t *testing.T) {
		t.Parallel() // it waits for the window
		const n = 2
		const window = time.Second
		e := rateEnv(t, newBackend(t), n, window)
		r := req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(randomIP())}
		for i := range n {
			rec := e.do(r)
			checkEnvelope(t, rec, 404, "not_found")
			if _, rem, _ := rlHeaders(t, rec); rem != int64(n-1-i) {
				t.Fatalf("request %d: remaining %d, want %d", i, rem, n-1-i)
			}
		}
		rec := e.do(r)
		check429(t, rec, n, window)
		if ra := rec.Header().Get("Retry-After"); ra != "1" {
			t.Fatalf("Retry-After %q in a 1s window, want 1", ra)
		}
		_, _, reset := rlHeaders(t, rec)
		if d := time.Until(time.Unix(reset, 0)); d < 0 || d > window+time.Second {
			t.Fatalf("X-RateLimit-Reset %d is %v from now, want within (0, %v]", reset, d, window+time.Second)
		}
		// At the announced reset the window is over.
		time.Sleep(time.Until(time.Unix(reset, 0)) + 50*time.Millisecond)
		rec = e.do(r)
		checkEnvelope(t, rec, 404, "not_found")
		if _, rem, _ := rlHeaders(t, rec); rem != n-1 {
			t.Fatalf("after the reset: remaining %d, want %d", rem, n-1)
		}
	})

	t.Run("identities do not share a budget", func(t *testing.T) {
		const n = 3
		e := rateEnv(t, newBackend(t), n, time.Minute)
		ipA, ipB := remote(randomIP()), remote(randomIP())
		anonA := req{method: "GET", path: "/api/v1/does-not-exist", remote: ipA}
		aliceA := req{method: "GET", path: "/api/v1/users/me", token: e.alice.token, remote: ipA}
		bobA := req{method: "GET", path: "/api/v1/users/me", token: e.bob.token, remote: ipA}
		remaining := func(r req, status int) int64 {
			t.Helper()
			rec := e.do(r)
			if rec.Code != status {
				t.Fatalf("%s %s: status %d, want %d: %s", r.method, r.path, rec.Code, status, rec.Body)
			}
			_, rem, _ := rlHeaders(t, rec)
			return rem
		}
		for range n {
			remaining(aliceA, 200)
		}
		check429(t, e.do(aliceA), n, time.Minute)
		if rem := remaining(bobA, 200); rem != n-1 {
			t.Fatalf("bob after alice's budget is spent: remaining %d, want %d", rem, n-1)
		}
		if rem := remaining(anonA, 404); rem != n-1 {
			t.Fatalf("anonymous from alice's ip: remaining %d, want %d (user requests must not spend the ip budget)", rem, n-1)
		}
		for range n - 1 {
			remaining(anonA, 404)
		}
		check429(t, e.do(anonA), n, time.Minute)
		if rem := remaining(req{method: "GET", path: "/api/v1/does-not-exist", remote: ipB}, 404); rem != n-1 {
			t.Fatalf("another ip: remaining %d, want %d", rem, n-1)
		}
		if rem := remaining(bobA, 200); rem != n-2 {
			t.Fatalf("bob from an exhausted ip: remaining %d, want %d", rem, n-2)
		}
	})

	t.Run("spoofed X-Forwarded-For from an untrusted peer is ignored", func(t *testing.T) {
		const n = 3
		b := newBackend(t)
		e := rateEnv(t, b, n, time.Minute)
		peer := randomIP()
		var spoofed []string
		for i := range n + 2 {
			fake := randomIP().String()
			spoofed = append(spoofed, fake)
			rec := e.do(req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(peer),
				header: map[string]string{"X-Forwarded-For": fake + ", " + randomIP().String()}})
			if i < n {
				checkEnvelope(t, rec, 404, "not_found")
			} else {
				check429(t, rec, n, time.Minute)
			}
		}
		if got := b.keys.count(ipKey(peer)); got != n+2 {
			t.Fatalf("peer key hit %d times, want %d", got, n+2)
		}
		for _, k := range b.keys.all() {
			for _, s := range spoofed {
				if strings.Contains(k, s) {
					t.Fatalf("key %s names a spoofed address", k)
				}
			}
		}
	})

	t.Run("behind trusted proxies the right-most untrusted X-Forwarded-For entry is the client", func(t *testing.T) {
		const n = 3
		b := newBackend(t)
		proxy, inner := randomIP(), randomIP() // the peer, and a proxy before it
		e := rateEnv(t, b, n, time.Minute, withTrustedProxies(t, proxy.String()+","+inner.String()))
		client, other := randomIP(), randomIP()
		via := func(xff string) req {
			return req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(proxy),
				header: map[string]string{"X-Forwarded-For": xff}}
		}
		for i := range n + 1 {
			// Whatever the client claims on the left is not believed.
			rec := e.do(via(randomIP().String() + ", " + client.String() + ", " + inner.String()))
			if i < n {
				checkEnvelope(t, rec, 404, "not_found")
			} else {
				check429(t, rec, n, time.Minute)
			}
		}
		if got := b.keys.count(ipKey(client)); got != n+1 {
			t.Fatalf("client key hit %d times, want %d", got, n+1)
		}
		if b.keys.count(ipKey(proxy)) != 0 || b.keys.count(ipKey(inner)) != 0 {
			t.Fatal("a trusted proxy was used as the identity")
		}
		if b.raw != nil && b.raw.Exists(context.Background(), ipKey(client)).Val() != 1 {
			t.Fatalf("Redis has no key %s", ipKey(client))
		}
		// Another client behind the same proxy has its own budget.
		rec := e.do(via(other.String()))
		if _, rem, _ := rlHeaders(t, rec); rec.Code != 404 || rem != n-1 {
			t.Fatalf("other client behind the proxy: %d, remaining %d", rec.Code, rem)
		}
		// An untrusted peer naming the limited client is keyed by itself.
		rec = e.do(req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(randomIP()),
			header: map[string]string{"X-Forwarded-For": client.String()}})
		if _, rem, _ := rlHeaders(t, rec); rec.Code != 404 || rem != n-1 {
			t.Fatalf("untrusted peer claiming the limited client: %d, remaining %d", rec.Code, rem)
		}
	})

	t.Run("health checks and paths outside /api/v1 are never limited", func(t *testing.T) {
		const n = 2
		b := newBackend(t)
		e := rateEnv(t, b, n, time.Minute)
		ip := randomIP()
		for range n {
			e.do(req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(ip)})
		}
		check429(t, e.do(req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(ip)}), n, time.Minute)
		for _, r := range []struct {
			req
			status int
		}{
			{req{method: "GET", path: "/health"}, 200},
			{req{method: "GET", path: "/api/v1/health/live"}, 200},
			{req{method: "GET", path: "/api/v1/health/ready"}, 200},
			{req{method: "GET", path: "/health", token: e.alice.token}, 200},
			{req{method: "GET", path: "/nope"}, 404},
			{req{method: "POST", path: "/auth/login", body: `{"username":"alice@example.com","password":"wrongpassword"}`}, 401},
		} {
			r.remote = remote(ip)
			for range 3 {
				rec := e.do(r.req)
				if rec.Code != r.status {
					t.Fatalf("%s %s from a limited ip: %d, want %d: %s", r.method, r.path, rec.Code, r.status, rec.Body)
				}
				noRLHeaders(t, r.method+" "+r.path, rec)
			}
		}
		if got := b.keys.count(ipKey(ip)); got != n+1 {
			t.Fatalf("exempt requests reached the limiter: key hit %d times, want %d", got, n+1)
		}
	})

	t.Run("every in-scope response carries the headers", func(t *testing.T) {
		testStart := time.Now()
		const n = 100
		const window = time.Minute
		e := rateEnv(t, newBackend(t), n, window)
		ip := remote(randomIP())
		cases := []struct {
			req
			status int
		}{
			{req{method: "GET", path: "/api/v1/users/me", token: e.alice.token}, 200},
			{req{method: "GET", path: "/api/v1/users/" + e.bob.id, token: e.super}, 200},
			{req{method: "POST", path: "/api/v1/users", body: `{"email":"carol@example.com","password":"carolpassword"}`}, 201},
			{req{method: "PATCH", path: "/api/v1/users/" + e.alice.id, token: e.alice.token, body: `{"full_name":"A"}`}, 200},
			{req{method: "GET", path: "/api/v1/users/me"}, 401},
			{req{method: "GET", path: "/api/v1/users/me", token: "a.b.c"}, 401},
			{req{method: "GET", path: "/api/v1/users/" + e.bob.id, token: e.alice.token}, 403},
			{req{method: "GET", path: "/api/v1/does-not-exist"}, 404},
			{req{method: "GET", path: "/api/v1"}, 404},
			{req{method: "PUT", path: "/api/v1/users/" + e.alice.id, token: e.alice.token}, 405},
			{req{method: "POST", path: "/api/v1/users", body: `{"email":"` + strings.Repeat("a", 5000) + `"}`}, 413},
			{req{method: "POST", path: "/api/v1/users", ctype: "text/plain", body: "x"}, 415},
			{req{method: "POST", path: "/api/v1/users", body: `{"email":`}, 422},
			{req{method: "POST", path: "/api/v1/users", body: `{"email":"carol@example.com","password":"carolpassword"}`}, 409},
			{req{method: "PATCH", path: "/api/v1/users/" + e.alice.id, token: e.alice.token, body: `{"full_name":"panic"}`}, 500},
			{req{method: "PATCH", path: "/api/v1/users/" + e.alice.id, token: e.alice.token, body: `{"full_name":"unavailable"}`}, 503},
			{req{method: "DELETE", path: "/api/v1/users/" + e.bob.id, token: e.bob.token}, 204},
		}
		for _, c := range cases {
			c.remote = ip
			rec := e.do(c.req)
			if rec.Code != c.status {
				t.Fatalf("%s %s: %d, want %d: %s", c.method, c.path, rec.Code, c.status, rec.Body)
			}
			l, rem, reset := rlHeaders(t, rec)
			if l != n || rem < 0 || rem >= n {
				t.Fatalf("%s %s: limit %d remaining %d", c.method, c.path, l, rem)
			}
			// Every identity's window began during this test: it ends
			// between the test's start and now, plus the window.
			lo, hi := testStart.Add(window).Unix(), time.Now().Add(window).Unix()+1
			if reset < lo || reset > hi {
				t.Fatalf("%s %s: X-RateLimit-Reset %d, want in [%d, %d] (epoch seconds of the window end)", c.method, c.path, reset, lo, hi)
			}
		}
	})

	t.Run("a valid token keys by user, an invalid one by ip", func(t *testing.T) {
		const n = 10
		b := newBackend(t)
		e := rateEnv(t, b, n, time.Minute)
		ip := randomIP()
		rec := e.do(req{method: "GET", path: "/api/v1/users/me", token: e.alice.token, remote: remote(ip)})
		if _, rem, _ := rlHeaders(t, rec); rec.Code != 200 || rem != n-1 {
			t.Fatalf("alice: %d remaining %d", rec.Code, rem)
		}
		if b.keys.count(userKey(e.alice.id)) != 1 || b.keys.count(ipKey(ip)) != 0 {
			t.Fatalf("alice's request used keys %v, want only %s", b.keys.all(), userKey(e.alice.id))
		}
		if b.raw != nil {
			ctx := context.Background()
			if b.raw.Exists(ctx, userKey(e.alice.id)).Val() != 1 || b.raw.Exists(ctx, ipKey(ip)).Val() != 0 {
				t.Fatalf("Redis: want key %s and no %s", userKey(e.alice.id), ipKey(ip))
			}
		}
		invalid := []string{
			"a.b.c",
			forge(t, jwt.SigningMethodHS256, testSecret, e.alice.id, time.Now().Add(-time.Minute)),
			forge(t, jwt.SigningMethodHS256, []byte("another secret another secret !!"), e.alice.id, time.Now().Add(time.Hour)),
			algNone(e.alice.id),
		}
		for i, tok := range invalid {
			rec := e.do(req{method: "GET", path: "/api/v1/users/me", token: tok, remote: remote(ip)})
			checkEnvelope(t, rec, 401, "unauthorized")
			if _, rem, _ := rlHeaders(t, rec); rem != int64(n-1-i) {
				t.Fatalf("invalid token %d: remaining %d, want %d (the ip budget)", i, rem, n-1-i)
			}
		}
		// Anonymous requests from that ip share the budget the invalid tokens spent.
		rec = e.do(req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(ip)})
		if _, rem, _ := rlHeaders(t, rec); rem != int64(n-1-len(invalid)) {
			t.Fatalf("anonymous after invalid tokens: remaining %d, want %d", rem, n-1-len(invalid))
		}
		if b.keys.count(userKey(e.alice.id)) != 1 {
			t.Fatal("an invalid token was keyed by the user it names")
		}
		if b.raw != nil && b.raw.Exists(context.Background(), ipKey(ip)).Val() != 1 {
			t.Fatalf("Redis has no key %s", ipKey(ip))
		}
	})
}

// A key left without expiry would count forever; the next request gives it
// a window, and X-RateLimit-Reset is that window's real end.
func TestRateLimitRepairsKeyWithoutTTL(t *testing.T) {
	t.Parallel() // it waits for a window
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		planted int
		window  time.Duration
	}{
		{"over the limit, 1s window", 5, time.Second},
		{"under the limit, 1m window", 2, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 5
			b := sharedRedisBackend(t)
			e := rateEnv(t, b, n, tc.window)
			ip := randomIP()
			if err := b.raw.Set(ctx, ipKey(ip), tc.planted, 0).Err(); err != nil {
				t.Fatal(err)
			}
			b.keys.add(ipKey(ip)) // deleted at the end even if no request reaches it
			if ttl := b.raw.PTTL(ctx, ipKey(ip)).Val(); ttl != -1 {
				t.Fatalf("planted key has PTTL %v, want -1", ttl)
			}
			r := req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(ip)}
			rec := e.do(r)
			now := time.Now()
			ttl := b.raw.PTTL(ctx, ipKey(ip)).Val()
			if ttl <= 0 || ttl > tc.window {
				t.Fatalf("after one request PTTL = %v, want in (0, %v]", ttl, tc.window)
			}
			if tc.planted >= n {
				check429(t, rec, n, tc.window)
			} else {
				checkEnvelope(t, rec, 404, "not_found")
				if _, rem, _ := rlHeaders(t, rec); rem != int64(n-tc.planted-1) {
					t.Fatalf("remaining %d, want %d (the count carries on)", rem, n-tc.planted-1)
				}
			}
			_, _, reset := rlHeaders(t, rec)
			want := int64(math.Ceil(float64(now.Add(ttl).UnixNano()) / 1e9))
			if reset < want-1 || reset > want+1 {
				t.Fatalf("X-RateLimit-Reset %d, want ceil(now + PTTL) = %d ± 1", reset, want)
			}
			if tc.planted < n {
				return
			}
			time.Sleep(time.Until(time.Unix(reset, 0)) + 50*time.Millisecond)
			rec = e.do(r)
			checkEnvelope(t, rec, 404, "not_found")
			if _, rem, _ := rlHeaders(t, rec); rem != n-1 {
				t.Fatalf("next window: remaining %d, want %d", rem, n-1)
			}
		})
	}
}

// failTimeout is the limiter and Redis timeout of the failure tests, short
// as in production; each request is only asserted to finish within
// failBound, generous so that a loaded machine does not make it flaky.
const (
	failTimeout = 100 * time.Millisecond
	failBound   = 10 * failTimeout
)

// With its Redis killed or stopped the limiter fails open: requests go on,
// without rate-limit headers, within the timeout bound, counted as
// fail_open and logged once; once Redis is back, limiting resumes.
func TestRateLimitFailOpen(t *testing.T) {
	srv := redistest.Start(t)
	c := newRedisClient(t, srv.URL(), failTimeout)
	metrics := newOTelMetrics(t)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	const n = 3
	e := newEnv(t, memory.NewUsers(), withRemote(remote(randomIP())),
		withRateLimit(c.RateStore(), n, time.Minute, failTimeout), withTelemetry(metrics.tel), withTracing(tp))
	failOpens := func() float64 {
		return metrics.sum(t, "ratelimit_decisions_total", "decision=fail_open")
	}
	// Limiting works before the failure (the first request on a fresh
	// server may fail open while it loads the script on a slow machine).
	eventually(t, 5*time.Second, "limiter on a fresh server", func() error {
		rec := e.do(req{method: "GET", path: "/api/v1/users/me", token: e.bob.token})
		if rec.Header().Get("X-RateLimit-Limit") == "" {
			return errNotYet
		}
		return nil
	})
	ip := remote(randomIP())
	requests := []req{
		{method: "GET", path: "/api/v1/users/me", token: e.alice.token, remote: ip},
		{method: "GET", path: "/api/v1/users/" + e.alice.id, token: e.super, remote: ip},
		{method: "GET", path: "/api/v1/does-not-exist", remote: ip},
	}
	statuses := []int{200, 200, 404}
	failing := func(what string, rounds int) {
		t.Helper()
		before := failOpens()
		for i := range rounds {
			for j, r := range requests {
				start := time.Now()
				rec := e.do(r)
				took := time.Since(start)
				if rec.Code != statuses[j] {
					t.Fatalf("%s: round %d %s %s: %d, want %d: %s", what, i, r.method, r.path, rec.Code, statuses[j], rec.Body)
				}
				noRLHeaders(t, what, rec)
				if took > failBound {
					t.Errorf("%s: %s %s took %v, want < %v (limiter timeout %v)", what, r.method, r.path, took, failBound, failTimeout)
				}
			}
		}
		if got := failOpens() - before; got != float64(rounds*len(requests)) {
			t.Fatalf("%s: fail_open counter rose by %v, want %d", what, got, rounds*len(requests))
		}
	}
	// resumes waits for the limiter to answer again, then spends the
	// identity's budget: the request after it is limited.
	resumes := func(what string) {
		t.Helper()
		r := req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(randomIP())}
		var rem int64
		eventually(t, 10*time.Second, what, func() error {
			rec := e.do(r)
			if rec.Header().Get("X-RateLimit-Limit") == "" {
				return fmt.Errorf("%d without rate-limit headers", rec.Code)
			}
			_, rem, _ = rlHeaders(t, rec)
			return nil
		})
		for range rem {
			if rec := e.do(r); rec.Code != 404 {
				t.Fatalf("%s: %d within the budget", what, rec.Code)
			}
		}
		check429(t, e.do(r), n, time.Minute)
	}

	srv.Kill()
	failing("killed", 4)
	var failOpenSpans int
	for _, sp := range sr.Ended() {
		if sp.Name() == "ratelimit.check" && attrMap(sp)["ratelimit.decision"] == "fail_open" {
			failOpenSpans++
			if sp.Status().Code != codes.Error {
				t.Errorf("fail-open span status %v, want Error", sp.Status())
			}
		}
	}
	if failOpenSpans != 12 {
		t.Fatalf("%d ratelimit.check spans with decision fail_open, want 12", failOpenSpans)
	}
	logs := e.logs.String()
	if got := strings.Count(logs, "rate limiter unavailable"); got != 1 {
		t.Fatalf("fail-open logged %d times for 12 failures, want once (throttled)", got)
	}
	if !strings.Contains(logs, `"level":"WARN","msg":"rate limiter unavailable: request allowed (fail-open)"`) {
		t.Fatal("fail-open warning is not at WARN")
	}
	srv.Restart()
	resumes("after restart")

	srv.Pause()
	failing("paused", 1)
	srv.Resume()
	resumes("after resume")
}

// withFallback gives every limiter an in-process fallback store.
func withFallback(s service.CredentialRateStore) envOption {
	return func(e *envSetup) { e.deps.FallbackRateStore = s }
}

// With its store failing (an error, a hang) the limiter keeps limiting on
// the in-process fallback, for the same limit and window: exactly N of M
// concurrent requests pass, every answer carries the headers, decisions
// are counted as fallback and the span says so; the warning is logged once.
func TestRateLimitFallback(t *testing.T) {
	for name, store := range map[string]failingStore{"error": {}, "hang": {hang: true}} {
		t.Run(name, func(t *testing.T) {
			const n, m = 5, 30
			metrics := newOTelMetrics(t)
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			e := newEnv(t, memory.NewUsers(), withRemote(remote(randomIP())),
				withRateLimit(store, n, time.Minute, failTimeout), withFallback(memory.NewRateStore(nil)),
				withTelemetry(metrics.tel), withTracing(tp))
			fallbacks := func() float64 { return metrics.sum(t, "ratelimit_decisions_total", "decision=fallback") }
			before, spansBefore := fallbacks(), len(sr.Ended()) // the set-up's sign-ups were limited too
			passed := 0
			for _, rec := range burst(e, m, req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(randomIP())}) {
				if rec.Code == 429 {
					check429(t, rec, n, time.Minute)
					continue
				}
				checkEnvelope(t, rec, 404, "not_found")
				rlHeaders(t, rec)
				passed++
			}
			if passed != n {
				t.Fatalf("%d of %d passed on the fallback, want exactly %d", passed, m, n)
			}
			if got := fallbacks() - before; got != m {
				t.Fatalf("fallback decisions rose by %v, want %d", got, m)
			}
			if fo := metrics.sum(t, "ratelimit_decisions_total", "decision=fail_open"); fo != 0 {
				t.Fatalf("%v fail_open decisions with a working fallback", fo)
			}
			var spans int
			for _, sp := range sr.Ended()[spansBefore:] {
				if sp.Name() == "ratelimit.check" && attrMap(sp)["ratelimit.decision"] == "fallback" {
					spans++
					if sp.Status().Code != codes.Error {
						t.Fatalf("fallback span status %v, want Error (the store failed)", sp.Status())
					}
				}
			}
			if spans != m {
				t.Fatalf("%d ratelimit.check spans with decision fallback, want %d", spans, m)
			}
			if got := strings.Count(e.logs.String(), "rate limiter store unavailable: in-process fallback decides"); got != 1 {
				t.Fatalf("fallback warning logged %d times, want once (throttled)", got)
			}
		})
	}
}

// A real Redis behind a one-connection pool, stopped: concurrent requests
// fail on the read timeout or wait for the pool and fail on its timeout;
// either way the fallback limits them exactly. Killed, the same; once
// Redis is back, limiting resumes there.
func TestRateLimitFallbackOnRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	c, err := bredis.New(context.Background(), srv.URL(), bredis.Options{OpTimeout: failTimeout, PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	const n, m = 4, 20
	tel := newCountTel()
	e := newEnv(t, memory.NewUsers(), withRemote(remote(randomIP())),
		withRateLimit(c.RateStore(), n, time.Minute, failTimeout), withFallback(memory.NewRateStore(nil)), withTelemetry(tel))
	limitedBurst := func(what string) {
		t.Helper()
		before := tel.get("ratelimit_decisions_total", "decision=fallback")
		passed := 0
		for _, rec := range burst(e, m, req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(randomIP())}) {
			switch rec.Code {
			case 404:
				passed++
			case 429:
				check429(t, rec, n, time.Minute)
			default:
				t.Fatalf("%s: %d", what, rec.Code)
			}
		}
		if passed != n {
			t.Fatalf("%s: %d of %d passed, want exactly %d", what, passed, m, n)
		}
		if got := tel.get("ratelimit_decisions_total", "decision=fallback") - before; got != m {
			t.Fatalf("%s: %v fallback decisions, want %d", what, got, m)
		}
	}
	srv.Pause()
	limitedBurst("paused, pool of one")
	srv.Resume()
	srv.Kill()
	limitedBurst("killed")
	srv.Restart()
	eventually(t, 10*time.Second, "limiting back on Redis", func() error {
		before := tel.get("ratelimit_decisions_total", "decision=allowed")
		e.do(req{method: "GET", path: "/api/v1/does-not-exist", remote: remote(randomIP())})
		if tel.get("ratelimit_decisions_total", "decision=allowed") == before {
			return errNotYet
		}
		return nil
	})
}

// IPv6 clients are limited per network of IPv6Prefix bits (default 64):
// every address of a /64 shares one budget; the next /64 has its own.
func TestRateLimitIPv6Prefix(t *testing.T) {
	for _, tc := range []struct {
		prefix int
		shared bool
	}{{0, true}, {64, true}, {128, false}} {
		t.Run(fmt.Sprint(tc.prefix), func(t *testing.T) {
			const n = 3
			e := newEnv(t, memory.NewUsers(), withRemote(remote(randomIP())),
				withRateLimit(memory.NewRateStore(nil), n, time.Minute, semanticTimeout),
				func(s *envSetup) { s.cfg.IPv6Prefix = tc.prefix })
			get := func(ip string) *httptest.ResponseRecorder {
				return e.do(req{method: "GET", path: "/api/v1/does-not-exist", remote: "[" + ip + "]:1234"})
			}
			for i := range n {
				checkEnvelope(t, get(fmt.Sprintf("2001:db8:aa:bb::%x", i+1)), 404, "not_found")
			}
			rec := get("2001:db8:aa:bb:ffff::1")
			if tc.shared {
				check429(t, rec, n, time.Minute)
			} else {
				checkEnvelope(t, rec, 404, "not_found")
			}
			checkEnvelope(t, get("2001:db8:aa:bc::1"), 404, "not_found") // another /64
		})
	}
}
