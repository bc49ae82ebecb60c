package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/postgres"
	"github.com/bulwark-go/bulwark/storage/postgres/pgtest"
	"github.com/bulwark-go/bulwark/storage/redis/redistest"
	"github.com/bulwark-go/bulwark/storage/storagetest"
	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func cacheKey(id string) string { return "cache:users:" + id }

// cacheEnv is an env with the user cache on c (entries live ttl), over
// memory users whose ByID reads are counted.
func cacheEnv(t *testing.T, c service.Cache, ttl time.Duration, opts ...envOption) (*env, *countingUsers) {
	t.Helper()
	users := newCountingUsers(memory.NewUsers())
	opts = append([]envOption{withCache(c, ttl, semanticTimeout)}, opts...)
	return newEnv(t, users, opts...), users
}

// getBody GETs path as token and wants 200; it returns the body.
func getBody(t *testing.T, e *env, path, token string) string {
	t.Helper()
	rec := e.do(req{method: "GET", path: path, token: token})
	decodeUser(t, rec, 200)
	return strings.TrimSpace(rec.Body.String())
}

// TestCache proves CONTRACT §6 through the whole handler chain, on the
// memory cache and on a real Redis.
func TestCache(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			runCache(t, bk.new)
		})
	}
}

func runCache(t *testing.T, newBackend func(*testing.T) *backend) {
	ctx := context.Background()

	t.Run("the entry is the UserPublic JSON and serves the next read", func(t *testing.T) {
		b := newBackend(t)
		tel := newCountTel()
		e, users := cacheEnv(t, b.cache, time.Minute, withTelemetry(tel))
		path := "/api/v1/users/" + e.alice.id
		first := getBody(t, e, path, e.super)
		if users.reads(e.alice.id) != 1 {
			t.Fatalf("first read: %d database reads of alice, want 1", users.reads(e.alice.id))
		}
		raw, ok, err := b.cache.Get(ctx, cacheKey(e.alice.id))
		if err != nil || !ok {
			t.Fatalf("no entry %s after the first read: ok=%v err=%v", cacheKey(e.alice.id), ok, err)
		}
		if b.raw != nil {
			if got := b.raw.Get(ctx, cacheKey(e.alice.id)).Val(); got != string(raw) {
				t.Fatalf("Redis holds %q", got)
			}
		}
		// The entry is the response body plus the token version (the one
		// extension of CONTRACT §6, for authentication).
		var fields, body map[string]any
		if err := json.Unmarshal(raw, &fields); err != nil || len(fields) != 7 || fields["token_version"] != float64(0) {
			t.Fatalf("entry is not the 6-field UserPublic plus token_version 0: %s", raw)
		}
		delete(fields, "token_version")
		if err := json.Unmarshal([]byte(first), &body); err != nil || fmt.Sprint(fields) != fmt.Sprint(body) {
			t.Fatalf("entry %s\nwant the response body %s plus token_version", raw, first)
		}
		for _, bad := range []string{"argon2", "hash", "password", "request_id"} {
			if bytes.Contains(bytes.ToLower(raw), []byte(bad)) {
				t.Fatalf("entry contains %q: %s", bad, raw)
			}
		}
		for range 2 {
			if second := getBody(t, e, path, e.super); second != first {
				t.Fatalf("cached read %s, want %s", second, first)
			}
		}
		// Authentication reads through the same entry: alice's own
		// requests do not touch the database either.
		getBody(t, e, "/api/v1/users/me", e.alice.token)
		getBody(t, e, path, e.alice.token)
		if n := users.reads(e.alice.id); n != 1 {
			t.Fatalf("%d database reads of alice, want 1 (the rest from the cache)", n)
		}
		if n := users.reads(e.superID); n != 1 {
			t.Fatalf("%d database reads of the superuser, want 1", n)
		}
		// super miss, alice miss, then super+alice hit twice, alice (auth) hit twice.
		if h, m := tel.get("cache_requests_total", "cache=users,result=hit"), tel.get("cache_requests_total", "cache=users,result=miss"); h != 6 || m != 2 {
			t.Fatalf("cache_requests_total hit=%v miss=%v, want 6 and 2", h, m)
		}
	})

	t.Run("a read after a successful write returns the new value", func(t *testing.T) {
		b := newBackend(t)
		e, _ := cacheEnv(t, b.cache, time.Minute)
		path := "/api/v1/users/" + e.bob.id
		getBody(t, e, path, e.super) // fill
		getBody(t, e, "/api/v1/users/me", e.bob.token)

		rec := e.do(req{method: "PATCH", path: path, token: e.super, body: `{"full_name":"Bobby"}`})
		decodeUser(t, rec, 200)
		if got := getBody(t, e, path, e.super); !strings.Contains(got, `"full_name":"Bobby"`) {
			t.Fatalf("after PATCH: %s", got)
		}
		if got := getBody(t, e, "/api/v1/users/me", e.bob.token); !strings.Contains(got, `"full_name":"Bobby"`) {
			t.Fatalf("/me after PATCH: %s", got)
		}
		rec = e.do(req{method: "PATCH", path: path, token: e.bob.token, body: `{"email":"robert@example.com","current_password":"bobpassword1"}`})
		decodeUser(t, rec, 200)
		if got := getBody(t, e, path, e.super); !strings.Contains(got, `"email":"robert@example.com"`) {
			t.Fatalf("after self PATCH: %s", got)
		}
		// Deactivation takes effect at once, though authentication reads
		// through the cache.
		decodeUser(t, e.do(req{method: "PATCH", path: path, token: e.super, body: `{"is_active":false}`}), 200)
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: e.bob.token}), 401, "unauthorized")
		if got := getBody(t, e, path, e.super); !strings.Contains(got, `"is_active":false`) {
			t.Fatalf("after deactivation: %s", got)
		}
		// The old value is not what the cache holds now.
		if raw, ok, _ := b.cache.Get(ctx, cacheKey(e.bob.id)); ok && bytes.Contains(raw, []byte("bob@example.com")) {
			t.Fatalf("stale entry after writes: %s", raw)
		}

		alice := "/api/v1/users/" + e.alice.id
		getBody(t, e, alice, e.super) // fill
		if rec := e.do(req{method: "DELETE", path: alice, token: e.super}); rec.Code != 204 {
			t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
		}
		checkEnvelope(t, e.do(req{method: "GET", path: alice, token: e.super}), 404, "not_found")
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: e.alice.token}), 401, "unauthorized")
	})

	// A read of alice is started and held after the store answered (with
	// the old row), before it fills the cache; then alice is written, on
	// the same instance or on another one sharing the store and the cache.
	heldRead := func(t *testing.T, otherInstance bool) (e *env, path string, old <-chan string, release func()) {
		b := newBackend(t)
		e, users := cacheEnv(t, b.cache, time.Minute)
		path = "/api/v1/users/" + e.alice.id
		getBody(t, e, "/api/v1/users/me", e.super) // the requester's own entry
		writer := e
		if otherInstance {
			writer = e.sibling()
		}
		read, rel := make(chan struct{}), make(chan struct{})
		var held atomic.Bool
		users.mu.Lock()
		users.slow = uuid.MustParse(e.alice.id)
		users.afterRead = func() {
			if held.CompareAndSwap(false, true) { // only the first read
				close(read)
				<-rel
			}
		}
		users.mu.Unlock()
		oldc := make(chan string, 1)
		go func() {
			rec := e.do(req{method: "GET", path: path, token: e.super})
			oldc <- rec.Body.String()
		}()
		<-read
		decodeUser(t, writer.do(req{method: "PATCH", path: path, token: e.super, body: `{"full_name":"New"}`}), 200)
		var releaseOnce sync.Once
		release = func() { releaseOnce.Do(func() { close(rel) }) }
		t.Cleanup(release)
		return e, path, oldc, release
	}

	t.Run("a read that fills late does not bring the old value back", func(t *testing.T) {
		e, path, old, release := heldRead(t, false)
		release()
		if got := <-old; !strings.Contains(got, `"full_name":null`) {
			t.Fatalf("the held read: %s", got) // it started before the write: the old value is fine
		}
		wantNew(t, e, path) // its fill met the tombstone
	})

	t.Run("a read after a write does not join a read from before it", func(t *testing.T) {
		for _, otherInstance := range []bool{false, true} {
			t.Run(map[bool]string{false: "same instance", true: "written on another instance"}[otherInstance], func(t *testing.T) {
				readAfterHeldWrite(t, heldRead, otherInstance)
			})
		}
	})

	t.Run("concurrent misses for one key cause one database read", func(t *testing.T) {
		const m = 50
		b := newBackend(t)
		tel := newCountTel()
		e, users := cacheEnv(t, b.cache, time.Minute, withTelemetry(tel))
		getBody(t, e, "/api/v1/users/me", e.super) // the requester's own entry
		missesBefore := tel.get("cache_requests_total", "cache=users,result=miss")
		// alice's read is held until every request has missed, so that all
		// of them really are concurrent misses.
		users.mu.Lock()
		users.slow = uuid.MustParse(e.alice.id)
		users.gate = func() {
			deadline := time.Now().Add(3 * time.Second)
			for tel.get("cache_requests_total", "cache=users,result=miss")-missesBefore < m && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
		}
		users.mu.Unlock()
		recs := burst(e, m, req{method: "GET", path: "/api/v1/users/" + e.alice.id, token: e.super})
		for _, rec := range recs {
			decodeUser(t, rec, 200)
			if rec.Body.String() != recs[0].Body.String() {
				t.Fatalf("bodies differ: %s vs %s", rec.Body, recs[0].Body)
			}
		}
		if n := users.reads(e.alice.id); n != 1 {
			t.Fatalf("%d concurrent misses caused %d database reads, want 1", m, n)
		}
		if miss := tel.get("cache_requests_total", "cache=users,result=miss") - missesBefore; miss != m {
			t.Fatalf("%v misses counted, want %d", miss, m)
		}
	})
}

