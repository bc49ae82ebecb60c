package service_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/service"
	"github.com/bulwark-go/bulwark/service/user"
	"github.com/bulwark-go/bulwark/storage/memory"
	"github.com/bulwark-go/bulwark/storage/redis/redistest"
	"github.com/google/uuid"
)

// hookedUsers runs a hook inside Update and Delete, after the fence and
// before the store changes anything (to fault the cache at that moment),
// and counts the writes that reached the store.
type hookedUsers struct {
	user.Store
	before func()
	writes atomic.Int64
}

func (h *hookedUsers) Update(ctx context.Context, id uuid.UUID, upd user.Update) (user.User, error) {
	h.writes.Add(1)
	if h.before != nil {
		h.before()
	}
	return h.Store.Update(ctx, id, upd)
}

func (h *hookedUsers) Delete(ctx context.Context, id uuid.UUID) error {
	h.writes.Add(1)
	if h.before != nil {
		h.before()
	}
	return h.Store.Delete(ctx, id)
}

// failingSets is a cache whose Set (the fence) fails.
type failingSets struct{ service.Cache }

func (failingSets) Set(context.Context, string, []byte, time.Duration) error {
	return errors.New("cache down")
}

// A write whose fence cannot be set answers 503 and never reaches the
// store: nothing is acknowledged that the cache could contradict.
func TestFenceFailureRefusesTheWrite(t *testing.T) {
	users := &hookedUsers{Store: memory.NewUsers()}
	e := newEnv(t, users, withCache(failingSets{memory.NewCache(nil)}, time.Minute, semanticTimeout))
	for _, w := range []req{
		{method: "PATCH", path: "/api/v1/users/" + e.bob.id, token: e.super, body: `{"is_active":false}`},
		{method: "PATCH", path: "/api/v1/users/" + e.alice.id, token: e.alice.token, body: `{"password":"newpassword1","current_password":"alicepassword"}`},
		{method: "DELETE", path: "/api/v1/users/" + e.bob.id, token: e.super},
	} {
		rec := e.do(w)
		checkEnvelope(t, rec, 503, "service_unavailable")
		if rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("%s %s: Retry-After %q", w.method, w.path, rec.Header().Get("Retry-After"))
		}
	}
	if n := users.writes.Load(); n != 0 {
		t.Fatalf("%d writes reached the store behind a failed fence", n)
	}
	for _, tok := range []string{e.alice.token, e.bob.token} {
		decodeUser(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: tok}), 200)
	}
}

// staleEnv is two instances sharing a throw-away Redis (the cache) and a
// user store whose writes run a hook; short bounds so tombstones expire
// within seconds.
func staleEnv(t *testing.T) (a, b *env, srv *redistest.Server, users *hookedUsers) {
	t.Helper()
	srv = redistest.Start(t)
	c := newRedisClient(t, srv.URL(), failTimeout)
	users = &hookedUsers{Store: memory.NewUsers()}
	a = newEnv(t, users, withCache(c.Cache(), time.Minute, failTimeout), func(s *envSetup) {
		s.cfg.CacheWriteTimeout, s.cfg.CacheFlightTimeout = 200*time.Millisecond, 200*time.Millisecond
	})
	b = a.sibling()
	// Both instances have bob's entry in the shared cache.
	eventually(t, 5*time.Second, "bob cached", func() error {
		decodeUser(t, b.do(req{method: "GET", path: "/api/v1/users/me", token: a.bob.token}), 200)
		if v, ok, _ := c.Cache().Get(context.Background(), cacheKey(a.bob.id)); !ok || !strings.HasPrefix(string(v), "{") {
			return errNotYet
		}
		return nil
	})
	return a, b, srv, users
}

