package memory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/storage/storagetest"
)

func TestCacheContract(t *testing.T) {
	clock := storagetest.NewFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	c := NewCache(clock.Now)
	storagetest.RunCacheSuite(t, storagetest.CacheHarness{
		New:  func(*testing.T) storagetest.Cache { return c },
		TTL:  30 * time.Second,
		Wait: func(_ *testing.T, d time.Duration) { clock.Advance(d) },
	})
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	c := NewCacheWithMaxEntries(nil, 3)
	set := func(k string) {
		t.Helper()
		if err := c.Set(ctx, k, []byte(k), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	has := func(k string) bool {
		t.Helper()
		_, ok, err := c.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	set("a")
	set("b")
	set("c")
	has("a") // a is now the most recently used; b the least
	set("d")
	if has("b") {
		t.Error("b should have been evicted")
	}
	for _, k := range []string{"a", "c", "d"} {
		if !has(k) {
			t.Errorf("%s evicted", k)
		}
	}
	set("c") // replacing does not evict
	if n := c.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
}

func TestCacheStaysBounded(t *testing.T) {
	ctx := context.Background()
	c := NewCacheWithMaxEntries(nil, 100)
	for i := range 10_000 {
		if err := c.Set(ctx, fmt.Sprintf("cache:users:%d", i), []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 100 {
		t.Errorf("Len = %d, want 100", n)
	}
	if _, ok, _ := c.Get(ctx, "cache:users:9999"); !ok {
		t.Error("newest entry evicted")
	}
}

func TestCacheExpiryBoundary(t *testing.T) {
	ctx := context.Background()
	clock := storagetest.NewFakeClock(time.Unix(1000, 0))
	c := NewCache(clock.Now)
	if err := c.Set(ctx, "k", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second - time.Nanosecond)
	if _, ok, _ := c.Get(ctx, "k"); !ok {
		t.Error("miss before TTL")
	}
	clock.Advance(time.Nanosecond)
	if _, ok, _ := c.Get(ctx, "k"); ok {
		t.Error("hit at TTL")
	}
	if n := c.Len(); n != 0 {
		t.Errorf("expired entry kept after read: Len = %d", n)
	}
}

func TestCacheCanceledContext(t *testing.T) {
	c := NewCache(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := c.Get(ctx, "k"); err == nil {
		t.Error("Get: no error")
	}
	if err := c.Set(ctx, "k", nil, time.Second); err == nil {
		t.Error("Set: no error")
	}
	if err := c.Delete(ctx, "k"); err == nil {
		t.Error("Delete: no error")
	}
}