// readAfterHeldWrite: while a read from before a write is held, a read that
// starts after the write (on the instance holding the old read) must not
// join it, and must return the new value.
func readAfterHeldWrite(t *testing.T, heldRead func(*testing.T, bool) (*env, string, <-chan string, func()), otherInstance bool) {
	e, path, old, release := heldRead(t, otherInstance)
	fresh := make(chan string, 1)
	go func() {
		rec := e.do(req{method: "GET", path: path, token: e.super})
		fresh <- rec.Body.String()
	}()
	select {
	case got := <-fresh:
		if !strings.Contains(got, `"full_name":"New"`) {
			t.Errorf("read after the write: %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("a read after the write waited for a read that started before it")
		release()
		if got := <-fresh; !strings.Contains(got, `"full_name":"New"`) {
			t.Errorf("and returned the old value: %s", got)
		}
	}
	release()
	<-old
	wantNew(t, e, path)
}

// wantNew wants alice's new full_name from two reads.
func wantNew(t *testing.T, e *env, path string) {
	t.Helper()
	for range 2 {
		if got := getBody(t, e, path, e.super); !strings.Contains(got, `"full_name":"New"`) {
			t.Fatalf("read after the write: %s", got)
		}
	}
}

// The entry lives min(CACHE_DEFAULT_TTL, 60s).
func TestCacheTTL(t *testing.T) {
	cases := []struct {
		configured, want time.Duration
	}{
		{30 * time.Second, 30 * time.Second},
		{5 * time.Minute, 60 * time.Second},
		{0, 60 * time.Second},
	}
	t.Run("redis", func(t *testing.T) {
		ctx := context.Background()
		for _, c := range cases {
			t.Run(c.configured.String(), func(t *testing.T) {
				b := sharedRedisBackend(t)
				e, _ := cacheEnv(t, b.cache, c.configured)
				getBody(t, e, "/api/v1/users/"+e.alice.id, e.super)
				ttl := b.raw.PTTL(ctx, cacheKey(e.alice.id)).Val()
				if ttl > c.want || ttl < c.want-5*time.Second {
					t.Fatalf("PTTL %v with CACHE_DEFAULT_TTL %v, want close to %v (never above 60s)", ttl, c.configured, c.want)
				}
			})
		}
	})
	t.Run("memory", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.configured.String(), func(t *testing.T) {
				clock := storagetest.NewFakeClock(time.Now())
				e, users := cacheEnv(t, memory.NewCache(clock.Now), c.configured)
				path := "/api/v1/users/" + e.alice.id
				getBody(t, e, path, e.super)
				clock.Advance(c.want - time.Second)
				getBody(t, e, path, e.super)
				if n := users.reads(e.alice.id); n != 1 {
					t.Fatalf("entry gone before %v: %d reads", c.want, n)
				}
				clock.Advance(2 * time.Second)
				getBody(t, e, path, e.super)
				if n := users.reads(e.alice.id); n != 2 {
					t.Fatalf("entry alive after %v: %d reads, want 2", c.want, n)
				}
			})
		}
	})
}