// Redis stopped (SIGSTOP) or killed while a deactivation is written: the
// write either answers 503 and changes nothing, or answers 200 and no later
// request on any instance is authorized by the old values.
func TestStaleAuthorizationUnderRedisFaults(t *testing.T) {
	deactivate := `{"is_active":false}`
	t.Run("paused before the write: 503, nothing changed", func(t *testing.T) {
		a, b, srv, users := staleEnv(t)
		srv.Pause()
		rec := a.do(req{method: "PATCH", path: "/api/v1/users/" + a.bob.id, token: a.super, body: deactivate})
		srv.Resume()
		checkEnvelope(t, rec, 503, "service_unavailable")
		if users.writes.Load() != 0 {
			t.Fatal("the write reached the store")
		}
		decodeUser(t, b.do(req{method: "GET", path: "/api/v1/users/me", token: a.bob.token}), 200)
	})
	for _, fault := range []string{"paused", "killed"} {
		t.Run("fence landed, then Redis "+fault+" during the write: 200, then refused everywhere", func(t *testing.T) {
			a, b, srv, users := staleEnv(t)
			users.before = func() {
				if fault == "paused" {
					srv.Pause()
				} else {
					srv.Kill()
				}
			}
			decodeUser(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + a.bob.id, token: a.super, body: deactivate}), 200)
			users.before = nil
			for _, e := range []*env{a, b} {
				checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: a.bob.token}), 401, "unauthorized")
			}
			if fault == "paused" {
				srv.Resume()
			} else {
				srv.Restart()
			}
			for range 3 {
				for _, e := range []*env{a, b} {
					checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: a.bob.token}), 401, "unauthorized")
				}
			}
		})
	}
}

// Redis restarted during a write loses the fence; a read on another
// instance then leases the empty key and fills it from the old row before
// the write commits. The write's settle must replace that entry, or the
// old values would authorize requests for a whole TTL after the 2xx.
func TestRedisRestartDuringTheWrite(t *testing.T) {
	a, b, srv, users := staleEnv(t)
	raw := rawRedis(t, srv.URL())
	users.before = func() {
		users.before = nil
		srv.Restart() // the fence is gone
		eventually(t, 5*time.Second, "Redis back", func() error { return raw.Ping(context.Background()).Err() })
		// Before the commit: the old row, cached through a fresh lease.
		decodeUser(t, b.do(req{method: "GET", path: "/api/v1/users/me", token: a.bob.token}), 200)
		if v := raw.Get(context.Background(), cacheKey(a.bob.id)).Val(); !strings.Contains(v, `"is_active":true`) {
			t.Errorf("setup: the key holds %q, want the old entry", v)
		}
	}
	decodeUser(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + a.bob.id, token: a.super, body: `{"is_active":false}`}), 200)
	if v := raw.Get(context.Background(), cacheKey(a.bob.id)).Val(); !strings.HasPrefix(v, "tomb:c:") {
		t.Fatalf("after the write the key holds %q, want a committed tombstone", v)
	}
	for _, e := range []*env{a, b} {
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: a.bob.token}), 401, "unauthorized")
	}
}

// The SIGSTOP trap: a read that saw the old row sends its fill while Redis
// is stopped; Redis buffers the command and runs it on SIGCONT, after the
// write's tombstone has expired. The fill is a swap from the read's lease,
// which the fence overwrote, so it stores nothing; a set-if-absent fill
// would bring the old entry back for a whole TTL.
func TestLateFillAfterTombstoneExpiry(t *testing.T) {
	a, b, srv, users := staleEnv(t)
	_ = users
	raw := rawRedis(t, srv.URL())
	ctx := context.Background()
	// Start from an absent key, so b's read takes a lease.
	if err := raw.Del(ctx, cacheKey(a.bob.id)).Err(); err != nil {
		t.Fatal(err)
	}
	counting := newCountingUsers(users.Store)
	users.Store = counting
	read, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	counting.mu.Lock()
	counting.slow = uuid.MustParse(a.bob.id)
	counting.afterRead = func() {
		if once.CompareAndSwap(false, true) {
			close(read) // b has the old row (active) and its lease
			<-release
		}
	}
	counting.mu.Unlock()
	done := make(chan int)
	go func() {
		done <- b.do(req{method: "GET", path: "/api/v1/users/me", token: a.bob.token}).Code
	}()
	<-read
	if v := raw.Get(ctx, cacheKey(a.bob.id)).Val(); !strings.HasPrefix(v, "lease:") {
		t.Fatalf("key holds %q during the read, want its lease", v)
	}
	decodeUser(t, a.do(req{method: "PATCH", path: "/api/v1/users/" + a.bob.id, token: a.super, body: `{"is_active":false}`}), 200)
	srv.Pause()
	close(release)
	if c := <-done; c != 200 {
		t.Fatalf("the read that began before the write: %d (it may see the old row)", c)
	}
	// Let the tombstone expire while Redis is stopped (Redis expires by wall
	// clock). A shorter wait only makes the test weaker, never flaky.
	time.Sleep(200*time.Millisecond + 200*time.Millisecond + failTimeout + 3*time.Second)
	srv.Resume()
	eventually(t, 5*time.Second, "Redis answers", func() error { return raw.Ping(ctx).Err() })
	if v, err := raw.Get(ctx, cacheKey(a.bob.id)).Result(); err == nil && strings.Contains(v, `"is_active":true`) {
		t.Fatalf("the late fill stored the old entry: %s", v)
	}
	for _, e := range []*env{a, b} {
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: a.bob.token}), 401, "unauthorized")
	}
}

