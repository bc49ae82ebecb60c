package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/storage/redis/redistest"
)

// failOpTimeout is short, as in production; the bound asserted is generous
// (failBound) so that a loaded machine does not make the test flaky. The
// point is that errors come back in the order of the op timeout, not in
// seconds (go-redis' defaults: 5s read timeout, 3 retries, 5 dial attempts).
const (
	failOpTimeout = 100 * time.Millisecond
	failBound     = 10 * failOpTimeout
)

func hitFailsFast(t *testing.T, rs *RateStore, cache *Cache, what string) {
	t.Helper()
	ctx := context.Background()
	for i := range 5 {
		start := time.Now()
		_, _, hitErr := rs.Hit(ctx, "ratelimit:ip:192.0.2.1", time.Minute)
		if took := time.Since(start); took > failBound {
			t.Errorf("%s: Hit %d took %v, want < %v", what, i, took, failBound)
		}
		if hitErr == nil {
			t.Fatalf("%s: Hit %d succeeded", what, i)
		}
		start = time.Now()
		_, _, getErr := cache.Get(ctx, "cache:users:x")
		if took := time.Since(start); took > failBound {
			t.Errorf("%s: Get %d took %v, want < %v", what, i, took, failBound)
		}
		if getErr == nil {
			t.Fatalf("%s: Get %d succeeded", what, i)
		}
		if i == 0 {
			t.Logf("%s: Hit error: %v; Get error: %v", what, hitErr, getErr)
		}
	}
}

// eventuallyHits waits until Hit succeeds (the pool redials at most a
// second apart after repeated dial failures) and returns the count.
func eventuallyHits(t *testing.T, rs *RateStore, what string) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _, err := rs.Hit(context.Background(), "ratelimit:ip:192.0.2.1", time.Minute)
		if err == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Hit still failing after 10s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFailOpenBound(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestClient(t, srv.URL(), Options{OpTimeout: failOpTimeout})
	rs, cache := c.RateStore(), c.Cache()

	if n := eventuallyHits(t, rs, "fresh server"); n != 1 {
		t.Fatalf("first count = %d, want 1", n)
	}

	srv.Kill()
	hitFailsFast(t, rs, cache, "killed")
	srv.Restart()
	// The new server is empty (and has no script cached: EVALSHA's
	// NOSCRIPT falls back to EVAL).
	if n := eventuallyHits(t, rs, "restarted"); n != 1 {
		t.Errorf("count after restart = %d, want 1", n)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping after restart: %v", err)
	}

	srv.Pause()
	hitFailsFast(t, rs, cache, "paused")
	if err := c.Ping(context.Background()); err == nil {
		t.Error("Ping on a paused server succeeded")
	}
	srv.Resume()
	// Hits that timed out while paused may still be counted on resume:
	// the count only has to move on.
	if n := eventuallyHits(t, rs, "resumed"); n < 2 {
		t.Errorf("count after resume = %d, want >= 2", n)
	}
}

func TestNewWithRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	c := newTestClient(t, srv.URL(), Options{OpTimeout: failOpTimeout})
	if err := c.Ping(context.Background()); err == nil {
		t.Fatal("Ping with Redis down succeeded")
	}
	hitFailsFast(t, c.RateStore(), c.Cache(), "down at start")
	srv.Restart()
	eventuallyHits(t, c.RateStore(), "started late")
}

func TestCallerDeadlineWins(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestClient(t, srv.URL(), Options{OpTimeout: time.Minute})
	srv.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := c.RateStore().Hit(ctx, "ratelimit:ip:192.0.2.1", time.Minute)
	if err == nil {
		t.Fatal("Hit on a paused server succeeded")
	}
	if took := time.Since(start); took > 10*100*time.Millisecond {
		t.Errorf("Hit took %v with a 100ms caller deadline", took)
	}
	srv.Resume()
}

func TestClosedClient(t *testing.T) {
	srv := redistest.Start(t)
	c, err := New(context.Background(), srv.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, _, err = c.RateStore().Hit(context.Background(), "ratelimit:ip:x", time.Second)
	if err == nil {
		t.Error("Hit after Close succeeded")
	}
	if err := c.Cache().Delete(context.Background(), "k"); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Delete after Close: %v, want a closed-client error", err)
	}
}