// With its Redis down the endpoint answers from the database, within the
// timeout bound, and the cache counts errors. A write cannot be fenced: it
// answers 503 and changes nothing; once Redis is back it goes through.
func TestCacheFailOpen(t *testing.T) {
	srv := redistest.Start(t)
	c := newRedisClient(t, srv.URL(), failTimeout)
	metrics := newOTelMetrics(t)
	users := newCountingUsers(memory.NewUsers())
	e := newEnv(t, users, withCache(c.Cache(), time.Minute, failTimeout), withTelemetry(metrics.tel))
	path := "/api/v1/users/" + e.alice.id
	errors := func() float64 { return metrics.sum(t, "cache_requests_total", "cache=users", "result=error") }

	eventually(t, 5*time.Second, "cache on a fresh server", func() error {
		before := users.reads(e.alice.id)
		getBody(t, e, path, e.super)
		if users.reads(e.alice.id) != before {
			return errNotYet // a miss (or a slow first connection): read again
		}
		return nil
	})

	srv.Kill()
	errBefore, readsBefore := errors(), users.reads(e.alice.id)
	for range 3 {
		start := time.Now()
		getBody(t, e, path, e.super)
		if took := time.Since(start); took > failBound {
			t.Errorf("GET with Redis down took %v, want < %v", took, failBound)
		}
	}
	if n := users.reads(e.alice.id) - readsBefore; n != 3 {
		t.Fatalf("%d database reads for 3 GETs with Redis down, want 3", n)
	}
	if got := errors() - errBefore; got < 3 {
		t.Fatalf("cache_requests_total{result=error} rose by %v, want >= 3", got)
	}
	for _, w := range []req{
		{method: "PATCH", path: path, token: e.alice.token, body: `{"full_name":"Down"}`},
		{method: "DELETE", path: path, token: e.super},
	} {
		rec := e.do(w)
		checkEnvelope(t, rec, 503, "service_unavailable")
		if rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%s with Redis down: 503 without Retry-After", w.method)
		}
	}
	if got := getBody(t, e, path, e.super); !strings.Contains(got, `"full_name":null`) {
		t.Fatalf("a refused write changed the user: %s", got)
	}

	srv.Restart()
	eventually(t, 10*time.Second, "writes after restart", func() error {
		if rec := e.do(req{method: "PATCH", path: path, token: e.alice.token, body: `{"full_name":"Up"}`}); rec.Code != 200 {
			return fmt.Errorf("PATCH: %d", rec.Code)
		}
		return nil
	})
	eventually(t, 10*time.Second, "cache after restart", func() error {
		before := users.reads(e.alice.id)
		got := getBody(t, e, path, e.super)
		if !strings.Contains(got, `"full_name":"Up"`) {
			t.Fatalf("after restart: %s", got)
		}
		if users.reads(e.alice.id) != before {
			return errNotYet
		}
		return nil
	})
}