// After its commit a write replaces the key with a committed tombstone,
// except another write's fence, set meanwhile, which is left in place.
func TestSettleKeepsAnotherWritesFence(t *testing.T) {
	c := memory.NewCache(nil)
	users := &hookedUsers{Store: memory.NewUsers()}
	e := newEnv(t, users, withCache(c, time.Minute, semanticTimeout))
	ctx := context.Background()
	other := []byte("tomb:p:another-write")
	users.before = func() {
		if err := c.Set(ctx, cacheKey(e.bob.id), other, time.Minute); err != nil {
			t.Error(err)
		}
	}
	decodeUser(t, e.do(req{method: "PATCH", path: "/api/v1/users/" + e.bob.id, token: e.super, body: `{"full_name":"B"}`}), 200)
	if v, _, _ := c.Get(ctx, cacheKey(e.bob.id)); string(v) != string(other) {
		t.Fatalf("key holds %q after the write, want the other write's fence kept", v)
	}
	users.before = nil
	decodeUser(t, e.do(req{method: "PATCH", path: "/api/v1/users/" + e.bob.id, token: e.super, body: `{"full_name":"C"}`}), 200)
	if v, _, _ := c.Get(ctx, cacheKey(e.bob.id)); !strings.HasPrefix(string(v), "tomb:c:") {
		t.Fatalf("key holds %q after a write, want its committed tombstone", v)
	}
}

// An entry that is not a cached user of the requested id (another user's
// entry planted at the key, broken JSON) is never used: the request reads
// the database, and the entry is counted as a cache error.
func TestForeignCacheEntryIsNotUsed(t *testing.T) {
	c := memory.NewCache(nil)
	tel := newCountTel()
	e := newEnv(t, memory.NewUsers(), withCache(c, time.Minute, semanticTimeout), withTelemetry(tel))
	ctx := context.Background()
	forged := `{"id":"` + e.superID + `","email":"root@example.com","full_name":null,"is_active":true,"is_superuser":true,"created_at":"2026-01-01T00:00:00Z","token_version":0}`
	for _, planted := range []string{forged, `{"id":`, `{}`} {
		if err := c.Set(ctx, cacheKey(e.alice.id), []byte(planted), time.Minute); err != nil {
			t.Fatal(err)
		}
		before := tel.get("cache_requests_total", "cache=users,result=error")
		me := decodeUser(t, e.do(req{method: "GET", path: "/api/v1/users/me", token: e.alice.token}), 200)
		if me["id"] != e.alice.id || me["is_superuser"] != false {
			t.Fatalf("planted %s: served %v", planted, me)
		}
		checkEnvelope(t, e.do(req{method: "GET", path: "/api/v1/users", token: e.alice.token}), 403, "forbidden")
		if tel.get("cache_requests_total", "cache=users,result=error") == before {
			t.Fatalf("planted %s: not counted as a cache error", planted)
		}
	}
}