// The rate-limit and cache spans are children of the request's server span
// and carry their decision attributes.
func TestSpans(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.new(t)
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			const n = 100
			e, _ := cacheEnv(t, b.cache, time.Minute, withTracing(tp), withRemote(remote(randomIP())),
				withRateLimit(b.rate, n, time.Minute, semanticTimeout))
			for i, wantHit := range []bool{false, true} {
				ctx, parent := tp.Tracer("test").Start(context.Background(), "client")
				rec := e.do(req{method: "GET", path: "/api/v1/users/" + e.alice.id, token: e.super, ctx: ctx})
				parent.End()
				decodeUser(t, rec, 200)
				spans := spansOf(sr, parent.SpanContext().TraceID())
				server := one(t, spans, func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindServer })
				if server.Name() != "GET /api/v1/users/{id}" || server.Parent().SpanID() != parent.SpanContext().SpanID() {
					t.Fatalf("server span %q, parent %v", server.Name(), server.Parent().SpanID())
				}
				check := one(t, spans, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "ratelimit.check" })
				childOf(t, check, server)
				attrs := attrMap(check)
				if attrs["ratelimit.identity"] != "user" || attrs["ratelimit.decision"] != "allowed" ||
					attrs["ratelimit.remaining"] != fmt.Sprint(n-1-i) {
					t.Fatalf("ratelimit.check attributes %v", attrs)
				}
				var gets int
				for _, s := range spans {
					if s.Name() != "cache.get" {
						continue
					}
					gets++
					childOf(t, s, server)
					if got := attrMap(s)["cache.hit"]; got != fmt.Sprint(wantHit) {
						t.Fatalf("request %d: cache.get cache.hit=%s, want %v", i, got, wantHit)
					}
				}
				if gets != 2 { // the caller (authentication), then the target
					t.Fatalf("request %d: %d cache.get spans, want 2", i, gets)
				}
				for _, s := range spans {
					for _, kv := range s.Attributes() {
						if strings.Contains(kv.Value.String(), "argon2") {
							t.Fatalf("span %s attribute %s carries a hash", s.Name(), kv.Key)
						}
					}
				}
			}
		})
	}
}

// A cached read touches no SQL: with the Postgres store instrumented by
// otelpgx, the second GET's trace has no database span.
func TestCacheSkipsSQL(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.new(t)
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			store, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.Options{TracerProvider: tp})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(store.Close)
			if err := store.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, store, withCache(b.cache, time.Minute, semanticTimeout), withTracing(tp))
			var bodies []string
			for i, wantSQL := range []bool{true, false} {
				ctx, parent := tp.Tracer("test").Start(context.Background(), "client")
				bodies = append(bodies, getBodyCtx(t, e, ctx, "/api/v1/users/"+e.alice.id, e.super))
				parent.End()
				var sql []string
				for _, s := range spansOf(sr, parent.SpanContext().TraceID()) {
					if isSQL(s) {
						sql = append(sql, s.Name())
					}
				}
				if wantSQL && len(sql) == 0 {
					t.Fatal("first read: no SQL span (is the store instrumented?)")
				}
				if !wantSQL && len(sql) != 0 {
					t.Fatalf("request %d was served from the cache yet ran SQL: %v", i, sql)
				}
			}
			if bodies[0] != bodies[1] {
				t.Fatalf("cached body %s, database body %s", bodies[1], bodies[0])
			}
		})
	}
}

func getBodyCtx(t *testing.T, e *env, ctx context.Context, path, token string) string {
	t.Helper()
	rec := e.do(req{method: "GET", path: path, token: token, ctx: ctx})
	decodeUser(t, rec, 200)
	return strings.TrimSpace(rec.Body.String())
}

// isSQL reports a database span: otelpgx's scope, or a db.system attribute.
func isSQL(s sdktrace.ReadOnlySpan) bool {
	if strings.Contains(s.InstrumentationScope().Name, "otelpgx") {
		return true
	}
	for _, kv := range s.Attributes() {
		if strings.HasPrefix(string(kv.Key), "db.system") {
			return true
		}
	}
	return false
}

func spansOf(sr *tracetest.SpanRecorder, id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

func one(t *testing.T, spans []sdktrace.ReadOnlySpan, f func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if f(s) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("%d matching spans among %v, want 1", len(found), names)
	}
	return found[0]
}

func childOf(t *testing.T, s, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if s.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("span %s: parent %v, want the server span %v", s.Name(), s.Parent().SpanID(), parent.SpanContext().SpanID())
	}
}

func attrMap(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}
